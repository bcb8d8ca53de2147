"""`medft grid --executor slurm` against a real one-node Slurm cluster started here (Debian's
slurm-wlm and munge), on real Caffe and the tiny synthetic polyp set: every cell done, the report
written from the runs' numbers, a failing cell reported while the others go on, a preempted
(requeued) job and a cancelled one both resuming to the full iteration count, the cluster stopped."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import lmdb
import pytest
from medft.grid import localcluster

from tests.conftest import ROOT

pytestmark = [pytest.mark.caffe, pytest.mark.slow]

EPOCHS, BATCH = 4, 8
SELECTION = ["polyp", "--configs", "scratch", "ft-fc8", "ft-conv1", "--inits", "gaussian", "--fractions", "1"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A started one-node cluster; installs slurm-wlm and munge first where root can (as `make test` does)."""
    reason = localcluster.unavailable_reason()
    if reason and os.geteuid() == 0:
        localcluster.install_deps()
        reason = localcluster.unavailable_reason()
    if reason:
        pytest.skip(f"no local Slurm cluster: {reason}")
    c = localcluster.start(tmp_path_factory.mktemp("slurm"))
    yield c
    c.stop()


def grid_env(cluster, tmp: Path) -> dict[str, str]:
    from medft.engines.env import caffe_root

    return {**cluster.env, "PYTHONPATH": str(ROOT / "python"), "MEDFT_CAFFE_ROOT": str(caffe_root()),
            "MEDFT_CACHE": str(tmp / "cache")}  # a fresh tiny stand-in, made by the grid's pretrain job


def medft(env, tmp: Path, *argv: str, **kw):
    cmd = [sys.executable, "-m", "medft.cli", *argv]
    return subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **kw)


def grid_args(tmp: Path) -> list[str]:
    return ["grid", *SELECTION, "--runs", str(tmp / "runs"), "--data", str(tmp / "data"), "--max-patches", "40",
            "--max-test-patches", "240", "--batch", str(BATCH), "--test-batch", "8", "--max-epochs", str(EPOCHS),
            "--patience", str(EPOCHS), "--pretrain-iterations", "4", "--pretrain-images", "64",
            "--executor", "slurm", "--gpus-per-job", "0", "--cpus-per-job", "1", "--mem-gb", "1", "--time", "20",
            "--poll", "1"]


def record(tmp: Path, job: str) -> dict:
    path = tmp / "runs" / "grid" / f"{job}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def epochs_logged(tmp: Path, folder: str) -> int:
    log = tmp / "runs" / "polyp" / folder / "log.csv"
    return len(log.read_text().splitlines()) - 1 if log.is_file() else 0


def wait_until(what: str, ready, timeout: float = 240) -> None:
    end = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < end, f"no {what} after {timeout} s"
        time.sleep(0.2)


def interrupt(cluster, tmp: Path, commands: dict[str, tuple[tuple[str, ...], bool]], timeout: float = 240) -> None:
    """For each cell, ``(argv, requeues)``: run ``argv + (job id,)`` as soon as the cell has logged its first
    epoch (and not its last); a job that it requeues is started again at once (Slurm would hold it two
    minutes)."""
    todo, requeued, end = dict(commands), [], time.monotonic() + timeout
    while todo or requeued:
        assert time.monotonic() < end, f"cells {list(todo)} never logged an epoch; {requeued} never requeued"
        for folder in [f for f in todo if epochs_logged(tmp, f) >= 1]:
            assert epochs_logged(tmp, folder) < EPOCHS, f"{folder} finished before it could be interrupted"
            job = record(tmp, f"polyp/{folder}")["job_id"]
            argv, requeues = todo.pop(folder)
            cluster.run(*argv, job)
            if requeues:
                requeued.append(job)
        for job in [j for j in requeued if "PENDING" in cluster.run(
                "squeue", "-h", "-r", "-j", j, "-o", "%T", check=False).stdout]:
            cluster.run("scontrol", "update", f"JobId={job}", "StartTime=now")
            requeued.remove(job)
        time.sleep(0.2)


def final_iteration(tmp: Path, folder: str) -> int:
    rows = (tmp / "runs" / "polyp" / folder / "log.csv").read_text().splitlines()
    return int(rows[-1].split(",")[1])


