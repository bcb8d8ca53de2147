"""ROC analysis of a classifier (colonoscopy frame classification, paper Fig. 6).

* :func:`roc_curve` returns the empirical curve at every distinct threshold.
* :func:`roc_auc_score` is the Mann-Whitney AUC (ties count 1/2), equal to the trapezoidal
  area under :func:`roc_curve` and to scikit-learn's ``roc_auc_score``.
* :func:`delong_ci` gives the AUC's DeLong et al. (Biometrics 1988) variance and a normal
  95% interval; :func:`delong_paired_test` compares two classifiers scored on the same
  units (the paper's Table S3 comparisons, done properly).  Variances use the fast
  midrank algorithm of Sun & Xu (IEEE SPL 2014), identical to the textbook structural
  components: ``var = S10 / m + S01 / n`` with ``S10`` the sample variance (ddof=1) over
  the m positives of ``V10_i = mean_j psi(X_i, Y_j)`` and ``S01`` likewise over the n
  negatives, ``psi(x, y) = 1 if x > y, 1/2 if x == y, 0 otherwise``.
* :func:`sensitivity_at_fpr_score` reads the curve at chosen false-positive rates with the
  step convention of :mod:`medft.evaluate.bootstrap` (largest TPR with FPR <= the rate).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from medft.errors import MedftError
from medft.evaluate import bootstrap as bs
from medft.evaluate._validation import check_scores, warn_degenerate


def roc_curve(y_true, y_score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The empirical ROC curve.

    Returns ``(fpr, tpr, thresholds)``, each shape (T + 1,) with T distinct scores:
    ``fpr[t]``/``tpr[t]`` are the false/true positive fractions when units with score >=
    ``thresholds[t]`` are called positive; index 0 is (0, 0) at +inf.  With no positives
    (negatives) ``tpr`` (``fpr``) is NaN, with a warning.

    >>> fpr, tpr, thr = roc_curve([1, 0, 1, 0], [0.9, 0.7, 0.6, 0.2])
    >>> fpr.tolist(), tpr.tolist(), thr.tolist()
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0], [inf, 0.9, 0.7, 0.6, 0.2])
    """
    y, s = check_scores(y_true, y_score)
    warn_degenerate(int(y.sum()), int((~y).sum()), "roc_curve")
    x, t, thr = bs.step_curve(s, y, np.zeros(s.size, np.int64), [y.sum()], [(~y).sum()])
    return x[0], t[0], thr


