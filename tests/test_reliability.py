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
from medft.paths import run_dir
from medft.predict import predict_run
from medft.train.driver import train

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
    from medft.caffemodel import sha1_of

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
    from medft.train.best import improves

    best = {"epoch": 2, "val_auc": "0.730000"}
    tie = {"epoch": 3, "val_auc": f"{0.7300000001:.6f}"}
    assert not improves(tie, best)
    rows = [{"epoch": 1, "val_auc": "0.670000"}, best, tie]
    assert max(rows, key=lambda r: float(r["val_auc"])) is best
    assert improves({"epoch": 3, "val_auc": "0.730001"}, best) and improves(best, None)


# -- checks before Caffe reads: weights, records, disk, divergence -------------------------------------
def _lmdb_copy(dataset: Path, tmp_path: Path) -> Path:
    d = tmp_path / "data" / "polyp"
    shutil.copytree(dataset, d, ignore=shutil.ignore_patterns(".*lock", ".checked.json"))
    return d


def _put(lmdb_path: Path, key: str, value: bytes) -> None:
    import lmdb

    env = lmdb.open(str(lmdb_path), map_size=1 << 28)
    with env.begin(write=True) as txn:
        txn.put(key.encode(), value)
    env.close()


def _datum(label: int, shape=(3, 227, 227)) -> bytes:
    from medft.schema import array_to_datum

    return array_to_datum(np.zeros(shape, np.uint8), label).SerializeToString()


@pytest.mark.parametrize("split, value, match", [
    ("train", _datum(2), r"train_lmdb: record 'zz' has label 2, not a class of this 2-class net"),
    ("train", _datum(-1), r"record 'zz' has label -1"),
    ("val", b"\xff\xfe garbage", r"val_lmdb: record 'zz' is not a Caffe Datum"),
    ("val", _datum(0, (3, 32, 32)), r"record 'zz' is \(3, 32, 32\), the net reads \(3, 227, 227\)"),
])
def test_a_bad_lmdb_record_is_named_before_caffe_reads_it(dataset, tmp_path, split, value, match):
    data = _lmdb_copy(dataset, tmp_path)
    _put(data / f"{split}_lmdb", "zz", value)
    with pytest.raises(MedftError, match=match):
        train(_opts(data, tmp_path / "runs"), log=lambda *_: None)
    assert not (run_dir(tmp_path / "runs", "polyp", "scratch") / "log.csv").exists()


def test_the_lmdb_check_runs_once_per_data_set_and_again_after_a_change(dataset, tmp_path):
    from medft.checks import check_lmdb
    from medft.paths import CHECKED_LMDBS as CHECKED

    data = _lmdb_copy(dataset, tmp_path)
    check_lmdb(data / "train_lmdb", 2)
    cached = json.loads((data / CHECKED).read_text())
    assert len(cached) == 1
    check_lmdb(data / "train_lmdb", 2)  # remembered: nothing added
    assert json.loads((data / CHECKED).read_text()) == cached
    _put(data / "train_lmdb", "zz", _datum(5))  # the file changed: checked again
    with pytest.raises(MedftError, match="label 5"):
        check_lmdb(data / "train_lmdb", 2)


def test_a_damaged_lmdb_page_is_named_not_a_crash(dataset, tmp_path):
    from medft.checks import check_lmdb

    data = _lmdb_copy(dataset, tmp_path)
    mdb = data / "val_lmdb" / "data.mdb"
    raw = bytearray(mdb.read_bytes())
    for off in range(2 * 4096, len(raw) - 64, 4096):  # every page header after the two meta pages
        raw[off:off + 16] = b"\xa5" * 16
    mdb.write_bytes(bytes(raw))
    with pytest.raises(MedftError, match=r"val_lmdb.*(damaged|unreadable|not a Caffe Datum)"):
        check_lmdb(data / "val_lmdb", 2)


def test_read_lmdb_names_a_garbage_record(dataset, tmp_path):
    from medft.datum_lmdb import read_lmdb

    data = _lmdb_copy(dataset, tmp_path)
    _put(data / "test_lmdb", "zz", b"\x08\x96\x01 not a datum")
    with pytest.raises(MedftError, match=r"test_lmdb: record 'zz' is not a Caffe Datum"):
        list(read_lmdb(data / "test_lmdb"))


