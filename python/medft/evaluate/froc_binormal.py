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
* ``nu`` and ``lam`` are estimated from the candidate set (found lesions / lesions,
  false-positive candidates / images) and are uncertain too: their covariance is the
  case-level (cluster) sandwich variance of the two ratio estimators, so cases, not
  candidates, are the independent units for the generator.  Given the counts, the scores
  carry no information on (nu, lam), so (a, b) and (nu, lam) are uncorrelated.
* Intervals use the delta method on all four parameters (a, b, nu, lam): (a, b) from the
  inverse observed Fisher information of the binned likelihood (the Hessian is the central
  difference of the analytic gradient), (nu, lam) as above.  The interval is formed on the
  logit scale, ``logit(s) +- q sd / (s (1 - s))``, which keeps it inside (0, 1) and is
  closer to normal than ``s`` itself near a ceiling.  A fit whose ``gen_cov`` is zero (or
  None) gives the interval conditional on the generator's operating point.
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
    ``loglik``: log-likelihood at the optimum; ``converged``: optimiser success;
    ``gen_cov``: (2, 2) covariance of (nu, lam), None when they are held fixed.
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
    gen_cov: np.ndarray | None = None

    @property
    def se(self) -> tuple[float, float]:
        """Standard errors of (a, b)."""
        return float(np.sqrt(self.cov[0, 0])), float(np.sqrt(self.cov[1, 1]))

    @property
    def param_cov(self) -> np.ndarray:
        """(4, 4) covariance of (a, b, nu, lam); (a, b) and (nu, lam) are uncorrelated."""
        out = np.zeros((4, 4))
        out[:2, :2] = self.cov
        if self.gen_cov is not None:
            out[2:, 2:] = self.gen_cov
        return out

    def auc_score(self) -> float:
        """Area under the binormal candidate ROC, ``Az = Phi(a / sqrt(1 + b^2))``."""
        return float(stats.norm.cdf(self.a / np.sqrt(1.0 + self.b ** 2)))

    def sensitivity(self, fp_rates, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fitted FROC sensitivity at ``fp_rates`` (F,) false positives per image.

        Returns ``(sens, lo, hi)``, each shape (F,): the model's sensitivity and its
        ``level`` delta-method interval over (a, b, nu, lam) on the logit scale.  Rates
        above ``lam`` (beyond the generator's own operating point, where the FROC ends) are
        NaN; rate 0 gives 0; rate ``lam`` gives ``nu`` with the interval of ``nu`` alone.
        """
        f = np.atleast_1d(np.asarray(fp_rates, float))
        q = stats.norm.ppf(0.5 + level / 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            fpf = f / self.lam
            x = stats.norm.ppf(np.where((fpf > 0) & (fpf < 1), fpf, np.nan))
            z = self.a + self.b * x
            sens = self.nu * stats.norm.cdf(z)
            grad = self._gradient(f, x, z)
            var = np.einsum("if,ij,jf->f", grad, self.param_cov, grad)
            var = np.where(np.isclose(f, self.lam), self.param_cov[2, 2], var)
        # the curve's two ends are exact under the model: (0, 0) and (lam, nu)
        ends = np.where(f == 0, 0.0, np.where(np.isclose(f, self.lam), self.nu, np.nan))
        sens = np.where(np.isnan(ends), sens, ends)
        lo, hi = _logit_interval(sens, var, q)
        return sens, lo, hi

    def _gradient(self, f: np.ndarray, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        """(4, F) derivatives of ``nu Phi(a + b x)``, ``x = Phi^-1(f / lam)``, w.r.t. (a, b, nu, lam)."""
        dz = self.nu * stats.norm.pdf(z)
        dx_dlam = -(f / self.lam ** 2) / stats.norm.pdf(x)
        return np.vstack([dz, dz * x, stats.norm.cdf(z), dz * self.b * dx_dlam])

    def froc_curve(self, n_points: int = 200) -> tuple[np.ndarray, np.ndarray]:
        """The fitted FROC: ``(fps, sensitivity)``, each (n_points,), fps from 0 to ``lam``."""
        fps = np.linspace(0.0, self.lam, n_points)
        return fps, self.sensitivity(fps)[0]


def _logit_interval(s: np.ndarray, var: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray]:
    """``expit(logit(s) -+ q sd)`` with ``sd = sqrt(var) / (s (1 - s))`` (delta method).

    At s = 0 or 1, or with zero variance, the interval is the point itself."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = (s > 0) & (s < 1)
        logit = np.log(s / (1 - s))
        sd = np.sqrt(np.maximum(var, 0.0)) / (s * (1 - s))
        lo = np.where(inner, 1 / (1 + np.exp(-(logit - q * sd))), s)
        hi = np.where(inner, 1 / (1 + np.exp(-(logit + q * sd))), s)
    return lo, hi


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


def _cell_probs(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Category probabilities of negatives and positives, (K,) each, in natural parameters."""
    a, b, c = theta[0], theta[1], theta[2:]
    cc = np.r_[-np.inf, c, np.inf]
    return np.diff(stats.norm.cdf(cc)), np.diff(stats.norm.cdf(b * cc - a))


def _nll(theta: np.ndarray, cp: np.ndarray, cn: np.ndarray) -> float:
    """Negative log-likelihood in natural parameters (a, b, c_1..c_{K-1})."""
    if theta[1] <= 0 or np.any(np.diff(theta[2:]) <= 0):
        return np.inf
    pn, pp = _cell_probs(theta)
    tiny = 1e-300
    return float(-(cn @ np.log(np.maximum(pn, tiny)) + cp @ np.log(np.maximum(pp, tiny))))


def _nll_grad(theta: np.ndarray, cp: np.ndarray, cn: np.ndarray) -> np.ndarray:
    """Analytic gradient of :func:`_nll` in natural parameters, shape (K + 1,).

    With ``p_k = F(c_k) - F(c_{k-1})`` the derivative of ``-sum n_k log p_k`` with respect to
    a boundary ``c_j`` is ``-(n_j / p_j - n_{j+1} / p_{j+1}) F'(c_j)``; positives use
    ``F(c) = Phi(b c - a)``, negatives ``Phi(c)``."""
    a, b, c = theta[0], theta[1], theta[2:]
    pn, pp = _cell_probs(theta)
    wn, wp = cn / np.maximum(pn, 1e-300), cp / np.maximum(pp, 1e-300)
    dens_p = stats.norm.pdf(b * c - a)
    phi = np.r_[0.0, dens_p, 0.0]           # phi(b c - a) at every boundary, 0 at +-inf
    cphi = np.r_[0.0, c * dens_p, 0.0]
    g_a = -wp @ (phi[:-1] - phi[1:])
    g_b = -wp @ (cphi[1:] - cphi[:-1])
    g_c = -(wn[:-1] - wn[1:]) * stats.norm.pdf(c) - (wp[:-1] - wp[1:]) * b * dens_p
    return np.r_[g_a, g_b, g_c]


def _to_natural(u: np.ndarray) -> np.ndarray:
    """Unconstrained (a, log b, c_1, log(c_2 - c_1), ...) to natural (a, b, c_1, c_2, ...)."""
    return np.r_[u[0], np.exp(u[1]), u[2] + np.r_[0.0, np.cumsum(np.exp(u[3:]))]]


def _grad_u(u: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Chain rule: a natural-parameter gradient ``g`` expressed in the unconstrained ``u``."""
    gc = g[2:]
    tail = np.cumsum(gc[::-1])[::-1]  # tail[j] = sum of gc[j:], what c_j and later boundaries feel
    return np.r_[g[0], g[1] * np.exp(u[1]), tail[0], np.exp(u[3:]) * tail[1:]]


def _hessian(grad, x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Observed information: central differences of the analytic gradient ``grad`` at ``x``, symmetrised."""
    e = np.eye(x.size) * h
    cols = [(grad(x + e[i]) - grad(x - e[i])) / (2 * h) for i in range(x.size)]
    hess = np.array(cols)
    return (hess + hess.T) / 2


def _start(cp: np.ndarray, cn: np.ndarray) -> np.ndarray:
    """Starting point in ``u``: thresholds from the negatives' cumulative fractions, a from the
    median probit shift of the positives'."""
    cum = np.clip(np.cumsum(cn)[:-1] / cn.sum(), 0.5 / cn.sum(), 1 - 0.5 / cn.sum())
    c0 = np.maximum.accumulate(stats.norm.ppf(cum)) + np.arange(cum.size) * 1e-3
    cump = np.clip(np.cumsum(cp)[:-1] / cp.sum(), 0.5 / cp.sum(), 1 - 0.5 / cp.sum())
    a0 = float(np.median(c0 - stats.norm.ppf(cump)))
    return np.r_[a0, 0.0, c0[0], np.log(np.maximum(np.diff(c0), 1e-3))]


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
    if cp.size < 2:
        warnings.warn("binormal fit: every score is equal (one category, no threshold); no ML "
                      "estimate, result is NaN", RuntimeWarning, stacklevel=2)
        return nan
    res = optimize.minimize(lambda u: _nll(_to_natural(u), cp, cn), _start(cp, cn), method="BFGS",
                            jac=lambda u: _grad_u(u, _nll_grad(_to_natural(u), cp, cn)),
                            options={"gtol": 1e-6, "maxiter": 2000})
    theta = _to_natural(res.x)
    hess = _hessian(lambda t: _nll_grad(t, cp, cn), theta)
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


def generator_covariance(det: Detections) -> np.ndarray:
    """(2, 2) case-level covariance of the generator's (nu, lam).

    Both are ratio estimators over cases, ``nu = sum found_c / sum lesions_c`` and
    ``lam = sum fp_c / sum images_c``; their linearised (sandwich) covariance is
    ``C / (C - 1) sum_c u_c u_c'`` with ``u_c = ((found_c - nu lesions_c) / sum lesions,
    (fp_c - lam images_c) / sum images)``.  It equals the bootstrap-over-cases variance to
    first order and, unlike binomial/Poisson formulas, allows for cases that differ.
    """
    n_cases = len(det.case_ids)
    if n_cases < 2:
        return np.full((2, 2), np.nan)
    lesions = np.bincount(det.lesion_case, minlength=n_cases).astype(float)
    found_lesions = np.unique(det.hit[det.hit >= 0])
    found = np.bincount(det.lesion_case[found_lesions], minlength=n_cases).astype(float)
    fps = np.bincount(det.case[det.hit < 0], minlength=n_cases).astype(float)
    images = np.asarray(det.n_images, float)
    nu, lam = found.sum() / lesions.sum(), fps.sum() / images.sum()
    u = np.vstack([(found - nu * lesions) / lesions.sum(), (fps - lam * images) / images.sum()])
    return n_cases / (n_cases - 1) * (u @ u.T)


def fit_binormal_froc(det: Detections, *, n_bins: int = N_BINS) -> BinormalFit:
    """IDCA FROC fit of a detector: the binormal ROC of its candidates, scaled by the
    generator's operating point, with the case-level covariance of that operating point
    (see the module docstring for what is assumed)."""
    if det.n_lesions == 0:
        raise MedftError("FROC needs at least one ground-truth lesion; the lesion list is empty")
    score, is_lesion, _, _, _ = det.events()
    lam, nu = det.generator_operating_point()
    fit = fit_binormal_roc(is_lesion.astype(int), score, n_bins=n_bins)
    return BinormalFit(fit.a, fit.b, fit.cov, nu=nu, lam=lam, n_pos=fit.n_pos, n_neg=fit.n_neg,
                       loglik=fit.loglik, converged=fit.converged, gen_cov=generator_covariance(det))
