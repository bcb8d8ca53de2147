"""Real Caffe loads every generated net; blob shapes equal Table I; SGD honours Table II."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
from google.protobuf import text_format
from medft.alexnet import NetOptions, train_val_net
from medft.engines.env import caffe_tool
from medft.schedule import all_variants, variant_name
from medft.schema import pb, read_prototxt
from medft.solver import SolverOptions, solver
from medft.util.atomic import write_text_atomic

from tests.conftest import ROOT

pytestmark = pytest.mark.caffe

TABLE_I = {  # blob: C x H x W of Table I
    "data": (3, 227, 227), "conv1": (96, 55, 55), "pool1": (96, 27, 27), "conv2": (256, 27, 27),
    "pool2": (256, 13, 13), "conv3": (384, 13, 13), "conv4": (384, 13, 13), "conv5": (256, 13, 13),
    "pool5": (256, 6, 6), "fc6": (4096,), "fc7": (4096,),
}


@pytest.mark.parametrize("app,classes", [("polyp", 2), ("pe", 2), ("frames", 2), ("cimt", 3)])
def test_deploy_blob_shapes_equal_table_one(caffe, app, classes):
    net = caffe.Net(str(ROOT / f"prototxt/{app}/ft-conv1/deploy.prototxt"), caffe.TEST)
    for blob, shape in TABLE_I.items():
        assert net.blobs[blob].data.shape[1:] == shape, blob
    assert net.blobs[f"fc8_{app}"].data.shape[1:] == (classes,)
    assert net.blobs["prob"].data.shape[1:] == (classes,)
    assert net.params["conv2"][0].data.shape == (256, 48, 5, 5)  # group 2
    net.blobs["data"].data[...] = np.random.default_rng(0).normal(size=net.blobs["data"].data.shape)
    prob = net.forward()["prob"]
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, rtol=1e-5)


def _localised(path, tiny_lmdbs, tmp_path):
    """A committed train_val net with its LMDB sources pointed at the tiny test LMDBs."""
    net = read_prototxt(path, pb.NetParameter())
    for layer in net.layer:
        if layer.type == "Data":
            train = layer.include[0].phase == pb.TRAIN
            layer.data_param.source = str(tiny_lmdbs[0] if train else tiny_lmdbs[1])
            layer.data_param.batch_size = 2
    out = tmp_path / "net.prototxt"
    write_text_atomic(out, text_format.MessageToString(net))
    return out


@pytest.mark.parametrize("app", ["polyp", "pe", "frames", "cimt"])
def test_every_generated_net_loads(caffe, app, tiny_lmdbs, tmp_path):
    for config, init in all_variants():
        variant = variant_name(config, init)
        folder = ROOT / f"prototxt/{app}/{variant}"
        deploy = caffe.Net(str(folder / "deploy.prototxt"), caffe.TEST)
        assert deploy.blobs["prob"].data.shape[1] == (3 if app == "cimt" else 2)
        del deploy
        local = _localised(folder / "train_val.prototxt", tiny_lmdbs, tmp_path)
        phases = (caffe.TRAIN, caffe.TEST) if config == "ft-conv1" else (caffe.TRAIN,)
        for phase in phases:
            net = caffe.Net(str(local), phase)
            assert net.blobs["data"].data.shape == (2, 3, 227, 227)
            assert "loss" in net.blobs
            del net


def test_ft_conv3_sgd_freezes_conv1_conv2_and_steps_lr_per_epoch(caffe, tiny_lmdbs, tmp_path):
    """A generated ft-conv3 solver: conv1/conv2 bit-identical after SGD, conv3..fc8 change,
    and the learning rate after one epoch (8 patches / batch 4 = 2 iterations) is 0.00095."""
    opts = NetOptions(train_source=str(tiny_lmdbs[0]), val_source=str(tiny_lmdbs[1]),
                      train_batch=4, test_batch=4)
    net_path = tmp_path / "train_val.prototxt"
    write_text_atomic(net_path, text_format.MessageToString(train_val_net("polyp", "ft-conv3", options=opts)))
    sp = solver(SolverOptions(n_train=8, n_val=4, train_batch=4, test_batch=4, net=str(net_path),
                              snapshot_prefix=str(tmp_path / "snap"), max_epochs=2))
    assert sp.stepsize == 2
    sp.display = 1
    sp.snapshot = 0
    sp.snapshot_after_train = False
    solver_path = tmp_path / "solver.prototxt"
    write_text_atomic(solver_path, text_format.MessageToString(sp))

    s = caffe.SGDSolver(str(solver_path))
    before = {k: [b.data.copy() for b in v] for k, v in s.net.params.items()}
    s.step(3)
    for name in ("conv1", "conv2"):
        for b0, b in zip(before[name], s.net.params[name]):
            assert np.array_equal(b0, b.data), f"{name} changed"
    for name in ("conv3", "conv4", "conv5", "fc6", "fc7", "fc8_polyp"):
        assert not np.array_equal(before[name][0], s.net.params[name][0].data), f"{name} did not change"
    del s

    # The learning rate, as real Caffe logs it ("Iteration N, lr = ...").
    r = subprocess.run([str(caffe_tool("caffe")), "train", f"--solver={solver_path}"],
                       capture_output=True, text=True, env={"GLOG_logtostderr": "1"}, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    lrs = {int(i): float(lr) for i, lr in re.findall(r"Iteration (\d+), lr = ([0-9.e-]+)", r.stderr)}
    assert lrs[0] == pytest.approx(0.001) and lrs[1] == pytest.approx(0.001)
    assert lrs[2] == pytest.approx(0.00095)  # one epoch done: 0.001 * 0.95
    assert lrs[3] == pytest.approx(0.00095)


@pytest.mark.parametrize("size", [227, 224, 200])
def test_python_shapes_equal_caffe(caffe, size, tmp_path):
    """medft.shapes (ceil pooling, floor convolution) against real Caffe, also where they differ."""
    from medft.alexnet import NetOptions, deploy_net
    from medft.shapes import net_shapes

    net = deploy_net("cimt", "scratch")
    net.layer[0].input_param.shape[0].dim[2:] = [size, size]
    path = tmp_path / "net.prototxt"
    write_text_atomic(path, text_format.MessageToString(net))
    real = caffe.Net(str(path), caffe.TEST)
    blobs, params = net_shapes(net, (10, 3, size, size))
    for name, shape in blobs.items():
        assert real.blobs[name].data.shape == shape, name
    for name, shapes in params.items():
        assert [b.data.shape for b in real.params[name]] == shapes, name
    assert NetOptions().deploy_batch == 10
