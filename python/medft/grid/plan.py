"""The jobs that finish what is missing of a grid, and the medft commands each one runs.

Four kinds of job, in this order: ``prep`` (one a data set not yet prepared), ``pretrain`` (once,
when a fine-tuning cell must run and neither BVLC AlexNet nor the stand-in is there), ``cell``
(train then predict one run folder) and ``report`` (per application, once its cells have ended:
the handcrafted baseline, `medft score` and `medft report` of every finished run folder).
Done cells and prepared data sets get no job; a report gets one when it is missing or older than a
finished run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from medft import chain, paths
from medft.chain import StudyOptions
from medft.grid.cells import Cell, finished_record, is_prepared, prediction_output

PREP, PRETRAIN, CELL, REPORT = "prep", "pretrain", "cell", "report"
KINDS = (PREP, PRETRAIN, CELL, REPORT)


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
        return [chain.command_line(s) for s in self.steps]


@dataclass
class Plan:
    """The jobs to run, in order, and what needs none."""

    jobs: list[Job] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)  # every cell of the grid
    done: list[Cell] = field(default_factory=list)  # cells finished before this plan

    def of_kind(self, kind: str, app: str | None = None) -> list[Job]:
        return [j for j in self.jobs if j.kind == kind and (app is None or j.app == app)]


def prep_name(app: str, fraction: str) -> str:
    """The prep job of a data set: ``<app>/prep`` or ``<app>/prep-f<fraction>``."""
    return f"{app}/" + paths.dataset_dir("", app, fraction).name.replace(app, "prep", 1)


def prep_job(app: str, fraction: str, opts: StudyOptions) -> Job:
    """`medft prep` of one data set (the synthetic input is written first where there is none)."""
    return Job(prep_name(app, fraction), PREP, (tuple(chain.prep_argv(app, fraction, opts)),), app)


def pretrain_job(opts: StudyOptions) -> Job:
    """`medft pretrain`: the offline stand-in for ImageNet AlexNet."""
    return Job(PRETRAIN, PRETRAIN, (tuple(chain.pretrain_argv(opts)),))


def cell_job(cell: Cell, opts: StudyOptions) -> Job:
    """`medft train` then `medft predict` of one cell (train resumes from its last snapshot)."""
    stages = cell.stages()
    needs = (prep_name(cell.app, cell.fraction), *((PRETRAIN,) if stages.pretrained else ()))
    return Job(cell.job, CELL, (tuple(chain.train_argv(stages, opts)), tuple(chain.predict_argv(stages, opts))),
               cell.app, str(cell.dataset(opts.data)), needs)


def report_job(app: str, opts: StudyOptions, cells: tuple[str, ...] = ()) -> Job:
    """The handcrafted baseline, `medft score` and `medft report` of every finished run of ``app``."""
    return Job(f"{app}/{paths.REPORT}", REPORT, (tuple(chain.handcrafted_argv(app, opts)),
                                                 tuple(chain.score_argv(app, opts)),
                                                 tuple(chain.report_argv(app, opts))), app, needs=cells)


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
    if chain.needs_pretrain([c.stages() for c in todo], has_pretrained):
        result.jobs.append(pretrain_job(opts))
    result.jobs += [cell_job(c, opts) for c in todo]
    for app in dict.fromkeys(c.app for c in cells):
        finished = [c for c in result.done if c.app == app]
        if any(c.app == app for c in todo) or (finished and not report_is_current(app, finished, opts.runs)):
            result.jobs.append(report_job(app, opts, tuple(c.job for c in todo if c.app == app)))
    return result