def _caffemodel(path: Path, values: np.ndarray) -> Path:
    from medft.schema import pb

    net = pb.NetParameter(name="w")
    layer = net.layer.add(name="conv1", type="Convolution")
    blob = layer.blobs.add()
    blob.shape.dim.extend(values.shape)
    blob.data.extend(values.ravel().tolist())
    layer.blobs.add().data.extend([0.5, -0.25])
    path.write_bytes(net.SerializeToString())
    return path


def test_blob_values_reads_what_protobuf_holds():
    from medft.schema import array_to_blob, blob_to_array, blob_values, pb

    v = np.random.default_rng(0).normal(size=(4, 3, 2)).astype(np.float32)
    blob = pb.BlobProto()
    blob.shape.dim.extend(v.shape)
    blob.data.extend(v.ravel().tolist())
    assert np.array_equal(blob_values(pb.BlobProto.FromString(blob.SerializeToString())), v.ravel())
    d = pb.BlobProto(double_data=[1.5, -2.0, 3.25])
    assert blob_values(d).tolist() == [1.5, -2.0, 3.25]
    # written from the packed bytes: the same message protobuf builds value by value, in both layouts
    assert array_to_blob(v).SerializeToString() == blob.SerializeToString()
    legacy = pb.BlobProto(num=1, channels=4, height=3, width=2)
    legacy.data.extend(v.ravel().tolist())
    assert array_to_blob(v, legacy_4d=True).SerializeToString() == legacy.SerializeToString()
    assert np.array_equal(blob_to_array(array_to_blob(v)), v) and blob_to_array(array_to_blob(v)).flags.writeable
    big = np.arange(300_000, dtype=np.float32)  # a length of three varint bytes
    assert np.array_equal(blob_values(array_to_blob(big)), big)


@pytest.mark.parametrize("bad, match", [(np.nan, "1 NaN or infinite"), (np.inf, "1 NaN or infinite"),
                                        (3e5, "reach 3e\\+05")])
def test_non_finite_or_exploded_weights_are_refused_before_caffe(dataset, tmp_path, bad, match):
    w = np.full((2, 3, 3, 3), 0.01, np.float32)
    w[1, 2, 0, 1] = bad
    model = _caffemodel(tmp_path / "bad.caffemodel", w)
    with pytest.raises(MedftError, match=rf"bad\.caffemodel: pretrained weights of layer 'conv1' .*{match}"):
        train(_opts(dataset, tmp_path / "runs", config="ft-conv1", weights=str(model)), log=lambda *_: None)
    from medft.checks import check_caffemodel

    w[1, 2, 0, 1] = -0.5
    check_caffemodel(_caffemodel(tmp_path / "good.caffemodel", w))


