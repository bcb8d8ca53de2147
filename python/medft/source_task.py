"""The synthetic source task of the offline stand-in for ImageNet (what ``medft pretrain`` trains on).

Formula-driven, as in pretraining without natural images (Kataoka et al., "Pre-training without
natural images", ACCV 2020): each of the :data:`CLASSES` (10) is a family of patterns drawn by one
formula -- stripes, checkers, dot lattices, concentric rings, spokes, zigzags, blobs, lines, cell
walls, scattered discs -- at a random scale, orientation and pair of colours, filling a random
region (a soft-edged ellipse over about a third of the image) that a smooth random colour field
surrounds, partly hidden by an occluder, blurred and noisy. The classes teach edges at every
orientation, blobs, rings, textures and occlusion, the low-level statistics that make pretrained
filters useful; the class is the pattern's form, never its colour, position or scale.
227x227 BGR uint8, C x H x W, as ``medft prep`` writes patches. Images are a pure function of
(seed, split, i).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy import ndimage

from medft.alexnet import INPUT_SIZE
from medft.datum_lmdb import LmdbWriter, shuffled_keys
from medft.errors import MedftError

#: The source task's classes, label = index.
CLASSES: tuple[str, ...] = ("stripes", "checkers", "dots", "rings", "spokes", "zigzags", "blobs", "lines",
                            "cells", "discs")
#: pattern period (pixels) range, and the region's semi-axes as a share of the image side
PERIOD_PX = (9.0, 30.0)
REGION_AXES = (0.25, 0.40)


# --- the synthetic source task ------------------------------------------------------------------

def _pattern(label: int, u: np.ndarray, v: np.ndarray, period: float, rng: np.random.Generator) -> np.ndarray:
    """Class ``label``'s pattern in rotated coordinates (u, v) (pixels): a boolean second-colour mask."""
    name = CLASSES[label]
    rho, phi = np.hypot(u, v), np.arctan2(v, u)
    if name == "stripes":
        return np.sin(2 * math.pi * u / period) > 0
    if name == "checkers":
        return (np.floor(u / period) + np.floor(v / period)) % 2 == 0
    if name == "dots":
        return np.hypot(u % period - period / 2, v % period - period / 2) < 0.3 * period
    if name == "rings":
        return np.sin(2 * math.pi * rho / period) > 0.2
    if name == "spokes":
        return np.sin(int(rng.integers(5, 13)) * phi) > 0
    if name == "zigzags":
        tooth = 2 * period
        return np.sin(2 * math.pi * (u + period * np.abs((v / tooth) % 2 - 1)) / period) > 0
    if name == "blobs":
        noise = ndimage.gaussian_filter(rng.standard_normal(u.shape), period / 3)
        return noise > np.quantile(noise, 0.6)
    if name == "lines":
        mask = np.zeros(u.shape, bool)
        for _ in range(int(rng.integers(8, 16))):
            a, c = rng.uniform(0, math.pi), rng.uniform(-u.shape[0] / 2, u.shape[0] / 2)
            mask |= np.abs(u * math.cos(a) + v * math.sin(a) - c) <= rng.uniform(1.0, 2.5)
        return mask
    if name == "cells":
        seeds = rng.uniform(-u.shape[0] / 2, u.shape[0] / 2, (int(4000 / period**2) + 8, 2))
        d = np.sort(np.hypot(u[..., None] - seeds[:, 0], v[..., None] - seeds[:, 1]), axis=-1)
        return d[..., 1] - d[..., 0] < 2.5
    if name == "discs":
        mask = np.zeros(u.shape, bool)
        for _ in range(int(rng.integers(6, 14))):
            cu, cv = rng.uniform(-u.shape[0] / 2, u.shape[0] / 2, 2)
            mask |= np.hypot(u - cu, v - cv) <= rng.uniform(0.3, 0.7) * period
        return mask
    raise AssertionError(name)


def _contrasting(rng: np.random.Generator, against: np.ndarray) -> np.ndarray:
    """A random RGB colour at least 80 levels (mean abs) from ``against``."""
    for _ in range(50):
        c = rng.uniform(0, 255, 3)
        if np.abs(c - against).mean() >= 80:
            return c
    return 255.0 - against


def _smooth_basis(size: int, knots: int = 5) -> np.ndarray:
    """size x knots normalised Gaussian weights: ``W @ G @ W.T`` is a smooth field through grid G."""
    t = np.linspace(0, knots - 1, size)[:, None] - np.arange(knots)[None, :]
    w = np.exp(-0.5 * (t / 0.6) ** 2)
    return w / w.sum(axis=1, keepdims=True)


