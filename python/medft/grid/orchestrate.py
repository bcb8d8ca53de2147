"""`medft grid`: plan what is missing of the chosen cells, then run it here or submit it to Slurm."""

from __future__ import annotations

import time
from dataclasses import replace

from medft.apps import APP_NAMES, get_app
from medft.errors import MedftError
from medft.grid.cells import Cell, grid_cells
from medft.grid.local import run_local
from medft.grid.plan import CELL, StudyOptions, plan
from medft.grid.slurm import SlurmResources, describe_plan, live_jobs, queue_states, submit
from medft.grid.status import show_status

EXECUTORS = ("local", "slurm")


def resolve_apps(app: str) -> list[str]:
    """``all`` or one application token."""
    return list(APP_NAMES) if app == "all" else [get_app(app).name]


def select_cells(apps: list[str], configs: tuple[str, ...] | None = None, inits: tuple[str, ...] | None = None,
                 fractions: tuple[str, ...] | None = None, seeds: tuple[int, ...] | None = None) -> list[Cell]:
    """The chosen cells of each application, once per training seed of ``seeds`` (None: the default).
    With several applications a fraction applies to those that have it (polyp and pe 0.5, frames 0.1,
    ...); one that none has is an error."""
    if fractions and len(apps) > 1:
        known = {f for a in apps for f in get_app(a).fractions}
        unknown = [f for f in fractions if f not in known]
        if unknown:
            raise MedftError(f"fraction {unknown[0]!r} is no application's reduced set; "
                             f"valid: {', '.join(sorted(known))}")
    cells = []
    for app in apps:
        mine = tuple(f for f in fractions if len(apps) == 1 or f in get_app(app).fractions) if fractions else None
        if fractions and not mine:
            continue
        cells += grid_cells(app, configs, inits, mine, seeds)
    return cells


def run_grid(cells: list[Cell], opts: StudyOptions, executor: str = "local",
             resources: SlurmResources | None = None, dry_run: bool = False, wait: bool = False,
             poll_s: float = 10.0, log=print) -> int:
    """Finish ``cells`` and their reports: run the missing jobs locally, or submit them to Slurm
    (``wait``: until they have ended). Returns 0, or 1 if a job failed (each reported with its log)."""
    if executor not in EXECUTORS:
        raise MedftError(f"unknown executor {executor!r}; valid: {', '.join(EXECUTORS)}")
    resources = resources or SlurmResources()
    if executor == "slurm":
        opts = replace(opts, gpu=0 if resources.gpus else None)  # Slurm hands each job its GPUs from index 0
    p = plan(cells, opts)
    runs = opts.absolute().runs
    log(f"medft grid: {len(cells)} cells, {len(p.done)} done, {len(p.of_kind(CELL))} to run; {len(p.jobs)} jobs "
        f"({executor}{', dry run: nothing runs' if dry_run else ''})", flush=True)
    if not p.jobs:
        log("medft grid: nothing to do: every cell is done and every report is current")
        return 0
    if executor == "local":
        if dry_run:
            for job in p.jobs:
                log(job.name)
                for c in job.commands():
                    log(f"  {c}")
            return 0
        failed = run_local(p.jobs, runs, log)
        return _finish(cells, runs, failed, log)
    live = live_jobs([j.name for j in p.jobs], runs)
    if dry_run:
        for line in describe_plan(p.jobs, resources, live):
            log(line)
        return 0
    ids = submit(p.jobs, resources, runs, live, log)
    apps = " ".join(dict.fromkeys(c.app for c in cells))
    if not wait:
        log(f"medft grid: follow with `medft status {apps if len(apps.split()) == 1 else 'all'} --runs {runs}`")
        return 0
    return _finish(cells, runs, wait_for(ids, runs, poll_s, log), log)


def wait_for(ids: dict[str, str], runs: str, poll_s: float, log=print) -> list[str]:
    """Poll Slurm until every job of ``ids`` has ended, printing each as it ends; return the failures."""
    from medft.grid import records

    pending, failed = dict(ids), []
    while pending:
        time.sleep(poll_s)
        queue = queue_states()
        for name in [n for n, i in pending.items() if i not in queue]:
            rec = records.read(runs, name)
            state = rec.get("state", "unknown")
            if state == "submitted":
                state, rec["error"] = "failed", f"ended before it started; Slurm's log: {rec.get('slurm_log')}"
            line = f"{name}: {state}" + (f": {rec.get('error')} (log: {rec.get('log')})" if state != "done" else "")
            log(f"medft grid: {line}", flush=True)
            if state != "done":
                failed.append(line)
            del pending[name]
    return failed


def _finish(cells: list[Cell], runs: str, failed: list[str], log) -> int:
    log("")
    show_status(cells, runs, log)
    if failed:
        log(f"medft grid: {len(failed)} jobs did not finish:\n  " + "\n  ".join(failed))
    return 1 if failed else 0
