"""Bootstrap FROC: the vectorised resampler vs the per-resample loop, seconds."""

from __future__ import annotations

import time

import numpy as np

from medft.bench.common import Log, row


# -- 4. bootstrap FROC -------------------------------------------------------------------------------
def synthetic_detections(n_cand: int = 10_000, n_cases: int = 200, seed: int = 0):
    """A random :class:`~medft.evaluate.froc.Detections`: ``n_cand`` candidates in ``n_cases`` cases with
    2 lesions each, ~10% of candidates on a lesion of their case, positives scored higher."""
    from medft.evaluate.froc import Detections

    rng = np.random.default_rng(seed)
    case = rng.integers(0, n_cases, n_cand)
    n_les = n_cases * 2
    hit = np.where(rng.random(n_cand) < 0.1, rng.integers(0, n_les, n_cand), -1)
    lesion_case = np.arange(n_les) % n_cases
    hit = np.where(hit >= 0, np.where(lesion_case[np.maximum(hit, 0)] == case, hit, -1), -1)
    return Detections(rng.random(n_cand) + (hit >= 0), hit, case, lesion_case,
                      np.full(n_cases, 50.0), tuple(range(n_cases)))


def naive_froc_bootstrap(det, fp_rates, weights: np.ndarray) -> np.ndarray:
    """The textbook case bootstrap, one resample at a time: build the resampled candidate and lesion
    lists (a case drawn k times contributes k copies) and recompute the FROC. Shape (B, F), equal to
    :func:`~medft.evaluate.froc.froc_bootstrap` with the same ``weights`` (B, C)."""
    from medft.evaluate.froc import Detections, sensitivity_at_fp_score

    n_cases = len(det.case_ids)
    cand_of = [np.flatnonzero(det.case == c) for c in range(n_cases)]
    les_of = [np.flatnonzero(det.lesion_case == c) for c in range(n_cases)]
    rank = np.zeros(det.n_lesions, np.int64)  # position of a lesion within its case's lesion list
    for ls in les_of:
        rank[ls] = np.arange(ls.size)
    out = []
    for counts in np.asarray(weights):
        copies = np.repeat(np.arange(n_cases), counts)
        cand = np.concatenate([cand_of[c] for c in copies])
        n_c = np.array([cand_of[c].size for c in copies])
        n_l = np.array([les_of[c].size for c in copies])
        new_case = np.repeat(np.arange(copies.size), n_c)
        base = np.repeat(np.r_[0, np.cumsum(n_l)[:-1]], n_c)
        hit = det.hit[cand]
        new_hit = np.where(hit >= 0, base + rank[np.maximum(hit, 0)], -1)
        rep = Detections(det.score[cand], new_hit, new_case, np.repeat(np.arange(copies.size), n_l),
                         det.n_images[copies], tuple(range(copies.size)))
        out.append(sensitivity_at_fp_score(rep, fp_rates))
    return np.vstack(out)


def bench_froc(n_cand: int = 10_000, n_cases: int = 200, n_boot: int = 1000, naive_boot: int = 1000,
               seed: int = 0, log: Log = print) -> dict:
    """Seconds for a case-level bootstrap FROC (``n_boot`` resamples, 41-point FP grid 0..0.2/image):
    :func:`~medft.evaluate.froc.froc_bootstrap` vs :func:`naive_froc_bootstrap` timed on the first
    ``naive_boot`` resamples and extrapolated to ``n_boot``; both must give the same sensitivities."""
    from medft.evaluate import bootstrap as bs
    from medft.evaluate.froc import froc_bootstrap

    det = synthetic_detections(n_cand, n_cases, seed)
    fp = np.linspace(0, 0.2, 41)
    weights = bs.resample_weights(n_cases, n_boot, seed)
    log(f"  froc_bootstrap: {n_boot} resamples x {n_cand} candidates x {n_cases} cases")
    t = time.perf_counter()
    fast = froc_bootstrap(det, fp, weights=weights)
    ours = time.perf_counter() - t
    k = max(1, min(naive_boot, n_boot))
    log(f"  per-resample loop: {k} resamples" + (f" (extrapolated to {n_boot})" if k < n_boot else ""))
    t = time.perf_counter()
    slow = naive_froc_bootstrap(det, fp, weights[:k])
    ref_k = time.perf_counter() - t
    ref = ref_k * n_boot / k
    res = {"candidates": n_cand, "cases": n_cases, "n_boot": n_boot, "fp_points": fp.size,
           "medft_seconds": ours, "naive_seconds_measured": ref_k, "naive_resamples_measured": k,
           "naive_seconds_extrapolated": ref,
           "same_sensitivities": bool(np.allclose(fast[:k], slow, equal_nan=True))}
    res["rows"] = [row(f"bootstrap FROC, {n_boot} resamples, {n_cand} candidates, {n_cases} cases", ours, ref,
                        "s", "froc_bootstrap (vectorised)",
                        "per-resample loop" + (f" ({k} timed, x{n_boot / k:g})" if k < n_boot else ""), False)]
    return res
