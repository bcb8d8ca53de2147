"""The training driver and predictor on real Caffe with a tiny learnable dataset."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from medft.errors import MedftError
from medft.paths import run_dir
from medft.predict import aggregate_units, predict_run
from medft.train import binary_scores, read_dataset, step_lr, train, validation_auc

from tests.conftest import train_opts as _opts

pytestmark = pytest.mark.caffe

def test_step_lr_and_scores():
    assert step_lr(0, 10) == 0.001 and step_lr(9, 10) == 0.001
    assert step_lr(10, 10) == pytest.approx(0.00095) and step_lr(25, 10) == pytest.approx(0.001 * 0.95**2)
    y, s = binary_scores(np.array([[0.2, 0.5, 0.3], [0.9, 0.05, 0.05]]), np.array([2, 0]))
    assert list(y) == [1, 0] and s == pytest.approx([0.8, 0.1])
    assert validation_auc(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), np.array([0, 1, 1])) == 1.0


def test_aggregate_units():
    rows = [{"case": "a", "unit": "1", "lesion": "P", "label": "1"},
            {"case": "a", "unit": "1", "lesion": "P", "label": "1"},
            {"case": "a", "unit": "2", "lesion": "", "label": "0"}]
    units = aggregate_units(rows, np.array([0.2, 0.6, 0.3]))
    assert [(u["unit"], u["score"], u["label"]) for u in units] == [("1", "0.400000", 1), ("2", "0.300000", 0)]
    rows[1]["label"] = "0"
    with pytest.raises(MedftError, match="disagree"):
        aggregate_units(rows, np.array([0.2, 0.6, 0.3]))


def test_train_selects_best_and_predicts(dataset, tmp_path, caffe):
    record = train(_opts(dataset, tmp_path, max_epochs=3), log=lambda *_: None)
    out = run_dir(tmp_path, "polyp", "scratch")
    with open(out / "log.csv") as f:
        log = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in log] == [1, 2, 3]
    assert [int(r["iteration"]) for r in log] == [2, 4, 6]  # 8 patches / batch 4 = 2 per epoch
    # the rate each epoch trained with: epoch 1 at base_lr, epoch 2 after one step of gamma
    assert [float(r["lr"]) for r in log] == pytest.approx([0.001, 0.001 * 0.95, 0.001 * 0.95**2])
    best = max(log, key=lambda r: float(r["val_auc"]))
    assert record["best"]["epoch"] == int(best["epoch"]) and record["status"] == "done"
    # best.caffemodel is the snapshot of the best epoch: its validation AUC is the logged one.
    net = caffe.Net(str(out / "deploy.prototxt"), str(out / "best.caffemodel"), caffe.TEST)
    from medft.engines.predictor import Predictor
    from medft.engines.pycaffe import net_forward

    ds = read_dataset(dataset)
    probs, labels = Predictor(net_forward(net), ds.mean_bgr, 3).predict_lmdb(ds.val_lmdb)
    assert validation_auc(probs, labels) == pytest.approx(
        float(best["val_auc"]), abs=1e-6)
    assert len(list((out / "snapshots").glob("*.solverstate"))) == 1  # older snapshots pruned
    # predict: per-patch probabilities aligned with the manifest, aggregated per unit
    target = predict_run("polyp", "scratch", dataset, runs=tmp_path, batch=4, log=lambda *_: None)
    with open(target) as f:
        units = list(csv.DictReader(f))
    assert list(units[0]) == ["case", "unit", "lesion", "label", "score"]
    patch_probs = np.load(out / "test_probs.npy")
    assert patch_probs.shape == (8, 2)
    np.testing.assert_allclose(patch_probs.sum(axis=1), 1.0, rtol=1e-5)
    with open(out / "test_patches.csv") as f:
        patches = list(csv.DictReader(f))
    assert len(units) == 4  # (case, unit) groups of 2 patches each
    for u in units:
        mine = [float(p["p1"]) for p in patches if (p["case"], p["unit"]) == (u["case"], u["unit"])]
        assert len(mine) == 2 and float(u["score"]) == pytest.approx(np.mean(mine), abs=2e-6)
        assert int(u["label"]) == (u["unit"].endswith("x1"))


def test_one_cell_is_bit_identical_when_trained_again_with_its_seed(dataset, tmp_path):
    """One machine, one seed: the same selected weights byte for byte; another seed trains other weights
    into its own run folder (``scratch-seed7``) beside the default seed's."""
    for root in ("a", "b"):
        train(_opts(dataset, tmp_path / root, max_epochs=2), log=lambda *_: None)
    first, second = (run_dir(tmp_path / r, "polyp", "scratch") / "best.caffemodel" for r in ("a", "b"))
    assert first.read_bytes() == second.read_bytes()
    with open(first.parent / "log.csv") as f, open(second.parent / "log.csv") as g:
        assert [r["loss"] for r in csv.DictReader(f)] == [r["loss"] for r in csv.DictReader(g)]
    record = train(_opts(dataset, tmp_path / "a", max_epochs=2, seed=7), log=lambda *_: None)
    other = run_dir(tmp_path / "a", "polyp", "scratch", seed=7)
    assert other.name == "scratch-seed7" and record["options"]["seed"] == 7
    assert (other / "best.caffemodel").read_bytes() != first.read_bytes()
    assert "random_seed: 7" in (other / "solver.prototxt").read_text()


