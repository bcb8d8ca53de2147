"""CT pulmonary angiography: volumes with a contrast-filled vessel tree, emboli and mimics (pe)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from medft.prep.common import rng_for
from medft.prep.synthetic.io import SynthSize, smooth_noise, write_nifti, write_split


def segment_distance(pts: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distance to segment ab, position along it in 0..1) for points ``pts`` (N x 3, mm)."""
    ab = b - a
    t = np.clip(((pts - a) @ ab) / (ab @ ab), 0, 1)
    return np.linalg.norm(pts - (a + t[:, None] * ab), axis=1), t


def vessel_tree(rng: np.random.Generator, extent: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Segments (start mm, end mm, radius mm) of a binary tree entering at the volume's centre top."""
    segs = []
    stack = [(np.array([extent[0] / 2, extent[1] / 2, extent[2] * 0.9]), np.array([0.0, 0.0, -1.0]), 4.0, 0)]
    while stack:
        p, d, r, depth = stack.pop()
        length = rng.uniform(12, 18) * (0.85**depth)
        q = np.clip(p + d * length, 3, extent - 3)
        segs.append((p, q, r))
        if depth < 2:
            for sgn in (-1, 1):
                turn = rng.normal(0, 0.3, 3)
                nd = (
                    d
                    + sgn * np.array([0.8, 0.0, 0.0]) * (1 if depth % 2 == 0 else 0)
                    + sgn * np.array([0.0, 0.8, 0.0]) * (0 if depth % 2 == 0 else 1)
                    + turn
                )
                stack.append((q, nd / np.linalg.norm(nd), r * 0.8, depth + 1))
    return segs


def ct_volume(
    rng: np.random.Generator,
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    n_emboli: int = 2,
    n_mimics: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """(HU volume int16, PE label volume uint8) with a vessel tree, emboli and flow artefacts."""
    sp = np.asarray(spacing)
    extent = np.asarray(shape) * sp
    grid = np.stack(np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, sp)], indexing="ij"), -1).reshape(-1, 3)
    hu = -850.0 + 40 * smooth_noise(rng, shape, 2.0).ravel()
    segs = vessel_tree(rng, extent)
    vessel = np.zeros(len(grid), bool)
    for a, b, r in segs:
        d, _ = segment_distance(grid, a, b)
        vessel |= d <= r
    hu[vessel] = 320.0
    labels = np.zeros(len(grid), np.uint8)
    order = rng.permutation(len(segs))
    for k, si in enumerate(order[: n_emboli + n_mimics]):
        a, b, r = segs[si]
        d, t = segment_distance(grid, a, b)
        t0 = rng.uniform(0.35, 0.65)
        off = rng.normal(0, 1, 3)
        off -= off @ (b - a) / np.linalg.norm(b - a) ** 2 * (b - a)
        centre = a + t0 * (b - a) + 0.3 * r * off / (np.linalg.norm(off) + 1e-9)
        semi = np.linalg.norm(b - a) * 0.18
        dd = np.linalg.norm(grid - centre, axis=1)
        blob = vessel & (dd <= max(semi, 0.7 * r)) & (d <= 0.75 * r)
        if k < n_emboli:
            hu[blob] = 45.0  # clot
            labels[blob] = k + 1
        else:
            hu[blob] = 120.0  # mixing artefact: darker than blood, not a clot
    hu = ndimage.gaussian_filter(hu.reshape(shape), 0.7) + rng.normal(0, 12, shape)
    return np.rint(hu).astype(np.int16), labels.reshape(shape)


def synth_pe(
    root: Path,
    size: SynthSize,
    shape: tuple[int, int, int] = (64, 64, 48),
    spacing: tuple[float, float, float] = (0.75, 0.75, 1.0),
) -> None:
    patients = [f"p{i + 1:03d}" for i in range(size.cases)]
    for p in patients:
        rng = rng_for(size.seed, "synth-pe", p)
        hu, labels = ct_volume(rng, shape, spacing, n_emboli=size.per_case)
        write_nifti(root / "volumes" / f"{p}.nii.gz", hu, spacing)
        write_nifti(root / "pe_masks" / f"{p}.nii.gz", labels, spacing)
    write_split(root, patients)
