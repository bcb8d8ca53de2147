"""Your own classification images, synthetic: three classes of small grey images (classify).

Every image is a 64 x 64 grey field of smooth tissue-like texture with two to four small
structures of one kind, the class: ``ring`` (an annulus), ``disc`` (a filled disc) or ``bars``
(two short parallel bars). There is no global shortcut: every structure's area is drawn from one
range whatever its kind, each is brighter or darker than its surround at random (so the mean grey
level does not move with the class), and contrast, blur, texture and noise are drawn from the same
ranges for every class. Only the local shape tells the classes apart, which a CNN can learn.

Written in the ``labels.csv`` form (``image,label,case``: several images per patient) with a
``split.csv`` alternating patients between train and test, like the other synthetic sets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from medft.prep.common import rng_for
from medft.prep.synthetic.io import SynthSize, smooth_noise, write_csv, write_png, write_split

CLASSES = ("ring", "disc", "bars")
SIZE = 64
#: structures per image
COUNT = (2, 5)  # 2..4
#: area of one structure in pixels, the same range for every kind
AREA_PX = (30.0, 110.0)
#: contrast of a structure against its surround, grey levels (sign drawn at random)
CONTRAST = (18.0, 55.0)
#: background level, texture amplitude and its scale, sensor noise, blur of the structures
BACKGROUND = (95.0, 160.0)
TEXTURE_SD = (6.0, 14.0)
TEXTURE_SIGMA = 3.0
NOISE_SD = (4.0, 9.0)
BLUR_PX = (0.5, 1.3)
#: a ring's inner radius as a share of its outer one
RING_INNER = 0.6


def shape_mask(kind: str, area: float, angle: float, cy: float, cx: float) -> np.ndarray:
    """A SIZE x SIZE float mask (0..1) of one structure of ``kind`` and ``area`` pixels at (cy, cx)."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    dy, dx = yy - cy, xx - cx
    if kind == "ring":
        r = np.sqrt(area / (np.pi * (1 - RING_INNER ** 2)))
        d = np.hypot(dy, dx)
        return ((d <= r) & (d >= RING_INNER * r)).astype(float)
    if kind == "disc":
        return (np.hypot(dy, dx) <= np.sqrt(area / np.pi)).astype(float)
    # bars: two parallel bars, each of half the area, length 4 x width, one width apart
    w = np.sqrt(area / 8.0)
    u = dx * np.cos(angle) + dy * np.sin(angle)  # along the bars
    v = -dx * np.sin(angle) + dy * np.cos(angle)  # across
    along = np.abs(u) <= 2 * w
    return (along & ((np.abs(v - w) <= w / 2) | (np.abs(v + w) <= w / 2))).astype(float)


def synth_image(rng: np.random.Generator, kind: str) -> np.ndarray:
    """One 64 x 64 uint8-range grey image of class ``kind``."""
    img = rng.uniform(*BACKGROUND) + rng.uniform(*TEXTURE_SD) * smooth_noise(rng, (SIZE, SIZE), TEXTURE_SIGMA)
    structures = np.zeros((SIZE, SIZE))
    for _ in range(int(rng.integers(*COUNT))):
        mask = shape_mask(kind, rng.uniform(*AREA_PX), rng.uniform(0, np.pi), *rng.uniform(10, SIZE - 10, 2))
        structures += rng.choice((-1.0, 1.0)) * rng.uniform(*CONTRAST) * mask
    img += ndimage.gaussian_filter(structures, rng.uniform(*BLUR_PX))
    img += rng.normal(0, rng.uniform(*NOISE_SD), img.shape)
    return np.clip(img, 0, 255)


def synth_shapes(root: Path, size: SynthSize) -> None:
    """``size.cases`` patients with ``size.per_case`` images of every class each."""
    rows, cases = [], []
    for p in range(size.cases):
        case = f"patient{p:03d}"
        cases.append(case)
        for kind in CLASSES:
            for i in range(size.per_case):
                rng = rng_for(size.seed, "synth-classify", case, kind, str(i))
                name = f"images/{case}_{kind}_{i:02d}.png"
                write_png(root / name, synth_image(rng, kind))
                rows.append([name, kind, case])
    write_csv(root / "labels.csv", ["image", "label", "case"], rows)
    write_split(root, cases)
