"""The offline stand-in: synthetic source task, a tiny real-Caffe pretrain, its sidecar, reuse, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from medft import caffemodel, cli
from medft.caffemodel import describe, sidecar_path
from medft.engines.transfer import copy_pretrained
from medft.errors import MedftError
from medft.pretrain import CLASSES, PretrainOptions, pretrain, render, solver_param, source_images

from tests.conftest import POLYP_DEPLOY, TRANSFERRED

TINY = PretrainOptions(iterations=3, batch=4, images=20, heldout=4, seed=7)


def test_render_is_a_caffe_patch_and_reproducible():
    img = render(3, np.random.default_rng(1))
    assert img.shape == (3, 227, 227) and img.dtype == np.uint8 and img.flags.c_contiguous
    np.testing.assert_array_equal(img, render(3, np.random.default_rng(1)))
    assert img.std() > 20  # a picture, not a flat field
    with pytest.raises(MedftError, match="outside 0..9"):
        render(len(CLASSES), np.random.default_rng(1))


def test_classes_are_the_form_not_the_background():
    # same seed, different class: same background draw, so the pixels that differ are the object's
    a, b = render(0, np.random.default_rng(5)), render(1, np.random.default_rng(5))
    differ = (a != b).any(axis=0).mean()
    assert 0.01 < differ < 0.5


def test_source_images_cycle_labels_and_differ_between_splits():
    train = list(source_images(12, seed=1))
    assert [lab for _, lab in train] == [i % 10 for i in range(12)]
    held = next(source_images(1, seed=1, split=1))[0]
    assert not np.array_equal(train[0][0], held)


def test_solver_is_bvlc_reference():
    s = solver_param("net.prototxt", 150, 1)  # BVLC batch 256: BVLC learning rate
    assert (s.type, s.lr_policy, s.stepsize, s.max_iter, s.random_seed) == ("SGD", "step", 100000, 150, 1)
    assert (s.base_lr, s.momentum, s.weight_decay, s.gamma) == pytest.approx((0.01, 0.9, 0.0005, 0.1))
    assert solver_param("net.prototxt", 150, 1, batch=16).base_lr == pytest.approx(0.0025)  # 0.01 x sqrt(1/16)


def test_the_poly_schedule_starts_at_twice_the_rate_and_ends_at_zero():
    s = solver_param("net.prototxt", 300, 1, batch=16, schedule="poly")
    assert (s.lr_policy, s.power, s.max_iter) == ("poly", 1.0, 300)
    # Caffe's poly: base_lr * (1 - iter / max_iter) ^ power; base 2 x 0.01 x sqrt(16 / 256) = 0.005
    assert s.base_lr == pytest.approx(0.005)
    assert not s.HasField("stepsize") and not s.HasField("gamma")
    with pytest.raises(MedftError, match="schedule"):
        pretrain(PretrainOptions(schedule="cosine"))


@pytest.fixture(scope="module")
def tiny_standin(caffe, tmp_path_factory):
    out = tmp_path_factory.mktemp("standin") / "standin.caffemodel"
    lines: list[str] = []
    pretrain(TINY, out=out, log=lines.append)
    return out, lines


@pytest.mark.caffe
def test_tiny_pretrain_writes_a_standin_that_says_so(tiny_standin):
    out, lines = tiny_standin
    meta = json.loads(sidecar_path(out).read_text())
    assert meta["kind"] == "standin" and "NOT ImageNet" in meta["warning"]
    assert meta["budget"] == {"iterations": 3, "batch": 4, "images": 20, "heldout": 4, "seed": 7, "conv1": "bank",
                              "init": "xavier", "schedule": "bvlc"}
    assert meta["solver"]["lr_policy"] == "step"
    assert meta["sha1"] == caffemodel.sha1_of(out)
    assert np.isfinite(meta["final_loss"]) and 0 <= meta["train_accuracy"] <= 1
    assert 0 <= meta["heldout_accuracy"] <= 1
    assert describe(out) == (f"medft stand-in: formula-driven patterns, 3 iterations (batch 4), held-out accuracy "
                             f"{meta['heldout_accuracy']:.2f} (chance 0.10) — NOT ImageNet")
    assert lines[0].startswith("pretrain: STAND-IN, NOT ImageNet")
    assert any("iter 3/3" in line and "img/s" in line and "ETA" in line for line in lines)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # work folder removed


def test_conv1_bank_is_formula_driven_filters():
    """96 distinct 3x11x11 filters of BVLC's filler norm; the achromatic two thirds are zero-mean
    Gabors equal on the three channels; an orientation-0 Gabor answers vertical stripes of its
    wavelength far more than horizontal ones."""
    from medft.source_task import conv1_bank

    bank = conv1_bank()
    assert bank.shape == (96, 3, 11, 11) and len({f.tobytes() for f in bank}) == 96
    np.testing.assert_allclose(np.linalg.norm(bank.reshape(96, -1), axis=1), 0.01 * np.sqrt(363), rtol=1e-5)
    grey = bank[:64]
    assert np.allclose(grey[:, 0], grey[:, 1]) and np.allclose(grey[:, 1], grey[:, 2])
    assert np.allclose(grey.sum(axis=(1, 2, 3)), 0, atol=1e-5)
    x = np.arange(11) - 5
    vertical = np.cos(2 * np.pi * x / 3.0)[None, :].repeat(11, 0)
    assert abs((bank[0, 0] * vertical).sum()) > 5 * abs((bank[0, 0] * vertical.T).sum())


@pytest.mark.caffe
def test_standin_starts_from_the_bank_or_the_filler(tiny_standin, tmp_path):
    """Real Caffe loads the bank as conv1's start: after 3 iterations the stand-in's conv1 still
    correlates with the bank; with --conv1 filler it does not."""
    from medft.schema import net_weights, read_net
    from medft.source_task import conv1_bank

    bank = conv1_bank().reshape(96, -1)

    def corr(model) -> float:  # per filter: folding the normalisation rescales each filter
        conv1 = net_weights(read_net(model))["conv1"][0].reshape(96, -1)
        return float(np.mean([np.corrcoef(w, b)[0, 1] for w, b in zip(conv1, bank, strict=True)]))

    filler = pretrain(PretrainOptions(iterations=3, batch=4, images=20, heldout=0, seed=7, conv1="filler"),
                      out=tmp_path / "filler.caffemodel", log=lambda *_: None)
    corr, corr_filler = corr(tiny_standin[0]), corr(filler)
    assert corr > 0.9 and abs(corr_filler) < 0.1, (corr, corr_filler)
    with pytest.raises(MedftError, match="conv1 start"):
        pretrain(PretrainOptions(conv1="imagenet"))


@pytest.mark.caffe
def test_standin_loads_into_the_polyp_net(caffe, tiny_standin):
    net = caffe.Net(str(POLYP_DEPLOY), caffe.TEST)
    report = copy_pretrained(net, tiny_standin[0])
    assert (report.copied, report.initialised, report.ignored) == (TRANSFERRED, ["fc8_polyp"], ["fc8"])
    assert "NOT ImageNet" in report.summary()
    assert caffemodel.layer_shapes(tiny_standin[0])["fc8"] == [(10, 4096), (10,)]


@pytest.mark.caffe
def test_standin_is_reused_and_never_replaced_silently(tiny_standin, tmp_path):
    out, _ = tiny_standin
    mtime = out.stat().st_mtime_ns
    lines: list[str] = []
    assert pretrain(TINY, out=out, log=lines.append) == out
    assert out.stat().st_mtime_ns == mtime and lines[0].startswith("pretrain: reusing")
    with pytest.raises(MedftError, match="another budget.*--force"):
        pretrain(PretrainOptions(iterations=4, batch=4, images=20, heldout=4, seed=7), out=out)
    foreign = tmp_path / "foreign.caffemodel"
    foreign.write_bytes(b"someone's model")
    with pytest.raises(MedftError, match="not a finished medft stand-in.*--force"):
        pretrain(TINY, out=foreign)


@pytest.mark.caffe
def test_the_standin_is_bit_identical_when_trained_again_with_its_seed(tiny_standin, tmp_path):
    """One machine, one seed: every weight the same bit for bit (the files differ only in the Data
    layer's path of the temporary source LMDB, and the sidecars in times); another seed differs."""
    out, _ = tiny_standin
    again = pretrain(TINY, out=tmp_path / "again.caffemodel", log=lambda *_: None)
    first = _weight_bytes(out)
    assert len(first) == 8 and _weight_bytes(again) == first  # conv1-5, fc6-8
    other = pretrain(PretrainOptions(iterations=3, batch=4, images=20, heldout=4, seed=8),
                     out=tmp_path / "other.caffemodel", log=lambda *_: None)
    assert _weight_bytes(other) != first


def _weight_bytes(path) -> dict[str, list[bytes]]:
    """Every layer's blobs as raw float32 bytes."""
    from medft.schema import blob_to_array, read_net

    return {layer.name: [blob_to_array(b).astype(np.float32).tobytes() for b in layer.blobs]
            for layer in read_net(path).layer if layer.blobs}


@pytest.mark.caffe
def test_refresh_retrains_a_standin_of_another_recipe(tiny_standin, tmp_path):
    import shutil

    out, _ = tiny_standin
    old = tmp_path / "old.caffemodel"
    shutil.copy(out, old)
    shutil.copy(sidecar_path(out), sidecar_path(old))
    meta = json.loads(sidecar_path(old).read_text())
    del meta["budget"]["schedule"]  # a stand-in saved before the schedule was recorded: BVLC's
    sidecar_path(old).write_text(json.dumps(meta))
    lines: list[str] = []
    pretrain(TINY, out=old, log=lines.append, refresh=True)
    assert lines[0].startswith("pretrain: reusing")  # same recipe: kept
    newer = PretrainOptions(iterations=3, batch=4, images=20, heldout=4, seed=7, schedule="poly")
    pretrain(newer, out=old, log=lines.append, refresh=True)
    assert "another recipe" in lines[1]
    meta = json.loads(sidecar_path(old).read_text())
    assert meta["budget"]["schedule"] == "poly" and meta["solver"]["lr_policy"] == "poly"
    assert meta["solver"]["base_lr"] == pytest.approx(2 * 0.01 * (4 / 256) ** 0.5)


def test_bad_budget_is_refused():
    with pytest.raises(MedftError, match="iterations must be positive"):
        pretrain(PretrainOptions(iterations=0))


def test_cli_help_states_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(["pretrain", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag, default in (("--iterations", 250), ("--batch", 16), ("--images", 2000), ("--seed", 2016),
                          ("--schedule", "bvlc")):
        assert flag in text and f"(default: {default})" in text
    assert "--download-bvlc" in text and caffemodel.BVLC_ALEXNET_SHA1 in text


def test_cli_offline_download_and_which(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDFT_CACHE", str(tmp_path))
    monkeypatch.delenv("MEDFT_BVLC_ALEXNET", raising=False)
    assert cli.main(["pretrain", "--download-bvlc", "--url", "http://127.0.0.1:9/x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("medft pretrain: error: cannot download") and err.count("\n") == 1
    assert cli.main(["pretrain", "--which"]) == 1
    assert "no pretrained weights" in capsys.readouterr().out


@pytest.mark.caffe
def test_folded_standin_computes_what_the_normalised_net_computed(caffe, tiny_standin, tmp_path):
    """A batch-normalised source-task net (random running statistics and shifts, real Caffe, TEST
    phase) on scaled pixels gives the probabilities of its folded form (plain AlexNet, the weights
    medft pretrain saves) on raw pixels minus the mean."""
    from medft.pretrain import INPUT_SCALE, fold_for_deploy, source_task_deploy
    from medft.schema import read_net
    from medft.util.prototxt import to_text

    rng = np.random.default_rng(0)
    plain, normalised = tmp_path / "plain.prototxt", tmp_path / "normalised.prototxt"
    plain.write_text(to_text(source_task_deploy(batch=4)))
    normalised.write_text(to_text(source_task_deploy(batch=4, batch_norm=True)))
    net = caffe.Net(str(normalised), str(tiny_standin[0]), caffe.TEST)  # conv/fc weights by name
    for name, blobs in net.params.items():
        if name.endswith("_bn"):
            n = blobs[0].data.size
            blobs[0].data[...] = rng.normal(0, 0.5, n) * 3.0  # sums: the factor below is 3
            blobs[1].data[...] = rng.uniform(0.2, 2.0, n) * 3.0
            blobs[2].data[...] = 3.0
        elif name.endswith("_shift"):
            blobs[0].data[...] = rng.normal(0, 0.3, blobs[0].data.size)
    model = tmp_path / "trained.caffemodel"
    net.save(str(model))
    pixels = np.stack([img for img, _ in source_images(4, seed=3)]).astype(np.float32) - 127.0
    net.blobs["data"].data[...] = pixels * INPUT_SCALE
    expected = net.forward()["prob"].copy()
    fold_for_deploy(model, INPUT_SCALE)
    assert not {layer.type for layer in read_net(model).layer} & {"BatchNorm", "Bias"}
    folded = caffe.Net(str(plain), str(model), caffe.TEST)
    folded.blobs["data"].data[...] = pixels
    np.testing.assert_allclose(folded.forward()["prob"], expected, atol=1e-4)
    assert expected.std() > 1e-3  # the statistics matter: not a constant output
