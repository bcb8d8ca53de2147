"""Calibration of medft's intervals and tests on simulated data whose truth is known.

The truth is closed-form, never the code under test: the binormal FROC of the simulated
generator is ``nu * Phi(a + b * Phi^-1(f / lam))``, and the paired test's null holds by
construction (the two configurations are exchangeable within every case).  Seeded, so
each run gives the same numbers; the bands are about 2.5 Monte Carlo standard errors wide.
"""

import warnings

import numpy as np
import pytest
from medft.evaluate import bootstrap as bs
from medft.evaluate import compare, roc
from medft.evaluate.froc import Detections, froc_bootstrap, sensitivity_at_fp_score
from medft.evaluate.froc_binormal import fit_binormal_froc
from scipy import stats

#: the simulated PE-like detector: binormal candidate ROC (a, b), generator (nu, lam)
A, B, NU, LAM = 1.5, 0.8, 0.8, 5.0
FP_RATES = np.array([1.0, 2.0, 3.0])
LESIONS_PER_CASE = 1.5


def _cases(rng, n_cases):
    """Lesions per case (Poisson), which of them the generator finds, and FP candidates per case."""
    n_les = rng.poisson(LESIONS_PER_CASE, n_cases)
    lesion_case = np.repeat(np.arange(n_cases), n_les)
    found = rng.random(lesion_case.size) < NU
    n_fp = rng.poisson(LAM, n_cases)
    return lesion_case, found, n_fp


def _detections(lesion_case, found, n_fp, scores) -> Detections:
    """One candidate per found lesion (scores first), then the FP candidates; one volume per case."""
    n_cases = n_fp.size
    keys = np.arange(lesion_case.size)
    cand_case = np.r_[lesion_case[found], np.repeat(np.arange(n_cases), n_fp)]
    cand_lesion = list(keys[found]) + [None] * int(n_fp.sum())
    return Detections.from_ids(list(cand_case), cand_lesion, scores, list(lesion_case), list(keys),
                               list(range(n_cases)), np.ones(n_cases))


def simulate_binormal(rng, n_cases: int) -> Detections:
    """Lesion candidates score N(a/b, 1/b^2), FP candidates N(0, 1): a binormal (a, b) ROC."""
    lesion_case, found, n_fp = _cases(rng, n_cases)
    scores = np.r_[rng.normal(A / B, 1 / B, found.sum()), rng.normal(0.0, 1.0, n_fp.sum())]
    return _detections(lesion_case, found, n_fp, scores)


def simulate_exchangeable_pair(rng, n_cases: int, noise: float = 0.5) -> tuple[Detections, Detections]:
    """Two configurations scoring the same candidates: a shared latent score plus independent
    N(0, noise^2) noise each (score correlation 1 / (1 + noise^2) = 0.8), so equal in law."""
    lesion_case, found, n_fp = _cases(rng, n_cases)
    latent = np.r_[rng.normal(1.5, 1.0, found.sum()), rng.normal(0.0, 1.0, n_fp.sum())]
    return tuple(_detections(lesion_case, found, n_fp, latent + rng.normal(0, noise, latent.size))
                 for _ in range(2))


def true_binormal_froc(f: np.ndarray) -> np.ndarray:
    return NU * stats.norm.cdf(A + B * stats.norm.ppf(f / LAM))


@pytest.mark.slow
def test_binormal_froc_interval_coverage():
    """500 simulated test sets of 60 cases (about 72 found lesions, 300 FP candidates): the
    95% binormal interval covers the true FROC at 1, 2 and 3 FPs per case 92-98% of the time."""
    truth = true_binormal_froc(FP_RATES)
    n_sim, covered = 500, np.zeros(FP_RATES.size)
    for seed in range(n_sim):
        det = simulate_binormal(np.random.default_rng(seed), n_cases=60)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a fit that does not converge fails the test
            fit = fit_binormal_froc(det)
        _, lo, hi = fit.sensitivity(FP_RATES)
        covered += (lo <= truth) & (truth <= hi)
    coverage = covered / n_sim
    assert np.all((coverage >= 0.92) & (coverage <= 0.98)), coverage


@pytest.mark.slow
def test_paired_operating_point_test_size():
    """1500 null pairs of 60 cases, 200 permutations each: the share of p < .05 over the
    three operating points (4500 tests) lies in [0.04, 0.06]."""
    n_sim, rejected = 1500, np.zeros(FP_RATES.size)
    for seed in range(n_sim):
        da, db = simulate_exchangeable_pair(np.random.default_rng(seed), n_cases=60)
        points = [compare.OperatingPoints(name, FP_RATES, sensitivity_at_fp_score(det, FP_RATES),
                                          *(np.full(3, np.nan),) * 2, events=det.events())
                  for name, det in (("a", da), ("b", db))]
        rows = compare.compare_operating_points(points, n_perm=200, seed=10_000 + seed)
        rejected += [r["p_value"] < 0.05 for r in rows]
    size = rejected.sum() / (n_sim * FP_RATES.size)
    assert 0.04 <= size <= 0.06, rejected / n_sim


