"""Faults that must end in a clear refusal, never in a silent wrong result: stale or missing best
models, foreign weights, concurrent runs in one folder, resuming other data, children that outlive
the driver, and options that train nothing."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from medft.errors import MedftError
from medft.predict import predict_run
from medft.train import run_dir, train

from tests.conftest import train_opts as _opts


@pytest.fixture(scope="module")
def done_run(dataset, tmp_path_factory):
    """A finished 2-epoch run (real Caffe)."""
    runs = tmp_path_factory.mktemp("runs")
    train(_opts(dataset, runs, max_epochs=2), log=lambda *_: None)
    return runs


def _copy_run(runs: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "runs"
    shutil.copytree(runs, dst)
    return dst


@pytest.mark.caffe
def test_missing_best_model_is_refused_not_reported_done(done_run, dataset, tmp_path):
    runs = _copy_run(done_run, tmp_path)
    (run_dir(runs, "polyp", "scratch") / "best.caffemodel").unlink()
    with pytest.raises(MedftError, match="best.caffemodel: missing"):
        train(_opts(dataset, runs, max_epochs=2), log=lambda *_: None)
    with pytest.raises(MedftError, match="missing"):
        predict_run("polyp", "scratch", dataset, runs=runs, log=lambda *_: None)


@pytest.mark.caffe
def test_stale_best_model_is_refused(done_run, dataset, tmp_path):
    runs = _copy_run(done_run, tmp_path)
    out = run_dir(runs, "polyp", "scratch")
    newest = sorted((out / "snapshots").glob("*.caffemodel"))[-1]
    best = json.loads((out / "best.json").read_text())
    other = [p for p in (out / "snapshots").glob("*.caffemodel") if f"_iter_{best['iteration']}." not in p.name]
    shutil.copyfile(other[0] if other else newest, out / "best.caffemodel")
    if not other:  # the newest snapshot is the best one: damage the copy instead
        with open(out / "best.caffemodel", "ab") as f:
            f.write(b"\0")
    with pytest.raises(MedftError, match="not the weights of epoch"):
        predict_run("polyp", "scratch", dataset, runs=runs, log=lambda *_: None)


@pytest.mark.caffe
@pytest.mark.parametrize("kind", ["empty", "other-app"])
def test_predict_refuses_weights_that_do_not_fit_the_net(done_run, dataset, tmp_path, kind, caffe):
    runs = _copy_run(done_run, tmp_path)
    out = run_dir(runs, "polyp", "scratch")
    if kind == "empty":
        (out / "best.caffemodel").write_bytes(b"")
    else:  # a cimt net (3 classes): fc8 has the wrong shape
        from medft.alexnet import deploy_net
        from medft.util.prototxt import to_text

        (tmp_path / "cimt.prototxt").write_text(to_text(deploy_net("cimt", "scratch")))
        caffe.Net(str(tmp_path / "cimt.prototxt"), caffe.TEST).save(str(out / "best.caffemodel"))
    from medft.weights import sha1_of

    meta = json.loads((out / "best.json").read_text())
    meta["sha1"] = sha1_of(out / "best.caffemodel")  # even when the record agrees, the shapes must
    (out / "best.json").write_text(json.dumps(meta))
    with pytest.raises(MedftError, match="no weights for layer|has shapes"):
        predict_run("polyp", "scratch", dataset, runs=runs, force=True, log=lambda *_: None)


def test_options_that_train_nothing_are_refused_before_anything_is_written(dataset, tmp_path):
    for bad in ({"max_epochs": 0}, {"patience": 0}, {"train_batch": 0}, {"seed": -1}):
        with pytest.raises(MedftError, match="must be a whole number"):
            train(_opts(dataset, tmp_path, **bad), log=lambda *_: None)
    assert not run_dir(tmp_path, "polyp", "scratch").exists()


def test_resume_refuses_other_data(dataset, tmp_path):
    out = run_dir(tmp_path, "polyp", "scratch")
    out.mkdir(parents=True)
    (out / "run.json").write_text(json.dumps({"status": "running", "resume": {"fingerprint": "other", "n_train": 8}}))
    with pytest.raises(MedftError, match="interrupted run of other data"):
        train(_opts(dataset, tmp_path), log=lambda *_: None)


def test_a_second_process_in_the_same_run_folder_is_refused(dataset, tmp_path):
    from medft.util.lock import folder_lock

    out = run_dir(tmp_path, "polyp", "scratch")
    code = ("import time; from pathlib import Path; from medft.util.lock import folder_lock\n"
            f"with folder_lock(Path({str(out)!r}), 'train'):\n    print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(MedftError, match=f"PID {holder.pid}"):
            train(_opts(dataset, tmp_path), log=lambda *_: None)
        with pytest.raises(MedftError, match="in use"):
            with folder_lock(out, "predict"):
                pass
    finally:
        holder.kill()
        holder.wait()
    with folder_lock(out, "train"):  # the lock died with its holder
        pass


def _caffe_train_pids() -> set[int]:
    r = subprocess.run(["pgrep", "-f", "caffe.bin train"], capture_output=True, text=True)
    return {int(p) for p in r.stdout.split()}


@pytest.mark.caffe
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_cli_engine_child_dies_with_the_driver(dataset, tmp_path, sig):
    """Killing `medft train --engine cli` (politely or not) leaves no `caffe train` behind."""
    before = _caffe_train_pids()
    data_root = Path(dataset).parent
    proc = subprocess.Popen([sys.executable, "-m", "medft", "train", "polyp", "scratch", "--data", str(data_root),
                             "--runs", str(tmp_path), "--engine", "cli", "--batch", "4", "--test-batch", "3",
                             "--max-epochs", "50"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (_caffe_train_pids() - before):
        time.sleep(0.2)
    child = _caffe_train_pids() - before
    assert child, "caffe train never started"
    os.kill(proc.pid, sig)
    proc.wait(timeout=60)
    deadline = time.time() + 30
    while time.time() < deadline and (_caffe_train_pids() & child):
        time.sleep(0.2)
    assert not (_caffe_train_pids() & child), f"caffe train {child} outlived the driver ({sig.name})"


@pytest.mark.caffe
def test_a_moved_run_folder_resumes(done_run, dataset, tmp_path):
    """Caffe's solverstate names its caffemodel by absolute path; medft points it at the one beside it."""
    first = tmp_path / "first"
    train(_opts(dataset, first, max_epochs=2), log=lambda *_: None)
    runs = tmp_path / "moved"
    first.rename(runs)  # every absolute path inside the run now points nowhere
    out = run_dir(runs, "polyp", "scratch")
    record = json.loads((out / "run.json").read_text())
    record["status"] = "running"  # as if interrupted after its second epoch
    (out / "run.json").write_text(json.dumps(record))
    messages: list[str] = []
    rec = train(_opts(dataset, runs, max_epochs=3), log=messages.append)
    assert any("resuming" in m for m in messages) and rec["epochs"] == 3 and rec["status"] == "done"


