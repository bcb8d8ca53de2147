"""Fault injection: a SIGKILL at every write point a later stage trusts, a full disk, and the rerun.

After any single fault and a rerun, the stage either completes with the outputs of an uninterrupted
run or exits non-zero with a one-line message; no input is deleted (see also test_reliability.py).
Points are named in medft.util.faults; ``MEDFT_FAULT=<point>`` kills the process there.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from medft.util.faults import POINTS

pytestmark = [pytest.mark.slow, pytest.mark.caffe]


def medft(*args: str, fault: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("MEDFT_FAULT", None)
    if fault:
        env["MEDFT_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "medft", *args], capture_output=True, text=True, env=env, cwd=cwd)


def ok(r: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert r.returncode == 0, r.stderr[-2000:]
    return r


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    ok(medft("synth", "polyp", "--out", str(root), "--cases", "5", "--per-case", "2"))
    return root / "polyp"


PREP = ("--max-patches", "40", "--max-test-patches", "250", "--no-progress")


@pytest.fixture(scope="module")
def data(raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data")
    ok(medft("prep", "polyp", "--input", str(raw), "--out", str(out), *PREP))
    return out


TRAIN = ("--batch", "8", "--test-batch", "10", "--max-epochs", "2", "--patience", "5")


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("ref")
    ok(medft("train", "polyp", "scratch", "--data", str(data), "--runs", str(runs), *TRAIN))
    ok(medft("predict", "polyp", "scratch", "--data", str(data), "--runs", str(runs), "--batch", "10"))
    return runs / "polyp" / "scratch"


def test_every_point_is_exercised():
    here = Path(__file__).read_text()
    assert all(f'"{p}"' in here for p in POINTS), "a fault point without a test"


def test_prep_killed_before_its_record(raw, data, tmp_path):
    before = sorted(p.relative_to(raw) for p in raw.rglob("*"))
    out = tmp_path / "out"
    r = medft("prep", "polyp", "--input", str(raw), "--out", str(out), *PREP, fault="prep:before-record")
    assert r.returncode == -9 and not (out / "polyp").exists(), "a killed prep leaves no data set"
    ok(medft("prep", "polyp", "--input", str(raw), "--out", str(out), *PREP))
    fp = [json.loads((d / "polyp" / "prep.json").read_text())["fingerprint"] for d in (out, data)]
    assert fp[0] == fp[1], "the rerun writes the same LMDBs as an uninterrupted prep"
    assert not list(out.glob(".polyp.tmp-*")), "the killed run's hidden folder is collected"
    assert sorted(p.relative_to(raw) for p in raw.rglob("*")) == before


def _rows(run: Path) -> list[tuple[str, str, str]]:
    with open(run / "log.csv") as f:
        return [(r["epoch"], r["iteration"], r["val_auc"]) for r in csv.DictReader(f)]


@pytest.mark.parametrize("point", ["train:after-best-model", "train:after-best-record", "train:after-log"])
def test_train_killed_at_a_best_model_write_point(point, data, reference, tmp_path):
    runs = tmp_path / "runs"
    r = medft("train", "polyp", "scratch", "--data", str(data), "--runs", str(runs), *TRAIN, fault=point)
    assert r.returncode == -9, r.stderr[-2000:]
    run = runs / "polyp" / "scratch"
    ok(medft("train", "polyp", "scratch", "--data", str(data), "--runs", str(runs), *TRAIN))
    assert _rows(run) == _rows(reference)
    assert (run / "best.caffemodel").read_bytes() == (reference / "best.caffemodel").read_bytes()
    assert not list(run.glob(".best.*pending"))
    ok(medft("predict", "polyp", "scratch", "--data", str(data), "--runs", str(runs), "--batch", "10"))
    assert (run / "predictions.csv").read_text() == (reference / "predictions.csv").read_text()


def test_predict_killed_before_its_predictions(data, reference, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(reference.parents[1], runs)
    run = runs / "polyp" / "scratch"
    (run / "predictions.csv").unlink()
    r = medft("predict", "polyp", "scratch", "--data", str(data), "--runs", str(runs), "--batch", "10",
              fault="predict:before-predictions")
    assert r.returncode == -9 and not (run / "predictions.csv").exists()
    ok(medft("predict", "polyp", "scratch", "--data", str(data), "--runs", str(runs), "--batch", "10"))
    assert (run / "predictions.csv").read_text() == (reference / "predictions.csv").read_text()


@pytest.fixture
def tiny_disk(tmp_path):
    """A 3 MB tmpfs (the tests run as root in CI); skipped where mounting is not allowed."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_full_disk_is_one_line_and_leaves_nothing(raw, tiny_disk):
    r = medft("prep", "polyp", "--input", str(raw), "--out", str(tiny_disk), *PREP)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1].startswith("medft prep: error:")
    assert not any(tiny_disk.iterdir()), f"left behind: {list(tiny_disk.iterdir())}"


# -- Caffe aborts: one line, exit 2, nothing marked done ----------------------------------------------------
def _vouch(lmdb_path: Path) -> None:
    """Record the LMDB as checked, as a check cache made before a later change would: Caffe then reads
    whatever is in it, and what can still abort must end in one line."""
    from medft.checks import _cache_key
    from medft.paths import CHECKED_LMDBS as CHECKED

    prep = json.loads((lmdb_path.parent / "prep.json").read_text())
    key = _cache_key(lmdb_path, 2, (3, 227, 227), prep["fingerprint"]["data"])
    (lmdb_path.parent / CHECKED).write_text(json.dumps([key]))


@pytest.mark.parametrize("engine", ["pycaffe", "cli"])
def test_a_caffe_abort_is_one_line_naming_the_data(data, tmp_path, engine):
    import lmdb

    root = tmp_path / "data"
    shutil.copytree(data, root, ignore=shutil.ignore_patterns(".*lock", ".checked.json"))
    train_lmdb = root / "polyp" / "train_lmdb"
    env = lmdb.open(str(train_lmdb), map_size=1 << 30)
    with env.begin(write=True) as txn:  # the first record Caffe reads: no pixels, no shape
        txn.put(b"0000000", b"\x28\x01")
    env.close()
    _vouch(train_lmdb)
    runs = tmp_path / "runs"
    r = medft("train", "polyp", "scratch", "--data", str(root), "--runs", str(runs), *TRAIN, "--engine", engine)
    last = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert re.match(r"medft train: error: .*polyp(/train_lmdb)?: (Caffe|caffe train) aborted \(SIG(ABRT|SEGV)\): "
                    r"a damaged LMDB record; rebuild the data set", last), last
    record = runs / "polyp" / "scratch" / "run.json"
    assert not record.exists() or json.loads(record.read_text())["status"] != "done"


def test_a_disk_too_small_for_a_snapshot_is_one_line(data, tiny_disk):
    r = medft("train", "polyp", "scratch", "--data", str(data), "--runs", str(tiny_disk), *TRAIN)
    last = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert re.match(r"medft train: error: .*snapshots: \d+ MB free, an epoch's snapshot and best model need", last)
    assert not (tiny_disk / "polyp" / "scratch" / "log.csv").exists()
