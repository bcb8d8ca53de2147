"""The state of every cell of a grid, from its run folder, its job record and the scheduler.

A cell is ``done`` when its run folder holds a finished run.json and its predictions, with the best
validation AUC and its epoch; ``running`` or ``pending`` while its job runs or waits (or was never
submitted); ``failed`` with the first error line of the command that failed and the job's log;
``stopped`` when its job was cancelled, preempted, timed out or killed: the next `medft grid` resumes it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from medft import paths
from medft.errors import MedftError
from medft.grid import records
from medft.grid.cells import Cell, finished_record
from medft.grid.slurm import LIVE_STATES, queue_states

STATES = ("done", "running", "pending", "stopped", "failed")
_RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING"}


@dataclass
class CellStatus:
    cell: Cell
    state: str  # one of STATES
    job_id: str = ""
    val_auc: float | None = None  # best validation AUC (done cells)
    epoch: int | None = None  # its epoch (done) or the epochs logged so far
    detail: str = ""


def _epochs_logged(cell: Cell, runs: str | Path) -> int:
    log = cell.run_dir(runs) / paths.LOG
    return max(0, len(log.read_text().splitlines()) - 1) if log.is_file() else 0


def _local_alive(record: dict) -> bool:
    if record.get("host") != socket.gethostname() or not record.get("pid"):
        return False
    try:
        os.kill(int(record["pid"]), 0)
    except (OSError, ValueError):
        return False
    return True


def cell_status(cell: Cell, runs: str | Path, queue: dict[str, str] | None) -> CellStatus:
    """The state of ``cell``; ``queue`` is Slurm's {job id: state} (None: not asked)."""
    done = finished_record(cell, runs)
    rec = records.read(runs, cell.job)
    if done:
        best = done.get("best", {})
        return CellStatus(cell, "done", str(rec.get("job_id", "")), best.get("val_auc"), best.get("epoch"))
    job_id, state, epochs = str(rec.get("job_id", "")), rec.get("state"), _epochs_logged(cell, runs)
    progress = f"{epochs} epochs logged" if epochs else ""
    log = f"log: {rec.get('log', paths.job_log(runs, cell.job))}"
    slurm = rec.get("executor") == "slurm"
    if slurm and queue is not None and queue.get(job_id) in LIVE_STATES:
        q = queue[job_id]
        return CellStatus(cell, "running" if q in _RUNNING else "pending", job_id, None, epochs or None,
                          ", ".join(p for p in (f"Slurm {q}", progress) if p))
    if state == "failed":
        return CellStatus(cell, "failed", job_id, None, epochs or None, f"{rec.get('error', '')} ({log})")
    if state == "stopped":
        return CellStatus(cell, "stopped", job_id, None, epochs or None, f"{rec.get('error', '')} ({log})")
    if state in ("submitted", "running"):
        if slurm and queue is None:
            return CellStatus(cell, state if state == "running" else "pending", job_id, None, epochs or None,
                              "Slurm not asked (squeue unavailable)")
        if not slurm and _local_alive(rec):
            return CellStatus(cell, "running", job_id, None, epochs or None, progress)
        where = f"Slurm job {job_id}" if slurm else f"the local run (PID {rec.get('pid')})"
        more = f"; Slurm's log: {rec['slurm_log']}" if slurm and rec.get("slurm_log") else ""
        return CellStatus(cell, "stopped", job_id, None, epochs or None,
                          f"{where} ended without finishing (killed or cancelled){more}; `medft grid` resumes it")
    run = cell.run_dir(runs) / paths.RUN_RECORD
    if run.is_file():
        return CellStatus(cell, "stopped", job_id, None, epochs or None,
                          f"{run.parent}: training or prediction not finished; `medft grid` resumes it")
    return CellStatus(cell, "pending", job_id, None, None, "not submitted")


def grid_status(cells: list[Cell], runs: str | Path) -> tuple[list[CellStatus], str]:
    """Every cell's state, and a note on the scheduler ("" when it was asked or not needed)."""
    queue, note = None, ""
    if any(records.read(runs, c.job).get("executor") == "slurm" for c in cells):
        try:
            queue = queue_states()
        except MedftError as e:
            note = f"Slurm not asked: {e}"
    return [cell_status(c, runs, queue) for c in cells], note


def format_table(statuses: list[CellStatus]) -> list[str]:
    """The status table: cell, state, best val AUC, epoch, Slurm job, detail."""
    rows = [("cell", "state", "val AUC", "epoch", "job", "detail")]
    for s in statuses:
        rows.append((s.cell.job, s.state, f"{s.val_auc:.4f}" if s.val_auc is not None else "",
                     str(s.epoch) if s.epoch is not None else "", s.job_id, s.detail))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return ["  ".join(v.ljust(w) for v, w in zip(r[:5], widths)) + "  " + r[5] for r in rows]


def summary(statuses: list[CellStatus]) -> str:
    """``N cells: a done, b running, ...`` (states with no cell left out)."""
    counts = {s: sum(1 for x in statuses if x.state == s) for s in STATES}
    return f"{len(statuses)} cells: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)


def job_lines(names: list[str], runs: str | Path) -> list[str]:
    """One line per other job of the grid that has a record (prep, pretrain, report): its state."""
    out = []
    for name in names:
        rec = records.read(runs, name)
        if rec:
            error = f": {rec['error']} (log: {rec.get('log')})" if rec.get("state") in ("failed", "stopped") else ""
            out.append(f"{name}: {rec.get('state')}{error}")
    return out


def show_status(cells: list[Cell], runs: str | Path, log=print) -> list[CellStatus]:
    """Print the table of ``cells``, a summary, the other jobs' states and each application's report."""
    from medft.grid.plan import PRETRAIN, prep_name

    statuses, note = grid_status(cells, runs)
    log("\n".join(format_table(statuses)))
    log(summary(statuses) + (f" ({note})" if note else ""))
    apps = list(dict.fromkeys(c.app for c in cells))
    others = [prep_name(c.app, f) for c in cells for f in dict.fromkeys([c.fraction])]
    others = list(dict.fromkeys(others)) + [PRETRAIN] + [f"{a}/{paths.REPORT}" for a in apps]
    for line in job_lines(others, runs):
        log(line)
    for app in apps:
        report = paths.report_dir(runs, app) / paths.REPORT_PAGE
        log(f"{app} report: {report if report.is_file() else 'not written yet'}")
    return statuses
