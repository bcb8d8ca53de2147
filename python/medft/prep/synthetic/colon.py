"""Colonoscopy: the mucosa scene, and frames with polyps and polyp mimics (polyp)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from medft.prep.candidates import CandidateParams, polyp_candidates
from medft.prep.common import rng_for
from medft.prep.synthetic.io import SynthSize, smooth_noise, write_csv, write_png, write_split

#: mean RGB of the synthetic mucosa (each frame tints it at random); polyps and mimics share it
TISSUE_RGB = np.array([205.0, 105.0, 95.0])
#: polyp mimics: a flat bump (smooth, no rim, no side shading), a fold segment (elongated ridge and
#: its shadow), a bubble (thin bright ring, clear inside) and two small touching bumps
MIMICS = ("flat_bump", "fold", "bubble", "twin_bump")
#: mimics per frame (low, high + 1): enough that most of the detector's false candidates are
#: objects like the polyp, not plain mucosa (whose flatter patches would give the class away)
MIMICS_PER_FRAME = (6, 9)
#: every object kind draws size (px), contrast (RMS relative brightness change), blur (px),
#: occlusion and highlights from these same ranges: only its shape tells a polyp from a mimic
RADIUS_PX = (8.0, 15.0)
CONTRAST = (0.3, 0.6)
#: flat (sessile) polyps: this share of the polyps is subtle, with a contrast from SUBTLE_CONTRAST,
#: as faint as the plain-mucosa blobs the detector also returns
P_SUBTLE = 0.2
SUBTLE_CONTRAST = (0.1, 0.25)
BLUR_PX = (0.0, 1.5)
P_OCCLUDED = 0.3
P_HIGHLIGHT = 0.5


def colon_frame(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """H x W x 3 float RGB colonoscopy-like frame: textured mucosa, dark lumen, folds, highlights."""
    return colon_scene(rng, h, w)[0]


def colon_scene(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, tuple[float, float]]:
    """(:func:`colon_frame`'s image, the lumen centre (y, x))."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    shade = 1.0 + 0.15 * smooth_noise(rng, (h, w), h / 6) + 0.04 * smooth_noise(rng, (h, w), 1.5)
    ly, lx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
    lumen = np.exp(-((yy - ly) ** 2 + (xx - lx) ** 2) / (2 * (0.18 * min(h, w)) ** 2))
    shade *= 1.0 - 0.75 * lumen
    for _ in range(rng.integers(2, 5)):  # folds: dark arcs with a bright rim
        r0, ph = rng.uniform(0.2, 0.6) * min(h, w), rng.uniform(0, 2 * np.pi)
        d = np.hypot(yy - ly, xx - lx) - r0 - 4 * np.sin(np.arctan2(yy - ly, xx - lx) * 3 + ph)
        shade *= 1.0 - 0.3 * np.exp(-(d**2) / 8.0) + 0.08 * np.exp(-((d - 3) ** 2) / 4.0)
    vignette = 1.0 - 0.35 * (np.hypot(yy / h - 0.5, xx / w - 0.5) / 0.7) ** 2
    img = shade[..., None] * vignette[..., None] * (TISSUE_RGB * rng.uniform(0.85, 1.1, 3))
    for _ in range(rng.integers(2, 6)):
        add_highlight(img, rng.uniform(0, h), rng.uniform(0, w), rng.uniform(1.0, 2.0))
    return np.clip(img, 0, 255), (ly, lx)


def add_highlight(img: np.ndarray, cy: float, cx: float, r: float) -> None:
    """Paint a specular reflection (a small saturated spot) into ``img`` in place."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    spot = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    img[:] = img * (1 - spot[..., None]) + 255.0 * spot[..., None]


def ellipse_coords(shape: tuple[int, int], cy: float, cx: float, r: float, aspect: float,
                   angle: float) -> tuple[np.ndarray, np.ndarray]:
    """(u, v): every pixel's position along and across an ellipse of radii ``r`` x ``aspect``, ``r``."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    c, s = np.cos(angle), np.sin(angle)
    return ((xx - cx) * c + (yy - cy) * s) / (r * aspect), (-(xx - cx) * s + (yy - cy) * c) / r


def polyp_relief(u: np.ndarray, v: np.ndarray, light: float, rng: np.random.Generator) -> np.ndarray:
    """A polyp's brightness relief: a closed convex dome shaded from one side (``light``), a dark
    rim where it meets the wall, and a fine surface texture."""
    q = u**2 + v**2
    z = np.sqrt(np.clip(1 - q, 0, 1))
    side = (np.cos(light) * u + np.sin(light) * v) * z
    rim = np.exp(-((np.sqrt(q) - 1.0) ** 2) / 0.03)
    return z + 0.5 * side - 1.0 * rim + 0.15 * smooth_noise(rng, u.shape, 1.0) * z


def mimic_relief(kind: str, u: np.ndarray, v: np.ndarray, light: float, rng: np.random.Generator) -> np.ndarray:
    """The brightness relief of a polyp mimic of :data:`MIMICS` (same colour as the mucosa); the
    flat bump casts a small shadow away from ``light`` instead of a polyp's rim."""
    q = u**2 + v**2
    if kind == "flat_bump":
        cast = np.exp(-((u + 0.9 * np.cos(light)) ** 2 + (v + 0.9 * np.sin(light)) ** 2) / 0.15)
        return np.exp(-q / 0.3) - 0.5 * cast + 0.15 * smooth_noise(rng, u.shape, 1.0) * np.exp(-q)
    if kind == "fold":
        along = np.exp(-((u / 1.4) ** 4))
        side = np.sign(np.cos(light)) or 1.0
        return along * (np.exp(-((2.5 * v) ** 2)) - 0.8 * np.exp(-((2.5 * (v - 0.45 * side)) ** 2)))
    if kind == "bubble":
        return np.exp(-((np.sqrt(q) - 0.85) ** 2) / 0.008) + 0.1 * np.exp(-q / 0.3)
    return np.exp(-((u - 0.45) ** 2 + v**2) / 0.12) + np.exp(-((u + 0.45) ** 2 + (v - 0.15) ** 2) / 0.12)


def equalise(relief: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """``relief`` with its values ``inside`` replaced, in rank order, by standard normal quantiles
    (0 outside): every object gets the same brightness histogram and keeps only its spatial layout."""
    from scipy.stats import norm

    out = np.zeros_like(relief)
    ranks = np.argsort(np.argsort(relief[inside], kind="stable"), kind="stable")
    out[inside] = norm.ppf((ranks + 0.5) / ranks.size)
    return out


def add_object(rng: np.random.Generator, img: np.ndarray, kind: str, cy: float, cx: float) -> np.ndarray:
    """Paint a polyp (``kind`` "polyp") or a mimic at (cy, cx) into ``img``; return the polyp mask
    (empty for a mimic).

    Size, contrast, blur, partial occlusion (a fold over part of it) and a highlight come from the
    same ranges for every kind (but a share :data:`P_SUBTLE` of polyps is flat and faint), and the
    relief's values follow one distribution for every kind (:func:`equalise`), so only its shape
    and shading separate polyps from mimics.
    """
    r = rng.uniform(*RADIUS_PX)
    light = rng.uniform(0, 2 * np.pi)
    u, v = ellipse_coords(img.shape[:2], cy, cx, r, rng.uniform(1.0, 1.4), rng.uniform(0, np.pi))
    relief = polyp_relief(u, v, light, rng) if kind == "polyp" else mimic_relief(kind, u, v, light, rng)
    support = np.exp(-(((u**2 + v**2) / 1.6) ** 3))  # soft disc a little wider than the object
    relief = equalise(ndimage.gaussian_filter(relief, rng.uniform(*BLUR_PX)), support > 0.05) * support
    if rng.random() < P_OCCLUDED:  # a fold hides one side: relief cut by a soft chord, shadow along it
        c = rng.uniform(-0.6, 0.1)
        t = np.cos(light + np.pi / 2) * u + np.sin(light + np.pi / 2) * v - c
        relief = relief / (1 + np.exp(-t * 12)) - 1.5 * np.exp(-((t * 4) ** 2)) * support
    tint = rng.uniform(0.97, 1.03, 3)
    subtle = kind == "polyp" and rng.random() < P_SUBTLE
    contrast = rng.uniform(*(SUBTLE_CONTRAST if subtle else CONTRAST))
    img[:] = np.clip(img * (1 + contrast * relief)[..., None] * (1 + (tint - 1) * support[..., None]),
                     0, 255)
    if rng.random() < P_HIGHLIGHT:
        add_highlight(img, cy + rng.normal(0, 0.4 * r), cx + rng.normal(0, 0.4 * r), rng.uniform(1.0, 2.0))
    return (u**2 + v**2 <= 1.0) if kind == "polyp" else np.zeros(img.shape[:2], bool)


#: the candidate generator's preset for the synthetic frames (:mod:`medft.prep.candidates`): one box
#: size for every candidate (side 2 x 17 + 1 px, a little over the largest object radius and its
#: rim, so a patch's zoom does not tell the object's kind), the frame's vignetted outer 15% not
#: searched, and the blob cue alone: with the edge-shape cue the fold and twin-bump mimics add
#: about one candidate a frame and sensitivity falls from 84% to 81% (120 frames, seed 0)
SYNTH_CANDIDATES = CandidateParams(ref_height=128, edge_weight=0.0, margin=0.15, box_half=17)


def polyp_candidate_generator(img: np.ndarray) -> list[tuple[tuple[int, ...], float]]:
    """Candidates of a synthetic frame: :func:`medft.prep.candidates.polyp_candidates` with
    :data:`SYNTH_CANDIDATES`, the same generator `medft candidates polyp` runs on public frames."""
    return polyp_candidates(img, SYNTH_CANDIDATES)


def object_centres(rng: np.random.Generator, n: int, h: int, w: int, avoid: list[tuple[float, float]],
                   gap: float = 1.7 * RADIUS_PX[1]) -> list[tuple[float, float]]:
    """``n`` object centres, uniform over the frame's inner 70%, ``gap`` px from each other and
    from every point of ``avoid`` (the lumen) where possible."""
    out: list[tuple[float, float]] = []
    for _ in range(50 * n):
        if len(out) >= n:
            break
        c = (rng.uniform(0.15, 0.85) * h, rng.uniform(0.15, 0.85) * w)
        if all(np.hypot(c[0] - o[0], c[1] - o[1]) >= gap for o in out + avoid):
            out.append(c)
    return out


def polyp_frame(rng: np.random.Generator, h: int, w: int, polyp: bool) -> tuple[np.ndarray, np.ndarray]:
    """(RGB frame, polyp mask): mucosa with :data:`MIMICS_PER_FRAME` mimics of random kinds and, if
    ``polyp``, one polyp, all on the wall (away from the lumen) at positions drawn alike."""
    img, lumen = colon_scene(rng, h, w)
    centres = object_centres(rng, int(rng.integers(*MIMICS_PER_FRAME)) + polyp, h, w, [lumen])
    mask = np.zeros((h, w), bool)
    for i, (cy, cx) in enumerate(centres):
        kind = "polyp" if polyp and i == 0 else str(rng.choice(MIMICS))
        mask |= add_object(rng, img, kind, cy, cx)
    img += rng.normal(0, 3.0, img.shape)  # sensor noise
    return np.clip(img, 0, 255), mask


def synth_polyp(root: Path, size: SynthSize, h: int = 128, w: int = 160) -> None:
    """Videos whose first ``per_case`` frames show a polyp and the last none; every frame has polyp
    mimics (flat bumps, folds, bubbles, twin bumps) and specular highlights."""
    videos = [f"v{i + 1:03d}" for i in range(size.cases)]
    rows = []
    for v in videos:
        rng = rng_for(size.seed, "synth-polyp", v)
        for f in range(size.per_case + 1):
            img, mask = polyp_frame(rng, h, w, f < size.per_case)  # the last frame of each video has none
            name = f"f{f + 1:04d}"
            write_png(root / "videos" / v / "frames" / f"{name}.png", img)
            write_png(root / "videos" / v / "masks" / f"{name}.png", mask * 255.0)
            for k, (box, score) in enumerate(polyp_candidate_generator(img)):
                rows.append([v, name, f"c{k + 1}", *box, f"{score:.3f}"])
    write_csv(root / "candidates.csv", ["video", "frame", "candidate", "x0", "y0", "x1", "y1", "score"], rows)
    write_split(root, videos)
