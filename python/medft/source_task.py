"""The synthetic source task of the offline stand-in for ImageNet (what ``medft pretrain`` trains on).

:data:`CLASSES` (10) classes of one procedurally drawn object each -- shapes (disc, square,
triangle, ...) and textured shapes (striped disc, checkered square) -- at a random position, size,
rotation and colour with shading, on a smooth random colour field with a faint oriented texture,
clutter lines and pixel noise; 227x227 BGR uint8, C x H x W, as ``medft prep`` writes patches.
The class is the object's form, never its colour. Images are a pure function of (seed, split, i).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy import ndimage

from medft.alexnet import INPUT_SIZE
from medft.errors import MedftError
from medft.prep.lmdb_writer import LmdbWriter, shuffled_keys

#: The source task's classes, label = index.
CLASSES: tuple[str, ...] = ("disc", "square", "triangle", "ring", "cross", "star", "hexagon", "crescent",
                            "striped-disc", "checkered-square")



# --- the synthetic source task ------------------------------------------------------------------

def _polygon(u: np.ndarray, v: np.ndarray, n: int, r: float) -> np.ndarray:
    """Inside a regular n-gon of circumradius r centred at the origin, one vertex on +u."""
    inside = np.ones(u.shape, bool)
    for k in range(n):
        a = (2 * k + 1) * math.pi / n
        inside &= u * math.cos(a) + v * math.sin(a) <= r * math.cos(math.pi / n)
    return inside


def _shape_mask(label: int, u: np.ndarray, v: np.ndarray, r: float, rng: np.random.Generator):
    """(mask, second-colour mask or None) of class ``label`` in object coordinates (u, v)."""
    rho, phi = np.hypot(u, v), np.arctan2(v, u)
    name = CLASSES[label]
    if name in ("disc", "striped-disc"):
        mask = rho <= r
    elif name in ("square", "checkered-square"):
        mask = np.maximum(abs(u), abs(v)) <= 0.8 * r
    elif name == "triangle":
        mask = _polygon(u, v, 3, r)
    elif name == "ring":
        mask = (rho <= r) & (rho >= r * rng.uniform(0.45, 0.65))
    elif name == "cross":
        w = r * rng.uniform(0.2, 0.3)
        mask = ((abs(u) <= w) & (abs(v) <= r)) | ((abs(v) <= w) & (abs(u) <= r))
    elif name == "star":
        mask = rho <= r * (0.62 + 0.38 * np.cos(5 * phi))
    elif name == "hexagon":
        mask = _polygon(u, v, 6, r)
    elif name == "crescent":
        mask = (rho <= r) & (np.hypot(u - r * rng.uniform(0.4, 0.6), v) > r * 0.85)
    else:
        raise AssertionError(name)
    second = None
    if name == "striped-disc":
        period = r * rng.uniform(0.25, 0.4)
        second = mask & (np.floor(u / period) % 2 == 0)
    elif name == "checkered-square":
        period = r * rng.uniform(0.3, 0.45)
        second = mask & ((np.floor(u / period) + np.floor(v / period)) % 2 == 0)
    return mask, second


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
    """One source-task image of class ``label``: uint8 BGR, 3 x size x size (C x H x W)."""
    if not 0 <= label < len(CLASSES):
        raise MedftError(f"source-task label {label} outside 0..{len(CLASSES) - 1}")
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    # background: smooth colour field + faint oriented texture + clutter lines
    w = _smooth_basis(size)
    grid = rng.uniform(20, 235, (w.shape[1], w.shape[1], 3))
    field = np.stack([w @ grid[..., c] @ w.T for c in range(3)], axis=-1)
    theta, freq = rng.uniform(0, math.pi), rng.uniform(0.05, 0.3)
    field += rng.uniform(0, 25) * np.sin(freq * (xx * math.cos(theta) + yy * math.sin(theta)))[..., None]
    for _ in range(rng.integers(0, 4)):
        a, c = rng.uniform(0, math.pi), rng.uniform(0, size)
        line = np.abs(xx * math.cos(a) + yy * math.sin(a) - c) <= rng.uniform(0.5, 2)
        field[line] = rng.uniform(0, 255, 3)
    # the object: position, size, rotation, colour with a linear shading
    r = rng.uniform(0.15, 0.3) * size
    cy, cx = rng.uniform(r, size - r, 2)
    rot = rng.uniform(0, 2 * math.pi)
    du, dv = xx - cx, yy - cy
    u, v = du * math.cos(rot) + dv * math.sin(rot), -du * math.sin(rot) + dv * math.cos(rot)
    mask, second = _shape_mask(label, u, v, r, rng)
    base = field[int(cy), int(cx)]
    colour = _contrasting(rng, base)
    shade = 1 + rng.uniform(-0.3, 0.3) * (u / r)
    field[mask] = (colour[None, :] * shade[mask][:, None])
    if second is not None:
        field[second] = _contrasting(rng, colour)
    img = ndimage.gaussian_filter(field, sigma=(0.8, 0.8, 0)) + rng.normal(0, 6, field.shape)
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
