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

* Cases (videos, patients), not candidates, are the independent units.  Candidates of one
  case may be correlated, and with polyp counting one polyp seen in many frames is many
  lesions of one video; Bunch's independence of candidates (which Edwards et al. adopt for
  the likelihood) is kept only as a working model for the point estimate.
* A lesion hit by several candidates enters the candidate ROC once, with its highest
  score, which makes the scaled ROC agree with medft's empirical FROC counting
  (:mod:`medft.evaluate.froc`); lesions the generator missed only lower ``nu``.
* The candidate ROC is binormal: some monotone transform of the scores makes negatives
  N(0, 1) and positives N(a/b, 1/b^2).  Scores are grouped into at most ``n_bins``
  ordinal categories at pooled-score quantiles (as ROCFIT/LABROC-style software groups
  continuous data) and (a, b) and the K-1 category boundaries are fitted by ML
  (Dorfman & Alf 1969).  Fewer than 3 categories leave (a, b) unidentified: n/a.
* ``nu`` and ``lam`` are the ratio estimators found lesions / lesions and false-positive
  candidates / images.
* The covariance of (a, b, nu, lam) is the cluster-robust (sandwich) covariance over
  cases: each case's influence on (a, b) is ``H^-1`` times the sum of its events' scores
  of the binned likelihood (H the observed information, the central difference of the
  analytic gradient), its influence on (nu, lam) the linearised ratio estimators; the
  covariance is ``C / (C - 1)`` times the sum of the influences' outer products.  It keeps
  the correlation between cases' lesions and false positives that independent-candidate
  formulas drop, and reduces to the inverse information when candidates are independent.
* Intervals use the delta method on all four parameters, formed on the logit scale,
  ``logit(s) +- q sd / (s (1 - s))``, which keeps them inside (0, 1) and is closer to
  normal than ``s`` itself near a ceiling; ``q`` is Student's t quantile with C - 1
  degrees of freedom (a small-sample allowance for few cases; normal without clusters).
  A fit without clusters (a plain ROC, or ``gen_cov`` None) gives the model-based
  interval conditional on the generator's operating point.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

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
    ``gen_cov``: (2, 2) covariance of (nu, lam), None when they are held fixed;
    ``cross_cov``: (2, 2) covariance of (a, b) with (nu, lam), None for zero;
    ``n_clusters``: cases behind the sandwich covariance (0: model-based, normal quantile);
    ``reason``: why no estimate exists ("" when there is one; otherwise every figure is NaN).
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
    cross_cov: np.ndarray | None = None
    n_clusters: int = 0
    reason: str = ""

    @property
    def se(self) -> tuple[float, float]:
        """Standard errors of (a, b)."""
        return float(np.sqrt(self.cov[0, 0])), float(np.sqrt(self.cov[1, 1]))

    @property
    def param_cov(self) -> np.ndarray:
        """(4, 4) covariance of (a, b, nu, lam) (cross terms zero when ``cross_cov`` is None)."""
        out = np.zeros((4, 4))
        out[:2, :2] = self.cov
        if self.gen_cov is not None:
            out[2:, 2:] = self.gen_cov
        if self.cross_cov is not None:
            out[:2, 2:], out[2:, :2] = self.cross_cov, self.cross_cov.T
        return out

    def quantile(self, level: float = 0.95) -> float:
        """The interval's two-sided quantile: t with C - 1 df over C clusters, else normal."""
        if self.n_clusters >= 2:
            return float(stats.t.ppf(0.5 + level / 2, self.n_clusters - 1))
        return float(stats.norm.ppf(0.5 + level / 2))

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
        if self.reason:
            nan = np.full(f.shape, np.nan)
            return nan, nan, nan.copy()
        q = self.quantile(level)
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


def _edges(pos: np.ndarray, neg: np.ndarray, n_bins: int) -> np.ndarray:
    """Category boundaries (K - 1,) on the score scale: midpoints between distinct scores when
    there are at most ``n_bins`` of them, else pooled-score quantiles (``method="higher"``)."""
    pooled = np.r_[pos, neg]
    uniq = np.unique(pooled)
    if uniq.size <= n_bins:
        return (uniq[:-1] + uniq[1:]) / 2
    edges = np.unique(np.quantile(pooled, np.linspace(0, 1, n_bins + 1)[1:-1], method="higher"))
    return edges[(edges > uniq[0])]


