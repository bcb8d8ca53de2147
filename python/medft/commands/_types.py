"""argparse types that refuse degenerate numbers at the boundary, naming the rule."""

from __future__ import annotations

import argparse


def _number(text: str, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a {'whole ' if kind is int else ''}number: {text!r}") from None


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    v = _number(text, int)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def nonneg_int(text: str) -> int:
    """A whole number >= 0 (seeds, margins, counts that may be zero)."""
    v = _number(text, int)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
    return v


def positive_float(text: str) -> float:
    """A finite number > 0."""
    v = _number(text, float)
    if not 0 < v < float("inf"):
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return v


def open_fraction(text: str) -> float:
    """A number strictly between 0 and 1."""
    v = _number(text, float)
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text}")
    return v
