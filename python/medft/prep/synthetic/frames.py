"""Colonoscopy frame classification: informative frames and non-informative ones (frames)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from medft.prep.common import rng_for
from medft.prep.synthetic.colon import colon_frame
from medft.prep.synthetic.io import SynthSize, write_csv, write_png, write_split


def informative_frame(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return colon_frame(rng, h, w)


def non_informative_frame(rng: np.random.Generator, h: int, w: int, kind: int) -> np.ndarray:
    """0: motion blur, 1: wall contact (saturated, featureless), 2: bubbles over blurred tissue."""
    img = colon_frame(rng, h, w)
    if kind == 0:
        ang = rng.uniform(0, 180)
        k = np.zeros((31, 31))
        k[15, :] = 1.0 / 31
        k = ndimage.rotate(k, ang, reshape=False, order=1)
        k /= k.sum()
        return np.stack([ndimage.convolve(img[..., c], k, mode="reflect") for c in range(3)], axis=-1)
    if kind == 1:
        flat = ndimage.gaussian_filter(img, (12, 12, 0))
        return np.clip(flat * 1.6 + 40, 0, 255)
    out = ndimage.gaussian_filter(img, (4, 4, 0))
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(60):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(5, 25)
        d = np.hypot(yy - cy, xx - cx)
        ring = np.exp(-((d - r) ** 2) / 3.0)
        out = out * (1 - 0.6 * ring[..., None]) + 240 * 0.6 * ring[..., None]
    return np.clip(out, 0, 255)


def synth_frames(root: Path, size: SynthSize, h: int = 350, w: int = 500) -> None:
    """``per_case`` informative and ``per_case`` non-informative frames per video."""
    videos = [f"v{i + 1:03d}" for i in range(size.cases)]
    rows = []
    for v in videos:
        rng = rng_for(size.seed, "synth-frames", v)
        for f in range(2 * size.per_case):
            label = int(f % 2 == 0)
            img = informative_frame(rng, h, w) if label else non_informative_frame(rng, h, w, (f // 2) % 3)
            name = f"f{f + 1:04d}"
            write_png(root / "videos" / v / f"{name}.png", img)
            rows.append([v, name, label])
    write_csv(root / "labels.csv", ["video", "frame", "label"], rows)
    write_split(root, videos)
