"""Every root, folder and file name of the study, each built in one place with its parser beside it,
and every ``MEDFT_*`` environment variable medft reads (the Caffe build's own are in :mod:`medft.engines`).

    <data>/<app>[-f<fraction>]/       a prepared data set: prep.json, splits.json, train|val|test_lmdb,
                          train|val|test_manifest.csv, mean.json, mean.binaryproto, lesions.csv,
                          cases.csv, test_rois/ (cimt)
    <runs>/<app>/<variant>[-<fraction>][-seed<seed>]/   a run folder: train_val.prototxt, deploy.prototxt,
                          solver.prototxt, snapshots/<variant>_iter_<n>.caffemodel|solverstate, log.csv,
                          weights.json, run.json, best.caffemodel, best.json, then predictions.csv and
                          test_probs.npy (or cimt_maps/<roi>.npz); the seed is named when it is not the
                          default (2016)
    <runs>/<app>/scores/  summary.json, <table>.csv|md, <run>/curve.csv|band.csv|roi_errors.csv|summary.json
    <runs>/<app>/report/  report.md, its figures (PNG, PDF, CSV beside each), seeds.csv
    <runs>/grid/<job>.json  <runs>/grid/<job>.log   `medft grid`: each job's record and log
    <runs>/grid/slurm/      the Slurm submission files (submitit's scripts, pickles and job logs)
    <cache>/weights/      the BVLC AlexNet and the stand-in source model ($MEDFT_CACHE, ~/.cache/medft)

``--data`` and ``--runs`` name the roots in every stage (prep's ``--out`` is the data root).
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from pathlib import Path

from medft.apps import ONE_PATIENT, check_fraction
from medft.errors import MedftError

DATA_ROOT = "data"
RUNS_ROOT = "runs"

# -- a prepared data set ------------------------------------------------------------------------

#: what prep built from what (sizes, fingerprints, class names, mean): written last, so its
#: presence marks a finished data set
PREP_RECORD = "prep.json"
#: which case went to which split
SPLITS_RECORD = "splits.json"
#: the training set's per-channel mean (BGR) as JSON, and as Caffe's mean file
MEAN_RECORD = "mean.json"
MEAN_PROTO = "mean.binaryproto"
#: the test set's lesions and cases (detection apps): what FROC scoring counts hits and images by
LESIONS = "lesions.csv"
CASES = "cases.csv"
#: the test ROIs of cimt (one .npz each), densely predicted into :data:`CIMT_MAPS`
TEST_ROIS = "test_rois"
#: LMDB's own data file inside an LMDB folder
LMDB_DATA = "data.mdb"
#: the LMDBs that passed medft's record check, keyed by their file identity
CHECKED_LMDBS = ".checked.json"
#: held shared while train/predict read the data set, exclusively while prep replaces it
DATA_LOCK = ".data.lock"
#: in every folder medft writes that ``--force`` may replace (a folder without it is never removed)
OUTPUT_MARKER = ".medft-output"
#: what a public-data importer read, wrote and decided, beside the input folder it converted
IMPORT_RECORD = "import.json"
#: the splits of a data set, each an LMDB and a manifest
SPLITS = ("train", "val", "test")


def lmdb_name(split: str) -> str:
    """``<split>_lmdb``: the folder name of one split's LMDB."""
    return f"{split}_lmdb"


def manifest_name(split: str) -> str:
    """``<split>_manifest.csv``: one row per LMDB record (case, frame, unit, lesion, label, augmentation)."""
    return f"{split}_manifest.csv"


TRAIN_LMDB, VAL_LMDB, TEST_LMDB = (lmdb_name(s) for s in SPLITS)
TEST_MANIFEST = manifest_name("test")

# -- a run folder -------------------------------------------------------------------------------

