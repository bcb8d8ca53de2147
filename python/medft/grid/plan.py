"""The jobs that finish what is missing of a grid, and the medft commands each one runs.

Four kinds of job, in this order: ``prep`` (one a data set not yet prepared), ``pretrain`` (once,
when a fine-tuning cell must run and neither BVLC AlexNet nor the stand-in is there), ``cell``
(train then predict one run folder) and ``report`` (per application, once its cells have ended:
the handcrafted baseline, `medft score` and `medft report` of every finished run folder).
Done cells and prepared data sets get no job; a report gets one when it is missing or older than a
finished run.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path

from medft import paths
from medft.grid.cells import GRID_SYNTH, Cell, finished_record, is_prepared, prediction_output
from medft.schedule import get_config
from medft.solver import MAX_EPOCHS
from medft.train.options import PATIENCE

PREP, PRETRAIN, CELL, REPORT = "prep", "pretrain", "cell", "report"
KINDS = (PREP, PRETRAIN, CELL, REPORT)


@dataclass(frozen=True)
class StudyOptions:
    """What the jobs' medft commands take: the roots, the data source and the training budget."""

    data: str = paths.DATA_ROOT
    runs: str = paths.RUNS_ROOT
    input: str | None = None  # input folder (or a folder of one per application, <input>/<app>); None: synthetic
    max_patches: int | None = None
    max_test_patches: int | None = None
    batch: int = 256
    test_batch: int = 50
    epochs: int = MAX_EPOCHS
    patience: int = PATIENCE
    engine: str = "pycaffe"
    gpu: int | None = None  # the device index the Caffe stages get (on Slurm: 0, the job's first GPU)
    pretrain_iterations: int | None = None  # the stand-in's budget (None: medft pretrain's default)
    pretrain_images: int | None = None

    def input_for(self, app: str) -> str | None:
        """``<input>/<app>`` where that folder exists (``--input`` holds every application), else ``<input>``."""
        if not self.input:
            return None
        per_app = Path(self.input) / app
        return str(per_app if per_app.is_dir() else Path(self.input))

    def absolute(self) -> StudyOptions:
        """The same with absolute roots, so that a job runs the same from any working folder."""
        return replace(self, data=str(Path(self.data).resolve()), runs=str(Path(self.runs).resolve()),
                       input=str(Path(self.input).resolve()) if self.input else None)


@dataclass(frozen=True)
class Job:
    """One unit of work of the grid: medft command lines run in turn."""

    name: str  # <app>/<run folder>, <app>/prep[-f<fraction>], <app>/report or pretrain
    kind: str  # one of KINDS
    steps: tuple[tuple[str, ...], ...]  # argv of `medft` (without the program)
    app: str | None = None
    dataset: str | None = None  # a folder that must be prepared (hold prep.json) before the steps run
    needs: tuple[str, ...] = ()  # jobs that must have ended first (whether or not they succeeded)

    @property
    def wants_accelerator(self) -> bool:
        """Jobs that run Caffe SGD (pretrain, cells) get the GPUs; prep and report do not."""
        return self.kind in (PRETRAIN, CELL)

    def commands(self) -> list[str]:
        return ["medft " + shlex.join(s) for s in self.steps]


@dataclass
class Plan:
    """The jobs to run, in order, and what needs none."""

    jobs: list[Job] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)  # every cell of the grid
    done: list[Cell] = field(default_factory=list)  # cells finished before this plan

    def of_kind(self, kind: str, app: str | None = None) -> list[Job]:
        return [j for j in self.jobs if j.kind == kind and (app is None or j.app == app)]


def _gpu(opts: StudyOptions) -> list[str]:
    return ["--engine", opts.engine] + (["--gpu", str(opts.gpu)] if opts.gpu is not None else [])


def prep_name(app: str, fraction: str) -> str:
    """The prep job of a data set: ``<app>/prep`` or ``<app>/prep-f<fraction>``."""
    return f"{app}/" + paths.dataset_dir("", app, fraction).name.replace(app, "prep", 1)


