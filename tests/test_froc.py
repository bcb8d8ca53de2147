"""FROC counting on hand-built cases, and the Edwards et al. binormal FROC fit."""

import warnings

import numpy as np
import pytest
from medft.errors import MedftError
from medft.evaluate import froc_binormal
from medft.evaluate.froc import Detections, froc_bootstrap, froc_curve, sensitivity_at_fp_score
from medft.evaluate.froc_binormal import BinormalFit, fit_binormal_froc, fit_binormal_roc, generator_covariance
from scipy import stats


def hand_case() -> Detections:
    """Cases A (3 frames), B (2 frames), C (5 frames, no candidate).

    Lesions: A/L1 hit by two candidates (0.9, 0.3), A/L2 hit by one (0.5), B/L3 and C/L4
    missed by the generator.  False-positive candidates: A 0.7, B 0.6, B 0.2.
    """
    return Detections.from_ids(
        cand_case=["A", "A", "A", "A", "B", "B"],
        cand_lesion=["L1", "L1", "L2", "", "", None],
        cand_score=[0.9, 0.3, 0.5, 0.7, 0.6, 0.2],
        lesion_case=["A", "A", "B", "C"], lesion_key=["L1", "L2", "L3", "L4"],
        case_ids=["A", "B", "C"], n_images=[3, 2, 5])


def test_froc_hand_computed_points():
    fps, sens, thr = froc_curve(hand_case())
    # 10 images, 4 lesions; L1's second candidate (0.3) is neither a TP event nor an FP
    np.testing.assert_allclose(fps, [0, 0, 0.1, 0.2, 0.2, 0.3])
    np.testing.assert_allclose(sens, [0, 0.25, 0.25, 0.25, 0.5, 0.5])
    np.testing.assert_allclose(thr, [np.inf, 0.9, 0.7, 0.6, 0.5, 0.2])


def test_ceiling_is_generator_sensitivity():
    det = hand_case()
    assert det.generator_operating_point() == pytest.approx((0.3, 0.5))
    assert froc_curve(det)[1].max() == 0.5


def test_sensitivity_at_fp_step_convention():
    got = sensitivity_at_fp_score(hand_case(), [0, 0.1, 0.15, 0.2, 5.0])
    np.testing.assert_allclose(got, [0.25, 0.25, 0.25, 0.5, 0.5])


def test_tied_scores_enter_together():
    det = Detections.from_ids(["A", "A"], ["L1", ""], [0.5, 0.5], ["A"], ["L1"], ["A"], [4])
    fps, sens, _ = froc_curve(det)
    np.testing.assert_allclose(fps, [0, 0.25])
    np.testing.assert_allclose(sens, [0, 1.0])


def test_polyp_occurrences_counted_per_frame():
    # the same polyp seen in frames 1 and 2 is two lesions; only frame 1's is detected
    det = Detections.from_ids(["v", "v"], [("1", "p"), ""], [0.8, 0.4], ["v", "v"],
                              [("1", "p"), ("2", "p")], ["v"], [10])
    fps, sens, _ = froc_curve(det)
    assert sens.max() == 0.5
    np.testing.assert_allclose(fps[-1], 0.1)


@pytest.mark.parametrize("kwargs, message", [
    ({"cand_case": ["A", "Z"]}, "case 'Z' is not in the case list"),
    ({"cand_lesion": ["L9", ""]}, "lesion 'L9' of case 'A'"),
    ({"cand_score": [0.5, float("nan")]}, "finite"),
    ({"n_images": [0]}, "must be > 0"),
    ({"lesion_key": ["L1", "L1"], "lesion_case": ["A", "A"]}, "listed twice"),
])
def test_bad_ids_are_named(kwargs, message):
    base = dict(cand_case=["A", "A"], cand_lesion=["L1", ""], cand_score=[0.5, 0.4],
                lesion_case=["A"], lesion_key=["L1"], case_ids=["A"], n_images=[2])
    base.update(kwargs)
    with pytest.raises(MedftError, match=message):
        Detections.from_ids(**base)


def test_empty_lesion_list_is_an_error():
    det = Detections.from_ids(["A"], [""], [0.5], [], [], ["A"], [2])
    with pytest.raises(MedftError, match="lesion list is empty"):
        froc_curve(det)


