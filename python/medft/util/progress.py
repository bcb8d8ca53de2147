"""Progress lines: one way to write a duration, an ETA and a rate."""

from __future__ import annotations

import math


def duration(seconds: float) -> str:
    """``h:mm:ss`` (``m:ss`` under an hour); ``?`` for an unknown or infinite time."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = max(0, int(round(seconds)))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def eta(done: float, total: float, elapsed: float) -> str:
    """Time left to reach ``total`` at the rate ``done`` / ``elapsed`` took."""
    if done <= 0 or elapsed <= 0:
        return "?"
    return duration((total - done) * elapsed / done)
