"""The Makefile's study targets call `medft cell` and `medft grid` with the knobs as flags; the
stages' command lines come from medft (python/medft/chain.py), not from the Makefile."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import pytest
from medft.apps import APP_NAMES
from medft.schedule import CONFIG_NAMES

from tests.conftest import ROOT


def dry_run(*args: str) -> subprocess.CompletedProcess:
    """`make -n`: the recipe lines it would run, continued lines joined."""
    r = subprocess.run(["make", "-n", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True)
    r.stdout = r.stdout.replace("\\\n", " ")
    return r


def make_cell_commands(*args: str) -> list[str]:
    """The command lines `make <args>` runs: its `medft cell` line (from `make -n`), run with --dry-run."""
    r = dry_run(*args)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if shlex.split(ln)[1:2] == ["cell"]]
    assert len(lines) == 1, r.stdout
    argv = shlex.split(lines[0])
    assert argv[0].endswith("medft"), argv
    env = {**os.environ, "PYTHONPATH": str(ROOT / "python")}
    out = subprocess.run([sys.executable, "-m", "medft.cli", *argv[1:], "--dry-run"], cwd=ROOT, capture_output=True,
                         text=True, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


@pytest.mark.parametrize("app", APP_NAMES)
def test_every_cell_target_calls_medft_cell(app):
    for config in CONFIG_NAMES:
        r = dry_run(f"{app}-{config}", "DATA=/d", "RUNS=/r")
        assert r.returncode == 0, r.stderr
        assert f"medft cell {app} {config} --data /d --runs /r" in " ".join(r.stdout.split())
        assert "medft train" not in r.stdout  # the chain is medft's, not the Makefile's


def test_make_cell_runs_the_four_stages_with_the_knobs(tmp_path):
    cmds = make_cell_commands("cell", "APP=cimt", "CONFIG=scratch", "INIT=xavier", "GPU=1", "BATCH=64", "ENGINE=cli",
                              f"INPUT={tmp_path}/real", f"DATA={tmp_path}/d", f"RUNS={tmp_path}/r", "MAX_EPOCHS=7")
    assert [c.split()[1] for c in cmds] == ["prep", "train", "predict", "score"]  # scratch: no pretrain
    prep, train, predict, score = cmds
    assert prep.startswith(f"medft prep cimt --input {tmp_path}/real --out {tmp_path}/d --fraction 1")
    assert train.startswith(f"medft train cimt scratch --init xavier --data {tmp_path}/d --runs {tmp_path}/r")
    assert "--batch 64 " in train and "--max-epochs 7 " in train and train.endswith("--engine cli --gpu 1")
    assert predict.endswith("--cimt-stride 1 --engine cli --gpu 1")
    assert score == f"medft score cimt --runs {tmp_path}/r --data {tmp_path}/d --out {tmp_path}/r/cimt/scores --force"


def test_unset_knobs_leave_medfts_defaults(tmp_path):
    train = next(c for c in make_cell_commands("cell", "APP=polyp", "CONFIG=scratch", f"DATA={tmp_path}/d",
                                               f"RUNS={tmp_path}/r") if c.startswith("medft train"))
    assert "--batch 256 --test-batch 50 --max-epochs 50 --patience 5 --engine pycaffe" in train  # BVLC's, paper's


def test_unknown_target_fails():
    r = dry_run("polyp-ft-conv9")
    assert r.returncode != 0 and "ft-conv9" in r.stderr