@pytest.mark.caffe
def test_a_damaged_snapshot_is_named_not_an_abort(done_run, dataset, tmp_path):
    runs = _copy_run(done_run, tmp_path)
    out = run_dir(runs, "polyp", "scratch")
    record = json.loads((out / "run.json").read_text())
    record["status"] = "running"
    (out / "run.json").write_text(json.dumps(record))
    state = sorted((out / "snapshots").glob("*.solverstate"))[-1]
    model = state.with_suffix(".caffemodel")
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    with pytest.raises(MedftError, match="snapshot to resume from is damaged"):
        train(_opts(dataset, runs, max_epochs=3), log=lambda *_: None)


def test_a_truncated_lmdb_is_named_before_caffe_maps_it(dataset, tmp_path):
    from medft.engines.base import lmdb_size

    data = tmp_path / "polyp"
    shutil.copytree(dataset, data)
    mdb = data / "val_lmdb" / "data.mdb"
    size = lmdb_size(data / "val_lmdb")
    assert size == 6
    with open(mdb, "r+b") as f:
        f.truncate(mdb.stat().st_size // 3)
    with pytest.raises(MedftError, match="truncated"):
        train(_opts(data, tmp_path / "runs"), log=lambda *_: None)


# -- --force never removes what medft did not write ----------------------------------------------------
def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medft", *args], capture_output=True, text=True)


def test_prep_force_never_deletes_its_input(tmp_path):
    d = tmp_path / "d"
    assert _cli("synth", "polyp", "--out", str(d), "--cases", "3", "--per-case", "2").returncode == 0
    before = sorted(p.name for p in (d / "polyp").rglob("*"))
    r = _cli("prep", "polyp", "--input", str(d / "polyp"), "--out", str(d), "--force", "--max-patches", "40")
    assert r.returncode != 0 and "holds the input" in r.stderr and "Traceback" not in r.stderr
    assert sorted(p.name for p in (d / "polyp").rglob("*")) == before


def test_force_refuses_a_folder_medft_did_not_write(tmp_path):
    mine = tmp_path / "out" / "polyp"
    mine.mkdir(parents=True)
    (mine / "thesis.tex").write_text("months of work")
    r = _cli("synth", "polyp", "--out", str(tmp_path / "out"), "--force", "--cases", "3", "--per-case", "2")
    assert r.returncode != 0 and "did not write" in r.stderr
    assert (mine / "thesis.tex").read_text() == "months of work"
    # a synthetic set medft wrote is replaced
    assert _cli("synth", "pe", "--out", str(tmp_path / "out"), "--cases", "2", "--per-case", "1").returncode == 0
    assert _cli("synth", "pe", "--out", str(tmp_path / "out"), "--cases", "2", "--per-case", "1",
                "--force").returncode == 0


def test_a_killed_writers_hidden_folder_is_collected(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / "out" / f".pe.tmp-{dead.pid}"
    stale.mkdir(parents=True)
    assert _cli("synth", "pe", "--out", str(tmp_path / "out"), "--cases", "2", "--per-case", "1").returncode == 0
    assert not stale.exists()


# -- inputs --------------------------------------------------------------------------------------------
def test_a_palette_png_is_read_as_its_colours(tmp_path):
    from medft.prep.io import read_image
    from PIL import Image

    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[1, 2] = (200, 30, 90)
    rgb[3, 4] = (10, 250, 60)
    Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=4).save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    np.testing.assert_array_equal(read_image(tmp_path / "p.png", "rule"), rgb)
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5) * 10
    Image.fromarray(gray).convert("P").save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_image(tmp_path / "g.png", "rule", mode="gray"), gray)