def test_resume_after_interruption(dataset, tmp_path, caffe):
    messages: list[str] = []
    train(_opts(dataset, tmp_path, max_epochs=1), log=messages.append)
    out = run_dir(tmp_path, "polyp", "scratch")
    (out / "run.json").unlink()  # as if the process died before finishing
    train(_opts(dataset, tmp_path, max_epochs=2), log=messages.append)
    assert any("resuming" in m and "iteration 2" in m for m in messages)
    with open(out / "log.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1, 2]
    messages.clear()
    train(_opts(dataset, tmp_path, max_epochs=2), log=messages.append)  # done: skipped
    assert any("is done" in m for m in messages)


def test_bad_inputs(dataset, tmp_path):
    with pytest.raises(MedftError, match="pass --weights"):
        train(_opts(dataset, tmp_path, config="ft-conv1"))
    with pytest.raises(MedftError, match="do not pass --weights"):
        train(_opts(dataset, tmp_path, weights="x.caffemodel"))
    with pytest.raises(MedftError, match="run `medft prep` first"):
        train(_opts(tmp_path / "nope", tmp_path))
    with pytest.raises(MedftError, match="valid: ft-conv1"):
        train(_opts(dataset, tmp_path, config="ft-all"))


def test_validation_auc_equals_scikit_learn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    for classes in (2, 3):
        probs = rng.dirichlet(np.ones(classes), size=200)
        probs[:5] = probs[5:10]  # ties
        labels = rng.integers(0, classes, size=200)
        merged = (labels > 0).astype(int)  # CIMT: both interface classes are the positive class
        assert validation_auc(probs, labels) == pytest.approx(roc_auc_score(merged, 1 - probs[:, 0]), abs=1e-12)


def test_labels_outside_the_net_are_refused(dataset, tmp_path):
    import shutil

    bad = tmp_path / "polyp"
    shutil.copytree(dataset, bad)
    text = (bad / "train_manifest.csv").read_text().splitlines()
    cols = text[1].split(",")
    cols[5] = "2"  # a third class for a 2-class net
    text[1] = ",".join(cols)
    (bad / "train_manifest.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(MedftError, match=r"row 2: label '2' is not a class of this 2-class net"):
        train(_opts(bad, tmp_path / "runs"))
    assert not (run_dir(tmp_path / "runs", "polyp", "scratch") / "run.json").exists()


def test_missing_lmdb_is_a_clear_error(dataset, tmp_path):
    import shutil

    bad = tmp_path / "polyp"
    shutil.copytree(dataset, bad)
    shutil.rmtree(bad / "val_lmdb")
    with pytest.raises(MedftError, match=r"val_lmdb: not an LMDB .* run `medft prep` first"):
        train(_opts(bad, tmp_path / "runs"))


def test_killed_run_resumes_to_the_same_iterations(dataset, tmp_path):
    """SIGKILL `medft train` after its first epoch; the rerun resumes and ends where an
    uninterrupted run ends (3 epochs x 2 iterations)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    code = ("import sys; from medft.train import TrainOptions, train; "
            f"train(TrainOptions(app='polyp', config='scratch', data={str(dataset)!r}, runs={str(tmp_path)!r}, "
            "train_batch=4, test_batch=3, max_epochs=3, patience=5))")
    out = run_dir(tmp_path, "polyp", "scratch")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(read_rows(out / "log.csv")) < 1:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(read_rows(out / "log.csv"))
    assert 1 <= done < 3 and json.loads((out / "run.json").read_text())["status"] == "running"
    messages: list[str] = []
    record = train(_opts(dataset, tmp_path, max_epochs=3), log=messages.append)
    assert any("resuming" in m for m in messages)
    assert [int(r["iteration"]) for r in read_rows(out / "log.csv")] == [2, 4, 6]
    assert record["status"] == "done" and record["epochs"] == 3


def read_rows(path):
    if not path.is_file():
        return []
    with open(path) as f:
        return list(csv.DictReader(f))
