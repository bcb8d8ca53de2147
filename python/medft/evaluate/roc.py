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
* Clustered units (frames of one video): pass ``groups`` and the variance is Obuchowski's
  (Biometrics 1997) clustered DeLong variance, ``S10 / m + S01 / n + 2 S11 / (m n)`` over
  the I clusters: ``S10 = I10 / ((I10 - 1) m) sum_i (V10_i - m_i A)^2`` with ``V10_i`` the
  sum of the cluster's positives' components, ``m_i`` its positives and ``I10`` the clusters
  that have positives (``S01`` likewise), and ``S11 = I / (I - 1) sum_i (V10_i - m_i A)
  (V01_i - n_i A)``.  With one unit per cluster it is DeLong's.  Intervals and p-values then
  use Student's t with I - 1 degrees of freedom (few clusters make the variance uncertain).
* Where no interval exists (a class with fewer than 2 units or clusters, or a variance of 0
  from constant scores or perfect separation) the bounds are NaN and ``reason`` says why.
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
    """DeLong covariance (k, k) of k AUCs from their structural components (NaN with < 2 units)."""
    if v10.shape[1] < 2 or v01.shape[1] < 2:
        return np.full((v10.shape[0],) * 2, np.nan)
    s10 = np.atleast_2d(np.cov(v10))
    s01 = np.atleast_2d(np.cov(v01))
    return s10 / v10.shape[1] + s01 / v01.shape[1]


def _clustered_covariance(auc: np.ndarray, v10: np.ndarray, v01: np.ndarray, g_pos: np.ndarray,
                          g_neg: np.ndarray, n_groups: int) -> np.ndarray:
    """Obuchowski's (1997) clustered covariance (k, k) of k AUCs; ``g_pos`` (m,) and ``g_neg``
    (n,) the cluster of each positive and negative.  NaN when positives or negatives lie in
    fewer than 2 clusters."""
    m, n = v10.shape[1], v01.shape[1]
    m_i = np.bincount(g_pos, minlength=n_groups)
    n_i = np.bincount(g_neg, minlength=n_groups)
    i10, i01, i_all = int(np.sum(m_i > 0)), int(np.sum(n_i > 0)), int(np.sum((m_i + n_i) > 0))
    if i10 < 2 or i01 < 2:
        return np.full((auc.size, auc.size), np.nan)
    d10 = np.array([np.bincount(g_pos, w, n_groups) for w in v10]) - auc[:, None] * m_i  # (k, I)
    d01 = np.array([np.bincount(g_neg, w, n_groups) for w in v01]) - auc[:, None] * n_i
    s10 = i10 / ((i10 - 1) * m) * d10 @ d10.T
    s01 = i01 / ((i01 - 1) * n) * d01 @ d01.T
    s11 = i_all / (i_all - 1) * d10 @ d01.T
    return s10 / m + s01 / n + (s11 + s11.T) / (m * n)


def _groups(groups, size: int) -> tuple[np.ndarray, int] | None:
    """Cluster ids (any hashables) as 0..I-1 ints and I; None without ``groups``."""
    if groups is None:
        return None
    arr = np.asarray(groups)
    if arr.shape != (size,):
        raise MedftError(f"groups has {arr.size} entries for {size} scores")
    inv = np.unique(arr, return_inverse=True)[1].ravel()
    return inv, int(inv.max()) + 1 if inv.size else 0


def _auc_cov(y: np.ndarray, scores: np.ndarray, groups) -> tuple[np.ndarray, np.ndarray, int]:
    """AUCs (k,), their covariance (k, k) (DeLong, or Obuchowski's with ``groups``) and the
    number of clusters (0 without ``groups``)."""
    auc, v10, v01 = _structural(y, scores)
    g = _groups(groups, y.size)
    if g is None:
        return auc, _covariance(v10, v01), 0
    return auc, _clustered_covariance(auc, v10, v01, g[0][y], g[0][~y], g[1]), g[1]


def _quantile(p: float, n_clusters: int) -> float:
    """Normal quantile, or Student's t with I - 1 df for I clusters."""
    return float(stats.t.ppf(p, n_clusters - 1) if n_clusters >= 2 else stats.norm.ppf(p))