def render(label: int, rng: np.random.Generator, size: int = INPUT_SIZE) -> np.ndarray:
    """One source-task image of class ``label``: uint8 BGR, 3 x size x size (C x H x W).

    The background, region, colours and occluder are drawn before the pattern, so two classes
    drawn from the same generator state share everything but the pattern inside the region."""
    if not 0 <= label < len(CLASSES):
        raise MedftError(f"source-task label {label} outside 0..{len(CLASSES) - 1}")
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    w = _smooth_basis(size)
    grid = rng.uniform(20, 235, (w.shape[1], w.shape[1], 3))
    field = np.stack([w @ grid[..., c] @ w.T for c in range(3)], axis=-1)
    # the region: a soft-edged rotated ellipse somewhere in the image
    ay, ax = rng.uniform(*REGION_AXES, 2) * size
    cy, cx = rng.uniform(0.3, 0.7, 2) * size
    tilt = rng.uniform(0, math.pi)
    dy, dx = yy - cy, xx - cx
    ru = (dx * math.cos(tilt) + dy * math.sin(tilt)) / ax
    rv = (-dx * math.sin(tilt) + dy * math.cos(tilt)) / ay
    region = np.hypot(ru, rv) <= 1
    first = rng.uniform(20, 235, 3)
    second = _contrasting(rng, first)
    # an occluder: a smooth-coloured half-plane cutting into the region
    cut_angle, cut_at = rng.uniform(0, 2 * math.pi), rng.uniform(0.4, 1.2)
    occluded = (ru * math.cos(cut_angle) + rv * math.sin(cut_angle)) > cut_at
    period, rot = rng.uniform(*PERIOD_PX), rng.uniform(0, math.pi)
    u = dx * math.cos(rot) + dy * math.sin(rot)
    v = -dx * math.sin(rot) + dy * math.cos(rot)
    pattern = _pattern(label, u, v, period, rng)
    inside = region & ~occluded
    shade = 1 + rng.uniform(-0.25, 0.25) * ru
    field[inside] = np.where(pattern[inside, None], second, first) * shade[inside, None]
    img = ndimage.gaussian_filter(field, sigma=(rng.uniform(0.5, 1.5),) * 2 + (0,)) + rng.normal(0, 6, field.shape)
    return np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8)[..., ::-1].transpose(2, 0, 1))


def _image_rng(seed: int, split: int, i: int) -> np.random.Generator:
    """Image ``i`` of ``split`` (0 train, 1 held-out) depends on nothing else: reproducible in any order."""
    return np.random.default_rng([seed, split, i])


def source_images(n: int, seed: int, split: int = 0):
    """Yield ``n`` (image, label) pairs of the source task; labels cycle 0..K-1."""
    for i in range(n):
        label = i % len(CLASSES)
        yield render(label, _image_rng(seed, split, i)), label


def write_source_lmdb(path: Path, n: int, seed: int) -> tuple[float, float, float]:
    """Write ``n`` source-task images in a seeded shuffled key order; return their per-channel BGR mean."""
    keys = shuffled_keys(n, np.random.default_rng([seed, 2]))
    total = np.zeros(3)
    with LmdbWriter(path, map_size=int((3 * INPUT_SIZE**2 + 64) * n * 1.3) + (1 << 20)) as w:
        for key, (img, label) in zip(keys, source_images(n, seed)):
            w.put(key, img, label)
            total += img.reshape(3, -1).mean(axis=1)
    return tuple(round(float(x), 3) for x in total / n)


# --- the stand-in's first layer -------------------------------------------------------------------

def conv1_bank(n: int = 96, size: int = 11, norm: float = 0.01 * math.sqrt(3 * 11 * 11)) -> np.ndarray:
    """``n`` formula-driven conv1 filters (n x 3 x size x size, BGR, float32), each of L2 norm ``norm``.

    Two thirds are achromatic Gabor filters (8 orientations x 4 wavelengths x even/odd phase, the
    same on the three channels); the rest are colour-opponent filters: centre-surround blobs and
    low-frequency Gabors whose sign differs between channels (red-green, blue-yellow). These are
    the kinds of filter ImageNet AlexNet's conv1 converges to (Krizhevsky et al. 2012, Fig. 3);
    the stand-in starts from them because a CPU budget of minutes cannot grow them from noise.
    ``norm`` defaults to that of BVLC's conv1 filler (Gaussian, std 0.01), so the solver sees
    activations of the usual scale.
    """
    half = (size - 1) / 2
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1]
    filters: list[np.ndarray] = []
    n_grey = 2 * n // 3
    per_orientation = max(1, n_grey // 8)
    for k in range(n_grey):
        theta = math.pi * (k // per_orientation % 8) / 8
        wavelength = (3.0, 4.5, 6.5, 9.0)[k % per_orientation // 2 % 4]
        phase = 0.0 if k % 2 == 0 else math.pi / 2
        u = xx * math.cos(theta) + yy * math.sin(theta)
        g = np.exp(-(xx**2 + yy**2) / (2 * (0.45 * wavelength) ** 2)) * np.cos(2 * math.pi * u / wavelength + phase)
        filters.append(np.stack([g - g.mean()] * 3))
    opponents = (np.array([0.0, 1.0, -1.0]), np.array([1.0, -0.5, -0.5]))  # BGR: green-red, blue-yellow
    for k in range(n - n_grey):
        axis = opponents[k % 2] * (1 if k // 2 % 2 == 0 else -1)
        if k // 4 % 2 == 0:  # centre-surround colour blob
            sigma = (1.5, 2.5, 3.5, 4.5)[k // 8 % 4]
            g = np.exp(-(xx**2 + yy**2) / (2 * sigma**2))
        else:  # low-frequency oriented colour edge
            theta = math.pi * (k // 8 % 4) / 4
            u = xx * math.cos(theta) + yy * math.sin(theta)
            g = np.exp(-(xx**2 + yy**2) / (2 * 3.0**2)) * np.sin(2 * math.pi * u / 10.0)
        filters.append(axis[:, None, None] * g[None])
    bank = np.stack(filters).astype(np.float64)
    bank *= norm / np.linalg.norm(bank.reshape(n, -1), axis=1)[:, None, None, None]
    return bank.astype(np.float32)
