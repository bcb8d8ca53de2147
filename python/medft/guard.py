"""Caffe aborts (``CHECK`` failures, ``double free``, segfaults) become one line naming the file,
the cause and the fix.

``medft train`` and ``medft predict`` run their work in a child process (:func:`supervise`): the
parent tees the child's error output, and when the child dies of SIGABRT, SIGSEGV, SIGBUS or SIGFPE
it explains the death from Caffe's last fatal log line and the files the child said it was handling
(:func:`note`). :func:`explain_abort` serves the cli engine's ``caffe train`` child the same way.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from medft import paths

ABORTS = {signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL}

#: (pattern in Caffe's output, role of the file to name, cause, fix), first match wins
CAUSES: tuple[tuple[str, str, str, str], ...] = (
    (r"No space left|SerializeToOstream|WriteProtoToBinaryFile|Snapshotting to binary proto", "snapshots",
     "a snapshot could not be written (disk full?)",
     "free space on that disk or use --runs elsewhere; the run resumes from its last complete snapshot"),
    (r"label_value|softmax_loss_layer|accuracy_layer", "data",
     "a label outside the net's classes", "rebuild the data set with `medft prep --force`"),
    (r"data_layer|data_transformer|db_lmdb|Datum|MDB_|mdb_", "data",
     "a damaged LMDB record", "rebuild the data set with `medft prep --force`"),
    (r"CopyTrainedLayers|ReadProtoFrom|Cannot copy param|upgrade_proto|solver\.cpp|sgd_solver|Restor", "weights",
     "damaged weights or snapshot", "use other --weights, or `medft train --force` to start the run over"),
    (r"double free|corrupted|free\(\)|malloc|Check failed", "weights",
     "non-finite or exploded weights broke Caffe's memory",
     "use other --weights, or `medft train --force` to start the run over"),
)


def note(role: str, path: str | Path) -> None:
    """Record, for the supervising parent, the file this process hands Caffe in ``role``."""
    where = paths.notes_file()
    if where is None:
        return
    try:
        notes = json.loads(Path(where).read_text() or "{}")
    except (OSError, ValueError):
        notes = {}
    notes[role] = str(path)
    try:
        Path(where).write_text(json.dumps(notes))
    except OSError:
        pass


def _fatal_line(output: str) -> str:
    """Caffe's last glog fatal line (``F.... file.cpp:N] Check failed: ...``) or the last line."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    fatal = [ln for ln in lines if re.match(r"^F\d{4}", ln) or "Check failed" in ln]
    return (fatal or lines or [""])[-1][:300]


def explain_abort(returncode: int, output: str, notes: dict[str, str], program: str = "Caffe") -> str | None:
    """One line for a process that died of an abort signal (exit -6/-11/... or 128 + it); None
    for any other exit."""
    sig = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    if sig not in {int(s) for s in ABORTS}:
        return None
    name = signal.Signals(sig).name
    found = next(((role, cause, fix) for pattern, role, cause, fix in CAUSES
                  if re.search(pattern, output) and (role in notes or role == "weights")), None)
    if found:
        where = notes.get(found[0]) or notes.get("weights") or "the run"
        cause, fix = found[1], found[2]
    else:
        where, cause, fix = ", ".join(notes.values()) or "its input", "unknown", "see the output above"
    last = _fatal_line(output)
    return f"{where}: {program} aborted ({name}): {cause}; {fix}" + (f" [{last}]" if last else "")


def supervised() -> bool:
    """True inside the supervised child (or when supervision is off)."""
    return paths.supervised()


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def supervise(stage: str, argv: list[str]) -> int:
    """Run ``medft <argv>`` as a child, its error output teed; its exit status, or 2 with one
    line when it died of an abort signal. A child killed by SIGKILL takes this process with it."""
    fd, notes_path = tempfile.mkstemp(prefix="medft-notes-", suffix=".json")
    os.close(fd)
    env = dict(os.environ, **{paths.SUPERVISED_ENV: "1", paths.NOTES_ENV: notes_path})
    tail = b""
    try:
        proc = subprocess.Popen([sys.executable, "-m", "medft.cli", *argv], env=env, stderr=subprocess.PIPE,
                                preexec_fn=_die_with_parent)
        old = signal.signal(signal.SIGTERM, lambda s, f: proc.send_signal(signal.SIGTERM))
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the child itself
        try:
            err = proc.stderr.fileno()
            while chunk := os.read(err, 65536):
                try:
                    sys.stderr.buffer.write(chunk)
                    sys.stderr.flush()
                except (OSError, ValueError):
                    pass
                tail = (tail + chunk)[-20000:]
            rc = proc.wait()
        finally:
            signal.signal(signal.SIGTERM, old)
            signal.signal(signal.SIGINT, old_int)
        try:
            notes = json.loads(Path(notes_path).read_text() or "{}")
        except (OSError, ValueError):
            notes = {}
    finally:
        Path(notes_path).unlink(missing_ok=True)
    if rc == -signal.SIGKILL:
        os.kill(os.getpid(), signal.SIGKILL)
    line = explain_abort(rc, tail.decode(errors="replace"), notes)
    if line is not None:
        print(f"medft {stage}: error: {line}", file=sys.stderr)
        return 2
    return 128 - rc if rc < 0 else rc
