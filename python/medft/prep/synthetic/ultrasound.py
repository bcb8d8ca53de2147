"""Carotid ultrasound: ROIs with the lumen-intima and media-adventitia interfaces (cimt)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from medft.prep.common import rng_for
from medft.prep.synthetic.io import SynthSize, write_csv, write_png, write_split


def cimt_roi(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(8-bit ROI, lumen-intima y, media-adventitia y): layered bands with speckle."""
    x = np.arange(w)
    li = h * 0.38 + 3 * np.sin(x / w * 2 * np.pi * rng.uniform(0.3, 1.0) + rng.uniform(0, 6)) + rng.normal(0, 1)
    ma = li + rng.uniform(8, 12) + 1.5 * np.sin(x / w * 2 * np.pi * rng.uniform(0.5, 1.5) + rng.uniform(0, 6))
    yy = np.arange(h)[:, None].astype(np.float64)
    s1 = 1 / (1 + np.exp(-(yy - li[None]) * 1.5))
    s2 = 1 / (1 + np.exp(-(yy - ma[None]) * 1.5))
    tissue = 15 + 85 * s1 + 110 * s2 - 40 * s2 * np.clip((yy - ma[None]) / (h - ma[None]), 0, 1)
    speckle = rng.rayleigh(1.0, (h, w)) / np.sqrt(np.pi / 2)
    speckle = ndimage.gaussian_filter(speckle, (0.6, 1.2))
    img = tissue * speckle / speckle.mean()
    return np.clip(img, 0, 255), li, ma


def synth_cimt(root: Path, size: SynthSize, h: int = 64, w: int = 64) -> None:
    patients = [f"p{i + 1:03d}" for i in range(size.cases)]
    for p in patients:
        rng = rng_for(size.seed, "synth-cimt", p)
        for r in range(size.per_case):
            img, li, ma = cimt_roi(rng, h, w)
            name = f"roi{r + 1}"
            write_png(root / "rois" / p / f"{name}.png", img)
            write_csv(
                root / "rois" / p / f"{name}.csv",
                ["x", "lumen_intima_y", "media_adventitia_y"],
                [[i, f"{a:.2f}", f"{b:.2f}"] for i, (a, b) in enumerate(zip(li, ma))],
            )
    write_split(root, patients)