# --- clustered data: polyp-style lesion counting and correlated frames ------------------------
#
# Truth stays closed-form.  Polyp counting: every video has one polyp seen in 8-24 of its 50
# frames, and each sighting is a lesion.  The sightings of one polyp share a polyp effect in
# their scores (correlation RHO_L) and a polyp-level chance of being found by the generator;
# the false positives of one video share a video effect (RHO_F) and a video-level rate.  Each
# effect is normal and independent of the counts, so marginally lesion candidates score
# N(A/B, 1/B^2) and false positives N(0, 1): the population FROC is
# NU * Phi(A + B Phi^-1(f / LAM)), which the binormal fit and the empirical FROC estimate.

POLYP_FRAMES, POLYP_NU, POLYP_LAM, RHO_L, RHO_F = 50, 0.7, 0.2, 0.6, 0.5
POLYP_FP = np.array([0.02, 0.05, 0.1])


def simulate_polyp_videos(rng, n_videos: int) -> Detections:
    """``n_videos`` videos of polyp sightings with polyp and video random effects."""
    c_found = stats.norm.ppf(POLYP_NU) * np.sqrt(2.0)  # E Phi(c + N(0, 1)) = POLYP_NU
    lesion_case, keys, cand_case, cand_lesion, scores = [], [], [], [], []
    for v in range(n_videos):
        frames = rng.choice(POLYP_FRAMES, rng.integers(8, 25), replace=False)
        found = rng.random(frames.size) < stats.norm.cdf(c_found + rng.normal())
        z = rng.normal()
        lesion_case += [v] * frames.size
        keys += [(v, int(f)) for f in frames]
        cand_case += [v] * int(found.sum())
        cand_lesion += [(v, int(f)) for f in frames[found]]
        scores += list((A + np.sqrt(RHO_L) * z + np.sqrt(1 - RHO_L) * rng.normal(size=found.sum())) / B)
        n_fp = rng.poisson(POLYP_LAM * POLYP_FRAMES * rng.gamma(2.0, 0.5))
        cand_case += [v] * n_fp
        cand_lesion += [None] * n_fp
        scores += list(np.sqrt(RHO_F) * rng.normal() + np.sqrt(1 - RHO_F) * rng.normal(size=n_fp))
    return Detections.from_ids(cand_case, cand_lesion, scores, lesion_case, keys, list(range(n_videos)),
                               np.full(n_videos, POLYP_FRAMES))


@pytest.mark.slow
@pytest.mark.parametrize("n_videos, n_sim", [(30, 400), (60, 200)])
def test_froc_intervals_cover_with_clustered_lesions(n_videos, n_sim):
    """Binormal and case-bootstrap intervals under polyp counting (about 16 correlated lesions
    per video).  Coverage averaged over the three operating points must lie in 92-98%, each
    point in 89-99%.  Monte-Carlo error of one point's coverage: sqrt(.95 .05 / n_sim) = 1.1%
    (400) and 1.5% (200); of the average, about 0.8% and 1.1% (the points are correlated).
    Measured: binormal 93.5-95%, bootstrap 93-95% (30 videos); 95.5-97.5% and 94.5-96.5% (60).
    Independent-candidate variances covered about 67% in such simulations."""
    truth = POLYP_NU * stats.norm.cdf(A + B * stats.norm.ppf(POLYP_FP / POLYP_LAM))
    binormal, boot_cov = np.zeros(3), np.zeros(3)
    for seed in range(n_sim):
        det = simulate_polyp_videos(np.random.default_rng(seed), n_videos)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fit = fit_binormal_froc(det)
        _, lo, hi = fit.sensitivity(POLYP_FP)
        binormal += (lo <= truth) & (truth <= hi)
        boot = froc_bootstrap(det, POLYP_FP, n_boot=200, seed=seed)
        lo, hi = bs.small_sample_widen(sensitivity_at_fp_score(det, POLYP_FP), *bs.percentile_ci(boot), n_videos)
        boot_cov += (lo <= truth) & (truth <= hi)
    for cov in (binormal / n_sim, boot_cov / n_sim):
        assert 0.92 <= cov.mean() <= 0.98 and np.all((cov >= 0.89) & (cov <= 0.99)), (binormal, boot_cov)


# Correlated frames: every video has 20 informative and 30 non-informative frames; a frame's
# score is SEP * label + u_video + w_video,config + noise, with u ~ N(0, SU), w ~ N(0, SW),
# noise ~ N(0, 1).  Marginally positives ~ N(SEP, TAU^2), negatives ~ N(0, TAU^2), TAU^2 =
# SU + SW + 1, so the TPR at FPR f is Phi(SEP / TAU - Phi^-1(1 - f)); the AUC estimator's
# expectation mixes between-video pairs Phi(SEP / (sqrt 2 TAU)) and the 1/I share of
# within-video pairs Phi(SEP / sqrt 2), whose video effects cancel.

