"""Pairwise comparisons of configurations (the paper's Tables S1-S3), as CSV and Markdown.

Two verdicts are given for every pair at every operating point:

* ``ci_rule`` — the paper's rule (section VI): the two 95% intervals do not overlap, which
  implies p < .05.  Conservative: overlapping intervals do not imply p >= .05.
* a proper paired test, named in the ``test`` column:
  ``paired permutation`` for sensitivities (the two configurations swapped within random
  cases, see :func:`bootstrap.paired_permutation_test`; p randomised within ties, so its
  size is alpha although the statistic is discrete), with the paired case bootstrap
  interval of the difference beside it; ``DeLong paired`` for AUCs
  (:func:`roc.delong_paired_test`); ``Wilcoxon signed-rank`` for per-ROI CIMT errors
  (two-sided, ``scipy.stats.wilcoxon`` with its default zero handling, paired by ROI).

A verdict needs both intervals: where one is missing (NaN) the CI rule reads ``n/a``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from medft.errors import MedftError
from medft.evaluate import bootstrap as bs
from medft.evaluate.roc import delong_paired_test
from medft.util.atomic import write_text_atomic
from medft.util.csvtext import csv_text


@dataclass(frozen=True)
class OperatingPoints:
    """One configuration's curve read at F operating points.

    ``x`` (F,) the FP rates; ``value``, ``lo``, ``hi`` (F,) estimate and 95% interval;
    ``boot`` (B, F) bootstrap replicates drawn with weights shared by every configuration
    of the comparison (so differences are paired), or None; ``events`` the curve's step
    events ``(score, is_pos, group, y_total, x_total)`` for the permutation test, or None.
    """

    name: str
    x: np.ndarray
    value: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    boot: np.ndarray | None = None
    events: tuple | None = None


def overlap(lo_a, hi_a, lo_b, hi_b) -> np.ndarray:
    """True where the intervals [lo_a, hi_a] and [lo_b, hi_b] overlap (elementwise)."""
    return (np.asarray(lo_a) <= np.asarray(hi_b)) & (np.asarray(lo_b) <= np.asarray(hi_a))


def ci_rule(lo_a, hi_a, lo_b, hi_b) -> np.ndarray:
    """The paper's verdict per element: "p<.05" where the intervals do not overlap, "n.s."
    where they do, "n/a" where an interval is missing (NaN): no interval, no verdict."""
    bounds = np.broadcast_arrays(*(np.asarray(v, float) for v in (lo_a, hi_a, lo_b, hi_b)))
    missing = np.any(np.isnan(bounds), axis=0)
    verdict = np.where(overlap(lo_a, hi_a, lo_b, hi_b), "n.s.", "p<.05")
    return np.where(missing, "n/a", verdict)


def _paired_test(pa: OperatingPoints, pb: OperatingPoints, n_perm: int, seed: int
                 ) -> tuple[np.ndarray, str]:
    """p-values (F,) and the test's name: the permutation test when both curves carry their
    events, else the mid-p paired bootstrap, else NaN."""
    if pa.events is not None and pb.events is not None:
        p = bs.paired_permutation_test(pa.events, pb.events, pa.x, pa.value - pb.value, n_perm, seed)
        return p, "paired permutation"
    if pa.boot is not None and pb.boot is not None:
        return bs.paired_p_value(pa.boot - pb.boot), "paired case bootstrap"
    return np.full(pa.x.shape, np.nan), "none"


def compare_operating_points(points: list[OperatingPoints], *, x_name: str = "fp_rate",
                             level: float = 0.95, n_perm: int = bs.N_BOOT, seed: int = bs.SEED
                             ) -> list[dict]:
    """Every pair (a, b), a listed before b, at every operating point: one row each.

    Columns: ``a``, ``b``, ``x_name``, ``value_a``, ``lo_a``, ``hi_a``, ``value_b``, ``lo_b``,
    ``hi_b``, ``diff`` (a - b), ``diff_lo``, ``diff_hi`` (paired bootstrap interval),
    ``p_value`` (``n_perm`` seeded permutations, see :func:`_paired_test`), ``test``,
    ``ci_rule`` (:func:`ci_rule`).
    """
    rows = []
    for pa, pb in itertools.combinations(points, 2):
        if not np.array_equal(pa.x, pb.x):
            raise MedftError(f"{pa.name} and {pb.name} were read at different operating points")
        if pa.boot is not None and pb.boot is not None:
            if pa.boot.shape != pb.boot.shape:
                raise MedftError(f"{pa.name} and {pb.name} have bootstrap replicates of different shapes")
            d_lo, d_hi = bs.percentile_ci(pa.boot - pb.boot, level)
        else:
            d_lo = d_hi = np.full(pa.x.shape, np.nan)
        p, test = _paired_test(pa, pb, n_perm, seed)
        rule = ci_rule(pa.lo, pa.hi, pb.lo, pb.hi)
        for k, x in enumerate(pa.x):
            rows.append({"a": pa.name, "b": pb.name, x_name: float(x),
                         "value_a": pa.value[k], "lo_a": pa.lo[k], "hi_a": pa.hi[k],
                         "value_b": pb.value[k], "lo_b": pb.lo[k], "hi_b": pb.hi[k],
                         "diff": pa.value[k] - pb.value[k], "diff_lo": d_lo[k], "diff_hi": d_hi[k],
                         "p_value": p[k], "test": test, "ci_rule": str(rule[k])})
    return rows


def compare_aucs(y_true, scores: dict[str, np.ndarray], aucs: dict[str, tuple[float, float]], *,
                 groups=None) -> list[dict]:
    """DeLong paired test for every pair of ``scores`` (name -> (n,) scores on the same units),
    clustered (Obuchowski) over ``groups`` (n,) when given.

    ``aucs`` maps name -> (lo, hi) of its 95% interval for the CI rule (NaN bounds, as with
    no positives or no negatives, give "n/a").  Columns: ``a``, ``b``, ``auc_a``, ``auc_b``,
    ``diff``, ``se_diff``, ``z``, ``p_value``, ``test``, ``ci_rule``, ``note`` (why the
    p-value is n/a, else "").
    """
    rows = []
    test = "DeLong paired" if groups is None else "DeLong paired, clustered (Obuchowski)"
    for a, b in itertools.combinations(scores, 2):
        r = delong_paired_test(y_true, scores[a], scores[b], groups=groups)
        rows.append({"a": a, "b": b, "auc_a": r.auc_a, "auc_b": r.auc_b, "diff": r.diff,
                     "se_diff": r.se_diff, "z": r.z, "p_value": r.p_value, "test": test,
                     "ci_rule": str(ci_rule(*aucs[a], *aucs[b])), "note": r.reason})
    return rows


def compare_paired_samples(samples: dict[str, np.ndarray], metric: str) -> list[dict]:
    """Wilcoxon signed-rank test for every pair of per-ROI samples (name -> (n,), same ROI order).

    Columns: ``metric``, ``a``, ``b``, ``mean_a``, ``mean_b``, ``median_diff`` (a - b),
    ``n``, ``statistic``, ``p_value``, ``test``.
    """
    rows = []
    for a, b in itertools.combinations(samples, 2):
        xa, xb = np.asarray(samples[a], float), np.asarray(samples[b], float)
        if xa.shape != xb.shape:
            raise MedftError(f"{a} and {b} have {xa.size} and {xb.size} ROIs; pairs need the same ROIs")
        d = xa - xb
        if np.all(d == 0):
            stat, p = 0.0, 1.0
        else:
            res = stats.wilcoxon(xa, xb)
            stat, p = float(res.statistic), float(res.pvalue)
        rows.append({"metric": metric, "a": a, "b": b, "mean_a": float(xa.mean()),
                     "mean_b": float(xb.mean()), "median_diff": float(np.median(d)), "n": int(d.size),
                     "statistic": stat, "p_value": p, "test": "Wilcoxon signed-rank"})
    return rows


def _fmt(v, digits: int, missing: str = "") -> str:
    if isinstance(v, float | np.floating):
        return missing if np.isnan(v) else f"{v:.{digits}f}"
    return str(v)


def to_csv(rows: list[dict], digits: int = 6) -> str:
    """CSV text of ``rows`` (columns of the first row; floats with ``digits`` decimals)."""
    if not rows:
        return ""
    return csv_text(({k: _fmt(v, digits) for k, v in r.items()} for r in rows), list(rows[0]))


def to_markdown(rows: list[dict], columns: list[str] | None = None, digits: int = 3) -> str:
    """A GitHub Markdown table of ``rows`` (the given ``columns``, default all); NaN reads n/a."""
    if not rows:
        return "_(no rows)_\n"
    cols = columns or list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c, ""), digits, "n/a") for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_table(rows: list[dict], path: Path, columns: list[str] | None = None) -> None:
    """Write ``rows`` as ``<path>.csv`` and ``<path>.md`` (atomically)."""
    path = Path(path)
    write_text_atomic(path.with_suffix(".csv"), to_csv(rows))
    write_text_atomic(path.with_suffix(".md"), to_markdown(rows, columns))
