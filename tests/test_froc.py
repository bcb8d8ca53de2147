"""FROC counting on hand-built cases, and the Edwards et al. binormal FROC fit."""

import warnings

import numpy as np
import pytest
from medft.errors import MedftError
from medft.evaluate.froc import Detections, froc_bootstrap, froc_curve, sensitivity_at_fp_score
from medft.evaluate.froc_binormal import BinormalFit, fit_binormal_froc, fit_binormal_roc
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
    # 200 lesions, 150 found once each; 900 FP candidates over 300 images
    det = Detections.from_ids(["c"] * s.size, [f"L{i}" for i in range(pos.size)] + [""] * neg.size,
                              s, ["c"] * 200, [f"L{i}" for i in range(200)], ["c"], [300])
    fit = fit_binormal_froc(det)
    assert fit.nu == pytest.approx(0.75) and fit.lam == pytest.approx(3.0)
    sens, lo, hi = fit.sensitivity([0.0, 0.3, 3.0, 4.0])
    assert sens[0] == 0 and sens[2] == pytest.approx(0.75) and np.isnan(sens[3])
    roc_fit = fit_binormal_roc(y, s)
    expected = 0.75 * stats.norm.cdf(roc_fit.a + roc_fit.b * stats.norm.ppf(0.1))  # FPF = 0.3 / 3
    assert sens[1] == pytest.approx(expected, rel=1e-6)
    assert lo[1] < sens[1] < hi[1]


def test_binormal_delta_method_hand_value():
    fit = BinormalFit(1.0, 1.0, np.array([[0.04, 0.0], [0.0, 0.0]]), nu=1.0, lam=1.0)
    sens, lo, hi = fit.sensitivity([0.5])  # x = 0, z = 1, sd = 0.2: Phi(1), Phi(1 -+ 0.392)
    np.testing.assert_allclose([sens[0], lo[0], hi[0]],
                               [0.8413447, 0.7284093, 0.9180384], atol=1e-6)
    assert fit.auc_score() == pytest.approx(0.7602499, abs=1e-6)


def test_binormal_perfect_separation_warns_nan():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        fit = fit_binormal_roc([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1])
    assert np.isnan(fit.a) and any("separated" in str(x.message) for x in w)
