"""ROC curve, Mann-Whitney AUC and DeLong variance against direct textbook computations and
against published values of an independent implementation (R package pROC)."""

import warnings

import numpy as np
import pytest
from medft.errors import MedftError
from medft.evaluate.roc import (
    delong_ci,
    delong_paired_test,
    roc_auc_score,
    roc_curve,
    sensitivity_at_fpr_score,
)


def psi(x, y):
    return (x > y) + 0.5 * (x == y)


def brute_auc(y, s):
    """scikit-learn's roc_auc_score definition: P(pos > neg) + P(tie) / 2, all pairs."""
    pos, neg = s[y == 1], s[y == 0]
    return psi(pos[:, None], neg[None, :]).mean()


def textbook_components(y, s):
    """DeLong et al. (1988) structural components, one loop per unit (slow and obvious)."""
    pos, neg = s[y == 1], s[y == 0]
    v10 = np.array([np.mean([psi(x, z) for z in neg]) for x in pos])
    v01 = np.array([np.mean([psi(x, z) for x in pos]) for z in neg])
    return v10, v01


def random_data(seed, n=120, ties=True):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = rng.normal(size=n) + y
    return y, (np.round(s, 1) if ties else s)


def test_roc_curve_hand_points():
    fpr, tpr, thr = roc_curve([1, 0, 1, 0], [0.9, 0.7, 0.6, 0.2])
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    assert thr[0] == np.inf


@pytest.mark.parametrize("seed", range(5))
def test_auc_equals_pairwise_definition_and_trapezoid(seed):
    y, s = random_data(seed)
    auc = roc_auc_score(y, s)
    assert auc == pytest.approx(brute_auc(y, s), abs=1e-12)
    fpr, tpr, _ = roc_curve(y, s)
    assert auc == pytest.approx(np.trapz(tpr, fpr), abs=1e-12)


def test_delong_variance_small_hand_example():
    # positives 0.9, 0.6; negatives 0.7, 0.2: V10 = (1, 0.5), V01 = (0.5, 1)
    # var = var(V10)/2 + var(V01)/2 = 0.125/2 + 0.125/2 = 0.125
    r = delong_ci([1, 1, 0, 0], [0.9, 0.6, 0.7, 0.2])
    assert r.auc == 0.75
    assert r.se ** 2 == pytest.approx(0.125)
    assert r.lo == pytest.approx(max(0, 0.75 - 1.959964 * np.sqrt(0.125)), abs=1e-6) and r.hi == 1.0


@pytest.mark.parametrize("seed", range(3))
def test_delong_variance_equals_textbook(seed):
    y, s = random_data(seed, n=80)
    v10, v01 = textbook_components(y, s)
    var = v10.var(ddof=1) / v10.size + v01.var(ddof=1) / v01.size
    assert delong_ci(y, s).se ** 2 == pytest.approx(var, rel=1e-10)


def test_paired_test_equals_textbook_and_is_symmetric():
    y, s1 = random_data(7, n=90)
    rng = np.random.default_rng(8)
    s2 = s1 + rng.normal(scale=1.0, size=s1.size)
    a10, a01 = textbook_components(y, s1)
    b10, b01 = textbook_components(y, s2)
    var = (np.var(a10 - b10, ddof=1) / a10.size + np.var(a01 - b01, ddof=1) / a01.size)
    r = delong_paired_test(y, s1, s2)
    assert r.se_diff ** 2 == pytest.approx(var, rel=1e-10)
    assert r.diff == pytest.approx(brute_auc(y, s1) - brute_auc(y, s2))
    assert delong_paired_test(y, s2, s1).p_value == pytest.approx(r.p_value)
    same = delong_paired_test(y, s1, s1)
    assert same.diff == 0 and same.p_value == 1.0


def test_sensitivity_at_fpr():
    np.testing.assert_allclose(sensitivity_at_fpr_score([1, 0, 1, 0], [0.9, 0.7, 0.6, 0.2], [0.0, 0.5, 0.9]),
                               [0.5, 1.0, 1.0])