def test_a_full_disk_is_refused_before_an_epoch_is_trained(tmp_path, monkeypatch):
    from medft import checks

    (tmp_path / "snapshots").mkdir()
    free = shutil.disk_usage(tmp_path).free
    checks.check_space(tmp_path / "snapshots", free // 2)
    with pytest.raises(MedftError, match=r"snapshots: \d+ MB free, an epoch's snapshot and best model need"):
        checks.check_space(tmp_path / "snapshots", free * 2)
    model = tmp_path / "snapshots" / "scratch_iter_4.caffemodel"
    model.write_bytes(b"x" * 1000)
    model.with_suffix(".solverstate").write_bytes(b"y" * 1500)
    assert checks.snapshot_bytes(tmp_path / "snapshots") == 2 * 1000 + 1500


@pytest.mark.parametrize("losses, match", [
    ([0.7, 0.69, float("nan"), 0.6], r"diverged in epoch 3 \(loss nan at iteration 11\)"),
    ([0.7, float("inf")], r"loss inf at iteration 10"),
    ([30.0, 87.3], r"mean loss 58\.65 > 25"),
])
def test_divergence_names_the_epoch_and_the_loss(tmp_path, losses, match):
    from medft.checks import check_loss

    with pytest.raises(MedftError, match=match):
        check_loss(losses, 3, 8, tmp_path)
    check_loss([0.7, 0.68, 0.71], 3, 8, tmp_path)


def test_the_caffe_log_reads_nan_losses_and_snapshots_under_spaces():
    from medft.engines.caffe_log import parse_train_log

    log = parse_train_log(
        "I1202 10:00:00.000001 1 solver.cpp:228] Iteration 3, loss = -nan\n"
        "I1202 10:00:00.000002 1 solver.cpp:244]     Train net output #0: loss = -nan (* 1 = -nan loss)\n"
        "I1202 10:00:01.000000 1 solver.cpp:228] Iteration 4, loss = -inf\n"
        "I1202 10:00:02.000000 1 sgd_solver.cpp:273] Snapshotting solver state to binary proto file "
        "/tmp/my runs/polyp/scratch/snapshots/scratch_iter_4.solverstate\n")
    assert np.isnan(log.losses[3]) and log.losses[4] == -np.inf and np.isnan(log.outputs[3]["loss"])
    assert log.snapshots == {4: "/tmp/my runs/polyp/scratch/snapshots/scratch_iter_4"}


@pytest.mark.parametrize("rc, output, notes, want", [
    (-6, "F1202 x.cpp:1] Check failed: label_value < prob_.shape(softmax_axis_) (2 vs. 2)",
     {"data": "/d/train_lmdb", "weights": "/w.caffemodel"}, "/d/train_lmdb: Caffe aborted (SIGABRT): a label outside"),
    (134, "double free or corruption (!prev)", {"weights": "/w.caffemodel"},
     "/w.caffemodel: Caffe aborted (SIGABRT): non-finite or exploded weights"),
    (-11, "", {"data": "/d/val_lmdb"}, "/d/val_lmdb: Caffe aborted (SIGSEGV): unknown"),
    (139, "F1202 io.cpp:69] Check failed: proto.SerializeToOstream(&output)", {"snapshots": "/r/snapshots"},
     "/r/snapshots: Caffe aborted (SIGSEGV): a snapshot could not be written"),
    (1, "Check failed", {}, None), (130, "", {}, None), (-9, "", {}, None),
])
def test_a_caffe_abort_becomes_one_line_naming_file_cause_and_fix(rc, output, notes, want):
    from medft.guard import explain_abort

    line = explain_abort(rc, output, notes)
    if want is None:
        assert line is None
    else:
        assert line.startswith(want) and "\n" not in line


# -- locks on the data set -----------------------------------------------------------------------------
def _hold(folder: Path, what: str, exclusive: bool) -> subprocess.Popen:
    code = ("import time; from pathlib import Path; from medft.util.lock import dataset_lock\n"
            f"with dataset_lock(Path({str(folder)!r}), {what!r}, exclusive={exclusive}):\n"
            "    print('held', flush=True); time.sleep(60)")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


@pytest.mark.slow
def test_prep_force_refuses_a_data_set_that_is_being_read(tmp_path):
    d = tmp_path / "d"
    assert _cli("synth", "polyp", "--out", str(d), "--cases", "5", "--per-case", "2").returncode == 0
    prep = ("prep", "polyp", "--input", str(d / "polyp"), "--out", str(tmp_path / "data"), "--max-patches", "40",
            "--max-test-patches", "250", "--no-progress")
    assert _cli(*prep).returncode == 0
    data = tmp_path / "data" / "polyp"
    before = json.loads((data / "prep.json").read_text())["fingerprint"]
    reader = _hold(data, "train", exclusive=False)
    try:
        r = _cli(*prep, "--force", "--seed", "1")
        assert r.returncode == 2 and f"in use by medft train (PID {reader.pid})" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) <= 2 and "Traceback" not in r.stderr
    finally:
        reader.kill()
        reader.wait()
    assert json.loads((data / "prep.json").read_text())["fingerprint"] == before
    assert _cli(*prep, "--force", "--seed", "1").returncode == 0  # the lock died with its holder
    assert json.loads((data / "prep.json").read_text())["fingerprint"] != before


def test_train_refuses_a_data_set_prep_is_writing(dataset, tmp_path):
    data = _lmdb_copy(dataset, tmp_path)
    writer = _hold(data, "prep", exclusive=True)
    try:
        with pytest.raises(MedftError, match=f"being written by medft prep \\(PID {writer.pid}\\)"):
            train(_opts(data, tmp_path / "runs"), log=lambda *_: None)
    finally:
        writer.kill()
        writer.wait()