def prep_job(app: str, fraction: str, opts: StudyOptions) -> Job:
    """`medft prep` of one data set (the synthetic input is written first where there is none)."""
    source = ["--input", opts.input_for(app)] if opts.input else ["--synthetic", *GRID_SYNTH.get(app, ())]
    sizes = [*(["--max-patches", str(opts.max_patches)] if opts.max_patches else []),
             *(["--max-test-patches", str(opts.max_test_patches)] if opts.max_test_patches else [])]
    argv = ("prep", app, *source, "--out", opts.data, "--fraction", fraction, *sizes, "--no-progress")
    return Job(prep_name(app, fraction), PREP, (argv,), app)


def pretrain_job(opts: StudyOptions) -> Job:
    """`medft pretrain`: the offline stand-in for ImageNet AlexNet."""
    budget = [*(["--iterations", str(opts.pretrain_iterations)] if opts.pretrain_iterations else []),
              *(["--images", str(opts.pretrain_images)] if opts.pretrain_images else [])]
    return Job(PRETRAIN, PRETRAIN, (("pretrain", *budget, *_gpu(opts)),))


def cell_job(cell: Cell, opts: StudyOptions) -> Job:
    """`medft train` then `medft predict` of one cell (train resumes from its last snapshot)."""
    which = (cell.app, cell.config, "--init", cell.init, "--data", opts.data, "--runs", opts.runs,
             "--fraction", cell.fraction, *(("--seed", str(cell.seed)) if cell.seed is not None else ()))
    train = ("train", *which, "--batch", str(opts.batch), "--test-batch", str(opts.test_batch),
             "--max-epochs", str(opts.epochs), "--patience", str(opts.patience), *_gpu(opts))
    needs = (prep_name(cell.app, cell.fraction), *((PRETRAIN,) if get_config(cell.config).pretrained else ()))
    return Job(cell.job, CELL, (train, ("predict", *which, *_gpu(opts))), cell.app, str(cell.dataset(opts.data)),
               needs)


def report_job(app: str, opts: StudyOptions, cells: tuple[str, ...] = ()) -> Job:
    """The handcrafted baseline, `medft score` and `medft report` of every finished run of ``app``."""
    roots = ("--runs", opts.runs, "--data", opts.data)
    return Job(f"{app}/{paths.REPORT}", REPORT, (
        ("predict", app, "handcrafted", "--data", opts.data, "--runs", opts.runs),
        ("score", app, *roots, "--out", str(paths.scores_dir(opts.runs, app)), "--force"),
        ("report", app, *roots, "--out", str(paths.report_dir(opts.runs, app)), "--force")), app, needs=cells)


def report_is_current(app: str, finished: list[Cell], runs: str | Path) -> bool:
    """True if report.md exists and is newer than the predictions of every finished cell."""
    report = paths.report_dir(runs, app) / paths.REPORT_PAGE
    if not report.is_file():
        return False
    newest = max((c.run_dir(runs).joinpath(prediction_output(app)).stat().st_mtime for c in finished), default=0)
    return report.stat().st_mtime >= newest


def plan(cells: list[Cell], opts: StudyOptions, has_pretrained: bool | None = None) -> Plan:
    """The jobs that finish ``cells`` and their reports. ``has_pretrained`` (None: look) says whether
    fine-tuning weights exist already."""
    opts = opts.absolute()
    result = Plan(cells=list(cells))
    todo = []
    for cell in cells:
        (result.done if finished_record(cell, opts.runs) else todo).append(cell)
    datasets = {(c.app, c.fraction): c for c in todo if not is_prepared(c, opts.data)}
    result.jobs += [prep_job(app, fraction, opts) for app, fraction in datasets]
    if any(get_config(c.config).pretrained for c in todo):
        if has_pretrained is None:
            from medft.weights import find_pretrained

            has_pretrained = find_pretrained() is not None
        if not has_pretrained:
            result.jobs.append(pretrain_job(opts))
    result.jobs += [cell_job(c, opts) for c in todo]
    for app in dict.fromkeys(c.app for c in cells):
        finished = [c for c in result.done if c.app == app]
        if any(c.app == app for c in todo) or (finished and not report_is_current(app, finished, opts.runs)):
            result.jobs.append(report_job(app, opts, tuple(c.job for c in todo if c.app == app)))
    return result
