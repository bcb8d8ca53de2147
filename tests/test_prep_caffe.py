"""Real Caffe reads what medft prep writes: the Data layer and compute_image_mean."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from medft.apps import APP_NAMES
from medft.datum_lmdb import read_lmdb
from medft.prep.mean import read_mean_binaryproto
from medft.prep.tiny import tiny_build

pytestmark = pytest.mark.caffe


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("caffe")
    return {app: Path(tiny_build(app, root, max_patches=24, max_test_patches=250)["dir"]) for app in APP_NAMES}


def test_compute_image_mean_agrees(built, tmp_path):
    from medft.engines.env import caffe_tool

    for app, d in built.items():
        out = tmp_path / f"{app}_mean.binaryproto"
        r = subprocess.run(
            [str(caffe_tool("compute_image_mean")), "-backend", "lmdb", str(d / "train_lmdb"), str(out)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr[-2000:]
        theirs, ours = read_mean_binaryproto(out), read_mean_binaryproto(d / "mean.binaryproto")
        assert theirs.shape == ours.shape == (3, 227, 227)
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-4, err_msg=app)


@pytest.mark.parametrize("app", APP_NAMES)
def test_data_layer_yields_exactly_what_was_written(built, app, tmp_path):
    from medft.engines.env import import_caffe

    caffe = import_caffe()
    caffe.set_mode_cpu()
    d = built[app]
    expected = list(read_lmdb(d / "train_lmdb"))
    batch = 5
    proto = tmp_path / "data.prototxt"
    proto.write_text(f"""name: "read_{app}"
layer {{ name: "data_{app}" type: "Data" top: "data" top: "label"
  data_param {{ source: "{d / "train_lmdb"}" backend: LMDB batch_size: {batch} }} }}
""")
    net = caffe.Net(str(proto), caffe.TEST)
    for step in range(2):  # two batches: records come in key order
        net.forward()
        data, label = net.blobs["data"].data, net.blobs["label"].data
        assert data.shape == (batch, 3, 227, 227)
        for i in range(batch):
            _, arr, lab = expected[step * batch + i]
            assert np.array_equal(data[i], arr.astype(np.float32))
            assert int(label[i]) == lab
    del net
