"""Maximum-likelihood binormal FROC with confidence intervals (Edwards et al., Med. Phys. 2002).

This is the method the paper cites for its FROC error bars ([38]: D. C. Edwards, M. A.
Kupinski, C. E. Metz, R. M. Nishikawa, "Maximum likelihood fitting of FROC curves under an
initial-detection-and-candidate-analysis model").  The IDCA model splits a CAD system in
two stages:

1. *Initial detection* (the candidate generator) finds a fraction ``nu`` of the lesions and
   produces ``lam`` false-positive candidates per image.
2. *Candidate analysis* (here the CNN) scores the candidates; its performance is an ROC
   curve ``TPF = Phi(a + b * Phi^-1(FPF))`` over true- and false-positive candidates.

Under the model the FROC curve is the candidate ROC scaled by the generator's operating
point: ``sensitivity(f) = nu * TPF(FPF = f / lam)`` for 0 <= f <= lam.

Assumptions (state them when you report these intervals):

* Candidates are mutually independent (Bunch's FROC assumption; Edwards et al. adopt it).
* A lesion hit by several candidates enters the candidate ROC once, with its highest
  score, which makes the scaled ROC agree with medft's empirical FROC counting
  (:mod:`medft.evaluate.froc`); lesions the generator missed only lower ``nu``.
* The candidate ROC is binormal: some monotone transform of the scores makes negatives
  N(0, 1) and positives N(a/b, 1/b^2).  Scores are grouped into at most ``n_bins``
  ordinal categories at pooled-score quantiles (as ROCFIT/LABROC-style software groups
  continuous data) and (a, b) and the K-1 category boundaries are fitted by ML
  (Dorfman & Alf 1969).
* ``nu`` and ``lam`` are the observed generator operating point and are held fixed: the
  intervals are conditional on the candidate set.  All configurations of an application
  score the same candidates, so this variability is common to every curve compared.
* Intervals come from the inverse observed Fisher information (numerical Hessian of the
  log-likelihood at the optimum) and the delta method in probit space:
  ``z = a + b x`` with ``var z = var a + x^2 var b + 2 x cov(a, b)``, ``TPF in Phi(z +- 1.96 sd)``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from medft.errors import MedftError
from medft.evaluate._validation import check_scores
from medft.evaluate.froc import Detections

#: default number of ordinal categories the scores are grouped into
N_BINS = 20


@dataclass(frozen=True)
class BinormalFit:
    """A fitted binormal candidate ROC and the generator's operating point.

    ``a``, ``b``: binormal parameters; ``cov``: (2, 2) covariance of (a, b);
    ``nu``: generator sensitivity (fraction of lesions with a candidate);
    ``lam``: generator false positives per image; ``n_pos``, ``n_neg``: candidates fitted;
    ``loglik``: log-likelihood at the optimum; ``converged``: optimiser success.
    """

    a: float
    b: float
    cov: np.ndarray
    nu: float = 1.0
    lam: float = 1.0
    n_pos: int = 0
    n_neg: int = 0
    loglik: float = float("nan")
    converged: bool = True

    @property
    def se(self) -> tuple[float, float]:
        """Standard errors of (a, b)."""
        return float(np.sqrt(self.cov[0, 0])), float(np.sqrt(self.cov[1, 1]))

    def auc_score(self) -> float:
        """Area under the binormal candidate ROC, ``Az = Phi(a / sqrt(1 + b^2))``."""
        return float(stats.norm.cdf(self.a / np.sqrt(1.0 + self.b ** 2)))

    def sensitivity(self, fp_rates, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fitted FROC sensitivity at ``fp_rates`` (F,) false positives per image.

        Returns ``(sens, lo, hi)``, each shape (F,): the model's sensitivity and its
        ``level`` interval.  Rates above ``lam`` (beyond the generator's own operating
        point, where the FROC ends) are NaN; rate 0 gives 0.
        """
        f = np.atleast_1d(np.asarray(fp_rates, float))
        with np.errstate(divide="ignore", invalid="ignore"):
            fpf = f / self.lam
            x = stats.norm.ppf(np.where((fpf > 0) & (fpf < 1), fpf, np.nan))
            z = self.a + self.b * x
            var = self.cov[0, 0] + x ** 2 * self.cov[1, 1] + 2 * x * self.cov[0, 1]
            sd = np.sqrt(np.maximum(var, 0.0))
            q = stats.norm.ppf(0.5 + level / 2)
            out = [self.nu * stats.norm.cdf(v) for v in (z, z - q * sd, z + q * sd)]
        # the curve's two ends are exact under the model: (0, 0) and (lam, nu)
        ends = np.where(f == 0, 0.0, np.where(np.isclose(f, self.lam), self.nu, np.nan))
        return tuple(np.where(np.isnan(ends), o, ends) for o in out)  # type: ignore[return-value]

    def froc_curve(self, n_points: int = 200) -> tuple[np.ndarray, np.ndarray]:
        """The fitted FROC: ``(fps, sensitivity)``, each (n_points,), fps from 0 to ``lam``."""
        fps = np.linspace(0.0, self.lam, n_points)
        return fps, self.sensitivity(fps)[0]