RUN_RECORD = "run.json"
LOG = "log.csv"
BEST_MODEL = "best.caffemodel"
#: the SHA-1 and epoch of best.caffemodel, so a kill between copy and record is detected
BEST_RECORD = "best.json"
#: which layers were copied from the pretrained model (verified) and which initialised
WEIGHTS_RECORD = "weights.json"
TRAIN_VAL_NET = "train_val.prototxt"
DEPLOY_NET = "deploy.prototxt"
SOLVER = "solver.prototxt"
#: the solver as the cli engine hands it to ``caffe train``, and everything that tool printed
SOLVER_CLI = "solver_cli.prototxt"
CAFFE_LOG = "caffe_train.log"
SNAPSHOTS = "snapshots"
PREDICTIONS = "predictions.csv"
TEST_PROBS = "test_probs.npy"
TEST_PATCHES = "test_patches.csv"
#: cimt's dense predictions, one ``<roi>.npz`` per test ROI
CIMT_MAPS = "cimt_maps"

#: Caffe's snapshot names: ``<prefix>_iter_<iteration>.caffemodel|solverstate``
SNAPSHOT_ITER = "_iter_"
CAFFEMODEL, SOLVERSTATE = ".caffemodel", ".solverstate"
_SNAPSHOT = re.compile(rf"{SNAPSHOT_ITER}(\d+)(\.caffemodel|\.solverstate)$")


def snapshot_prefix(run: str | Path, variant: str) -> Path:
    """``<run>/snapshots/<variant>``: the solver's ``snapshot_prefix`` in a run folder."""
    return Path(run) / SNAPSHOTS / variant


def snapshot_files(prefix: str | Path, iteration: int) -> tuple[Path, Path]:
    """(caffemodel, solverstate) Caffe writes for ``prefix`` at ``iteration``."""
    base = f"{prefix}{SNAPSHOT_ITER}{int(iteration)}"
    return Path(base + CAFFEMODEL), Path(base + SOLVERSTATE)


def snapshot_glob(suffix: str = ".*") -> str:
    """The glob of a snapshot folder's files with ``suffix`` (:data:`CAFFEMODEL`, :data:`SOLVERSTATE`)."""
    return f"*{SNAPSHOT_ITER}*{suffix}"


def parse_snapshot(path: str | Path) -> tuple[int, str] | None:
    """(iteration, suffix) of a Caffe snapshot file name, None for any other name; the inverse of
    :func:`snapshot_files`."""
    m = _SNAPSHOT.search(str(path))
    return (int(m.group(1)), m.group(2)) if m else None


# -- scores and report --------------------------------------------------------------------------

SCORES = "scores"
REPORT = "report"
#: per application and per run: options, versions, data summary, each configuration's results
SCORES_SUMMARY = "summary.json"
CURVE = "curve.csv"
BAND = "band.csv"
ROI_ERRORS = "roi_errors.csv"
#: the report page, and the table of results over training seeds beside it (``seeds.csv|md``)
REPORT_PAGE = "report.md"
SEEDS_TABLE = "seeds"
#: table stems of the scores (``.csv`` and ``.md`` beside each other): the operating-point values of
#: the curve-scored applications, the mean errors of cimt
OPERATING_POINTS_TABLE, ROI_SUMMARY_TABLE = "operating_points", "roi_summary"
#: figure stems (``.png``, ``.pdf`` and ``.csv`` are written beside each other)
FIG_CONFIGS, FIG_REDUCED, FIG_CONVERGENCE = "fig_a", "fig_b", "fig10_convergence"


def fig_errors(metric: str) -> str:
    """Fig. 9's stem for one cimt error ``metric``."""
    return f"fig9_{metric}"


def fig_maps(roi: str) -> str:
    """Fig. 8's stem for one cimt ROI's confidence maps."""
    return f"fig8_{roi}"


# -- environment --------------------------------------------------------------------------------

