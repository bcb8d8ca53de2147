"""Every root, folder and file name of the study, each built in one place with its parser beside it.

    <data>/<app>[-f<fraction>]/       a prepared data set (train/val/test LMDBs, manifests, prep.json)
    <runs>/<app>/<variant>[-<fraction>]/   a run folder (nets, solver, log.csv, run.json, best.caffemodel)
    <runs>/<app>/scores/  <runs>/<app>/report/   what `medft score` and `medft report` write
    <runs>/grid/<job>.json  <runs>/grid/<job>.log   `medft grid`: each job's record and log
    <runs>/grid/slurm/      the Slurm submission files (submitit's scripts, pickles and job logs)

``--data`` and ``--runs`` name the roots in every stage (prep's ``--out`` is the data root).
"""

from __future__ import annotations

import re
from pathlib import Path

from medft.errors import MedftError

DATA_ROOT = "data"
RUNS_ROOT = "runs"

# files of a run folder
RUN_RECORD = "run.json"
LOG = "log.csv"
BEST_MODEL = "best.caffemodel"
PREDICTIONS = "predictions.csv"
SCORES = "scores"
REPORT = "report"

# in a data-set folder: held shared while train/predict read it, exclusively while prep replaces it
DATA_LOCK = ".data.lock"

GRID = "grid"
SLURM = "slurm"

_RUN_NAME = re.compile(r"^(?P<variant>.+?)-(?P<fraction>\d+(?:\.\d+)?|1patient)(?:%|pct)?$")
_DATASET_NAME = re.compile(r"^(?P<app>[a-z]+)(?:-f(?P<fraction>.+))?$")


def dataset_dir(data_root: str | Path, app: str, fraction: str = "1") -> Path:
    """``<data>/<app>`` or ``<data>/<app>-f<fraction>`` (the fraction checked against the app's)."""
    from medft.prep.common import check_fraction

    fraction = check_fraction(app, fraction)
    return Path(data_root) / (app if fraction == "1" else f"{app}-f{fraction}")


def parse_dataset_dir(path: str | Path) -> tuple[str, str]:
    """(app, fraction) of a data-set folder name; the inverse of :func:`dataset_dir`."""
    m = _DATASET_NAME.match(Path(path).name)
    if not m:
        raise MedftError(f"{path}: not a data-set folder name (<app> or <app>-f<fraction>)")
    return m["app"], m["fraction"] or "1"


def app_runs(runs_root: str | Path, app: str) -> Path:
    """``<runs>/<app>``: the run folders of one application."""
    return Path(runs_root) / app


def run_dir(runs_root: str | Path, app: str, variant: str, fraction: str = "1") -> Path:
    """``<runs>/<app>/<variant>`` or ``<runs>/<app>/<variant>-<fraction>`` for reduced data
    (e.g. ``scratch-0.25``, ``ft-conv1-1patient``)."""
    fraction = fraction.strip()
    if re.fullmatch(r"1(?:\.0*)?|full", fraction):  # the whole set has one folder, however it is written
        fraction = "1"
    return app_runs(runs_root, app) / (variant if fraction == "1" else f"{variant}-{fraction}")


def parse_run_name(name: str) -> tuple[str, str]:
    """(variant, fraction label, "" for all data) of a run folder name; the inverse of :func:`run_dir`."""
    m = _RUN_NAME.match(name)
    return (m["variant"], m["fraction"]) if m else (name, "")


def fraction_share(fraction: str) -> float:
    """A run folder's fraction label as a share of the training data: '' (all data) 1,
    '0.25' and '25' 0.25, '1patient' 0 (the smallest set there is)."""
    if not fraction:
        return 1.0
    if fraction == "1patient":
        return 0.0
    value = float(fraction)
    return value if value <= 1 else value / 100


def scores_dir(runs_root: str | Path, app: str) -> Path:
    """``<runs>/<app>/scores``: where `medft score` writes by default."""
    return app_runs(runs_root, app) / SCORES


def report_dir(runs_root: str | Path, app: str) -> Path:
    """``<runs>/<app>/report``: where `medft report` writes by default."""
    return app_runs(runs_root, app) / REPORT


def grid_dir(runs_root: str | Path) -> Path:
    """``<runs>/grid``: the records and logs of `medft grid`'s jobs."""
    return Path(runs_root) / GRID


def job_record(runs_root: str | Path, job: str) -> Path:
    """``<runs>/grid/<job>.json`` for a job name such as ``polyp/scratch-0.5``, ``polyp/prep`` or ``pretrain``."""
    return grid_dir(runs_root) / f"{job}.json"


def job_log(runs_root: str | Path, job: str) -> Path:
    """``<runs>/grid/<job>.log``: the output of every command the job ran, each attempt appended."""
    return grid_dir(runs_root) / f"{job}.log"


def slurm_dir(runs_root: str | Path) -> Path:
    """``<runs>/grid/slurm``: submitit's submission scripts, pickles and Slurm job logs."""
    return grid_dir(runs_root) / SLURM