def test_prep_force_never_deletes_run_folders_kept_in_the_data_set(tmp_path):
    from medft.datum_lmdb import mark_output, refuse_existing

    data = tmp_path / "data" / "polyp"
    run = data / "runs" / "polyp" / "scratch"
    run.mkdir(parents=True)
    mark_output(data, "prep")
    (run / "run.json").write_text("{}")
    with pytest.raises(MedftError, match=r"holds the run folder\(s\) .*runs/polyp/scratch; move them out"):
        refuse_existing(data, force=True)
    assert (run / "run.json").is_file()


# -- smaller faults ---------------------------------------------------------------------------------------
def test_predict_on_an_interrupted_run_says_so(dataset, tmp_path):
    out = run_dir(tmp_path, "polyp", "scratch")
    out.mkdir(parents=True)
    for name in ("best.caffemodel", "deploy.prototxt"):
        (out / name).write_bytes(b"")
    (out / "run.json").write_text(json.dumps({"status": "running", "app": "polyp"}))
    with pytest.raises(MedftError, match=r"the run is not finished \(status 'running'\); `medft train polyp"):
        predict_run("polyp", "scratch", dataset, runs=tmp_path, log=lambda *_: None)


def test_fraction_one_written_any_way_is_the_whole_sets_run_folder(tmp_path):
    assert {run_dir(tmp_path, "polyp", "scratch", f) for f in ("1", "1.0", "1.00", " 1 ")} == {
        tmp_path / "polyp" / "scratch"}
    assert run_dir(tmp_path, "polyp", "scratch", "0.5").name == "scratch-0.5"


@pytest.mark.parametrize("image", ["--privileged", "-v/:/host", "--network=host", "a b", "Upper/Case", ""])
def test_a_docker_image_that_is_a_flag_is_refused(image):
    from medft.engines import make_engine

    with pytest.raises(MedftError, match="engine" if not image else "not a container image name"):
        make_engine(f"docker:{image}")


def test_a_reader_that_leaves_is_no_broken_pipe():
    r, w = os.pipe()
    os.close(r)
    p = subprocess.run([sys.executable, "-m", "medft", "doctor"], stdout=w, stderr=subprocess.PIPE, text=True)
    os.close(w)
    assert "Broken pipe" not in p.stderr and "BrokenPipeError" not in p.stderr, p.stderr


def test_score_refuses_runs_of_one_label_trained_on_different_data(tmp_path):
    from medft.evaluate.io import RunFolder, check_same_data

    def run(name, fraction, fp):
        p = tmp_path / name
        p.mkdir()
        (p / "run.json").write_text(json.dumps({"data": {"fingerprint": {"data": fp, "test": "t"}}}))
        return RunFolder(name, name.split("-")[0], fraction, p)

    same = [run("scratch", "", "aaa"), run("ft-conv1", "", "aaa"), run("scratch-0.5", "0.5", "bbb")]
    check_same_data(same)
    with pytest.raises(MedftError, match=r"ft-fc8 and scratch: trained on a different training data \(all of it\)"):
        check_same_data([*same, run("ft-fc8", "", "ccc")])


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def test_a_grid_killed_by_sigkill_takes_its_command_with_it(tmp_path):
    code = ("import subprocess, sys, time\nfrom medft.grid.runner import _ignore_checkpoint_signal\n"
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], "
            "preexec_fn=_ignore_checkpoint_signal)\nprint(p.pid, flush=True)\ntime.sleep(60)")
    grid = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = int(grid.stdout.readline())
    assert _state(child) not in (None, "Z")
    grid.kill()
    grid.wait()
    deadline = time.time() + 10
    while _state(child) not in (None, "Z") and time.time() < deadline:
        time.sleep(0.1)
    assert _state(child) in (None, "Z"), "the command outlived the grid"


# -- with real Caffe ---------------------------------------------------------------------------------------
def _poison(model: Path, value: float) -> None:
    """Set one weight of a caffemodel to ``value`` (a snapshot written by an exploded epoch)."""
    from medft.schema import read_net

    net = read_net(model)
    net.layer[[i for i, layer in enumerate(net.layer) if len(layer.blobs)][-1]].blobs[0].data[3] = value
    model.write_bytes(net.SerializeToString())