def test_a_nifti_with_zero_spacing_is_refused(tmp_path):
    import nibabel as nib
    from medft.prep.io import read_volume

    img = nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4))
    img.header.set_xyzt_units("mm")
    img.header["pixdim"][1:4] = (0.7, 0.0, 1.0)
    nib.save(img, tmp_path / "v.nii.gz")
    with pytest.raises(MedftError, match="missing voxel spacing .zero or unset"):
        read_volume(tmp_path / "v.nii.gz", "rule")


@pytest.mark.parametrize("argv", [
    ["synth", "polyp", "--out", "x", "--cases", "0"],
    ["prep", "polyp", "--test-fraction", "-1"],
    ["prep", "cimt", "--bg-margin", "-3"],
    ["prep", "cimt", "--window", "0"],
    ["prep", "polyp", "--max-patches", "-5"],
    ["score", "polyp", "--out", "x", "--n-bins", "0"],
    ["predict", "polyp", "scratch", "--batch", "0"],
    ["train", "polyp", "scratch", "--max-epochs", "0"],
    ["train", "polyp", "scratch", "--gpu", "-1"],
])
def test_degenerate_numbers_are_refused_in_one_line(argv, tmp_path):
    r = subprocess.run([sys.executable, "-m", "medft", *argv], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(f"medft {argv[0]}: error: argument")
    assert not any(tmp_path.iterdir()), "nothing is written"


# -- scoring refuses incomplete or unequal prediction sets ----------------------------------------------
def test_score_refuses_a_half_written_cimt_set(tmp_path):
    from medft.evaluate.pipeline import score_app

    from tests.synthetic_scores import write_cimt

    runs = write_cimt(tmp_path, {"scratch": 0.3}, n_rois=4)
    (runs / "scratch" / "predictions.csv").unlink()  # predict was killed after some ROIs
    for p in sorted((runs / "scratch" / "cimt_maps").glob("*.npz"))[2:]:
        p.unlink()
    with pytest.raises(MedftError, match=r"prediction did not finish \(2 ROI map"):
        score_app("cimt", runs, tmp_path / "scores")


def test_score_refuses_configurations_scored_on_different_candidates(tmp_path):
    import csv as csvmod

    from medft.evaluate.pipeline import score_app

    from tests.synthetic_scores import write_detection

    runs, data = write_detection(tmp_path, "pe", {"scratch": 1.0, "ft-fc8": 1.5})
    path = runs / "ft-fc8" / "predictions.csv"
    rows = list(csvmod.reader(open(path)))
    with open(path, "w", newline="") as f:
        csvmod.writer(f).writerows(rows[:-40])  # 40 candidates fewer
    with pytest.raises(MedftError, match="40 only there"):
        score_app("pe", runs, tmp_path / "scores", data_dir=data)


@pytest.mark.parametrize("content", [b"case,unit,lesion,label,score\nc1,u1,,0\n",
                                     b"case,unit,lesion,label,score\nc1,u1,,0,0.5,extra\n",
                                     b"case,unit,lesion,label,score\nc\xff1,u1,,0,0.5\n"])
def test_bad_csv_rows_are_one_line_errors(tmp_path, content):
    from medft.evaluate.io import read_predictions

    (tmp_path / "predictions.csv").write_bytes(content)
    with pytest.raises(MedftError, match="predictions.csv: (line 2|not UTF-8)"):
        read_predictions(tmp_path / "predictions.csv", detection=True)


def test_a_missing_docker_is_named(tmp_path):
    from medft.engines.cli import DockerRunner, run_tool

    with pytest.raises(MedftError, match="cannot run medft-no-such-docker: not installed"):
        run_tool("caffe", ["--version"], runner=DockerRunner("img", docker="medft-no-such-docker"))


def test_gpu_without_a_usable_gpu_is_one_line(dataset, tmp_path):
    """--gpu where there is no GPU build or no GPU: a message, not Caffe's abort."""
    from medft.engines.device import gpu_facts

    if "error" not in gpu_facts(0):
        pytest.skip("a GPU is present here")
    r = subprocess.run([sys.executable, "-m", "medft", "train", "polyp", "scratch", "--data",
                        str(Path(dataset).parent), "--runs", str(tmp_path), "--gpu", "0", "--max-epochs", "1"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert re.search(r"GPU build\) is not built|--gpu 0: ", r.stderr.strip().splitlines()[-1])


def test_a_test_split_without_both_classes_is_refused(tmp_path):
    from medft.prep.tiny import tiny_build

    with pytest.raises(MedftError, match="the test split would hold"):
        tiny_build("polyp", tmp_path, max_test_patches=10)


def test_a_validation_auc_tie_in_log_csv_keeps_the_first_best_epoch():
    """An epoch whose AUC beats the best only beyond log.csv's 6 decimals is no improvement: the
    driver keeps the epoch that log.csv's rows select (the first of the highest logged AUC), which
    predict checks best.caffemodel against."""
    from medft.train import improves

    best = {"epoch": 2, "val_auc": "0.730000"}
    tie = {"epoch": 3, "val_auc": f"{0.7300000001:.6f}"}
    assert not improves(tie, best)
    rows = [{"epoch": 1, "val_auc": "0.670000"}, best, tie]
    assert max(rows, key=lambda r: float(r["val_auc"])) is best
    assert improves({"epoch": 3, "val_auc": "0.730001"}, best) and improves(best, None)
