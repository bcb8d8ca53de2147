"""Timings for ``make bench`` (issue 5): the bootstrap FROC and the dense CIMT prediction.

    python eval/bench.py            # prints one line per timing

1. Case-level bootstrap FROC: 1,000 resamples of 10,000 candidates in 200 cases, read at a
   41-point FP grid (what ``medft score polyp`` does per configuration).
2. Dense CIMT prediction of one ROI (default 40 x 120 pixels, 227 x 227 patches) with a
   stand-in predictor (a cheap reduction of each patch), so the number is medft's own patch
   extraction and batching overhead; with a real net add the net's forward time per patch.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from medft.evaluate import bootstrap as bs
from medft.evaluate.cimt import dense_predict
from medft.evaluate.froc import Detections, froc_bootstrap


def bench_froc(n_cand: int = 10_000, n_cases: int = 200, n_boot: int = 1000, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    case = rng.integers(0, n_cases, n_cand)
    n_les = n_cases * 2
    hit = np.where(rng.random(n_cand) < 0.1, rng.integers(0, n_les, n_cand), -1)
    lesion_case = np.arange(n_les) % n_cases
    hit = np.where(hit >= 0, np.where(lesion_case[np.maximum(hit, 0)] == case, hit, -1), -1)
    det = Detections(rng.random(n_cand) + (hit >= 0), hit, case, lesion_case,
                     np.full(n_cases, 50.0), tuple(range(n_cases)))
    t = time.perf_counter()
    froc_bootstrap(det, np.linspace(0, 0.2, 41), n_boot=n_boot, seed=seed)
    return time.perf_counter() - t


def bench_dense(h: int = 40, w: int = 120, batch: int = 128) -> float:
    img = np.random.default_rng(0).random((h + 60, w + 60)) * 255

    def predict(x: np.ndarray) -> np.ndarray:
        m = x[:, 0, ::16, ::16].mean(axis=(1, 2)) / 255
        return np.stack([1 - m, m / 2, m / 2], axis=1)

    t = time.perf_counter()
    dense_predict(img, predict, box=(30, 30, h, w), batch=batch)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-boot", type=int, default=bs.N_BOOT,
                    help="bootstrap resamples (default: %(default)s)")
    ap.add_argument("--roi", type=int, nargs=2, default=(40, 120), metavar=("H", "W"),
                    help="CIMT ROI size in pixels (default: 40 120)")
    args = ap.parse_args()
    t = bench_froc(n_boot=args.n_boot)
    print(f"bootstrap FROC: {args.n_boot} resamples x 10000 candidates x 200 cases: {t:.2f} s")
    h, w = args.roi
    t = bench_dense(h, w)
    print(f"dense CIMT prediction, {h}x{w} ROI ({h * w} patches of 227x227, stand-in net): "
          f"{t:.2f} s ({h * w / t:.0f} patches/s)")


if __name__ == "__main__":
    main()