def _no_interval(se: float, n_clusters: int) -> str:
    """Why a standard error gives no interval ("" when it does)."""
    unit = "clusters" if n_clusters else "units"
    if not np.isfinite(se):
        return f"fewer than 2 positive or negative {unit}: no variance"
    if se <= 1e-12:
        return "variance 0 (constant scores or perfect separation)"
    return ""


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
    """An AUC with its DeLong standard error and ``level`` interval (clipped to [0, 1]).

    ``n_clusters``: clusters behind a clustered variance (0: units independent);
    ``reason``: why the interval (or the AUC) is NaN, "" when it is not."""

    auc: float
    se: float
    lo: float
    hi: float
    level: float = 0.95
    n_clusters: int = 0
    reason: str = ""


def delong_ci(y_true, y_score, level: float = 0.95, *, groups=None) -> AucCI:
    """AUC, DeLong standard error and interval ``auc +- q * se`` (q normal, or t with I - 1
    df over the I clusters of ``groups`` (n,), which selects Obuchowski's clustered variance).

    >>> r = delong_ci([1, 1, 0, 0], [0.9, 0.6, 0.7, 0.2])
    >>> r.auc, round(r.se ** 2, 6)
    (0.75, 0.125)
    """
    y, s = check_scores(y_true, y_score)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if warn_degenerate(n_pos, n_neg, "delong_ci"):
        return AucCI(*(float("nan"),) * 4, level=level,
                     reason=f"no {'positive' if n_pos == 0 else 'negative'} units")
    auc, cov, n_clusters = _auc_cov(y, s[None, :], groups)
    se = float(np.sqrt(cov[0, 0])) if cov[0, 0] >= 0 else float("nan")
    a = float(auc[0])
    reason = _no_interval(se, n_clusters)
    if reason:
        return AucCI(a, se, float("nan"), float("nan"), level, n_clusters, reason)
    q = _quantile(0.5 + level / 2, n_clusters)
    return AucCI(a, se, max(0.0, a - q * se), min(1.0, a + q * se), level, n_clusters)


@dataclass(frozen=True)
class PairedAuc:
    """DeLong's paired test of two AUCs on the same units: ``z = (auc_a - auc_b) / se_diff``;
    ``reason`` says why ``p_value`` is NaN ("" when it is not)."""

    auc_a: float
    auc_b: float
    diff: float
    se_diff: float
    z: float
    p_value: float
    n_clusters: int = 0
    reason: str = ""


def delong_paired_test(y_true, score_a, score_b, *, groups=None) -> PairedAuc:
    """DeLong's two-sided test that two correlated AUCs (same units, same labels) are equal;
    with ``groups`` (n,) Obuchowski's clustered covariance and a t reference with I - 1 df.

    Identical AUCs give p = 1; a difference with a variance of 0 has no test (NaN, reason)."""
    y, sa = check_scores(y_true, score_a)
    _, sb = check_scores(y_true, score_b)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if warn_degenerate(n_pos, n_neg, "delong_paired_test"):
        return PairedAuc(*(float("nan"),) * 6, reason=f"no {'positive' if n_pos == 0 else 'negative'} units")
    auc, cov, n_clusters = _auc_cov(y, np.vstack([sa, sb]), groups)
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    diff = float(auc[0] - auc[1])
    se = float(np.sqrt(max(var, 0.0))) if np.isfinite(var) else float("nan")
    if diff == 0 and np.isfinite(se):
        return PairedAuc(float(auc[0]), float(auc[1]), 0.0, se, 0.0, 1.0, n_clusters)
    reason = _no_interval(se, n_clusters)
    if reason:
        return PairedAuc(float(auc[0]), float(auc[1]), diff, se, float("nan"), float("nan"), n_clusters,
                         reason)
    z = diff / se
    p = 2 * (stats.t.sf(abs(z), n_clusters - 1) if n_clusters >= 2 else stats.norm.sf(abs(z)))
    return PairedAuc(float(auc[0]), float(auc[1]), diff, se, float(z), float(p), n_clusters)


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