@pytest.mark.caffe
@pytest.mark.parametrize("part", ["caffemodel", "solverstate"])
def test_resuming_from_an_exploded_snapshot_is_refused(done_run, dataset, tmp_path, part):
    from medft.schema import pb

    runs = _copy_run(done_run, tmp_path)
    out = run_dir(runs, "polyp", "scratch")
    record = json.loads((out / "run.json").read_text())
    record["status"] = "running"
    (out / "run.json").write_text(json.dumps(record))
    model = sorted((out / "snapshots").glob("*.caffemodel"))[-1]
    if part == "caffemodel":
        _poison(model, float("nan"))
        match = rf"{model.name}: the weights of the snapshot to resume from .* NaN"
    else:
        state = model.with_suffix(".solverstate")
        msg = pb.SolverState.FromString(state.read_bytes())
        msg.history[-1].data[0] = float("inf")
        state.write_bytes(msg.SerializeToString())
        match = rf"{state.name}: the solver's history \(blob {len(msg.history) - 1}\) holds NaN or infinite"
    with pytest.raises(MedftError, match=match):
        train(_opts(dataset, runs, max_epochs=3), log=lambda *_: None)
    assert json.loads((out / "run.json").read_text())["status"] == "running"


@pytest.mark.caffe
def test_predict_refuses_a_model_with_nan_weights(done_run, dataset, tmp_path):
    runs = _copy_run(done_run, tmp_path)
    out = run_dir(runs, "polyp", "scratch")
    _poison(out / "best.caffemodel", float("nan"))
    from medft.caffemodel import sha1_of

    meta = json.loads((out / "best.json").read_text())
    meta["sha1"] = sha1_of(out / "best.caffemodel")  # even a record that vouches for it
    (out / "best.json").write_text(json.dumps(meta))
    with pytest.raises(MedftError, match=r"best\.caffemodel: the selected weights of layer .* NaN"):
        predict_run("polyp", "scratch", dataset, runs=runs, force=True, log=lambda *_: None)
    assert not (out / "predictions.csv").exists()


@pytest.mark.caffe
@pytest.mark.slow
def test_a_diverging_run_is_named_and_keeps_no_exploded_snapshot(dataset, tmp_path, caffe):
    """Pretrained weights a thousand times too large (yet finite and below the limit) blow up the loss."""
    from tests.conftest import POLYP_DEPLOY

    net = caffe.Net(str(POLYP_DEPLOY), caffe.TEST)
    for blobs in net.params.values():
        blobs[0].data[...] = np.sign(blobs[0].data) * 50.0
    net.save(str(tmp_path / "huge.caffemodel"))
    runs = tmp_path / "runs"
    r = _cli("train", "polyp", "ft-conv1", "--data", str(Path(dataset).parent), "--runs", str(runs), "--weights",
             str(tmp_path / "huge.caffemodel"), "--batch", "4", "--test-batch", "3", "--max-epochs", "2")
    last = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert re.match(r"medft train: error: .*training diverged in epoch 1 \((loss -?(nan|inf)|mean loss)", last), last
    out = run_dir(runs, "polyp", "ft-conv1")
    assert not (out / "log.csv").exists() and not (out / "best.caffemodel").exists()
    assert not list((out / "snapshots").glob("*")), "no snapshot of the diverged epoch"


@pytest.mark.caffe
@pytest.mark.slow
def test_the_cli_engine_trains_under_a_path_with_spaces(dataset, tmp_path):
    data = _lmdb_copy(dataset, tmp_path / "my data")
    rec = train(_opts(data, tmp_path / "my runs", engine="cli", max_epochs=1), log=lambda *_: None)
    assert rec["status"] == "done"
    assert (run_dir(tmp_path / "my runs", "polyp", "scratch") / "best.caffemodel").stat().st_size > 1e6


def test_a_full_disk_names_the_file_being_written():
    import errno

    from medft.cli import os_error_line

    copy = OSError(errno.ENOSPC, "No space left on device", "/runs/snapshots/x_iter_4.caffemodel", None,
                   "/runs/.best.caffemodel.pending")
    assert os_error_line(copy) == "No space left on device: /runs/.best.caffemodel.pending"
    denied = OSError(errno.EACCES, "Permission denied", "/ro/run.json")
    assert os_error_line(denied) == "Permission denied: /ro/run.json"
