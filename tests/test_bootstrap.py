"""The vectorised case bootstrap equals recomputing the FROC on explicitly resampled cases."""

import numpy as np
import pytest
from medft.evaluate import bootstrap as bs
from medft.evaluate.froc import Detections, froc_bootstrap, sensitivity_at_fp_score
from medft.evaluate.roc import roc_bootstrap, sensitivity_at_fpr_score


def random_detections(rng, n_cases=8):
    cases, lesions, lesion_case, cand = [f"c{i}" for i in range(n_cases)], [], [], []
    for c in cases:
        for j in range(rng.integers(0, 3)):
            lesions.append(f"L{j}")
            lesion_case.append(c)
            cand += [(c, f"L{j}", rng.random() + 0.3) for _ in range(rng.integers(0, 3))]
        cand += [(c, "", rng.random()) for _ in range(rng.integers(0, 6))]
    n_img = rng.integers(1, 5, n_cases)
    return cases, lesions, lesion_case, cand, n_img


def explicit_resample(rng_data, counts):
    """Materialise a bootstrap replicate: case i copied counts[i] times under new names."""
    cases, lesions, lesion_case, cand, n_img = rng_data
    new_cases, new_les, new_lcase, new_cand, new_img = [], [], [], [], []
    for i, c in enumerate(cases):
        for k in range(counts[i]):
            name = f"{c}#{k}"
            new_cases.append(name)
            new_img.append(n_img[i])
            new_les += [lk for lk, lc in zip(lesions, lesion_case) if lc == c]
            new_lcase += [name for lc in lesion_case if lc == c]
            new_cand += [(name, le, s) for cc, le, s in cand if cc == c]
    return Detections.from_ids([x[0] for x in new_cand], [x[1] for x in new_cand], [x[2] for x in new_cand],
                               new_lcase, new_les, new_cases, new_img)


def test_resample_weights_seeded():
    w = bs.resample_weights(5, n_boot=50, seed=1)
    assert w.shape == (50, 5) and (w.sum(axis=1) == 5).all()
    np.testing.assert_array_equal(w, bs.resample_weights(5, n_boot=50, seed=1))
    assert not np.array_equal(w, bs.resample_weights(5, n_boot=50, seed=2))


@pytest.mark.parametrize("seed", range(4))
def test_weighted_bootstrap_equals_explicit_resampling(seed):
    rng = np.random.default_rng(seed)
    data = random_detections(rng)
    cases, lesions, lesion_case, cand, n_img = data
    det = Detections.from_ids([x[0] for x in cand], [x[1] for x in cand], [x[2] for x in cand],
                              lesion_case, lesions, cases, n_img)
    fp = [0.0, 0.3, 0.7, 1.5]
    w = bs.resample_weights(len(cases), n_boot=6, seed=seed)
    got = froc_bootstrap(det, fp, weights=w)
    for b in range(w.shape[0]):
        rep = explicit_resample(data, w[b])
        if rep.n_lesions == 0:
            assert np.isnan(got[b]).all()
            continue
        np.testing.assert_allclose(got[b], sensitivity_at_fp_score(rep, fp))


def test_roc_bootstrap_by_unit_matches_explicit():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 30)
    s = rng.normal(size=30) + y
    w = bs.resample_weights(30, n_boot=5, seed=0)
    got = roc_bootstrap(y, s, [0.1, 0.3], weights=w)
    for b in range(5):
        idx = np.repeat(np.arange(30), w[b])
        np.testing.assert_allclose(got[b], sensitivity_at_fpr_score(y[idx], s[idx], [0.1, 0.3]))


def test_value_at_step_convention_and_nan_rows():
    x = np.array([[0, 0, 0.5, 1.0], [np.nan] * 4])
    y = np.array([[0, 0.5, 0.5, 1.0], [0, 0.2, 0.4, 0.6]])
    out = bs.value_at(x, y, [0, 0.25, 0.5, 2])
    np.testing.assert_allclose(out[0], [0.5, 0.5, 0.5, 1.0])
    assert np.isnan(out[1]).all()


def test_paired_p_value_and_percentiles():
    d = np.r_[np.ones(99), -1.0][:, None]  # 1 of 100 replicates below 0, none at 0
    assert bs.paired_p_value(d)[0] == pytest.approx(2 * 2 / 101)
    assert bs.paired_p_value(np.zeros((10, 1)))[0] == 1.0
    # 50 replicates at 0 count half on each side: 2 * (0 + 25 + 1) / 101
    assert bs.paired_p_value(np.r_[np.zeros(50), np.ones(50)][:, None])[0] == pytest.approx(52 / 101)
    lo, hi = bs.percentile_ci(np.arange(101.0)[:, None])
    np.testing.assert_allclose([lo[0], hi[0]], [2.5, 97.5])


def test_rank_scale_by_hand():
    # ascending 0.1 (rank 1), 0.5 0.5 (ranks 2, 3: mid-rank 2.5), 0.7 (4), 0.9 (5), 0.95 (6); K = 6
    score = np.array([0.9, 0.7, 0.5, 0.5, 0.1, 0.95])
    np.testing.assert_allclose(bs.rank_scale(score), np.array([5, 4, 2.5, 2.5, 1, 6]) / 6)