def test_no_positives_warns_and_returns_nan():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert np.isnan(roc_auc_score([0, 0, 0], [0.1, 0.2, 0.3]))
        assert np.isnan(delong_ci([0, 0], [0.1, 0.2]).se)
    assert any("no positive" in str(x.message) for x in w)


@pytest.mark.parametrize("y, s, message", [
    ([0, 1, 2], [0.1, 0.2, 0.3], r"0 or 1; found 2 at position 2"),
    ([0, 1], [0.1, float("nan")], r"finite; found nan at position 1"),
    ([0, 1, 1], [0.1, 0.2], "different lengths: 3 vs 2"),
    (["no", "yes"], [0.1, 0.2], "0 or 1; found 'no'"),
])
def test_bad_input_named(y, s, message):
    with pytest.raises(MedftError, match=message):
        roc_auc_score(y, s)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_equals_scikit_learn(seed):
    from sklearn.metrics import roc_auc_score as sk_auc

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.normal(size=300) + y, 1)  # rounding makes ties
    assert roc_auc_score(y, s) == pytest.approx(sk_auc(y, s), abs=1e-12)


# The aSAH data of R's pROC package (data/aSAH.RData; Turck et al., Intensive Care Med 2010:
# 113 patients with aneurysmal subarachnoid haemorrhage): outcome "Poor" = 1 (41 patients),
# and three predictors; wfns is the 5-level WFNS grade, as pROC uses it (numeric 1-5).
ASAH_POOR = np.array([
    0, 0, 0, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1,
    1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1,
    1, 1, 0, 0, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0,
    0, 1, 0, 0, 0
])
ASAH_S100B = np.array([
    0.13, 0.14, 0.1, 0.04, 0.13, 0.1, 0.47, 0.16, 0.18, 0.1, 0.12, 0.1, 0.44, 0.71, 0.04, 0.08, 0.49, 0.04,
    0.07, 0.33, 0.09, 0.09, 0.07, 0.11, 0.07, 0.17, 0.07, 0.11, 0.13, 0.19, 0.05, 0.16, 0.41, 0.14, 0.34, 0.35,
    0.48, 0.09, 0.96, 0.25, 0.5, 0.46, 0.16, 0.07, 0.43, 0.45, 0.11, 0.08, 0.09, 0.86, 0.52, 0.08, 0.06, 0.13,
    2.07, 0.1, 0.14, 0.15, 0.07, 0.06, 0.77, 0.05, 0.09, 0.3, 0.03, 0.09, 0.04, 0.23, 0.7, 0.09, 0.27, 0.71,
    0.08, 0.26, 0.08, 0.16, 0.09, 0.13, 0.1, 0.08, 0.11, 0.33, 0.11, 0.28, 0.07, 0.1, 0.32, 0.22, 0.07, 0.05,
    0.24, 0.38, 0.1, 0.15, 0.08, 0.14, 0.1, 0.07, 0.04, 0.19, 0.56, 0.14, 0.58, 0.32, 0.82, 0.74, 0.15, 0.47,
    0.17, 0.44, 0.15, 0.5, 0.48
])
ASAH_WFNS = np.array([
    1, 1, 1, 1, 3, 2, 5, 4, 1, 2, 5, 2, 5, 5, 1, 2, 5, 2, 2, 5, 2, 1, 1, 1, 1, 2, 1, 2, 1, 1, 3, 4, 2, 1, 4, 5,
    4, 1, 4, 2, 5, 5, 1, 1, 2, 4, 1, 1, 2, 5, 5, 2, 1, 2, 5, 1, 2, 2, 2, 1, 5, 1, 1, 2, 5, 2, 1, 4, 5, 2, 4, 4,
    1, 4, 1, 2, 1, 4, 2, 1, 2, 3, 2, 4, 2, 1, 4, 5, 1, 1, 5, 4, 2, 2, 1, 1, 1, 3, 1, 2, 5, 2, 2, 5, 5, 5, 2, 4,
    4, 5, 1, 1, 1
])
ASAH_NDKA = np.array([
    3.01, 8.54, 8.09, 10.42, 17.4, 12.75, 6.0, 13.2, 15.54, 6.01, 15.96, 17.86, 5.18, 8.9, 13.41, 20.75, 11.6,
    16.11, 32.37, 54.82, 32.41, 49.94, 40.34, 9.47, 6.29, 12.53, 6.54, 6.3, 80.3, 12.8, 9.8, 9.81, 9.85, 18.21,
    5.03, 14.04, 21.93, 8.02, 7.42, 8.38, 6.59, 9.63, 13.12, 7.96, 14.34, 41.43, 7.63, 7.06, 12.59, 13.56, 3.87,
    9.44, 7.66, 12.98, 419.19, 27.19, 22.27, 9.95, 21.22, 11.73, 10.4, 58.83, 6.39, 11.09, 12.22, 13.67, 17.21,
    22.63, 12.9, 9.7, 21.57, 8.23, 72.57, 15.54, 10.51, 10.6, 14.57, 5.19, 9.63, 4.61, 21.48, 17.3, 12.71, 9.44,
    11.07, 19.46, 10.83, 5.37, 11.97, 7.75, 9.83, 10.55, 28.49, 8.53, 12.57, 12.9, 46.83, 11.68, 12.67, 9.01,
    9.57, 34.06, 11.72, 14.26, 47.61, 11.67, 24.58, 10.33, 13.87, 15.89, 22.43, 6.79, 13.45
])