def _categories(pos: np.ndarray, neg: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts per ordinal category (ascending score) of positives and negatives: (K,), (K,)."""
    pooled = np.r_[pos, neg]
    uniq = np.unique(pooled)
    if uniq.size <= n_bins:
        edges = (uniq[:-1] + uniq[1:]) / 2
    else:
        edges = np.unique(np.quantile(pooled, np.linspace(0, 1, n_bins + 1)[1:-1], method="higher"))
        edges = edges[(edges > uniq[0])]
    k = edges.size + 1
    # category = number of edges strictly below the score ("higher" quantiles sit on data)
    cp = np.bincount(np.searchsorted(edges, pos, side="left"), minlength=k)
    cn = np.bincount(np.searchsorted(edges, neg, side="left"), minlength=k)
    return cp.astype(float), cn.astype(float)


def _nll(theta: np.ndarray, cp: np.ndarray, cn: np.ndarray) -> float:
    """Negative log-likelihood in natural parameters (a, b, c_1..c_{K-1})."""
    a, b, c = theta[0], theta[1], theta[2:]
    if b <= 0 or np.any(np.diff(c) <= 0):
        return np.inf
    cc = np.r_[-np.inf, c, np.inf]
    pn = np.diff(stats.norm.cdf(cc))
    pp = np.diff(stats.norm.cdf(b * cc - a))
    tiny = 1e-300
    return float(-(cn @ np.log(np.maximum(pn, tiny)) + cp @ np.log(np.maximum(pp, tiny))))


def _to_natural(u: np.ndarray) -> np.ndarray:
    return np.r_[u[0], np.exp(u[1]), u[2] + np.r_[0.0, np.cumsum(np.exp(u[3:]))]]


def _hessian(f, x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of scalar ``f`` at ``x``."""
    n = x.size
    hess = np.empty((n, n))
    e = np.eye(n) * h
    for i in range(n):
        for j in range(i, n):
            v = (f(x + e[i] + e[j]) - f(x + e[i] - e[j]) - f(x - e[i] + e[j]) + f(x - e[i] - e[j]))
            hess[i, j] = hess[j, i] = v / (4 * h * h)
    return hess


def fit_binormal_roc(y_true, y_score, *, n_bins: int = N_BINS) -> BinormalFit:
    """ML binormal ROC of scores ``y_score`` (n,) with binary ``y_true`` (n,).

    Returns a :class:`BinormalFit` with ``nu = lam = 1`` (a plain ROC).  Warns and returns
    NaN parameters when a class is empty or the classes are perfectly separated (the ML
    estimate does not exist).
    """
    y, s = check_scores(y_true, y_score)
    pos, neg = s[y], s[~y]
    nan = BinormalFit(float("nan"), float("nan"), np.full((2, 2), np.nan), converged=False,
                      n_pos=pos.size, n_neg=neg.size)
    if pos.size == 0 or neg.size == 0 or pos.min() > neg.max():
        warnings.warn("binormal fit: a class is empty or the classes are perfectly separated; "
                      "no ML estimate, result is NaN", RuntimeWarning, stacklevel=2)
        return nan
    cp, cn = _categories(pos, neg, n_bins)
    # start: thresholds from the negatives' cumulative fractions, a from the mean positive
    cum = np.clip(np.cumsum(cn)[:-1] / cn.sum(), 0.5 / cn.sum(), 1 - 0.5 / cn.sum())
    c0 = np.maximum.accumulate(stats.norm.ppf(cum)) + np.arange(cum.size) * 1e-3
    cump = np.clip(np.cumsum(cp)[:-1] / cp.sum(), 0.5 / cp.sum(), 1 - 0.5 / cp.sum())
    a0 = float(np.median(c0 - stats.norm.ppf(cump)))
    u0 = np.r_[a0, 0.0, c0[0], np.log(np.maximum(np.diff(c0), 1e-3))]
    res = optimize.minimize(lambda u: _nll(_to_natural(u), cp, cn), u0, method="BFGS",
                            options={"gtol": 1e-6, "maxiter": 2000})
    theta = _to_natural(res.x)
    hess = _hessian(lambda t: _nll(t, cp, cn), theta)
    try:
        cov = np.linalg.inv(hess)[:2, :2]
    except np.linalg.LinAlgError:
        cov = np.full((2, 2), np.nan)
    ok = bool(res.success or res.status == 2) and bool(np.all(np.isfinite(cov)))
    if not ok:
        warnings.warn(f"binormal fit did not converge cleanly ({res.message})", RuntimeWarning,
                      stacklevel=2)
    return BinormalFit(float(theta[0]), float(theta[1]), cov, n_pos=int(pos.size),
                       n_neg=int(neg.size), loglik=-float(res.fun), converged=ok)


def fit_binormal_froc(det: Detections, *, n_bins: int = N_BINS) -> BinormalFit:
    """IDCA FROC fit of a detector: the binormal ROC of its candidates, scaled by the
    generator's operating point (see the module docstring for what is assumed)."""
    if det.n_lesions == 0:
        raise MedftError("FROC needs at least one ground-truth lesion; the lesion list is empty")
    score, is_lesion, _, _, _ = det.events()
    lam, nu = det.generator_operating_point()
    fit = fit_binormal_roc(is_lesion.astype(int), score, n_bins=n_bins)
    return BinormalFit(fit.a, fit.b, fit.cov, nu=nu, lam=lam, n_pos=fit.n_pos, n_neg=fit.n_neg,
                       loglik=fit.loglik, converged=fit.converged)
