"""Step curves (FROC and ROC alike) and their case-level bootstrap, vectorised.

A FROC curve and an ROC curve are the same computation: events (candidates or units) with
a score are thresholded at every distinct score; an event either counts toward the
curve's y (a detected lesion / a true positive) or toward its x (a false positive); y and
x are normalised by per-case totals (lesions / images, or positives / negatives).

Resampling cases with replacement only changes how often each case counts, so a
bootstrap replicate is the same cumulative sum with a per-case weight (the number of times
the case was drawn).  :func:`step_curve_at` computes ``B`` replicates at once as a
``(B, K)`` weighted cumulative sum; the point estimate is the replicate with all weights 1.

Operating point convention (used everywhere in medft): the value of a curve at x = f is
the largest y among the thresholds whose x is at most f (a step function: the sensitivity
that can actually be achieved without exceeding f false positives).
"""

from __future__ import annotations

import numpy as np

#: default number of bootstrap resamples and seed
N_BOOT = 1000
SEED = 0
#: at most this many (replicate x threshold) cells are held in memory at once
_CHUNK_CELLS = 4_000_000


def resample_weights(n_groups: int, n_boot: int = N_BOOT, seed: int = SEED) -> np.ndarray:
    """Case-level bootstrap weights.

    Returns an int array of shape (n_boot, n_groups): entry [b, g] is how many times group
    (case) g was drawn in replicate b; every row sums to ``n_groups``.  Seeded: the same
    ``(n_groups, n_boot, seed)`` always gives the same array.
    """
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_groups, size=(n_boot, n_groups))
    w = np.zeros((n_boot, n_groups), dtype=np.int64)
    np.add.at(w, (np.repeat(np.arange(n_boot), n_groups), draws.ravel()), 1)
    return w


def _order(score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Descending score order, distinct thresholds, and the last index of each tie run."""
    order = np.argsort(-score, kind="mergesort")
    s = score[order]
    ends = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1] if s.size else np.zeros(0, int)
    return order, s[ends], ends


def step_curve(score, is_pos, group, y_total, x_total, weights=None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A (weighted) step curve at every distinct threshold.

    Parameters: ``score`` (K,) event scores; ``is_pos`` (K,) bool, True if the event counts
    toward y; ``group`` (K,) int group (case) index of each event; ``y_total`` and
    ``x_total`` (G,) per-group denominators; ``weights`` (B, G) group weights (default one
    replicate of ones).

    Returns ``(x, y, thresholds)``: ``x`` and ``y`` of shape (B, T + 1) and ``thresholds``
    of shape (T + 1,), where T is the number of distinct scores.  Column 0 is the point
    (0, 0) at threshold +inf; column t > 0 is (x, y) when every event with score >=
    ``thresholds[t]`` is called positive.  A replicate whose denominator is 0 is NaN.
    """
    score = np.asarray(score, float)
    is_pos = np.asarray(is_pos, bool)
    group = np.asarray(group, np.int64)
    w = np.ones((1, len(y_total))) if weights is None else np.asarray(weights, float)
    order, thr, ends = _order(score)
    ew = w[:, group[order]]
    pos = is_pos[order]
    cy = np.cumsum(ew * pos, axis=1)[:, ends]
    cx = np.cumsum(ew * ~pos, axis=1)[:, ends]
    ny = w @ np.asarray(y_total, float)
    nx = w @ np.asarray(x_total, float)
    y = _ratio(np.hstack([np.zeros((w.shape[0], 1)), cy]), ny)
    x = _ratio(np.hstack([np.zeros((w.shape[0], 1)), cx]), nx)
    return x, y, np.r_[np.inf, thr]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den[:, None]`` with NaN rows where ``den`` is 0."""
    ok = den > 0
    return np.where(ok[:, None], num / np.where(ok, den, 1.0)[:, None], np.nan)


def value_at(x: np.ndarray, y: np.ndarray, x_at) -> np.ndarray:
    """Step-curve value at each x in ``x_at``: max y over thresholds with x <= x_at.

    ``x`` and ``y`` have shape (B, T) and are non-decreasing along axis 1 (as returned by
    :func:`step_curve`).  Returns shape (B, F); NaN rows stay NaN.
    """
    x = np.atleast_2d(x)
    y = np.atleast_2d(y)
    f = np.atleast_1d(np.asarray(x_at, float))
    b, t = x.shape
    span = np.max(np.r_[np.abs(x[np.isfinite(x)]), np.abs(f), 1.0]) + 1.0
    offs = np.arange(b)[:, None] * (2 * span)
    xs = np.where(np.isnan(x), 1.5 * span, x) + offs  # rows stay sorted and disjoint
    idx = np.searchsorted(xs.ravel(), (f[None, :] + offs).ravel(), side="right").reshape(b, -1)
    idx = idx - np.arange(b)[:, None] * t - 1
    out = np.take_along_axis(y, np.clip(idx, 0, t - 1), axis=1)
    return np.where(idx >= 0, out, np.nan)


def bootstrap_at(score, is_pos, group, y_total, x_total, x_at, weights: np.ndarray) -> np.ndarray:
    """Curve values at ``x_at`` (F,) for every replicate of ``weights`` (B, G): shape (B, F).

    Processes replicates in chunks so memory stays bounded for 10^4 events x 10^3 resamples.
    """
    weights = np.asarray(weights)
    n_thr = max(np.unique(np.asarray(score, float)).size, 1)
    step = max(1, _CHUNK_CELLS // n_thr)
    out = [value_at(*step_curve(score, is_pos, group, y_total, x_total, weights[i:i + step])[:2], x_at)
           for i in range(0, weights.shape[0], step)]
    return np.vstack(out) if out else np.zeros((0, np.size(x_at)))


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over axis 0 ignoring NaN replicates: ``(lo, hi)``, each shape samples.shape[1:]."""
    a = (1.0 - level) / 2.0
    with np.errstate(invalid="ignore"):
        lo, hi = np.nanpercentile(samples, [100 * a, 100 * (1 - a)], axis=0)
    return lo, hi


def paired_p_value(diff: np.ndarray) -> np.ndarray:
    """Two-sided bootstrap p-value of H0: difference = 0, per column of ``diff`` (B, F).

    p = min(1, 2 * min((#{d <= 0} + 1) / (B' + 1), (#{d >= 0} + 1) / (B' + 1))), with B' the
    number of non-NaN replicates (the +1 keeps p > 0 for a finite number of resamples).
    """
    d = np.atleast_2d(diff)
    n = np.sum(~np.isnan(d), axis=0)
    le = np.sum(d <= 0, axis=0)
    ge = np.sum(d >= 0, axis=0)
    return np.minimum(1.0, 2.0 * np.minimum(le + 1, ge + 1) / (n + 1))
