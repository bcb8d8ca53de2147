"""The generator: committed files regenerate byte for byte; the nets are Table I / BVLC AlexNet."""

from __future__ import annotations

import subprocess
import sys

import pytest
from medft import generate
from medft.alexnet import deploy_net, train_val_net
from medft.errors import MedftError
from medft.schema import pb
from medft.solver import iters_per_epoch

from tests.conftest import ROOT


def test_regeneration_is_byte_identical(tmp_path):
    generate.write_all(tmp_path)
    produced = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(ROOT) for d in ("prototxt", "solvers")
                       for p in (ROOT / d).rglob("*") if p.is_file())
    assert produced == committed
    for rel in produced:
        assert (tmp_path / rel).read_bytes() == (ROOT / rel).read_bytes(), rel


def test_gen_check_cli_detects_a_stale_file(tmp_path):
    generate.write_all(tmp_path, apps=("frames",))
    target = tmp_path / "prototxt/frames/ft-fc7/deploy.prototxt"
    target.write_text(target.read_text().replace("lr_mult: 10", "lr_mult: 5"))
    cmd = [sys.executable, "-m", "medft.cli", "gen", "--out", str(tmp_path), "--app", "frames", "--check"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 1 and "prototxt/frames/ft-fc7/deploy.prototxt" in r.stdout


def test_headers_say_generated():
    for f in generate.generate_variant("pe", "ft-fc6"):
        first = f.text.splitlines()[0]
        assert "GENERATED" in first or f.path.endswith("readme.md"), f.path
    assert "generated_by: medft.generate" in generate.generate_variant("pe", "ft-fc6")[2].text


def _layers(net: pb.NetParameter) -> dict[str, pb.LayerParameter]:
    return {layer.name: layer for layer in net.layer}


@pytest.mark.parametrize("app,classes", [("polyp", 2), ("pe", 2), ("frames", 2), ("cimt", 3)])
def test_alexnet_matches_table_one_and_bvlc(app, classes):
    layers = _layers(deploy_net(app, "ft-conv1"))
    order = [name for name in layers]
    assert order.index("norm1") < order.index("pool1")  # AlexNet, not CaffeNet
    expect_conv = {"conv1": (96, 11, 4, 0, 1, 0.0), "conv2": (256, 5, 1, 2, 2, 0.1),
                   "conv3": (384, 3, 1, 1, 1, 0.0), "conv4": (384, 3, 1, 1, 2, 0.1),
                   "conv5": (256, 3, 1, 1, 2, 0.1)}
    for name, (n, k, s, p, g, bias) in expect_conv.items():
        cp = layers[name].convolution_param
        assert cp.num_output == n and list(cp.kernel_size) == [k]
        assert (list(cp.stride) or [1]) == [s] and (list(cp.pad) or [0]) == [p]
        assert cp.group == g
        assert cp.weight_filler.type == "gaussian" and cp.weight_filler.std == pytest.approx(0.01)
        assert cp.bias_filler.value == pytest.approx(bias)
    for name in ("norm1", "norm2"):
        lrn = layers[name].lrn_param
        assert lrn.HasField("alpha")  # proto default is 1.0: must be written explicitly
        assert (lrn.local_size, lrn.alpha, lrn.beta) == (5, pytest.approx(1e-4), 0.75)
    for name in ("pool1", "pool2", "pool5"):
        pp = layers[name].pooling_param
        assert (pp.pool, pp.kernel_size, pp.stride) == (pb.PoolingParameter.MAX, 3, 2)
    for name, std in (("fc6", 0.005), ("fc7", 0.005)):
        ip = layers[name].inner_product_param
        assert ip.num_output == 4096 and ip.weight_filler.std == pytest.approx(std)
        assert ip.bias_filler.value == pytest.approx(0.1)
        assert layers[f"drop{name[-1]}"].dropout_param.dropout_ratio == pytest.approx(0.5)
    assert "fc8" not in layers  # renamed so pretrained fc8 is not copied
    assert layers[f"fc8_{app}"].inner_product_param.num_output == classes
    assert list(layers["data"].input_param.shape[0].dim)[1:] == [3, 227, 227]
    assert list(layers)[-1] == "prob" and layers["prob"].type == "Softmax"


def test_scratch_init_variants():
    for init in ("xavier", "msra"):
        layers = _layers(train_val_net("frames", "scratch", init))
        assert layers["conv1"].convolution_param.weight_filler.type == init
        assert layers["fc7"].inner_product_param.weight_filler.type == init
    with pytest.raises(MedftError, match="valid: gaussian, xavier, msra"):
        train_val_net("frames", "scratch", "orthogonal")


def test_train_val_data_layers():
    layers = _layers(train_val_net("polyp", "ft-fc8"))
    tr, va = layers["data_train"], layers["data_val"]
    assert tr.include[0].phase == pb.TRAIN and va.include[0].phase == pb.TEST
    for d in (tr, va):
        assert d.data_param.backend == pb.DataParameter.LMDB
        assert len(d.transform_param.mean_value) == 3 and not d.transform_param.mean_file
        assert d.transform_param.crop_size == 0 and not d.transform_param.mirror
    assert layers["loss"].type == "SoftmaxWithLoss"


def test_solver_stepsize_is_one_epoch():
    s = pb.SolverParameter()
    from google.protobuf import text_format
    text_format.Merge((ROOT / "solvers/polyp/ft-conv1/solver.prototxt").read_text(), s)
    assert s.stepsize == iters_per_epoch(80_000, 256) == 313
    assert s.test_interval == s.snapshot == s.stepsize
    assert s.weight_decay == pytest.approx(0.0005)
    assert s.random_seed == 2016 and s.type == "SGD"
    assert iters_per_epoch(8, 4) == 2 and iters_per_epoch(9, 4) == 3


def test_unknown_app():
    with pytest.raises(MedftError, match="valid: polyp, pe, frames, cimt"):
        deploy_net("lung", "scratch")
