"""Calibration of medft's intervals and tests on simulated data whose truth is known.

The truth is closed-form, never the code under test: the binormal FROC of the simulated
generator is ``nu * Phi(a + b * Phi^-1(f / lam))``, and the paired test's null holds by
construction (the two configurations are exchangeable within every case).  Seeded, so
each run gives the same numbers; the bands are about 2.5 Monte Carlo standard errors wide.
"""

import warnings

import numpy as np
import pytest
from medft.evaluate import compare
from medft.evaluate.froc import Detections, sensitivity_at_fp_score
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