CACHE_ENV = "MEDFT_CACHE"
BVLC_ALEXNET_ENV = "MEDFT_BVLC_ALEXNET"
FAULT_ENV = "MEDFT_FAULT"
#: the supervised child's record of the files it hands Caffe, by role (:mod:`medft.guard`)
NOTES_ENV = "MEDFT_NOTES"
#: set in the supervised child so it does not supervise itself
SUPERVISED_ENV = "MEDFT_SUPERVISED"
#: a Caffe build elsewhere than the cache (a copy carried to another machine), CPU and GPU
CAFFE_ROOT_ENV, CAFFE_GPU_ROOT_ENV = "MEDFT_CAFFE_ROOT", "MEDFT_CAFFE_GPU_ROOT"
#: extra folders holding CUDA 13's runtime libraries (colon-separated)
CUDA_LIBS_ENV = "MEDFT_CUDA_LIBS"

WEIGHTS_CACHE = "weights"
BVLC_ALEXNET_FILE = "bvlc_alexnet.caffemodel"
STANDIN_FILE = "medft_standin_alexnet.caffemodel"


def _env_path(name: str, kind: str) -> Path | None:
    """``$name`` as a path (``~`` expanded), None when unset or empty; an error when it names
    something that is not a ``kind`` ("folder" or "file")."""
    value = os.environ.get(name, "")
    if not value.strip():
        return None
    path = Path(value).expanduser()
    if path.exists() and (path.is_dir() if kind == "file" else not path.is_dir()):
        raise MedftError(f"{name}={value}: not a {kind}")
    return path


def cache_root() -> Path:
    """``$MEDFT_CACHE`` or ``~/.cache/medft``: downloads, Caffe builds and weights."""
    return _env_path(CACHE_ENV, "folder") or Path.home() / ".cache" / "medft"


def bvlc_path() -> Path:
    """The BVLC AlexNet's place: ``$MEDFT_BVLC_ALEXNET`` or ``<cache>/weights/bvlc_alexnet.caffemodel``."""
    return _env_path(BVLC_ALEXNET_ENV, "file") or cache_root() / WEIGHTS_CACHE / BVLC_ALEXNET_FILE


def standin_path() -> Path:
    """Where ``medft pretrain`` saves the stand-in: ``<cache>/weights/medft_standin_alexnet.caffemodel``."""
    return cache_root() / WEIGHTS_CACHE / STANDIN_FILE


def caffe_root_override(gpu: bool = False) -> Path | None:
    """``$MEDFT_CAFFE_GPU_ROOT`` (``gpu``) or ``$MEDFT_CAFFE_ROOT``: a Caffe build to use instead of the
    cache's; None when unset."""
    return _env_path(CAFFE_GPU_ROOT_ENV if gpu else CAFFE_ROOT_ENV, "folder")


def cuda_libs() -> list[Path]:
    """The folders of ``$MEDFT_CUDA_LIBS`` (colon-separated; [] when unset)."""
    return [Path(p).expanduser() for p in os.environ.get(CUDA_LIBS_ENV, "").split(os.pathsep) if p]


def fault_point(points: Collection[str]) -> str | None:
    """The fault point ``$MEDFT_FAULT`` names (None when unset); an error listing ``points`` when it
    names none of them, so a misspelt point cannot leave a fault test passing without its kill."""
    value = os.environ.get(FAULT_ENV, "")
    if not value:
        return None
    if value not in points:
        raise MedftError(f"{FAULT_ENV}={value}: no such fault point; valid: {', '.join(sorted(points))}")
    return value


def notes_file() -> Path | None:
    """``$MEDFT_NOTES``: where a supervised child records the files it hands Caffe, None outside one."""
    value = os.environ.get(NOTES_ENV, "")
    return Path(value) if value else None


def supervised() -> bool:
    """True inside the supervised child (``$MEDFT_SUPERVISED`` set, as it is to turn supervision off)."""
    return bool(os.environ.get(SUPERVISED_ENV))


# -- folders ------------------------------------------------------------------------------------

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
