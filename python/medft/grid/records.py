"""Job records: ``<runs>/grid/<job>.json``, what the grid knows of a job between its runs.

``state`` is one of :data:`STATES`: ``submitted`` (queued with a scheduler, ``job_id`` set),
``running``, ``done``, ``failed`` (``error`` holds the first error line of the command that failed)
or ``stopped`` (cancelled, preempted or timed out: the next run of the grid resumes it). Every
record names its ``log``. Records are written atomically; the job itself writes the last word.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from medft import paths
from medft.util.atomic import write_text_atomic

STATES = ("submitted", "running", "done", "failed", "stopped")
#: how an error shows in a command's output: medft's one-line errors, Python's last traceback line,
#: glog's fatal lines (Caffe's CHECK failures)
_ERROR_LINE = re.compile(r"^(medft [\w-]+: error: |[A-Za-z_.]*(Error|Exception)\b|F\d{4} |Check failed)")


def read(runs: str | Path, job: str) -> dict:
    """The record of ``job`` ({} if none, or if it is not readable JSON)."""
    path = paths.job_record(runs, job)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write(runs: str | Path, job: str, **fields) -> dict:
    """Update ``job``'s record with ``fields`` (and the time), atomically; return the new record."""
    record = {**read(runs, job), **fields, "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}
    write_text_atomic(paths.job_record(runs, job), json.dumps(record, indent=2) + "\n")
    return record


def first_error(lines: list[str]) -> str:
    """The first line of ``lines`` that reads as an error, else the last non-empty line ("" if none)."""
    for line in lines:
        if _ERROR_LINE.search(line.strip()):
            return line.strip()
    return next((ln.strip() for ln in reversed(lines) if ln.strip()), "")