# pROC's own expected values for roc(aSAH$outcome, <predictor>) (direction "<"), from its
# test suite (github.com/xrobin/pROC, tests/testthat: test-auc.R, test-var.R, test-ci.auc.R,
# test-roc.test.R; pROC 1.19).  roc.test(s100b, wfns) is also the worked example of pROC's
# documentation and of Robin et al., BMC Bioinformatics 2011: Z = -2.209, p = 0.02718.
PROC_AUC = {"s100b": 0.73136856368563685, "wfns": 0.823678861788618, "ndka": 0.611957994579946}
PROC_VAR = {"s100b": 0.00266868245717244, "wfns": 0.00146991470882363, "ndka": 0.0031908105493913}
PROC_CI_NDKA = (0.501244999271703, 0.722670989888189)
#: roc.test(first, second): Z, p, 95% interval of AUC(first) - AUC(second)
PROC_TESTS = [
    ("wfns", "s100b", 2.20898359144091, 0.0271757822291882, (0.0104061769564846, 0.174214419249478)),
    ("wfns", "ndka", 2.79777591868904, 0.00514557970691098, (0.0634011709339876, 0.3600405634833566)),
    ("ndka", "s100b", -1.39077002573558, 0.164295175223054, (-0.2876917446341914, 0.0488706064228094)),
]
ASAH = {"s100b": ASAH_S100B, "wfns": ASAH_WFNS.astype(float), "ndka": ASAH_NDKA}


def test_asah_data_as_published():
    assert ASAH_POOR.size == 113 and ASAH_POOR.sum() == 41
    assert all(v.size == 113 for v in ASAH.values())


@pytest.mark.parametrize("name", sorted(PROC_AUC))
def test_delong_auc_and_variance_match_proc(name):
    r = delong_ci(ASAH_POOR, ASAH[name])
    assert r.auc == pytest.approx(PROC_AUC[name], rel=1e-12)
    assert r.se ** 2 == pytest.approx(PROC_VAR[name], rel=1e-10)


def test_delong_interval_matches_proc_ci_auc():
    r = delong_ci(ASAH_POOR, ASAH["ndka"])
    assert (r.lo, r.hi) == pytest.approx(PROC_CI_NDKA, rel=1e-10)


@pytest.mark.parametrize("first, second, z, p, ci", PROC_TESTS)
def test_delong_paired_test_matches_proc_roc_test(first, second, z, p, ci):
    r = delong_paired_test(ASAH_POOR, ASAH[first], ASAH[second])
    assert r.z == pytest.approx(z, rel=1e-10)
    assert r.p_value == pytest.approx(p, rel=1e-9)
    q = 1.959963984540054
    assert (r.diff - q * r.se_diff, r.diff + q * r.se_diff) == pytest.approx(ci, rel=1e-10)