def test_permutation_at_equals_explicitly_swapped_detectors():
    """Swapping cases by weights equals building the mixed detectors by hand from rank-scaled
    scores and recomputing their FROCs; no swap gives a - b, all swaps b - a."""
    rng = np.random.default_rng(7)
    cases, lesions, lesion_case, cand, n_img = random_detections(rng, n_cases=10)
    cand = [x for x in cand if x[1] == "" or rng.random() < 0.8]
    ids = ([x[0] for x in cand], [x[1] for x in cand])
    dets = [Detections.from_ids(*ids, rng.random(len(cand)) + 0.4 * np.array([x[1] != "" for x in cand]),
                                lesion_case, lesions, cases, n_img) for _ in range(2)]
    fp = np.array([0.2, 0.5, 1.0, 2.0])
    swaps = np.array([[0] * 10, [1] * 10, [1, 0, 1, 1, 0, 0, 0, 1, 0, 1]])
    got = bs.permutation_at(dets[0].events(), dets[1].events(), fp, swaps)
    observed = sensitivity_at_fp_score(dets[0], fp) - sensitivity_at_fp_score(dets[1], fp)
    np.testing.assert_allclose(got[0], observed)
    np.testing.assert_allclose(got[1], -observed)

    def on_rank_scale(det):  # each candidate's score -> its mid-position among the FROC's events
        events = det.events()[0]
        pos = [(np.sum(events < v) + np.sum(events <= v)) / 2 for v in det.score]
        return np.array(pos) / events.size  # = (mid-rank - 1/2) / K on events: the same order

    scaled = [on_rank_scale(d) for d in dets]
    case_of = np.array([cases.index(c) for c in ids[0]])
    mixed = [Detections.from_ids(*ids, np.where(swaps[2][case_of] == 1, scaled[1 - k], scaled[k]),
                                 lesion_case, lesions, cases, n_img) for k in (0, 1)]
    np.testing.assert_allclose(got[2], sensitivity_at_fp_score(mixed[0], fp) - sensitivity_at_fp_score(mixed[1], fp))


def test_permutation_p_value_by_hand():
    perm = np.array([[0.1], [-0.2], [0.05], [-0.1]])  # |d| = .1, .2, .05, .1 against |d0| = .1
    # 1 greater, 2 ties + the observed: classical (1 + 3) / 5, mid-p (1 + 1.5) / 5
    assert bs.permutation_p_value(perm, [0.1], u=1.0)[0] == pytest.approx(0.8)
    assert bs.permutation_p_value(perm, [-0.1], u=0.5)[0] == pytest.approx(0.5)
    assert bs.permutation_p_value(perm, [0.1], u=np.array([0.2]))[0] == pytest.approx((1 + 0.6) / 5)
    assert bs.permutation_p_value(perm, [0.0], u=0.0)[0] == 1.0
    assert np.isnan(bs.permutation_p_value(perm, [np.nan])[0])


def test_chunking_does_not_change_results(monkeypatch):
    rng = np.random.default_rng(5)
    data = random_detections(rng, n_cases=12)
    cases, lesions, lesion_case, cand, n_img = data
    det = Detections.from_ids([x[0] for x in cand], [x[1] for x in cand], [x[2] for x in cand],
                              lesion_case, lesions, cases, n_img)
    full = froc_bootstrap(det, [0.2, 1.0], n_boot=40, seed=0)
    monkeypatch.setattr(bs, "_CHUNK_CELLS", 1)
    np.testing.assert_array_equal(froc_bootstrap(det, [0.2, 1.0], n_boot=40, seed=0), full)


def test_permutation_p_is_uniform_when_every_arrangement_ties():
    """Known truth: with one case, swapping it only flips the difference's sign, so every
    arrangement ties with the observed |difference| and the randomised p is U(0, 1) exactly
    (the classical p would be 1, the mid-p 1/2).  Over 400 seeds: Kolmogorov-Smirnov p > .001
    and 4-6.5% of the p-values below .05 (binomial MC error 1.1%)."""
    from scipy import stats
    a = (np.array([0.9, 0.1]), np.array([True, False]), np.array([0, 0]), np.array([1.0]), np.array([1.0]))
    b = (np.array([0.1, 0.9]), np.array([True, False]), np.array([0, 0]), np.array([1.0]), np.array([1.0]))
    p = np.array([bs.paired_permutation_test(a, b, [0.5], [1.0], n_perm=19, seed=s)[0] for s in range(400)])
    assert stats.kstest(p, "uniform").pvalue > 1e-3
    assert 0.02 <= np.mean(p < 0.05) <= 0.09


def test_small_sample_widening_by_hand():
    """20 cases: factor sqrt(20/19) t_19 / z = 1.0259784 * 2.0930241 / 1.9599640 = 1.0956310;
    0.9 + 0.095 * 1.0956310 > 1 is clipped to 1."""
    lo, hi = bs.small_sample_widen([0.5, 0.9], [0.4, 0.8], [0.55, 0.995], 20)
    np.testing.assert_allclose(lo, [0.5 - 0.1095631, 0.9 - 0.1095631], rtol=1e-6)
    np.testing.assert_allclose(hi, [0.5 + 0.05 * 1.0956310, 1.0], rtol=1e-6)
