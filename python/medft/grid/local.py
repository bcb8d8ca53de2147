"""The local executor: the grid's jobs one after the other on this machine, output on the terminal.

A job that fails is reported with its log and the others go on (a cell whose data set could not be
prepared fails at once, naming the prep job's log), as Slurm's ``afterany`` dependencies do.
"""

from __future__ import annotations

from medft.grid.plan import Job
from medft.grid.runner import JobFailed, JobRunner


def run_local(jobs: list[Job], runs: str, log=print) -> list[str]:
    """Run ``jobs`` in order; return one line per job that did not finish (name, error, log)."""
    failed = []
    for i, job in enumerate(jobs, 1):
        log(f"\n[grid {i}/{len(jobs)}] {job.name}", flush=True)
        try:
            JobRunner(job, runs, echo=True)()
        except JobFailed as e:
            log(f"medft grid: {e}", flush=True)
            failed.append(str(e))
    return failed