def _midrank(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank (shape of ``x``)."""
    return stats.rankdata(x, method="average")


def _structural(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DeLong structural components of k score sets (k, n) on labels ``y``.

    Returns ``(auc (k,), v10 (k, m), v01 (k, n))`` via midranks (Sun & Xu 2014).
    """
    pos, neg = scores[:, y], scores[:, ~y]
    m, n = pos.shape[1], neg.shape[1]
    tx = np.apply_along_axis(_midrank, 1, pos)
    ty = np.apply_along_axis(_midrank, 1, neg)
    tz = np.apply_along_axis(_midrank, 1, np.hstack([pos, neg]))
    auc = (tz[:, :m].sum(axis=1) / m - (m + 1) / 2.0) / n
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    return auc, v10, v01


def _covariance(v10: np.ndarray, v01: np.ndarray) -> np.ndarray:
    """DeLong covariance (k, k) of k AUCs from their structural components."""
    s10 = np.atleast_2d(np.cov(v10))
    s01 = np.atleast_2d(np.cov(v01))
    return s10 / v10.shape[1] + s01 / v01.shape[1]


def _checked(y_true, y_score, what: str) -> tuple[np.ndarray, np.ndarray] | None:
    y, s = check_scores(y_true, y_score)
    if warn_degenerate(int(y.sum()), int((~y).sum()), what):
        return None
    return y, s


def roc_auc_score(y_true, y_score) -> float:
    """Area under the ROC curve = P(score_pos > score_neg) + P(tie) / 2.  NaN if a class is empty.

    >>> roc_auc_score([1, 0, 1, 0], [0.9, 0.7, 0.6, 0.2])
    0.75
    """
    ys = _checked(y_true, y_score, "roc_auc_score")
    if ys is None:
        return float("nan")
    return float(_structural(ys[0], ys[1][None, :])[0][0])


@dataclass(frozen=True)
class AucCI:
    """An AUC with its DeLong standard error and ``level`` interval (clipped to [0, 1])."""

    auc: float
    se: float
    lo: float
    hi: float
    level: float = 0.95


def delong_ci(y_true, y_score, level: float = 0.95) -> AucCI:
    """AUC, DeLong standard error and normal-approximation interval ``auc +- z * se``.

    >>> r = delong_ci([1, 1, 0, 0], [0.9, 0.6, 0.7, 0.2])
    >>> r.auc, round(r.se ** 2, 6)
    (0.75, 0.125)
    """
    ys = _checked(y_true, y_score, "delong_ci")
    if ys is None:
        return AucCI(*(float("nan"),) * 4, level=level)
    auc, v10, v01 = _structural(ys[0], ys[1][None, :])
    se = float(np.sqrt(_covariance(v10, v01)[0, 0]))
    q = stats.norm.ppf(0.5 + level / 2)
    a = float(auc[0])
    return AucCI(a, se, max(0.0, a - q * se), min(1.0, a + q * se), level)


@dataclass(frozen=True)
class PairedAuc:
    """DeLong's paired test of two AUCs on the same units: ``z = (auc_a - auc_b) / se_diff``."""

    auc_a: float
    auc_b: float
    diff: float
    se_diff: float
    z: float
    p_value: float


def delong_paired_test(y_true, score_a, score_b) -> PairedAuc:
    """DeLong's two-sided test that two correlated AUCs (same units, same labels) are equal."""
    y, sa = check_scores(y_true, score_a)
    _, sb = check_scores(y_true, score_b)
    if warn_degenerate(int(y.sum()), int((~y).sum()), "delong_paired_test"):
        return PairedAuc(*(float("nan"),) * 6)
    auc, v10, v01 = _structural(y, np.vstack([sa, sb]))
    cov = _covariance(v10, v01)
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    diff = float(auc[0] - auc[1])
    se = float(np.sqrt(max(var, 0.0)))
    if se == 0:
        z, p = (0.0, 1.0) if diff == 0 else (float(np.sign(diff) * np.inf), 0.0)
    else:
        z = diff / se
        p = float(2 * stats.norm.sf(abs(z)))
    return PairedAuc(float(auc[0]), float(auc[1]), diff, se, float(z), p)


def roc_events(y_true, y_score, groups=None):
    """The ROC as a step curve for :mod:`bootstrap`: ``(score, is_pos, group, pos_per_group,
    neg_per_group)``; ``groups`` (n,) int resampling units, default each unit its own."""
    y, s = check_scores(y_true, y_score)
    g = np.arange(s.size) if groups is None else np.asarray(groups, np.int64)
    if g.shape != s.shape:
        raise MedftError(f"groups has {g.size} entries for {s.size} scores")
    k = int(g.max()) + 1 if g.size else 0
    n_pos = np.bincount(g[y], minlength=k).astype(float)
    return s, y, g, n_pos, np.bincount(g[~y], minlength=k).astype(float)


def sensitivity_at_fpr_score(y_true, y_score, fpr_rates) -> np.ndarray:
    """TPR at each false-positive rate in ``fpr_rates`` (F,): largest TPR with FPR <= rate."""
    fpr, tpr, _ = roc_curve(y_true, y_score)
    return bs.value_at(fpr, tpr, fpr_rates)[0]


def roc_bootstrap(y_true, y_score, fpr_rates, *, groups=None, n_boot: int = bs.N_BOOT,
                  seed: int = bs.SEED, weights: np.ndarray | None = None) -> np.ndarray:
    """Bootstrap of the TPR at ``fpr_rates`` (F,), resampling ``groups`` (default: units).

    Returns shape (B, F).  Pass shared ``weights`` (B, G) to pair two classifiers.
    """
    ev = roc_events(y_true, y_score, groups)
    if weights is None:
        weights = bs.resample_weights(ev[3].size, n_boot, seed)
    return bs.bootstrap_at(*ev, fpr_rates, weights)
