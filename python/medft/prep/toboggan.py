"""PE candidate generation by tobogganing (Fairfield 1990; Liang & Bi 2007, the paper's [63]).

Every voxel of the search region slides to its darkest 26-neighbour until it reaches a local
minimum; voxels that reach the same minimum form one cluster.  The search region keeps the dark
voxels *inside* contrast-filled vessels: an embolus is a dark region surrounded by brighter blood.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: contrast-filled blood is brighter than this (HU)
VESSEL_HU = 150.0
#: emboli (clot, soft tissue) are darker than VESSEL_HU and brighter than this (HU)
CLOT_MIN_HU = -100.0
#: radius of the closing that puts filling defects inside the vessel mask (mm)
CLOSING_MM = 3.0
#: smallest cluster kept (voxels)
MIN_VOXELS = 3

OFFSETS = np.array([o for o in itertools.product((-1, 0, 1), repeat=3) if o != (0, 0, 0)])


@dataclass(frozen=True)
class Candidate:
    index: int
    center_vox: tuple[float, float, float]  # centroid, array index coordinates
    voxels: int
    score: float  # mean depth below VESSEL_HU of the cluster (HU): the generator's confidence


def ball(radius_vox: np.ndarray) -> np.ndarray:
    """Ellipsoidal structuring element with per-axis radii (voxels)."""
    r = np.maximum(1, np.floor(radius_vox)).astype(int)
    g = np.ogrid[tuple(slice(-k, k + 1) for k in r)]
    return sum((gi / max(ri, 1e-9)) ** 2 for gi, ri in zip(g, radius_vox)) <= 1.0


def vessel_masks(smooth: np.ndarray, spacing: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(bright blood, blood with its filling defects closed in) as boolean volumes."""
    bright = smooth > VESSEL_HU
    closed = ndimage.binary_closing(bright, structure=ball(CLOSING_MM / np.asarray(spacing)), border_value=0)
    return bright, closed | bright


def slide(values: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Flat index of the minimum each region voxel slides to (-1 outside the region)."""
    shape = values.shape
    v = np.where(region, values, np.inf)
    pad = np.pad(v, 1, constant_values=np.inf)
    best_val, best_off = v.copy(), np.full(shape, -1)
    for k, (di, dj, dk) in enumerate(OFFSETS):
        nb = pad[1 + di : 1 + di + shape[0], 1 + dj : 1 + dj + shape[1], 1 + dk : 1 + dk + shape[2]]
        better = nb < best_val  # strictly darker: ties stay, so pointers never cycle
        best_val = np.where(better, nb, best_val)
        best_off = np.where(better, k, best_off)
    idx = np.arange(v.size).reshape(shape)
    ptr = idx.copy()
    moving = best_off >= 0
    off = OFFSETS[best_off[moving]]
    coords = np.stack(np.nonzero(moving), axis=1) + off
    ptr[moving] = np.ravel_multi_index(coords.T, shape)
    ptr = ptr.ravel()
    while True:  # pointer jumping: every voxel ends at the sink of its descent path
        nxt = ptr[ptr]
        if np.array_equal(nxt, ptr):
            break
        ptr = nxt
    return np.where(region.ravel(), ptr, -1)


def toboggan_candidates(vol_hu: np.ndarray, spacing: tuple[float, float, float]) -> list[Candidate]:
    """PE candidates of a CT volume (HU), ordered by cluster sink position."""
    smooth = ndimage.gaussian_filter(np.asarray(vol_hu, dtype=np.float32), sigma=0.6 / np.asarray(spacing))
    _, closed = vessel_masks(smooth, spacing)
    region = closed & (smooth < VESSEL_HU) & (smooth > CLOT_MIN_HU)
    sink = slide(smooth, region)
    inside = sink >= 0
    sinks, inverse, sizes = np.unique(sink[inside], return_inverse=True, return_counts=True)
    coords = np.stack(np.nonzero(region), axis=1)  # C order, the same order as sink[inside]
    cents = np.stack([np.bincount(inverse, weights=coords[:, a]) for a in range(3)], axis=1) / sizes[:, None]
    depth = np.bincount(inverse, weights=VESSEL_HU - smooth.ravel()[inside]) / sizes
    out = []
    for k in np.flatnonzero(sizes >= MIN_VOXELS):
        out.append(Candidate(len(out), tuple(float(c) for c in cents[k]), int(sizes[k]), float(depth[k])))
    return out


def vessel_axis(
    vessel: np.ndarray, spacing: tuple[float, float, float], center_vox: np.ndarray, radius_mm: float = 4.0
) -> np.ndarray:
    """Unit vector (array axes, physical units) along the vessel at ``center_vox``.

    Structure tensor of the smoothed vessel mask in a Gaussian window of ``radius_mm``: across a
    tube the gradients point radially, so the axis is the eigenvector of the smallest eigenvalue.
    The sign is fixed so the largest component is positive.
    """
    sp = np.asarray(spacing, dtype=np.float64)
    half = np.ceil(2 * radius_mm / sp).astype(int)
    c = np.rint(center_vox).astype(int)
    lo, hi = np.maximum(c - half, 0), np.minimum(c + half + 1, vessel.shape)
    sub = vessel[tuple(slice(a, b) for a, b in zip(lo, hi))].astype(np.float64)
    if min(sub.shape) < 3:
        return np.array([0.0, 0.0, 1.0])
    grads = np.gradient(sub, *sp)
    grids = np.meshgrid(*[(np.arange(a, b) - cc) * s for a, b, cc, s in zip(lo, hi, center_vox, sp)], indexing="ij")
    w = np.exp(-sum(g * g for g in grids) / (2 * radius_mm**2))
    t = np.array([[np.sum(w * grads[i] * grads[j]) for j in range(3)] for i in range(3)])
    evals, evecs = np.linalg.eigh(t)
    axis = evecs[:, 0] if evals[-1] > 1e-12 else np.array([0.0, 0.0, 1.0])
    return axis * np.sign(axis[np.argmax(np.abs(axis))])
