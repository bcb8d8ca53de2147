"""The grid without a cluster: its cells, the plan of what is missing, job records, the local
executor on real medft commands, the status table and `medft grid --dry-run`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from medft.errors import MedftError
from medft.grid import records
from medft.grid.cells import Cell, grid_cells
from medft.grid.local import run_local
from medft.grid.plan import CELL, PREP, PRETRAIN, REPORT, Job, StudyOptions, plan
from medft.grid.status import cell_status, format_table

from tests.conftest import ROOT


def medft(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "python"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "medft.cli", *args], capture_output=True, text=True, env=env)


# --- cells --------------------------------------------------------------------------------------------------
def test_polyp_grid_is_the_papers_runs():
    """Hand-typed: Table II's nine rows, Fig. 10's two other inits, Fig. 2b's reduced sets."""
    folders = [c.folder for c in grid_cells("polyp")]
    assert folders == ["ft-conv1", "ft-conv2", "ft-conv3", "ft-conv4", "ft-conv5", "ft-fc6", "ft-fc7", "ft-fc8",
                       "scratch", "scratch-xavier", "scratch-msra", "scratch-0.5", "ft-conv1-0.5", "scratch-0.25",
                       "ft-conv1-0.25"]
    assert len(grid_cells("frames")) == 9 + 2 + 2 * 3
    assert [c.folder for c in grid_cells("cimt", fractions=("1patient",))] == ["scratch-1patient",
                                                                               "ft-conv1-1patient"]


def test_grid_selection_and_its_errors():
    cells = grid_cells("polyp", configs=("scratch", "ft-fc8"), inits=("gaussian",), fractions=("1",))
    assert [c.job for c in cells] == ["polyp/scratch", "polyp/ft-fc8"]
    with pytest.raises(MedftError, match="unknown configuration 'ft-conv9'; valid: ft-conv1"):
        grid_cells("polyp", configs=("ft-conv9",))
    with pytest.raises(MedftError, match="fraction '0.1' is not one of polyp's reduced sets"):
        grid_cells("polyp", fractions=("0.1",))


def test_every_cell_once_per_training_seed_in_its_own_folder(tmp_path):
    from medft.commands.grid import add_arguments
    from medft.grid.plan import StudyOptions, plan

    cells = grid_cells("polyp", configs=("scratch",), inits=("gaussian",), fractions=("1", "0.25"),
                       seeds=(2016, 2017))
    assert [c.job for c in cells] == ["polyp/scratch", "polyp/scratch-seed2017", "polyp/scratch-0.25",
                                      "polyp/scratch-0.25-seed2017"]
    jobs = {j.name: j for j in plan(cells, StudyOptions(data=str(tmp_path / "d"), runs=str(tmp_path / "r")),
                                    has_pretrained=True).jobs}
    train = jobs["polyp/scratch-0.25-seed2017"].steps[0]
    assert train[:2] == ("train", "polyp") and train[train.index("--seed") + 1] == "2017"
    assert "--seed" not in jobs["polyp/scratch"].steps[0]  # the default seed: today's command and folder
    import argparse

    p = argparse.ArgumentParser()
    add_arguments(p)
    assert p.parse_args(["polyp", "--seeds", "3"]).seeds == (2016, 2017, 2018)


# --- plan ---------------------------------------------------------------------------------------------------
def _finish(cell: Cell, runs, data) -> None:
    """A run folder as `medft train` and `medft predict` leave it, and its prepared data set."""
    out = cell.run_dir(runs)
    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").write_text(json.dumps({"status": "done", "best": {"val_auc": 0.875, "epoch": 3}}))
    (out / "predictions.csv").write_text("case,unit,lesion,label,score\n")
    cell.dataset(data).mkdir(parents=True, exist_ok=True)
    (cell.dataset(data) / "prep.json").write_text("{}")


def test_plan_runs_only_what_is_missing(tmp_path):
    opts = StudyOptions(data=str(tmp_path / "data"), runs=str(tmp_path / "runs"))
    cells = grid_cells("polyp")
    p = plan(cells, opts, has_pretrained=False)
    kinds = [j.kind for j in p.jobs]
    assert kinds == [PREP] * 3 + [PRETRAIN] + [CELL] * 15 + [REPORT]
    assert [j.name for j in p.jobs[:3]] == ["polyp/prep", "polyp/prep-f0.5", "polyp/prep-f0.25"]
    scratch = next(j for j in p.jobs if j.name == "polyp/scratch-0.5")
    assert scratch.needs == ("polyp/prep-f0.5",) and scratch.dataset == str(tmp_path / "data" / "polyp-f0.5")
    assert next(j for j in p.jobs if j.name == "polyp/ft-fc8").needs == ("polyp/prep", PRETRAIN)
    assert [s[0] for s in scratch.steps] == ["train", "predict"]
    assert "--fraction" in scratch.steps[0] and "0.5" in scratch.steps[0]

    for c in cells[:14]:
        _finish(c, opts.runs, opts.data)
    p = plan(cells, opts, has_pretrained=False)
    assert [j.name for j in p.jobs] == ["pretrain", "polyp/ft-conv1-0.25", "polyp/report"]  # f0.25 is prepared
    assert p.of_kind(REPORT)[0].needs == ("polyp/ft-conv1-0.25",)
    assert len(p.done) == 14
    only_scratch = plan([cells[8]], opts, has_pretrained=False)  # scratch needs no pretrained weights
    assert only_scratch.of_kind(PRETRAIN) == []

    _finish(cells[14], opts.runs, opts.data)
    assert [j.name for j in plan(cells, opts).jobs] == ["polyp/report"]  # a report is missing
    report = tmp_path / "runs" / "polyp" / "report" / "report.md"
    report.parent.mkdir(parents=True)
    report.write_text("# report\n")
    assert plan(cells, opts).jobs == []
    time.sleep(0.01)
    (cells[3].run_dir(opts.runs) / "predictions.csv").write_text("case,unit,lesion,label,score\n")
    assert [j.name for j in plan(cells, opts).jobs] == ["polyp/report"]  # older than a finished run