def expected_iterations(tmp: Path) -> int:
    """EPOCHS epochs of ceil(train patches / batch) iterations, the patches counted in the LMDB itself."""
    env = lmdb.open(str(tmp / "data" / "polyp" / "train_lmdb"), readonly=True, lock=False)
    n = env.stat()["entries"]
    env.close()
    return EPOCHS * math.ceil(n / BATCH)


def test_grid_on_slurm(cluster, tmp_path):
    t0 = time.monotonic()
    env = grid_env(cluster, tmp_path)
    broken = tmp_path / "runs" / "polyp" / "ft-conv1" / "run.json"
    broken.parent.mkdir(parents=True)
    broken.write_text("{ not json")  # the deliberately failing cell: medft train refuses this folder

    # 1. submit and wait; preempt (requeue) one cell and cancel another after their first epoch
    grid = medft(env, tmp_path, *grid_args(tmp_path), "--wait")
    interrupt(cluster, tmp_path, {
        "scratch": (("scontrol", "requeue"), True),  # what Slurm does to a job it preempts (PreemptMode=REQUEUE)
        "ft-fc8": (("scancel",), False)})
    out, _ = grid.communicate(timeout=300)
    print(out)
    assert grid.returncode == 1, out
    assert "polyp/ft-conv1: failed: medft train: error: " in out and "not a medft run record" in out, out
    assert "polyp/ft-fc8: stopped" in out, out
    full = expected_iterations(tmp_path)
    assert final_iteration(tmp_path, "scratch") == full
    scratch_log = (tmp_path / "runs" / "grid" / "polyp" / "scratch.log").read_text()
    assert scratch_log.count("=== polyp/scratch: 20") == 2 and "medft train: resuming" in scratch_log, scratch_log
    assert epochs_logged(tmp_path, "ft-fc8") < EPOCHS

    status = medft(env, tmp_path, "status", *SELECTION, "--runs", str(tmp_path / "runs")).communicate()[0]
    rows = {line.split()[0]: line for line in status.splitlines() if line.startswith("polyp/")}
    assert rows["polyp/scratch"].split()[1] == "done", status
    assert rows["polyp/ft-fc8"].split()[1] == "stopped", status
    failed = rows["polyp/ft-conv1"]
    assert failed.split()[1] == "failed" and "not a medft run record" in failed, status
    assert str(tmp_path / "runs" / "grid" / "polyp" / "ft-conv1.log") in failed, status
    assert "polyp/report: done" in status, status

    # 2. the fault mended, a rerun submits only what is missing, and finishes it
    broken.unlink()
    dry = medft(env, tmp_path, *grid_args(tmp_path), "--dry-run").communicate()[0]
    planned = sorted(line.strip() for line in dry.splitlines() if line.startswith("  polyp/") or
                     line.startswith("  pretrain"))
    assert planned == ["polyp/ft-conv1", "polyp/ft-fc8", "polyp/report"], dry
    again = medft(env, tmp_path, *grid_args(tmp_path), "--wait")
    # the time-limit warning submitit asks for (USR2): it checkpoints, Slurm requeues, the cell resumes
    interrupt(cluster, tmp_path, {"ft-conv1": (("scancel", "--signal=USR2"), True)})
    out2, _ = again.communicate(timeout=300)
    print(out2)
    assert again.returncode == 0, out2
    assert "3 cells: 3 done" in out2, out2
    assert final_iteration(tmp_path, "ft-fc8") == full
    assert final_iteration(tmp_path, "ft-conv1") == full
    for folder in ("ft-fc8", "ft-conv1"):
        log = (tmp_path / "runs" / "grid" / "polyp" / f"{folder}.log").read_text()
        assert "medft train: resuming" in log, log
    assert "Job not requeued" not in (Path(record(tmp_path, "polyp/ft-conv1")["slurm_log"])).read_text()
    assert scratch_log == (tmp_path / "runs" / "grid" / "polyp" / "scratch.log").read_text()  # not run again

    from medft.demo import check_report

    found = check_report(tmp_path / "runs" / "polyp" / "report", ("scratch", "ft-fc8", "ft-conv1"))
    assert set(found) == {"scratch", "ft-fc8", "ft-conv1"}

    # 3. the cluster stops: its daemons end and the controller no longer answers
    cluster.stop()
    assert all(p.poll() is not None for p in cluster.procs.values())
    assert cluster.run("squeue", check=False).returncode != 0
    print(f"Slurm grid test: {time.monotonic() - t0:.0f} s")
