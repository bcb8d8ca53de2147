"""Every root, folder and file name of the study, each built in one place with its parser beside it.

    <data>/<app>[-f<fraction>]/       a prepared data set (train/val/test LMDBs, manifests, prep.json)
    <runs>/<app>/<variant>[-<fraction>][-seed<seed>]/   a run folder (nets, solver, log.csv, run.json,
                          best.caffemodel); the seed is named when it is not the default (2016)
    <runs>/<app>/scores/  <runs>/<app>/report/   what `medft score` and `medft report` write
    <runs>/grid/<job>.json  <runs>/grid/<job>.log   `medft grid`: each job's record and log
    <runs>/grid/slurm/      the Slurm submission files (submitit's scripts, pickles and job logs)

``--data`` and ``--runs`` name the roots in every stage (prep's ``--out`` is the data root).
"""

from __future__ import annotations

import re
from pathlib import Path

from medft.apps import ONE_PATIENT, check_fraction
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
#: the folder-name token before a training seed: ``scratch-0.25-seed2017``
SEED_TAG = "seed"
_SEED_SUFFIX = re.compile(rf"^(?P<base>.+?)-{SEED_TAG}(?P<seed>\d+)$")
_DATASET_NAME = re.compile(r"^(?P<app>[a-z]+)(?:-f(?P<fraction>.+))?$")


def dataset_dir(data_root: str | Path, app: str, fraction: str = "1") -> Path:
    """``<data>/<app>`` or ``<data>/<app>-f<fraction>`` (the fraction checked against the app's)."""
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


def default_seed() -> int:
    """The training seed that run folder names leave out (:data:`medft.solver.RANDOM_SEED`)."""
    from medft.solver import RANDOM_SEED

    return RANDOM_SEED


def run_dir(runs_root: str | Path, app: str, variant: str, fraction: str = "1", seed: int | None = None) -> Path:
    """``<runs>/<app>/<variant>[-<fraction>][-seed<seed>]``: the fraction for reduced data, the training
    seed when it is not the default (e.g. ``scratch-0.25``, ``ft-conv1-1patient``, ``scratch-seed2017``,
    ``ft-conv1-0.25-seed2018``); ``seed`` None is the default seed."""
    fraction = fraction.strip()
    if re.fullmatch(r"1(?:\.0*)?|full", fraction):  # the whole set has one folder, however it is written
        fraction = "1"
    name = variant if fraction == "1" else f"{variant}-{fraction}"
    if seed is not None and seed != default_seed():
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise MedftError(f"a training seed is a whole number >= 0, got {seed!r}")
        name += f"-{SEED_TAG}{seed}"
    return app_runs(runs_root, app) / name


def parse_run_folder(name: str) -> tuple[str, str, int]:
    """(variant, fraction label ("" for all data), training seed) of a run folder name; the inverse of
    :func:`run_dir`."""
    m = _SEED_SUFFIX.match(name)
    base, seed = (m["base"], int(m["seed"])) if m else (name, default_seed())
    r = _RUN_NAME.match(base)
    return (r["variant"], r["fraction"], seed) if r else (base, "", seed)


def parse_run_name(name: str) -> tuple[str, str]:
    """(variant, fraction label, "" for all data) of a run folder name, whatever its seed
    (:func:`parse_run_folder` gives the seed too)."""
    variant, fraction, _ = parse_run_folder(name)
    return variant, fraction


def run_group(name: str) -> str:
    """A run folder's name without its seed: the folders of one configuration and data level across
    training seeds share it (``scratch-0.25-seed2017`` -> ``scratch-0.25``)."""
    m = _SEED_SUFFIX.match(name)
    return m["base"] if m else name


def fraction_share(fraction: str) -> float:
    """A run folder's fraction label as a share of the training data, the key that orders runs and
    labels their data level: '' (all data) 1, '0.25' and '25' 0.25, '1patient' 0 (the smallest set
    there is). The patch budget of a reduced set is :func:`medft.apps.patch_share` (1 for a single
    patient, whose set is bounded by its ROIs instead)."""
    if not fraction:
        return 1.0
    if fraction == ONE_PATIENT:
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