def test_prep_jobs_read_the_input_or_make_the_synthetic_set(tmp_path):
    (tmp_path / "in" / "pe").mkdir(parents=True)
    cells = grid_cells("pe", configs=("scratch",), inits=("gaussian",))
    synthetic = plan(cells, StudyOptions(data=str(tmp_path / "d"), runs=str(tmp_path / "r"))).of_kind(PREP)
    assert synthetic[0].steps[0][:6] == ("prep", "pe", "--synthetic", "--cases", "12", "--per-case")
    real = plan(cells, StudyOptions(data=str(tmp_path / "d"), runs=str(tmp_path / "r"), input=str(tmp_path / "in")))
    assert real.of_kind(PREP)[0].steps[0][:4] == ("prep", "pe", "--input", str(tmp_path / "in" / "pe"))


# --- records and the local executor -------------------------------------------------------------------------
def test_first_error_line():
    assert records.first_error(["loading", "medft train: error: x.json: bad", "medft: more"]) == \
        "medft train: error: x.json: bad"
    assert records.first_error(["Traceback (most recent call last):", '  File "a.py"', "ValueError: no"]) == \
        "ValueError: no"
    assert records.first_error(["I1126 ok", "F1126 10:00:00 net.cpp:1] Check failed: a == b"]).startswith("F1126")
    assert records.first_error(["one", "last words", ""]) == "last words"


def test_local_executor_reports_a_failure_and_goes_on(tmp_path):
    runs = str(tmp_path / "runs")
    ok = Job("polyp/gen", CELL, (("gen", "--app", "polyp", "--out", str(tmp_path / "gen")),))
    bad = Job("polyp/prep", PREP, (("prep", "polyp", "--input", str(tmp_path / "nowhere"), "--out",
                                    str(tmp_path / "data")),), "polyp")
    unprepared = Job("polyp/scratch", CELL, (("gen", "--app", "polyp", "--out", str(tmp_path / "x")),), "polyp",
                     str(tmp_path / "data" / "polyp"), ("polyp/prep",))
    later = Job("polyp/gen2", CELL, (("gen", "--app", "polyp", "--out", str(tmp_path / "gen2")),))
    lines = []
    failed = run_local([ok, bad, unprepared, later], runs, log=lambda *a, **k: lines.append(a[0]))
    assert len(failed) == 2
    assert records.read(runs, "polyp/gen")["state"] == "done"
    assert (tmp_path / "gen" / "prototxt" / "polyp").is_dir() and (tmp_path / "gen2" / "prototxt").is_dir()
    rec = records.read(runs, "polyp/prep")
    assert rec["state"] == "failed" and rec["error"].startswith("medft prep: error: ")
    assert str(tmp_path / "nowhere") in rec["error"] and rec["log"] in failed[0]
    assert rec["error"] in (tmp_path / "runs" / "grid" / "polyp" / "prep.log").read_text()
    rec = records.read(runs, "polyp/scratch")
    assert rec["state"] == "failed" and "not prepared" in rec["error"]
    assert str(tmp_path / "runs" / "grid" / "polyp" / "prep.log") in rec["error"]
    assert not (tmp_path / "x").exists()  # its commands never ran


