"""The Makefile's study targets expand to the medft stages, for every app x configuration."""

from __future__ import annotations

import subprocess

import pytest
from medft.apps import APP_NAMES
from medft.schedule import CONFIG_NAMES

from tests.conftest import ROOT


def dry_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-n", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize("app", APP_NAMES)
def test_every_cell_target_runs_the_four_stages(app):
    for config in CONFIG_NAMES:
        r = dry_run(f"{app}-{config}", "DATA=/d", "RUNS=/r")
        assert r.returncode == 0, r.stderr
        out = r.stdout
        assert f"medft prep {app} --synthetic --out /d" in out
        assert f"medft train {app} {config} --init gaussian --data /d --runs /r" in out
        assert f"medft predict {app} {config}" in out
        assert f"medft score {app} --runs /r --data /d" in out


def test_knobs_reach_the_commands():
    out = dry_run("cimt-scratch", "INIT=xavier", "GPU=1", "BATCH=64", "ENGINE=cli", "INPUT=/real/cimt").stdout
    assert "medft prep cimt --input /real/cimt" in out
    assert "--init xavier" in out and "--batch 64" in out and "--engine cli --gpu 1" in out


def test_unknown_target_fails():
    r = dry_run("polyp-ft-conv9")
    assert r.returncode != 0 and "ft-conv9" in r.stderr
