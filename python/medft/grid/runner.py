"""Run one job of the grid: its medft commands in turn, their output appended to the job's log,
its state in the job's record. The same object runs locally and, pickled by submitit, on a Slurm node.

A command killed by a signal (cancelled, preempted, timed out) leaves the job ``stopped``: the
next attempt resumes (`medft train` from its last snapshot). On Slurm, submitit calls
:meth:`JobRunner.checkpoint` before a preemption or time-limit requeue, so the job is requeued
as it is and runs again from the top, skipping what is done.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from medft import paths
from medft.errors import MedftError
from medft.grid import records
from medft.grid.plan import Job

#: exit statuses of a command that was stopped, not failed: medft's own on SIGTERM/SIGINT, a shell's
INTERRUPTED = {130, 143, -signal.SIGTERM, -signal.SIGKILL, -signal.SIGINT}


class JobFailed(MedftError):
    """A job's command failed or was stopped; the message is the record's error line and the log."""


def scheduler_job_id() -> str:
    """The Slurm job id of this process (``<array>_<task>`` for an array task), or ``local``."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID", "local")


class JobRunner:
    """Callable that runs ``job``; ``echo`` also prints the output (the local executor)."""

    def __init__(self, job: Job, runs: str, echo: bool = False) -> None:
        self.job, self.runs, self.echo = job, str(runs), echo

    @property
    def log(self) -> Path:
        return paths.job_log(self.runs, self.job.name)

    def __call__(self) -> str:
        """Run every step; return "done", or raise :class:`JobFailed` naming the error and the log."""
        job = self.job
        self.log.parent.mkdir(parents=True, exist_ok=True)
        records.write(self.runs, job.name, state="running", kind=job.kind, job_id=scheduler_job_id(),
                      host=socket.gethostname(), pid=os.getpid(), log=str(self.log), error="",
                      started=time.strftime("%Y-%m-%dT%H:%M:%S"))
        with open(self.log, "a") as log:
            log.write(f"=== {job.name}: {time.strftime('%Y-%m-%d %H:%M:%S')} on {socket.gethostname()}, "
                      f"job {scheduler_job_id()}\n")
            log.flush()
            if job.dataset and not (Path(job.dataset) / paths.PREP_RECORD).is_file():
                prep = paths.job_log(self.runs, job.needs[0]) if job.needs else None
                self._end("failed", f"{job.dataset}: not prepared (no {paths.PREP_RECORD})"
                                    + (f"; see the log of {job.needs[0]}: {prep}" if prep else ""), log)
            for argv in job.steps:
                self._step(argv, log)
        records.write(self.runs, job.name, state="done", error="", ended=time.strftime("%Y-%m-%dT%H:%M:%S"))
        return "done"

    def _step(self, argv: tuple[str, ...], log) -> None:
        """Run ``medft <argv>``, teeing its output into ``log``; end the job if it does not succeed."""
        line = "$ medft " + " ".join(argv)
        log.write(line + "\n")
        log.flush()
        if self.echo:
            print(line, flush=True)
        proc = subprocess.Popen([sys.executable, "-m", "medft.cli", *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1, errors="replace",
                                preexec_fn=_ignore_checkpoint_signal)
        lines: list[str] = []
        try:
            for text in proc.stdout:
                lines.append(text.rstrip("\n"))
                log.write(text)
                log.flush()
                if self.echo:
                    print(text, end="", flush=True)
            rc = proc.wait()
        except BaseException:  # Ctrl-C, or submitit's exit before a requeue: stop the command, keep its work
            _stop(proc)
            self._end("stopped", f"`medft {argv[0]}` interrupted", log, raise_=False)
            raise
        if rc in INTERRUPTED:
            self._end("stopped", f"`medft {argv[0]}` stopped by a signal (exit {rc}); the next run resumes it", log)
        if rc != 0:
            self._end("failed", records.first_error(lines) or f"`medft {argv[0]}` exited with {rc}", log)

    def _end(self, state: str, error: str, log, raise_: bool = True) -> None:
        log.write(f"=== {self.job.name}: {state}: {error}\n")
        log.flush()
        records.write(self.runs, self.job.name, state=state, error=error, ended=time.strftime("%Y-%m-%dT%H:%M:%S"))
        if raise_:
            raise JobFailed(f"{self.job.name} {state}: {error} (log: {self.log})")

    def checkpoint(self):
        """submitit's hook before a preemption or time-limit requeue: run this same job again."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(JobRunner(self.job, self.runs, self.echo))


def _ignore_checkpoint_signal() -> None:
    """In the command: ignore SIGUSR2, Slurm's warning before a time limit or preemption, which
    reaches every process of the job; the job's own process handles it (submitit checkpoints and
    requeues), and the requeue's SIGTERM then stops the command at its last snapshot. The command
    gets SIGTERM when the job's process dies, even of SIGKILL (Linux PR_SET_PDEATHSIG), so no
    `medft train` outlives the grid that started it."""
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the command (medft unwinds and closes Caffe), SIGKILL if it has not ended in 30 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
