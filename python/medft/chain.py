"""The stage chain of the study: the ``medft`` command lines of prep -> pretrain -> train -> predict
-> score -> report, built here once. ``medft cell`` (and ``make cell``), ``medft grid`` and
``medft demo`` all take their commands from these functions, so the same cell gets the same
command lines whichever of them runs it. Every flag of the training budget is written out, so a
command line read from a log repeats the run.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from medft import paths
from medft.apps import BOXPLOT, get_app
from medft.engines import DEFAULT_ENGINE
from medft.errors import MedftError
from medft.schedule import PAPER_INIT, get_config
from medft.solver import MAX_EPOCHS, RANDOM_SEED, TEST_BATCH, TRAIN_BATCH
from medft.train.options import PATIENCE

#: the configurations trained on every reduced training set (Figs. 2b, 4b, 6b)
REDUCED_CONFIGS: tuple[str, ...] = ("scratch", "ft-conv1")


@dataclass(frozen=True)
class Cell:
    """One cell of the study: an application x a Table II configuration (scratch with an init) x a
    training fraction, trained once per training seed of ``seeds``."""

    app: str
    config: str
    init: str = PAPER_INIT
    fraction: str = "1"
    seeds: tuple[int, ...] = (RANDOM_SEED,)

    @property
    def pretrained(self) -> bool:
        """True for fine-tuning configurations: they need pretrained AlexNet weights."""
        return get_config(self.config).pretrained


@dataclass(frozen=True)
class StudyOptions:
    """What the stages' command lines take besides the cell: the roots, the data source and the
    training budget (defaults: the library's, i.e. the paper's and BVLC AlexNet's)."""

    data: str = paths.DATA_ROOT
    runs: str = paths.RUNS_ROOT
    input: str | None = None  # input folder (or a folder of one per application, <input>/<app>); None: synthetic
    synthetic: str = "study"  # which of ``App.inputs`` sizes the synthetic input (no ``input``)
    max_patches: int | None = None  # prep: the full stratified set (None: the paper's)
    max_test_patches: int | None = None  # prep: cap on test patches (None: all)
    test_views: int | None = None  # prep, applications with ``App.test_views``: views per test candidate
    batch: int = TRAIN_BATCH
    test_batch: int = TEST_BATCH
    max_epochs: int = MAX_EPOCHS
    patience: int = PATIENCE
    engine: str = DEFAULT_ENGINE
    gpu: int | None = None  # the device index the Caffe stages get (on Slurm: 0, the job's first GPU)
    cimt_stride: int = 1  # predict, per-pixel applications: the net on every Nth ROI row/column
    pretrain_iterations: int | None = None  # the stand-in's budget (None: medft pretrain's default)
    pretrain_images: int | None = None

    def input_for(self, app: str) -> str | None:
        """``<input>/<app>`` where that folder exists (``--input`` holds every application), else ``<input>``."""
        if not self.input:
            return None
        per_app = Path(self.input) / app
        return str(per_app if per_app.is_dir() else Path(self.input))

    def absolute(self) -> StudyOptions:
        """The same with absolute roots, so that a command runs the same from any working folder."""
        return replace(self, data=str(Path(self.data).resolve()), runs=str(Path(self.runs).resolve()),
                       input=str(Path(self.input).resolve()) if self.input else None)


def is_prepared(data: str | Path, app: str, fraction: str = "1") -> bool:
    """True once `medft prep` finished the data set of ``app`` at ``fraction`` (it writes prep.json last)."""
    return (paths.dataset_dir(data, app, fraction) / paths.PREP_RECORD).is_file()


def seeds_argv(seeds: Sequence[int]) -> list[str]:
    """Nothing for the default seed alone (its run folder carries no seed), ``--seed S`` for one other
    seed, ``--seeds S1,S2,..`` for several."""
    seeds = tuple(seeds)
    if seeds == (RANDOM_SEED,):
        return []
    if len(seeds) == 1:
        return ["--seed", str(seeds[0])]
    return ["--seeds", ",".join(map(str, seeds))]


def device_argv(o: StudyOptions) -> list[str]:
    """``--engine E [--gpu N]`` of the Caffe stages."""
    return ["--engine", o.engine, *(["--gpu", str(o.gpu)] if o.gpu is not None else [])]


def points_argv(points: Sequence[float]) -> list[str]:
    """``--operating-points X1,X2,..`` (nothing: the application's own)."""
    return ["--operating-points", ",".join(f"{v:g}" for v in points)] if points else []


def prep_argv(app: str, fraction: str, o: StudyOptions) -> list[str]:
    """`medft prep` of one data set: the input folder, or the synthetic set of ``o.synthetic``'s size."""
    a = get_app(app)
    if o.input:
        source = ["--input", o.input_for(app)]
    else:
        size = a.inputs.of(o.synthetic)
        source = ["--synthetic", "--cases", str(size.cases), "--per-case", str(size.per_case),
                  *(["--crops", str(size.crops)] if size.crops else []),
                  *(["--test-crops", str(size.test_crops)] if size.test_crops else [])]
    sizes = [*(["--max-patches", str(o.max_patches)] if o.max_patches else []),
             *(["--max-test-patches", str(o.max_test_patches)] if o.max_test_patches else []),
             *(["--test-views", str(o.test_views)] if o.test_views and a.test_views else [])]
    return ["prep", app, *source, "--out", o.data, "--fraction", fraction, *sizes, "--no-progress"]


def pretrain_argv(o: StudyOptions) -> list[str]:
    """`medft pretrain`: the offline stand-in for ImageNet AlexNet."""
    return ["pretrain", *(["--iterations", str(o.pretrain_iterations)] if o.pretrain_iterations else []),
            *(["--images", str(o.pretrain_images)] if o.pretrain_images else []), *device_argv(o)]


def _which(cell: Cell, o: StudyOptions) -> list[str]:
    return [cell.app, cell.config, "--init", cell.init, "--data", o.data, "--runs", o.runs,
            "--fraction", cell.fraction, *seeds_argv(cell.seeds)]


def train_argv(cell: Cell, o: StudyOptions) -> list[str]:
    """`medft train` of ``cell``, once per seed, with the whole training budget."""
    return ["train", *_which(cell, o), "--batch", str(o.batch), "--test-batch", str(o.test_batch),
            "--max-epochs", str(o.max_epochs), "--patience", str(o.patience), *device_argv(o)]


def predict_argv(cell: Cell, o: StudyOptions) -> list[str]:
    """`medft predict` of ``cell``'s best snapshots (per-pixel applications: every ``cimt_stride``-th pixel)."""
    dense = get_app(cell.app).evaluation == BOXPLOT
    return ["predict", *_which(cell, o), *(["--cimt-stride", str(o.cimt_stride)] if dense else []),
            *device_argv(o)]


def handcrafted_argv(app: str, o: StudyOptions) -> list[str]:
    """`medft predict <app> handcrafted`: the candidate generator's baseline."""
    return ["predict", app, "handcrafted", "--data", o.data, "--runs", o.runs]


def score_argv(app: str, o: StudyOptions, points: Sequence[float] = ()) -> list[str]:
    """`medft score` of every run folder of ``app`` into ``<runs>/<app>/scores``."""
    return ["score", app, "--runs", o.runs, "--data", o.data, "--out", str(paths.scores_dir(o.runs, app)),
            "--force", *points_argv(points)]


def report_argv(app: str, o: StudyOptions, out: str | Path | None = None, points: Sequence[float] = ()) -> list[str]:
    """`medft report` of ``app`` into ``out`` (None: ``<runs>/<app>/report``)."""
    return ["report", app, "--runs", o.runs, "--data", o.data, "--out",
            str(out if out is not None else paths.report_dir(o.runs, app)), "--force", *points_argv(points)]


def needs_pretrain(cells: Sequence[Cell], has_pretrained: bool | None = None) -> bool:
    """True when a fine-tuning cell of ``cells`` has no pretrained weights to start from
    (``has_pretrained`` None: look for them), so `medft pretrain` must run first."""
    if not any(c.pretrained for c in cells):
        return False
    if has_pretrained is None:
        from medft.weights import find_pretrained

        has_pretrained = find_pretrained() is not None
    return not has_pretrained


def cell_commands(cell: Cell, o: StudyOptions, has_pretrained: bool | None = None) -> list[list[str]]:
    """The chain of one cell: prep (unless its data set is prepared), pretrain (a fine-tuning cell
    without pretrained weights; ``has_pretrained`` None: look), train, predict, then score every run
    folder of the application."""
    cmds = [] if is_prepared(o.data, cell.app, cell.fraction) else [prep_argv(cell.app, cell.fraction, o)]
    if needs_pretrain([cell], has_pretrained):
        cmds.append(pretrain_argv(o))
    return [*cmds, train_argv(cell, o), predict_argv(cell, o), score_argv(cell.app, o)]


def command_line(argv: Sequence[str]) -> str:
    """``medft <argv>`` as a shell line."""
    return "medft " + shlex.join(argv)


def run_commands(cmds: list[list[str]], name: str, rerun: str, log: Callable[..., None] = print) -> None:
    """Run ``medft <argv>`` for each of ``cmds`` in turn, each announced with its number and the time
    so far; the first that fails ends the chain with one line saying what to rerun."""
    t0 = time.time()
    for i, argv in enumerate(cmds, 1):
        log(f"\n[{name} {i}/{len(cmds)}, {time.time() - t0:.0f} s] {command_line(argv)}", flush=True)
        r = subprocess.run([sys.executable, "-m", "medft.cli", *argv])
        if r.returncode != 0:
            raise MedftError(f"stage `medft {argv[0]}` failed with status {r.returncode}; fix it and rerun "
                             f"`{rerun}` (finished stages are skipped)")