SEP, SU, SW, FRAMES_POS, FRAMES_NEG = 1.5, 0.5, 0.5, 20, 30
TAU = np.sqrt(SU + SW + 1)
FRAMES_FPR = np.array([0.10, 0.15, 0.20])


def simulate_frames(rng, n_videos: int, n_configs: int = 1):
    """Labels (n,), video of each frame (n,) and ``n_configs`` score arrays (n,) equal in law."""
    g = np.repeat(np.arange(n_videos), FRAMES_POS + FRAMES_NEG)
    y = np.tile(np.r_[np.ones(FRAMES_POS, bool), np.zeros(FRAMES_NEG, bool)], n_videos)
    u = rng.normal(0, np.sqrt(SU), n_videos)[g]
    return y, g, [SEP * y + u + rng.normal(0, np.sqrt(SW), n_videos)[g] + rng.normal(size=g.size)
                  for _ in range(n_configs)]


@pytest.mark.slow
@pytest.mark.parametrize("n_videos, n_sim", [(20, 600), (40, 400)])
def test_frames_intervals_cover_with_video_effects(n_videos, n_sim):
    """Clustered DeLong interval of the AUC and video-bootstrap interval of the TPR at FPR
    .10/.15/.20 cover 92-98% (TPR: average over the points, each in 89-99%).  MC error of one
    coverage: 0.9% (600) and 1.1% (400).  Measured: AUC 93.5% and 95.3%, TPR 93-94.5% and
    92-94%.  Frame-level (unclustered) variances covered 57-81%."""
    w = 1 / n_videos
    auc_true = (1 - w) * stats.norm.cdf(SEP / np.sqrt(2) / TAU) + w * stats.norm.cdf(SEP / np.sqrt(2))
    tpr_true = stats.norm.cdf(SEP / TAU - stats.norm.ppf(1 - FRAMES_FPR))
    auc_cov, tpr_cov = 0, np.zeros(3)
    for seed in range(n_sim):
        y, g, (s,) = simulate_frames(np.random.default_rng(seed), n_videos)
        r = roc.delong_ci(y, s, groups=g)
        auc_cov += r.lo <= auc_true <= r.hi
        boot = roc.roc_bootstrap(y, s, FRAMES_FPR, groups=g, n_boot=200, seed=seed)
        lo, hi = bs.small_sample_widen(roc.sensitivity_at_fpr_score(y, s, FRAMES_FPR), *bs.percentile_ci(boot),
                                       n_videos)
        tpr_cov += (lo <= tpr_true) & (tpr_true <= hi)
    auc_cov, tpr_cov = auc_cov / n_sim, tpr_cov / n_sim
    assert 0.92 <= auc_cov <= 0.98, auc_cov
    assert 0.92 <= tpr_cov.mean() <= 0.98 and np.all((tpr_cov >= 0.89) & (tpr_cov <= 0.99)), tpr_cov


@pytest.mark.slow
@pytest.mark.parametrize("n_videos, n_sim, n_perm_sim", [(20, 3000, 600), (40, 1500, 900)])
def test_frames_tests_size_with_video_effects(n_videos, n_sim, n_perm_sim):
    """Two configurations equal in law, each with its own video effects: the clustered DeLong
    paired test and the permutation test swapping whole videos (99 permutations) reject at
    p < .05 in 3.5-6.5% of null sets (permutation: pooled over the three operating points).
    MC error: DeLong 0.4% (3000) and 0.6% (1500); permutation, over 1800 and 2700 correlated
    tests, about 0.6% and 0.5%.  Measured: DeLong 5.5% and 4.8%; permutation 4.9% and 6.1% (the
    rank scale makes swapped events only approximately exchangeable, see eval/README.md).
    Frame-level tests rejected 20-38% of these null sets."""
    delong = sum(roc.delong_paired_test(y, sa, sb, groups=g).p_value < 0.05
                 for y, g, (sa, sb) in (simulate_frames(np.random.default_rng(seed), n_videos, 2)
                                        for seed in range(n_sim))) / n_sim
    rejected = np.zeros(3)
    for seed in range(n_perm_sim):
        y, g, scores = simulate_frames(np.random.default_rng(seed), n_videos, 2)
        points = [compare.OperatingPoints(name, FRAMES_FPR, roc.sensitivity_at_fpr_score(y, s, FRAMES_FPR),
                                          *(np.full(3, np.nan),) * 2, events=roc.roc_events(y, s, g))
                  for name, s in zip("ab", scores)]
        rejected += [r["p_value"] < 0.05 for r in compare.compare_operating_points(points, n_perm=99,
                                                                                    seed=10_000 + seed)]
    perm = rejected.sum() / (3 * n_perm_sim)
    assert 0.035 <= delong <= 0.065, delong
    assert 0.035 <= perm <= 0.065, rejected / n_perm_sim
