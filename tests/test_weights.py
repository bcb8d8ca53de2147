"""Pretrained weights: SHA-1 check, offline message, V1/V2 shapes, copying by layer name into real Caffe."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from google.protobuf import text_format
from medft import caffemodel, paths, weights
from medft.caffemodel import BVLC_ALEXNET_SHA1, describe, layer_shapes, sidecar_path, verify_sha1
from medft.engines.transfer import copy_pretrained
from medft.errors import MedftError
from medft.pretrain import source_task_deploy
from medft.schema import pb, read_net, write_net_binary
from medft.util.atomic import write_text_atomic
from medft.weights import download_bvlc_alexnet, find_pretrained

from tests.conftest import POLYP_DEPLOY, TRANSFERRED

UNREACHABLE = "http://127.0.0.1:9/bvlc_alexnet.caffemodel"  # discard port: connection refused


# --- download and SHA-1 -------------------------------------------------------------------------

def test_sha1_check_rejects_a_wrong_file(tmp_path):
    wrong = tmp_path / "wrong.caffemodel"
    wrong.write_bytes(b"not the BVLC AlexNet")
    dest = tmp_path / "weights" / "bvlc_alexnet.caffemodel"
    with pytest.raises(MedftError, match=f"SHA-1 is {hashlib.sha1(b'not the BVLC AlexNet').hexdigest()}"):
        download_bvlc_alexnet(dest, url=wrong.as_uri())
    assert list(dest.parent.iterdir()) == []  # neither the file nor a partial download
    with pytest.raises(MedftError, match=BVLC_ALEXNET_SHA1):
        verify_sha1(wrong, BVLC_ALEXNET_SHA1)


def test_download_installs_a_verified_file_and_keeps_it(tmp_path):
    payload = b"pretend caffemodel" * 1000
    src = tmp_path / "src.caffemodel"
    src.write_bytes(payload)
    sha = hashlib.sha1(payload).hexdigest()
    dest = tmp_path / "w" / "bvlc_alexnet.caffemodel"
    assert download_bvlc_alexnet(dest, url=src.as_uri(), sha1=sha) == dest
    assert dest.read_bytes() == payload
    # present and verified: no network needed the second time
    assert download_bvlc_alexnet(dest, url=UNREACHABLE, sha1=sha) == dest
    with pytest.raises(MedftError, match="cannot download"):
        download_bvlc_alexnet(dest, url=UNREACHABLE, sha1=sha, force=True)
    assert dest.read_bytes() == payload  # a failed re-download leaves the good file alone


def test_offline_download_says_what_to_fetch_and_where(tmp_path):
    dest = tmp_path / "weights" / "bvlc_alexnet.caffemodel"
    with pytest.raises(MedftError) as err:
        download_bvlc_alexnet(dest, url=UNREACHABLE, timeout=5)
    msg = str(err.value)
    for part in (UNREACHABLE, str(dest), BVLC_ALEXNET_SHA1, "MEDFT_BVLC_ALEXNET", "medft pretrain"):
        assert part in msg
    assert "\n" not in msg
    assert not dest.exists()


def _fake_standin(path, sha_of=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"stand-in weights")
    sha = hashlib.sha1(sha_of or path.read_bytes()).hexdigest()
    meta = {"kind": "standin", "sha1": sha, "budget": {"iterations": 7, "batch": 2}, "heldout_accuracy": 0.25,
            "source_task": {"classes": list("abcd")}}
    sidecar_path(path).write_text(json.dumps(meta))


def test_find_pretrained_prefers_verified_bvlc_then_standin(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDFT_CACHE", str(tmp_path / "cache"))
    bvlc = tmp_path / "bvlc.caffemodel"
    bvlc.write_bytes(b"some other network")
    monkeypatch.setenv("MEDFT_BVLC_ALEXNET", str(bvlc))
    assert find_pretrained() is None  # wrong SHA-1 and no stand-in
    standin = paths.standin_path()
    _fake_standin(standin)
    assert find_pretrained() == (standin, "standin")
    assert describe(standin) == ("medft stand-in: formula-driven patterns, 7 iterations (batch 2), "
                                 "held-out accuracy 0.25 (chance 0.25) — NOT ImageNet")
    for module in (weights, caffemodel):  # the SHA-1 that find_pretrained and describe recognise
        monkeypatch.setattr(module, "BVLC_ALEXNET_SHA1", hashlib.sha1(b"some other network").hexdigest())
    assert find_pretrained() == (bvlc, "bvlc")
    assert describe(bvlc) == "BVLC AlexNet (ImageNet, 360k iterations)"


def test_standin_whose_sidecar_does_not_match_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDFT_CACHE", str(tmp_path))
    monkeypatch.delenv("MEDFT_BVLC_ALEXNET", raising=False)
    _fake_standin(paths.standin_path(), sha_of=b"an older file")
    assert find_pretrained() is None
    assert "does not match" in describe(paths.standin_path())


# --- shapes -------------------------------------------------------------------------------------

def _blob(shape, legacy=False):
    """A BlobProto with a shape and no values (shape checks come first, so tests need none)."""
    b = pb.BlobProto()
    if legacy:
        b.num, b.channels, b.height, b.width = (1,) * (4 - len(shape)) + tuple(shape)
    else:
        b.shape.dim.extend(shape)
    return b


def _model(path, layers, v1=False):
    """A caffemodel of ``layers`` = [(name, [shape, ...])], V2 ``layer`` or V1 ``layers`` (legacy dims)."""
    net = pb.NetParameter(name="t")
    for name, shapes in layers:
        layer = net.layers.add(name=name, type=pb.V1LayerParameter.CONVOLUTION) if v1 else \
            net.layer.add(name=name, type="Convolution")
        layer.blobs.extend(_blob(s, legacy=v1) for s in shapes)
    write_net_binary(path, net)
    return path


def test_layer_shapes_v2_and_v1(tmp_path):
    layers = [("data", []), ("conv1", [(96, 3, 11, 11), (96,)]), ("fc6", [(4096, 9216), (4096,)])]
    v2 = layer_shapes(_model(tmp_path / "v2.caffemodel", layers))
    v1 = layer_shapes(_model(tmp_path / "v1.caffemodel", layers, v1=True))
    assert v2 == v1 == {"conv1": [(96, 3, 11, 11), (96,)], "fc6": [(4096, 9216), (4096,)]}
    stored = read_net(tmp_path / "v1.caffemodel").layers[2].blobs[0]
    assert (stored.num, stored.channels, stored.height, stored.width) == (1, 1, 4096, 9216)


def test_layer_shapes_refuses_bad_files(tmp_path):
    both = _model(tmp_path / "both.caffemodel", [("conv1", [(2,)])])
    net = read_net(both)
    net.layers.add(name="conv2")
    write_net_binary(both, net)
    with pytest.raises(MedftError, match="both V2 'layer' and V1 'layers'"):
        layer_shapes(both)
    junk = tmp_path / "junk.caffemodel"
    junk.write_bytes(b"\xff\xff\xff garbage")
    with pytest.raises(MedftError, match="not a Caffe NetParameter"):
        layer_shapes(junk)


# --- copying into real Caffe --------------------------------------------------------------------

@pytest.fixture(scope="module")
def imagenet_models(caffe, tmp_path_factory):
    """An ImageNet-named AlexNet (fc8: 1000) saved by Caffe (V2) and converted to V1 legacy blobs,
    with its parameters as arrays."""
    d = tmp_path_factory.mktemp("imagenet")
    proto = d / "deploy.prototxt"
    write_text_atomic(proto, text_format.MessageToString(source_task_deploy(1000, batch=1)))
    src = caffe.Net(str(proto), caffe.TEST)
    rng = np.random.default_rng(0)
    for name, blobs in src.params.items():
        blobs[1].data[...] = rng.normal(size=blobs[1].data.shape)  # biases are constants otherwise
        if name == "conv1":
            blobs[0].data[...] = rng.normal(size=blobs[0].data.shape)
    src.save(str(d / "v2.caffemodel"))
    arrays = {name: [b.data.copy() for b in blobs] for name, blobs in src.params.items()}
    del src
    v2 = read_net(d / "v2.caffemodel")
    v1 = pb.NetParameter(name=v2.name)
    v1type = pb.V1LayerParameter
    types = {"Convolution": v1type.CONVOLUTION, "InnerProduct": v1type.INNER_PRODUCT}
    for layer in v2.layer:
        if layer.blobs:
            old = v1.layers.add(name=layer.name, type=types[layer.type])
            for b in layer.blobs:
                nb = old.blobs.add()
                nb.CopyFrom(b)
                dims = tuple(nb.shape.dim)
                nb.ClearField("shape")
                nb.num, nb.channels, nb.height, nb.width = (1,) * (4 - len(dims)) + dims
    write_net_binary(d / "v1.caffemodel", v1)
    return {"v2": d / "v2.caffemodel", "v1": d / "v1.caffemodel", "arrays": arrays}


@pytest.mark.caffe
@pytest.mark.slow  # its fixture writes two full-size AlexNet caffemodels (~240 MB each)
@pytest.mark.parametrize("form", ["v2", "v1"])
def test_copy_pretrained_copies_by_name_and_leaves_fc8_polyp(caffe, imagenet_models, form):
    net = caffe.Net(str(POLYP_DEPLOY), caffe.TEST)
    own_fc8 = [b.data.copy() for b in net.params["fc8_polyp"]]
    report = copy_pretrained(net, imagenet_models[form])
    assert report.copied == TRANSFERRED
    assert report.initialised == ["fc8_polyp"]
    assert report.ignored == ["fc8"]
    for name in TRANSFERRED:
        for got, want in zip(net.params[name], imagenet_models["arrays"][name]):
            np.testing.assert_array_equal(got.data, want)
    for got, want in zip(net.params["fc8_polyp"], own_fc8):
        np.testing.assert_array_equal(got.data, want)
    text = report.summary()
    assert "unknown caffemodel" in text and "fc8_polyp" in text
    assert json.loads(json.dumps(report.to_dict()))["copied"] == TRANSFERRED


@pytest.mark.caffe
@pytest.mark.parametrize("layers,v1,needle", [
    ([("conv1", [(64, 3, 11, 11), (64,)])], False, r"layer conv1: .* \(96, 3, 11, 11\) .* \(64, 3, 11, 11\)"),
    ([("fc6", [(4096, 9000), (4096,)])], True,
     r"layer fc6: .* \(4096, 9216\) .* \(1, 1, 4096, 9000\) \(legacy"),
    # Caffe matches legacy dims right-aligned, but an explicit N-D shape must be equal exactly
    ([("fc6", [(1, 1, 4096, 9216), (4096,)])], False, r"layer fc6: .* \(1, 1, 4096, 9216\)"),
    ([("conv1", [(96, 3, 11, 11)])], False, r"layer conv1: the net has 2 parameter blob\(s\), .* has 1"),
    ([("fc8", [(1000, 4096), (1000,)])], False, r"no parameter layer shares a name"),
    # right shapes, no values: Caffe's FromProto would abort; medft calls the file corrupt
    ([("conv1", [(96, 3, 11, 11), (96,)])], False, r"layer conv1: blob 0 of .* holds 0 values .* corrupt"),
])
def test_copy_pretrained_refuses_mismatches_without_aborting(caffe, tmp_path, layers, v1, needle):
    net = caffe.Net(str(POLYP_DEPLOY), caffe.TEST)
    before = net.params["conv2"][0].data.copy()
    with pytest.raises(MedftError, match=needle):
        copy_pretrained(net, _model(tmp_path / "bad.caffemodel", layers, v1=v1))
    np.testing.assert_array_equal(net.params["conv2"][0].data, before)  # the process is alive, net untouched


def _valued_model(path, layers: dict[str, list[np.ndarray]], v1: bool = False):
    """A caffemodel of ``layers`` (V1 ``layers`` with legacy 4-D blobs when ``v1``)."""
    from medft.schema import array_to_blob

    net = pb.NetParameter(name="m")
    for name, blobs in layers.items():
        layer = net.layers.add(name=name) if v1 else net.layer.add(name=name, type="Convolution")
        layer.blobs.extend(array_to_blob(b.reshape((1,) * (4 - b.ndim) + b.shape) if v1 else b, legacy_4d=v1)
                           for b in blobs)
    write_net_binary(path, net)
    return path


def _sha1(a: np.ndarray) -> str:
    return hashlib.sha1(np.asarray(a, dtype="<f4").tobytes()).hexdigest()


def test_verified_copy_names_a_frozen_layer_that_moved_or_a_copy_that_never_happened(tmp_path):
    """ft-conv3 keeps conv1 and conv2 fixed (Table II). The check compares SHA-1s of float32 values
    (hashed here with hashlib) of the source, the start of training and the snapshot: one ULP of a
    frozen weight, or a start from other values, is an error naming the layer, and weights.json
    records what was found either way."""
    from medft.copy_check import verify_snapshot

    rng = np.random.default_rng(0)
    src = {n: [rng.normal(size=(4, 3, 2, 2)).astype(np.float32), rng.normal(size=4).astype(np.float32)]
           for n in ("conv1", "conv2", "conv3")}
    source = _valued_model(tmp_path / "source.caffemodel", src, v1=True)  # BVLC's file form: V1, legacy dims
    out = tmp_path / "run"
    out.mkdir()

    def run(start: dict, snapshot: dict, iteration: int = 2):
        (out / "weights.json").write_text(json.dumps({
            "source": str(source), "description": "test", "copied": ["conv1", "conv2", "conv3"],
            "initialised": ["fc8_polyp"], "ignored": [], "summary": "",
            "start_sha1": {n: [_sha1(b) for b in bs] for n, bs in start.items()}}))
        return verify_snapshot(out, _valued_model(out / f"x_iter_{iteration}.caffemodel", snapshot), "ft-conv3")

    trained = {**src, "conv3": [b + 0.5 for b in src["conv3"]]}
    rep = run(src, trained)
    ver = json.loads((out / "weights.json").read_text())["verified"]
    assert ver == rep["verified"] and ver["iteration"] == 2 and ver["frozen"] == ["conv1", "conv2"]
    assert ver["layers"]["conv1"] == {"source_sha1": [_sha1(b) for b in src["conv1"]], "start_equal": True,
                                      "frozen": True, "after_sha1": [_sha1(b) for b in src["conv1"]],
                                      "after_equal": True}
    assert ver["layers"]["conv3"] == {"source_sha1": [_sha1(b) for b in src["conv3"]], "start_equal": True}
    assert "2 of 2 frozen layer(s) still equal it" in rep["summary"]

    bias = src["conv2"][1].copy()
    bias[3] = np.nextafter(bias[3], np.float32(np.inf))  # one unit in the last place
    with pytest.raises(MedftError, match="frozen layer conv2 .*no longer equals"):
        run(src, {**trained, "conv2": [src["conv2"][0], bias]})
    assert json.loads((out / "weights.json").read_text())["verified"]["layers"]["conv2"]["after_equal"] is False

    fillers = {**src, "conv1": [b * 0 + 0.01 for b in src["conv1"]]}
    with pytest.raises(MedftError, match="layer conv1 did not start from it"):
        run(fillers, trained)
    assert json.loads((out / "weights.json").read_text())["verified"]["layers"]["conv1"]["start_equal"] is False
    assert verify_snapshot(tmp_path, out / "x_iter_2.caffemodel", "scratch") is None  # no weights.json: scratch
