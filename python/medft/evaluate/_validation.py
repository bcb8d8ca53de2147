"""The one input validator behind every curve and score of :mod:`medft.evaluate`.

Every public function that takes labels and scores passes them through
:func:`check_scores` first, so the same mistakes always get the same message: unequal
lengths, non-finite values, labels outside {0, 1}.  Degenerate but legal input (no
positives, no negatives) is left to the caller, which warns and returns NaN.
"""

from __future__ import annotations

import warnings

import numpy as np

from medft.errors import MedftError


def _first_bad(values: np.ndarray, bad: np.ndarray) -> str:
    i = int(np.flatnonzero(bad)[0])
    return f"{values[i]!r} at position {i}"


def check_finite(values, name: str = "score") -> np.ndarray:
    """``values`` as a 1-D float array; a :class:`MedftError` names the first NaN/inf."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise MedftError(f"{name} must be 1-D, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise MedftError(f"{name} must be finite; found {_first_bad(arr, bad)} "
                         f"({int(bad.sum())} non-finite values)")
    return arr


def check_scores(y_true, y_score, *, names: tuple[str, str] = ("label", "score")
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Validate binary labels and finite scores of equal length.

    Returns ``(y_true, y_score)`` as a bool array and a float array, both of shape (n,).
    Raises :class:`MedftError` naming the offending value and the allowed set.
    """
    score = check_finite(y_score, names[1])
    raw = np.asarray(y_true)
    if raw.ndim != 1:
        raise MedftError(f"{names[0]} must be 1-D, got shape {raw.shape}")
    if raw.shape != score.shape:
        raise MedftError(f"{names[0]} and {names[1]} have different lengths: "
                         f"{raw.shape[0]} vs {score.shape[0]}")
    try:
        num = raw.astype(float)
    except (TypeError, ValueError):
        num = np.full(raw.shape, np.nan)
        for i, v in enumerate(raw):
            try:
                num[i] = float(v)
            except (TypeError, ValueError):
                raise MedftError(f"{names[0]} must be 0 or 1; found {v!r} at position {i}") from None
    bad = ~np.isin(num, (0.0, 1.0))
    if bad.any():
        raise MedftError(f"{names[0]} must be 0 or 1; found {_first_bad(raw, bad)}")
    return num == 1.0, score


def warn_degenerate(n_pos: int, n_neg: int, what: str) -> bool:
    """Warn and return True when a class is empty (the caller then returns NaN)."""
    if n_pos == 0 or n_neg == 0:
        empty = "positive" if n_pos == 0 else "negative"
        warnings.warn(f"{what}: no {empty} samples; result is NaN", RuntimeWarning, stacklevel=3)
        return True
    return False