# --- status -------------------------------------------------------------------------------------------------
def test_status_of_each_kind_of_cell(tmp_path):
    runs = tmp_path / "runs"
    done, failed, stopped, running, gone, interrupted, fresh = (
        Cell("polyp", c) for c in ("scratch", "ft-fc8", "ft-fc7", "ft-fc6", "ft-conv5", "ft-conv4", "ft-conv3"))
    _finish(done, runs, tmp_path / "data")
    records.write(runs, failed.job, state="failed", error="medft train: error: bad", log="/l/ft-fc8.log")
    records.write(runs, stopped.job, state="stopped", error="`medft train` stopped by a signal", log="/l")
    import socket

    records.write(runs, running.job, state="running", host=socket.gethostname(), pid=os.getpid(), log="/l")
    records.write(runs, gone.job, state="running", host=socket.gethostname(), pid=2 ** 22 + 7, log="/l")
    interrupted.run_dir(runs).mkdir(parents=True)
    (interrupted.run_dir(runs) / "run.json").write_text('{"status": "running"}')
    (interrupted.run_dir(runs) / "log.csv").write_text("epoch,iteration\n1,4\n2,8\n")
    got = {c.folder: cell_status(c, runs, None) for c in (done, failed, stopped, running, gone, interrupted, fresh)}
    assert (got["scratch"].state, got["scratch"].val_auc, got["scratch"].epoch) == ("done", 0.875, 3)
    assert got["ft-fc8"].state == "failed" and got["ft-fc8"].detail == "medft train: error: bad (log: /l/ft-fc8.log)"
    assert got["ft-fc7"].state == "stopped"
    assert got["ft-fc6"].state == "running"
    assert got["ft-conv5"].state == "stopped" and "ended without finishing" in got["ft-conv5"].detail
    assert got["ft-conv4"].state == "stopped" and got["ft-conv4"].epoch == 2
    assert (got["ft-conv3"].state, got["ft-conv3"].detail) == ("pending", "not submitted")
    table = format_table(list(got.values()))
    assert table[0].split() == ["cell", "state", "val", "AUC", "epoch", "job", "detail"]
    assert table[1].split()[:4] == ["polyp/scratch", "done", "0.8750", "3"]


def test_status_command_prints_every_cell(tmp_path):
    r = medft("status", "polyp", "--runs", str(tmp_path / "runs"))
    assert r.returncode == 0, r.stderr
    assert sum(line.startswith("polyp/") for line in r.stdout.splitlines()) == 15
    assert "15 cells: 15 pending" in r.stdout


# --- the command --------------------------------------------------------------------------------------------
def test_dry_run_prints_the_slurm_jobs_and_their_resources(tmp_path):
    r = medft("grid", "polyp", "--executor", "slurm", "--dry-run", "--runs", str(tmp_path / "runs"), "--data",
              str(tmp_path / "data"), "--partition", "gpu", "--time", "2:00:00", "--sbatch", "account=lab",
              env={"MEDFT_CACHE": str(tmp_path / "cache")})
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "15 cells, 0 done, 15 to run; 20 jobs (slurm, dry run: nothing runs)" in out
    assert ("medft-polyp-prep (array of 3, 1 at a time): partition=gpu gpus=0 cpus=8 mem=32G time=2:00:00 "
            "--account=lab") in out
    assert "medft-pretrain (one job): partition=gpu gpus=1 " in out
    assert ("medft-polyp-cell (array of 15, 15 at a time): partition=gpu gpus=1 cpus=8 mem=32G time=2:00:00 "
            "--account=lab after medft-polyp-prep, medft-pretrain (afterany)") in out
    assert "after medft-polyp-cell (afterany)" in out
    assert f"medft train polyp scratch --init msra --data {tmp_path / 'data'}" in out and "--gpu 0" in out
    assert not (tmp_path / "runs").exists()  # nothing written


@pytest.mark.parametrize("argv,expect", [
    (["--time", "soon"], "not a time limit"),
    (["--sbatch", "account"], "expected KEY=VALUE"),
    (["--executor", "pbs"], "invalid choice: 'pbs'"),
    (["--configs", "ft-conv9"], "unknown configuration 'ft-conv9'"),
])
def test_bad_grid_arguments_are_one_line_errors(argv, expect):
    r = medft("grid", "polyp", "--dry-run", *argv)
    assert r.returncode == 2 and expect in r.stderr, r.stderr


def test_time_limits():
    from medft.commands.grid import time_minutes

    assert [time_minutes(t) for t in ("90", "2:00:00", "1-00:00:00", "0:30", "1:30:01")] == [90, 120, 1440, 1, 91]


def test_make_app_all_runs_the_grid_locally():
    r = subprocess.run(["make", "-n", "--no-print-directory", "pe-all", "DATA=/d", "RUNS=/r", "GPU=1", "MAX_EPOCHS=7"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "medft grid pe --executor local --data /d --runs /r" in r.stdout
    assert "--max-epochs 7" in r.stdout and "--gpu 1" in r.stdout


def test_slurm_page_counts_the_cells_of_the_whole_study():
    import re

    from medft.apps import APP_NAMES
    from medft.grid.orchestrate import select_cells

    text = (ROOT / "docs" / "slurm.md").read_text()
    per_app = {a: len(grid_cells(a)) for a in APP_NAMES}
    stated = re.search(r"The whole study is (\d+) cells \(([^)]*)\)", text)
    assert stated, "docs/slurm.md states the number of cells"
    assert int(stated[1]) == len(select_cells(list(APP_NAMES))) == sum(per_app.values())
    assert stated[2] == ", ".join(f"{a} {n}" for a, n in per_app.items())