def test_bootstrap_reproducible_and_centred():
    det = hand_case()
    a = froc_bootstrap(det, [0.1, 0.2], n_boot=200, seed=3)
    b = froc_bootstrap(det, [0.1, 0.2], n_boot=200, seed=3)
    c = froc_bootstrap(det, [0.1, 0.2], n_boot=200, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (200, 2)
    ones = np.ones((1, 3))
    np.testing.assert_allclose(froc_bootstrap(det, [0.1, 0.2], weights=ones)[0], [0.25, 0.5])


def _simulate(rng, a, b, n_pos, n_neg):
    neg = rng.normal(0, 1, n_neg)
    pos = rng.normal(a / b, 1 / b, n_pos)
    scores = 1 / (1 + np.exp(-np.r_[pos, neg]))  # any monotone transform: the ROC is unchanged
    return np.r_[np.ones(n_pos), np.zeros(n_neg)], scores


def test_binormal_fit_recovers_parameters_within_ci():
    """12 simulations (seeds 0-11) of a=1.2, b=0.8 with 200 positives and 1200 negatives:
    the 95% interval of each parameter covers the truth in at least 9 of 12."""
    a, b = 1.2, 0.8
    cover_a = cover_b = 0
    estimates = []
    for seed in range(12):
        y, s = _simulate(np.random.default_rng(seed), a, b, 200, 1200)
        fit = fit_binormal_roc(y, s, n_bins=10)
        assert fit.converged
        se_a, se_b = fit.se
        cover_a += abs(fit.a - a) < 1.96 * se_a
        cover_b += abs(fit.b - b) < 1.96 * se_b
        estimates.append((fit.a, fit.b))
    assert cover_a >= 9 and cover_b >= 9
    np.testing.assert_allclose(np.mean(estimates, axis=0), [a, b], atol=0.1)


def test_binormal_froc_is_scaled_roc():
    rng = np.random.default_rng(0)
    y, s = _simulate(rng, 1.5, 1.0, 150, 900)
    pos, neg = s[y == 1], s[y == 0]
    # 200 lesions (20 per case), 150 found once each; 900 FP candidates over 10 cases of 30 images
    case = [f"c{i % 10}" for i in range(200)]
    det = Detections.from_ids([case[i] for i in range(pos.size)] + [f"c{i % 10}" for i in range(neg.size)],
                              [f"L{i}" for i in range(pos.size)] + [""] * neg.size, s, case,
                              [f"L{i}" for i in range(200)], [f"c{i}" for i in range(10)], [30] * 10)
    fit = fit_binormal_froc(det)
    assert fit.nu == pytest.approx(0.75) and fit.lam == pytest.approx(3.0)
    sens, lo, hi = fit.sensitivity([0.0, 0.3, 3.0, 4.0])
    assert sens[0] == 0 and sens[2] == pytest.approx(0.75) and np.isnan(sens[3])
    roc_fit = fit_binormal_roc(y, s)
    expected = 0.75 * stats.norm.cdf(roc_fit.a + roc_fit.b * stats.norm.ppf(0.1))  # FPF = 0.3 / 3
    assert sens[1] == pytest.approx(expected, rel=1e-6)
    assert lo[1] < sens[1] < hi[1]


def test_binormal_delta_method_hand_value():
    """Conditional interval (nu, lam fixed) at f = 0.5 of (a, b) = (1, 1), var a = 0.04:
    x = 0, z = 1, s = Phi(1) = 0.8413447, sd(s) = 0.2 phi(1) = 0.0483941; on the logit scale
    logit s = 1.6682679, sd = 0.0483941 / (s (1 - s)) = 0.3625470, interval
    expit(1.6682679 -+ 1.959964 * 0.3625470)."""
    fit = BinormalFit(1.0, 1.0, np.array([[0.04, 0.0], [0.0, 0.0]]), nu=1.0, lam=1.0)
    sens, lo, hi = fit.sensitivity([0.5])
    np.testing.assert_allclose([sens[0], lo[0], hi[0]], [0.8413447, 0.7226588, 0.9152000], atol=1e-6)
    assert fit.auc_score() == pytest.approx(0.7602499, abs=1e-6)


def test_binormal_interval_at_generator_end_is_that_of_nu():
    """At f = lam the FROC is nu: logit 0.8 = 1.3862944 -+ 1.959964 * 0.04 / 0.16."""
    fit = BinormalFit(1.0, 1.0, np.eye(2) * 0.01, nu=0.8, lam=2.0, gen_cov=np.diag([0.0016, 0.01]))
    sens, lo, hi = fit.sensitivity([2.0])
    np.testing.assert_allclose([sens[0], lo[0], hi[0]], [0.8, 0.7101893, 0.8671839], atol=1e-6)


def test_binormal_delta_method_matches_numerical_jacobian():
    """The interval's variance equals J cov J' with J the central-difference Jacobian of the
    closed-form FROC ``nu Phi(a + b Phi^-1(f / lam))`` in (a, b, nu, lam)."""
    cov_ab = np.array([[0.02, 0.005], [0.005, 0.01]])
    gen = np.array([[0.0009, 0.0004], [0.0004, 0.04]])
    fit = BinormalFit(1.3, 0.7, cov_ab, nu=0.85, lam=4.0, gen_cov=gen)
    f = np.array([0.5, 1.0, 2.0, 3.0])

    def froc(theta):
        a, b, nu, lam = theta
        return nu * stats.norm.cdf(a + b * stats.norm.ppf(f / lam))

    theta, h = np.array([1.3, 0.7, 0.85, 4.0]), 1e-6
    jac = np.array([(froc(theta + h * e) - froc(theta - h * e)) / (2 * h) for e in np.eye(4)]).T
    full = np.zeros((4, 4))
    full[:2, :2], full[2:, 2:] = cov_ab, gen
    sd = np.sqrt(np.einsum("fi,ij,fj->f", jac, full, jac))
    s = froc(theta)
    logit = np.log(s / (1 - s))
    q = stats.norm.ppf(0.975)
    sens, lo, hi = fit.sensitivity(f)
    np.testing.assert_allclose(sens, s, rtol=1e-12)
    np.testing.assert_allclose(lo, 1 / (1 + np.exp(-(logit - q * sd / (s * (1 - s))))), rtol=1e-6)
    np.testing.assert_allclose(hi, 1 / (1 + np.exp(-(logit + q * sd / (s * (1 - s))))), rtol=1e-6)
    # the generator's uncertainty widens the interval
    fixed = BinormalFit(1.3, 0.7, cov_ab, nu=0.85, lam=4.0).sensitivity(f)
    assert np.all(hi - lo > fixed[2] - fixed[1])


def test_generator_covariance_by_hand():
    """hand_case: nu = 2/4, lam = 3/10.  Per case (A, B, C): found 2, 0, 0 of lesions 2, 1, 1;
    FPs 1, 2, 0 over images 3, 2, 5.  u_nu = (found - nu lesions) / 4 = (.25, -.125, -.125),
    u_lam = (fp - lam images) / 10 = (.01, .14, -.15); covariance 3/2 * sum u u'."""
    cov = generator_covariance(hand_case())
    np.testing.assert_allclose(cov, [[0.140625, 0.005625], [0.005625, 0.0633]], rtol=1e-12)


def test_generator_covariance_matches_case_bootstrap():
    """With 80 cases the sandwich variances are within 15% of those of (nu, lam) over 2000
    explicit case resamples (bootstrap by materialised arrays, no shared code), and the
    correlations within 0.1."""
    rng = np.random.default_rng(1)
    n = 80
    lesions, images = rng.poisson(2, n) + 1, rng.integers(1, 4, n)
    found, fps = rng.binomial(lesions, 0.7), rng.poisson(3 * images)
    cand_case, cand_lesion, lesion_case, lesion_key = [], [], [], []
    for c in range(n):
        lesion_case += [c] * lesions[c]
        lesion_key += [f"L{j}" for j in range(lesions[c])]
        cand_case += [c] * (found[c] + fps[c])
        cand_lesion += [f"L{j}" for j in range(found[c])] + [""] * fps[c]
    det = Detections.from_ids(cand_case, cand_lesion, rng.random(len(cand_case)), lesion_case, lesion_key,
                              list(range(n)), images)
    draws = rng.integers(0, n, size=(2000, n))
    boot = np.c_[found[draws].sum(1) / lesions[draws].sum(1), fps[draws].sum(1) / images[draws].sum(1)]
    got, ref = generator_covariance(det), np.cov(boot.T)
    np.testing.assert_allclose(np.diag(got), np.diag(ref), rtol=0.15)
    corr = [c[0, 1] / np.sqrt(c[0, 0] * c[1, 1]) for c in (got, ref)]
    assert corr[0] == pytest.approx(corr[1], abs=0.1)


def test_nll_gradient_matches_finite_differences():
    rng = np.random.default_rng(2)
    cp, cn = rng.integers(1, 20, 8).astype(float), rng.integers(1, 30, 8).astype(float)
    theta = np.r_[1.2, 0.8, np.sort(rng.normal(size=7))]
    h = 1e-6
    numeric = [(froc_binormal._nll(theta + h * e, cp, cn) - froc_binormal._nll(theta - h * e, cp, cn)) / (2 * h)
               for e in np.eye(theta.size)]
    np.testing.assert_allclose(froc_binormal._nll_grad(theta, cp, cn), numeric, rtol=1e-5, atol=1e-4)


def test_binormal_perfect_separation_warns_nan():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        fit = fit_binormal_roc([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1])
    assert np.isnan(fit.a) and any("separated" in str(x.message) for x in w)


def test_binormal_roc_standard_errors_match_monte_carlo_spread():
    """Known truth: over 50 simulated sets (a=1.2, b=0.8; 150 positives, 450 negatives) the
    spread of the estimates equals the mean reported standard error within 25% (the spread's
    own Monte-Carlo error is about 10%), for a and b."""
    est, se = [], []
    for seed in range(50):
        y, s = _simulate(np.random.default_rng(100 + seed), 1.2, 0.8, 150, 450)
        fit = fit_binormal_roc(y, s)
        est.append((fit.a, fit.b))
        se.append(fit.se)
    ratio = np.std(est, axis=0, ddof=1) / np.sqrt(np.mean(np.square(se), axis=0))
    assert np.all((ratio > 0.75) & (ratio < 1.25)), ratio


def clustered_detections(rng, n_cases=25):
    """Cases whose lesions (5-15 each) and false positives (about 25) share a case effect."""
    cand_case, cand_lesion, scores, lesion_case, keys = [], [], [], [], []
    for c in range(n_cases):
        u, n_les, n_fp = rng.normal(), rng.integers(5, 16), rng.poisson(25)
        lesion_case += [c] * n_les
        keys += [f"L{j}" for j in range(n_les)]
        found = np.flatnonzero(rng.random(n_les) < 0.8)
        cand_case += [c] * (found.size + n_fp)
        cand_lesion += [f"L{j}" for j in found] + [""] * n_fp
        scores += list(1.5 + 0.8 * u + 0.6 * rng.normal(size=found.size)) + list(0.8 * u + 0.6 * rng.normal(size=n_fp))
    return Detections.from_ids(cand_case, cand_lesion, scores, lesion_case, keys, list(range(n_cases)),
                               np.full(n_cases, 10))


def test_binormal_froc_case_level_errors_match_monte_carlo_spread():
    """Known truth with correlated candidates (a case effect shared by a case's lesions and
    false positives): over 40 sets of 25 cases the spread of (a, b) equals the mean reported
    (sandwich) standard error within 25%; the independent-candidate (inverse-information)
    error is far smaller than the spread, so it would fail the same check."""
    est, se, naive = [], [], []
    for seed in range(40):
        det = clustered_detections(np.random.default_rng(seed))
        fit = fit_binormal_froc(det)
        assert fit.n_clusters == 25 and not fit.reason
        est.append((fit.a, fit.b))
        se.append(fit.se)
        score, is_lesion, *_ = det.events()
        naive.append(fit_binormal_roc(is_lesion.astype(int), score).se)
    spread = np.std(est, axis=0, ddof=1)
    ratio = spread / np.sqrt(np.mean(np.square(se), axis=0))
    assert np.all((ratio > 0.75) & (ratio < 1.25)), ratio
    assert np.all(spread / np.sqrt(np.mean(np.square(naive), axis=0)) > 1.5)


def independent_binned_ml(y, s, n_bins):
    """The ML binormal fit written from the model's definition: pooled-score quantile
    categories (``method="higher"``; a score equal to a boundary goes to the lower category),
    cell probabilities Phi(c_k) - Phi(c_k-1) (negatives) and Phi(b c_k - a) - Phi(b c_k-1 - a)
    (positives), maximised by Powell then BFGS (numerical gradients) from a = 1, b = 1.
    Returns (a, b, loglik)."""
    from scipy import optimize
    edges = np.unique(np.quantile(s, np.arange(1, n_bins) / n_bins, method="higher"))
    edges = edges[edges > s.min()]
    cat = np.array([np.sum(edges < v) for v in s])
    k = edges.size + 1
    cp, cn = np.bincount(cat[y == 1], minlength=k), np.bincount(cat[y == 0], minlength=k)

    def nll(u):
        a, b = u[0], np.exp(u[1])
        c = np.r_[-np.inf, u[2] + np.r_[0, np.cumsum(np.exp(u[3:]))], np.inf]
        pn, pp = np.diff(stats.norm.cdf(c)), np.diff(stats.norm.cdf(b * c - a))
        with np.errstate(divide="ignore", invalid="ignore"):
            v = -(cn @ np.log(pn) + cp @ np.log(pp))
        return v if np.isfinite(v) else 1e12

    c0 = stats.norm.ppf(np.clip(np.cumsum(cn)[:-1] / cn.sum(), 0.01, 0.99))
    u0 = np.r_[1.0, 0.0, c0[0], np.log(np.maximum(np.diff(c0), 1e-2))]
    res = optimize.minimize(nll, u0, method="Powell", options={"xtol": 1e-6, "ftol": 1e-10})
    res = optimize.minimize(nll, res.x, method="BFGS", options={"gtol": 1e-6})
    return res.x[0], np.exp(res.x[1]), -res.fun


def test_binormal_default_fit_equals_independent_twenty_category_ml():
    """The default fit (20 categories) has the log-likelihood and (a, b) of an independently
    written 20-category ML fit; a 5-category fit has a far higher log-likelihood."""
    y, s = _simulate(np.random.default_rng(7), 1.2, 0.8, 300, 900)
    a, b, loglik = independent_binned_ml(y, s, 20)
    fit = fit_binormal_roc(y, s)
    assert fit.loglik == pytest.approx(loglik, abs=1e-3)
    assert (fit.a, fit.b) == pytest.approx((a, b), abs=2e-3)
    assert fit_binormal_roc(y, s, n_bins=5).loglik > loglik + 500


@pytest.mark.parametrize("y, s, reason", [
    ([1, 1, 0, 0, 1, 0], [1, 1, 0, 0, 0, 1], "2 distinct value"),       # two-valued scores
    ([1, 1, 0, 0], [0.5, 0.5, 0.5, 0.5], "1 distinct value"),          # constant scores
    ([0, 0, 0], [0.1, 0.2, 0.3], "no positive"),                       # one class
])
def test_binormal_fit_without_estimate_reads_na(y, s, reason):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        fit = fit_binormal_roc(y, s)
    assert reason in fit.reason and not fit.converged and any("n/a" in str(x.message) for x in w)
    assert np.all(np.isnan(fit.sensitivity([0.1, 0.5])))


def test_binormal_froc_of_constant_scores_reads_na_not_error():
    det = Detections.from_ids(["A", "A", "B", "B"], ["L1", "", "L2", ""], [0.5] * 4, ["A", "B"], ["L1", "L2"],
                              ["A", "B"], [2, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_binormal_froc(det)
    assert "distinct value" in fit.reason and fit.nu == 1.0
    assert np.isnan(fit.sensitivity([0.25])[1]).all()


def test_sandwich_with_independent_units_agrees_with_inverse_information():
    """Under a correct binormal model with independent scores the robust (one unit per cluster)
    and the model-based variances estimate the same thing: within 15% with 2000 scores; t
    quantile with units - 1 df."""
    y, s = _simulate(np.random.default_rng(11), 1.2, 0.8, 500, 1500)
    model, robust = fit_binormal_roc(y, s), fit_binormal_roc(y, s, groups=np.arange(y.size))
    assert (robust.a, robust.b) == (model.a, model.b) and robust.n_clusters == 2000
    np.testing.assert_allclose(np.diag(robust.cov), np.diag(model.cov), rtol=0.15)
    assert robust.quantile() == pytest.approx(stats.t.ppf(0.975, 1999))