def _category(edges: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Category of each score (ascending, 0..K-1): the number of edges strictly below it
    ("higher" quantiles sit on data, so a score equal to an edge falls below it)."""
    return np.searchsorted(edges, score, side="left")


def _categories(pos: np.ndarray, neg: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts per ordinal category (ascending score) of positives and negatives: (K,), (K,)."""
    edges = _edges(pos, neg, n_bins)
    k = edges.size + 1
    cp = np.bincount(_category(edges, pos), minlength=k)
    cn = np.bincount(_category(edges, neg), minlength=k)
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


def _not_available(reason: str, n_pos: int, n_neg: int) -> BinormalFit:
    warnings.warn(f"binormal fit: {reason}; result is n/a", RuntimeWarning, stacklevel=3)
    return BinormalFit(float("nan"), float("nan"), np.full((2, 2), np.nan), converged=False,
                       n_pos=n_pos, n_neg=n_neg, reason=reason)


def _cell_scores(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of ``log p_k`` in natural parameters for every category k: positives' and
    negatives', (K, K + 1) each.  With ``F(c_k) - F(c_{k-1})`` the cell probability,
    ``d p_k / d c_k = F'(c_k)`` and ``d p_k / d c_{k-1} = -F'(c_{k-1})``; positives have
    ``F(c) = Phi(b c - a)``, so also ``d/da = phi_{k-1} - phi_k``, ``d/db = c_k phi_k - c_{k-1} phi_{k-1}``."""
    b, c = theta[1], theta[2:]
    k = c.size + 1
    pn, pp = _cell_probs(theta)
    phi_p = np.r_[0.0, stats.norm.pdf(b * c - theta[0]), 0.0]
    cphi_p = np.r_[0.0, c * phi_p[1:-1], 0.0]
    phi_n = np.r_[0.0, stats.norm.pdf(c), 0.0]
    dp = np.zeros((k, k + 1))
    dn = np.zeros((k, k + 1))
    dp[:, 0] = phi_p[:-1] - phi_p[1:]
    dp[:, 1] = cphi_p[1:] - cphi_p[:-1]
    rows = np.arange(k - 1)
    dp[rows, 2 + rows] = b * phi_p[1:-1]        # upper boundary c_k of cell k
    dp[rows + 1, 2 + rows] = -b * phi_p[1:-1]   # lower boundary of cell k + 1
    dn[rows, 2 + rows] = phi_n[1:-1]
    dn[rows + 1, 2 + rows] = -phi_n[1:-1]
    return dp / np.maximum(pp, 1e-300)[:, None], dn / np.maximum(pn, 1e-300)[:, None]


def _case_influence(theta: np.ndarray, hess_inv: np.ndarray, edges: np.ndarray, y: np.ndarray,
                    s: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Each case's influence on (a, b): ``H^-1`` times the sum of its events' log-likelihood
    scores (:func:`_cell_scores` of the event's class and category), shape (C, 2)."""
    k = edges.size + 1
    cat = _category(edges, s)
    counts = np.zeros((n_groups, 2 * k))
    np.add.at(counts, (groups, np.where(y, cat, k + cat)), 1.0)
    score = counts @ np.vstack(_cell_scores(theta))  # (C, P) per-case score
    score -= score.mean(axis=0)  # zero at the exact optimum; removes the optimiser's residual
    return (score @ hess_inv.T)[:, :2]


def _fit(y: np.ndarray, s: np.ndarray, n_bins: int, groups: np.ndarray | None, n_groups: int
         ) -> tuple[BinormalFit, np.ndarray | None]:
    """The ML fit and, with ``groups``, the (C, 2) case influences on (a, b)."""
    pos, neg = s[y], s[~y]
    if pos.size == 0 or neg.size == 0:
        return _not_available(f"no {'positive' if pos.size == 0 else 'negative'} candidates",
                              pos.size, neg.size), None
    if pos.min() > neg.max():
        return _not_available("the classes are perfectly separated (no ML estimate)", pos.size, neg.size), None
    edges = _edges(pos, neg, n_bins)
    if edges.size < 2:
        return _not_available(f"scores take {edges.size + 1} distinct value(s); (a, b) need at least 3 "
                              "score categories", pos.size, neg.size), None
    cp, cn = _categories(pos, neg, n_bins)
    res = optimize.minimize(lambda u: _nll(_to_natural(u), cp, cn), _start(cp, cn), method="BFGS",
                            jac=lambda u: _grad_u(u, _nll_grad(_to_natural(u), cp, cn)),
                            options={"gtol": 1e-6, "maxiter": 2000})
    theta = _to_natural(res.x)
    hess = _hessian(lambda t: _nll_grad(t, cp, cn), theta)
    if not (np.all(np.isfinite(hess)) and np.linalg.eigvalsh(hess).min() > 0):
        return _not_available("the information matrix is not positive definite (the fit is not "
                              "identifiable from these scores)", pos.size, neg.size), None
    if not (res.success or res.status == 2):
        return _not_available(f"the optimiser did not converge ({res.message})", pos.size, neg.size), None
    hess_inv = np.linalg.inv(hess)
    fit = BinormalFit(float(theta[0]), float(theta[1]), hess_inv[:2, :2], n_pos=int(pos.size),
                      n_neg=int(neg.size), loglik=-float(res.fun))
    if groups is None:
        return fit, None
    return fit, _case_influence(theta, hess_inv, edges, y, s, groups, n_groups)


def _sandwich(influence: np.ndarray) -> np.ndarray:
    """``C / (C - 1) sum_c u_c u_c'`` of case influences (C, P): (P, P)."""
    c = influence.shape[0]
    return c / (c - 1) * influence.T @ influence


def fit_binormal_roc(y_true, y_score, *, n_bins: int = N_BINS, groups=None) -> BinormalFit:
    """ML binormal ROC of scores ``y_score`` (n,) with binary ``y_true`` (n,).

    Returns a :class:`BinormalFit` with ``nu = lam = 1`` (a plain ROC).  ``cov`` is the
    inverse observed information, or with ``groups`` (n,) int cluster ids the cluster-robust
    sandwich covariance over those clusters.  Warns and returns an n/a fit (NaN figures and a
    ``reason``) when no ML estimate exists: a class is empty, the classes are perfectly
    separated, fewer than 3 score categories, an information matrix that is not positive
    definite, or no convergence.
    """
    y, s = check_scores(y_true, y_score)
    if groups is None:
        return _fit(y, s, n_bins, None, 0)[0]
    g = np.unique(np.asarray(groups), return_inverse=True)[1].ravel()
    n_groups = int(g.max()) + 1 if g.size else 0
    if n_groups < 2:
        return _not_available(f"{n_groups} cluster(s); a cluster-robust variance needs at least 2",
                              int(y.sum()), int((~y).sum()))
    fit, infl = _fit(y, s, n_bins, g, n_groups)
    if fit.reason:
        return fit
    return replace(fit, cov=_sandwich(infl), n_clusters=n_groups)


def _generator_influence(det: Detections) -> np.ndarray:
    """Each case's influence on (nu, lam), shape (C, 2): ``((found_c - nu lesions_c) / sum
    lesions, (fp_c - lam images_c) / sum images)``, the linearised ratio estimators."""
    n_cases = len(det.case_ids)
    lesions = np.bincount(det.lesion_case, minlength=n_cases).astype(float)
    found_lesions = np.unique(det.hit[det.hit >= 0])
    found = np.bincount(det.lesion_case[found_lesions], minlength=n_cases).astype(float)
    fps = np.bincount(det.case[det.hit < 0], minlength=n_cases).astype(float)
    images = np.asarray(det.n_images, float)
    nu, lam = found.sum() / lesions.sum(), fps.sum() / images.sum()
    return np.c_[(found - nu * lesions) / lesions.sum(), (fps - lam * images) / images.sum()]


def generator_covariance(det: Detections) -> np.ndarray:
    """(2, 2) case-level covariance of the generator's (nu, lam).

    Both are ratio estimators over cases, ``nu = sum found_c / sum lesions_c`` and
    ``lam = sum fp_c / sum images_c``; their linearised (sandwich) covariance is
    ``C / (C - 1) sum_c u_c u_c'`` with ``u_c = ((found_c - nu lesions_c) / sum lesions,
    (fp_c - lam images_c) / sum images)``.  It equals the bootstrap-over-cases variance to
    first order and, unlike binomial/Poisson formulas, allows for cases that differ.
    """
    if len(det.case_ids) < 2:
        return np.full((2, 2), np.nan)
    return _sandwich(_generator_influence(det))


def fit_binormal_froc(det: Detections, *, n_bins: int = N_BINS) -> BinormalFit:
    """IDCA FROC fit of a detector: the binormal ROC of its candidates, scaled by the
    generator's operating point, with the joint case-level (sandwich) covariance of
    (a, b, nu, lam) (see the module docstring for what is assumed)."""
    if det.n_lesions == 0:
        raise MedftError("FROC needs at least one ground-truth lesion; the lesion list is empty")
    score, is_lesion, group, _, _ = det.events()
    lam, nu = det.generator_operating_point()
    n_cases = len(det.case_ids)
    if n_cases < 2:
        fit = _not_available(f"{n_cases} case; a case-level variance needs at least 2", int(is_lesion.sum()),
                             int((~is_lesion).sum()))
        return replace(fit, nu=nu, lam=lam)
    fit, infl = _fit(is_lesion, np.asarray(score, float), n_bins, group, n_cases)
    if fit.reason:
        return replace(fit, nu=nu, lam=lam)
    cov = _sandwich(np.c_[infl, _generator_influence(det)])
    return replace(fit, cov=cov[:2, :2], nu=nu, lam=lam, gen_cov=cov[2:, 2:], cross_cov=cov[:2, 2:],
                   n_clusters=n_cases)
