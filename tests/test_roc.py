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
from scipy import stats

from tests.refdata import ASAH, ASAH_POOR, PROC_AUC, PROC_CI_NDKA, PROC_TESTS, PROC_VAR


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


def obuchowski_textbook(y, s1, g, s2=None):
    """Obuchowski (Biometrics 1997) clustered AUC (co)variance, one loop per cluster (slow and
    obvious): returns (A1, var A1) or, with ``s2``, (A1 - A2, var(A1 - A2)) from
    var1 + var2 - 2 cov, cov = S10_12 / m + S01_12 / n + (S11_12 + S11_21) / (m n)."""
    clusters = np.unique(g)
    m_i = {c: np.sum((g == c) & (y == 1)) for c in clusters}
    n_i = {c: np.sum((g == c) & (y == 0)) for c in clusters}
    m, n = sum(m_i.values()), sum(n_i.values())
    i10, i01, i = sum(m_i[c] > 0 for c in clusters), sum(n_i[c] > 0 for c in clusters), clusters.size

    def parts(s):
        pos, neg = s[y == 1], s[y == 0]
        a = psi(pos[:, None], neg[None, :]).mean()
        d10 = {c: sum(np.mean([psi(x, z) for z in neg]) for x in s[(g == c) & (y == 1)]) - m_i[c] * a
               for c in clusters}
        d01 = {c: sum(np.mean([psi(x, z) for x in pos]) for z in s[(g == c) & (y == 0)]) - n_i[c] * a
               for c in clusters}
        return a, d10, d01

    def cov(p, q):
        s10 = i10 / ((i10 - 1) * m) * sum(p[1][c] * q[1][c] for c in clusters)
        s01 = i01 / ((i01 - 1) * n) * sum(p[2][c] * q[2][c] for c in clusters)
        s11 = i / (i - 1) * sum(p[1][c] * q[2][c] + q[1][c] * p[2][c] for c in clusters)
        return s10 / m + s01 / n + s11 / (m * n)

    p1 = parts(s1)
    if s2 is None:
        return p1[0], cov(p1, p1)
    p2 = parts(s2)
    return p1[0] - p2[0], cov(p1, p1) + cov(p2, p2) - 2 * cov(p1, p2)


@pytest.mark.parametrize("seed", [0, 1])
def test_clustered_variance_equals_obuchowski_textbook(seed):
    """Clustered AUC variance against the published formula evaluated loop by loop; interval
    and paired test use t with I - 1 df (here 11 videos of varying size and prevalence)."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 11, 150)
    y = (rng.random(150) < 0.2 + 0.05 * g).astype(int)
    s = np.round(y + 0.8 * rng.normal(size=11)[g] + rng.normal(size=150), 1)
    a, var = obuchowski_textbook(y, s, g)
    r = delong_ci(y, s, groups=g)
    assert r.auc == pytest.approx(a, abs=1e-12) and r.se ** 2 == pytest.approx(var, rel=1e-10)
    assert r.n_clusters == 11 and r.hi - r.auc == pytest.approx(stats.t.ppf(0.975, 10) * r.se, rel=1e-10)
    s2 = np.round(s + rng.normal(size=150), 1)
    d = delong_paired_test(y, s, s2, groups=g)
    diff, var_diff = obuchowski_textbook(y, s, g, s2)
    assert d.diff == pytest.approx(diff, abs=1e-12) and d.se_diff ** 2 == pytest.approx(var_diff, rel=1e-10)
    assert d.p_value == pytest.approx(2 * stats.t.sf(abs(d.diff / d.se_diff), 10), rel=1e-10)
    assert delong_paired_test(y, s, s, groups=g).p_value == 1.0


def test_clustered_variance_with_one_unit_per_cluster_is_delongs():
    y, s = random_data(3)
    plain, clustered = delong_ci(y, s), delong_ci(y, s, groups=np.arange(y.size))
    assert clustered.se == pytest.approx(plain.se, rel=1e-12)
    v10, v01 = textbook_components(y, s)
    assert plain.se ** 2 == pytest.approx(np.var(v10, ddof=1) / v10.size + np.var(v01, ddof=1) / v01.size)


@pytest.mark.parametrize("y, s, reason", [
    ([1, 0, 0], [0.9, 0.1, 0.2], "fewer than 2"),       # one positive: no DeLong variance
    ([1, 0], [0.9, 0.1], "fewer than 2"),               # a 2-case set
    ([1, 1, 0, 0], [0.5, 0.5, 0.5, 0.5], "variance 0"),  # a constant classifier
    ([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1], "variance 0"),  # perfect separation
])
def test_interval_not_computable_reads_na(y, s, reason):
    r = delong_ci(y, s)
    assert np.isnan(r.lo) and np.isnan(r.hi) and reason in r.reason
    assert np.isfinite(r.auc)


def test_paired_test_of_zero_variance_difference_is_na():
    """A perfect classifier against a constant one: both variances are 0, so no test exists."""
    d = delong_paired_test([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1], [0.5] * 4)
    assert d.diff == 0.5 and np.isnan(d.p_value) and "variance 0" in d.reason
    same = delong_paired_test([1, 1, 0, 0], [0.9, 0.3, 0.4, 0.1], [0.9, 0.3, 0.4, 0.1])
    assert same.p_value == 1.0 and same.reason == ""
