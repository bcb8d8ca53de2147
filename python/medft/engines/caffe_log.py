"""The one parser of Caffe's glog output (``caffe train``, ``caffe time``), in the spirit of BVLC's
``tools/extra/parse_log.py``: functions that take log text and return numbers.

Caffe 1.0 prints ``Iteration N (x iter/s, ys/k iters), loss = v``; the rc3 build medft compiles
prints ``Iteration N, loss = v``. Both are read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from medft import paths
from medft.errors import MedftError

_GLOG_TIME = re.compile(r"^[IWEF](\d{4,8}) (\d\d):(\d\d):(\d\d(?:\.\d+)?)")
_ITER_LOSS = re.compile(r"\] Iteration (\d+)(?: \([^)]*\))?, loss = (-?nan|-?inf|[-+0-9.eE]+)")
_TRAIN_OUTPUT = re.compile(r"\]\s+Train net output #\d+: (\S+) = (-?nan|-?inf|[-+0-9.eE]+)")
_SNAPSHOT = re.compile(r"Snapshotting solver state to binary proto file (.+\.solverstate)")
_AVERAGE = re.compile(r"Average (Forward pass|Backward pass|Forward-Backward): ([0-9.eE+-]+) ms")


def glog_seconds(line: str) -> float | None:
    """Seconds since 1970 of a glog line's ``IYYYYMMDD hh:mm:ss.us`` (or ``IMMDD ...``) prefix."""
    m = _GLOG_TIME.match(line)
    if not m:
        return None
    date = m.group(1) if len(m.group(1)) == 8 else "2000" + m.group(1)[-4:]  # glog without the year
    day = datetime.strptime(date, "%Y%m%d") - datetime(1970, 1, 1)
    return day.total_seconds() + int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4))


@dataclass
class TrainLog:
    """What complete lines of a ``caffe train`` log said: per-iteration loss and outputs, the
    time each loss line was written, and the snapshots whose solverstate was announced."""

    losses: dict[int, float] = field(default_factory=dict)
    outputs: dict[int, dict[str, float]] = field(default_factory=dict)
    stamps: dict[int, float] = field(default_factory=dict)
    snapshots: dict[int, str] = field(default_factory=dict)  # iteration -> prefix path (no suffix)
    _pending: tuple[int, str] | None = None

    def feed(self, text: str) -> None:
        """Parse more complete lines (call with successive chunks of the log). A snapshot counts
        as written once a later line follows its solverstate line (or :meth:`finish` is called)."""
        current: int | None = max(self.losses) if self.losses else None
        for line in text.splitlines():
            if self._pending is not None:
                self.snapshots[self._pending[0]] = self._pending[1]
                self._pending = None
            if m := _ITER_LOSS.search(line):
                current = int(m.group(1))
                self.losses[current] = float(m.group(2))
                if (t := glog_seconds(line)) is not None:
                    self.stamps.setdefault(current, t)
            elif (m := _TRAIN_OUTPUT.search(line)) and current is not None:
                self.outputs.setdefault(current, {})[m.group(1)] = float(m.group(2))
            elif (m := _SNAPSHOT.search(line)) and (snap := paths.parse_snapshot(m.group(1))):
                self._pending = (snap[0], m.group(1)[: -len(paths.SOLVERSTATE)])

    def finish(self) -> None:
        """The process has exited: its last announced snapshot is complete."""
        if self._pending is not None:
            self.snapshots[self._pending[0]] = self._pending[1]
            self._pending = None


def parse_train_log(text: str) -> TrainLog:
    """A whole ``caffe train`` log at once."""
    log = TrainLog()
    log.feed(text)
    log.finish()
    return log


def span_rate(log: TrainLog, batch: int, first: int, last: int) -> tuple[float, float]:
    """(images/s, seconds) between the ``Iteration first, loss`` and ``Iteration last, loss`` lines
    of a ``caffe train`` log (display 1): ``last - first`` iterations of ``batch`` images."""
    for it in (first, last):
        if it not in log.stamps:
            raise MedftError(f"caffe train log: no timestamped 'Iteration {it}, loss' line (run with display 1)")
    dt = log.stamps[last] - log.stamps[first]
    if dt <= 0:
        raise MedftError(f"caffe train log: iteration {last} is not logged after iteration {first}")
    return (last - first) * batch / dt, dt


def train_rate(text: str, batch: int, first: int, last: int) -> tuple[float, float]:
    """:func:`span_rate` of a whole ``caffe train`` log's text."""
    return span_rate(parse_train_log(text), batch, first, last)


def chunk_rate(log: TrainLog, batch: int, start: int, end: int) -> float | None:
    """Images/s of iterations ``start`` .. ``end - 1`` by the log's own clock: from the loss line of
    iteration ``start - 1`` (for ``start`` 0, of iteration 0, whose set-up time is left out) to that
    of ``end - 1``. None where those lines carry no time (display other than 1).

    ``caffe train`` runs on while its driver validates a snapshot, so the driver's wall clock
    would count iterations done before it asked: the log's times count each once."""
    try:
        return span_rate(log, batch, max(start - 1, 0), end - 1)[0]
    except MedftError:
        return None


def parse_caffe_time(text: str) -> dict[str, float]:
    """``caffe time``'s per-iteration averages: ``{"forward_ms", "backward_ms", "forward_backward_ms"}``."""
    keys = {"Forward pass": "forward_ms", "Backward pass": "backward_ms", "Forward-Backward": "forward_backward_ms"}
    found = {keys[m.group(1)]: float(m.group(2)) for m in _AVERAGE.finditer(text)}
    if set(found) != set(keys.values()):
        raise MedftError(f"caffe time: 'Average ...' lines not found in its output:\n{text[-2000:]}")
    return found


def tail(path: Path, chars: int = 3000) -> str:
    """The last ``chars`` characters of a log file ('' if it does not exist)."""
    try:
        return Path(path).read_text(errors="replace")[-chars:]
    except OSError:
        return ""
