"""Small seeded synthetic inputs for all four applications, written in the documented formats.

They exist so every stage runs offline and the formats are shown by example; they are easy
but not trivial (a CNN can learn them, handcrafted rules make mistakes on them):

* polyp: colonoscopy-like frames (tissue texture, lumen, folds, specular highlights) with a
  shaded polyp bump and its mask, and candidates from :func:`polyp_candidate_generator`, a DoG
  blob detector whose score is the handcrafted baseline;
* pe: CT-like volumes (HU, 0.75 x 0.75 x 1 mm) with a branching contrast-filled vessel tree,
  emboli as dark filling defects (labelled 1..k) and unlabelled flow artefacts (mimics);
* frames: informative frames vs blurred, wall-contact (saturated) and bubble frames, 500 x 350;
* cimt: ultrasound-like ROIs: dark lumen, grey intima-media band, bright adventitia, speckle,
  with both interfaces as polylines.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from medft.prep.common import rng_for
from medft.schema import write_text_atomic


@dataclass(frozen=True)
class SynthSize:
    """How much synthetic data to write (the defaults keep ``medft prep`` of any app < ~30 s)."""

    cases: int = 6  # videos (polyp, frames) or patients (pe, cimt)
    per_case: int = 2  # frames per video, ROIs per patient; frames: frames per class per video
    seed: int = 0


# ----------------------------------------------------------------------------- writers
def write_png(path: Path, img: np.ndarray) -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8)).save(buf, format="PNG")
    write_text_atomic(path, buf.getvalue())


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    """``rows`` (lists in ``header`` order) as an atomic CSV file."""
    from medft.util.csvtext import write_csv as write_dicts

    write_dicts(path, (dict(zip(header, r, strict=True)) for r in rows), header)


def write_nifti(path: Path, vol: np.ndarray, spacing: tuple[float, float, float]) -> None:
    import nibabel as nib

    img = nib.Nifti1Image(vol, affine=np.diag([*spacing, 1.0]))
    img.header.set_zooms(spacing)
    img.header.set_xyzt_units("mm")
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))


def write_split(root: Path, cases: list[str]) -> None:
    """Alternate cases into train and test (``split.csv``), so both see every kind of case."""
    write_csv(
        root / "split.csv",
        ["case", "subset"],
        [[c, "train" if i % 2 == 0 else "test"] for i, c in enumerate(cases)],
    )


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise rescaled to unit standard deviation."""
    n = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return n / (n.std() + 1e-9)


# ----------------------------------------------------------------------------- colonoscopy
def colon_frame(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """H x W x 3 float RGB colonoscopy-like frame: textured mucosa, dark lumen, folds, highlights."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    shade = 1.0 + 0.15 * smooth_noise(rng, (h, w), h / 6) + 0.06 * smooth_noise(rng, (h, w), 1.5)
    ly, lx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
    lumen = np.exp(-((yy - ly) ** 2 + (xx - lx) ** 2) / (2 * (0.18 * min(h, w)) ** 2))
    shade *= 1.0 - 0.75 * lumen
    for _ in range(rng.integers(2, 5)):  # folds: dark arcs with a bright rim
        r0, ph = rng.uniform(0.2, 0.6) * min(h, w), rng.uniform(0, 2 * np.pi)
        d = np.hypot(yy - ly, xx - lx) - r0 - 4 * np.sin(np.arctan2(yy - ly, xx - lx) * 3 + ph)
        shade *= 1.0 - 0.3 * np.exp(-(d**2) / 8.0) + 0.15 * np.exp(-((d - 3) ** 2) / 4.0)
    vignette = 1.0 - 0.35 * (np.hypot(yy / h - 0.5, xx / w - 0.5) / 0.7) ** 2
    base = np.array([205.0, 105.0, 95.0]) * rng.uniform(0.85, 1.1, 3)
    img = shade[..., None] * vignette[..., None] * base
    for _ in range(rng.integers(2, 6)):  # specular highlights
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(1.0, 3.0)
        spot = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        img = img * (1 - spot[..., None]) + 255.0 * spot[..., None]
    return np.clip(img, 0, 255)


#: mean RGB of the synthetic mucosa and of a typical synthetic polyp
TISSUE_RGB = np.array([205.0, 105.0, 95.0])
POLYP_RGB = np.array([225.0, 150.0, 120.0])


def add_polyp(rng: np.random.Generator, img: np.ndarray, cy: float, cx: float, r: float,
              color: np.ndarray | None = None) -> np.ndarray:
    """Paint a shaded, textured dome of radius ~``r`` at (cy, cx); return its binary mask.

    ``color`` (RGB) defaults to a polyp's reddish pink; mucosal bumps (distractors) pass the
    tissue's own colour."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    ry, rx = r * rng.uniform(0.8, 1.2), r * rng.uniform(0.8, 1.2)
    q = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
    mask = q <= 1.0
    z = np.sqrt(np.clip(1 - q, 0, 1))
    light = 0.7 + 0.5 * z - 0.25 * ((yy - cy) / ry + (xx - cx) / rx) * z  # lit from the top left
    tex = 1.0 + 0.08 * smooth_noise(rng, (h, w), 1.0)
    if color is None:
        color = np.array([225.0, 150.0, 120.0]) * rng.uniform(0.9, 1.1, 3)
    polyp = np.clip(light * tex, 0, 1.6)[..., None] * color
    alpha = np.clip((1.0 - q) * 4, 0, 1)[..., None]
    img[:] = np.clip(img * (1 - alpha) + polyp * alpha, 0, 255)
    rim = (q > 1.0) & (q < 1.4)
    img[rim] *= 0.8  # shadow at the base of the bump
    return mask


def polyp_candidate_generator(
    img: np.ndarray, max_candidates: int = 3, sigmas: tuple[float, ...] = (4.0, 6.0, 9.0)
) -> list[tuple[tuple[int, ...], float]]:
    """Handcrafted candidates of an RGB frame: the strongest difference-of-Gaussians bright blobs.

    Returns ``[((x0, y0, x1, y1), score), ...]`` (x1, y1 exclusive), strongest first; the box side
    is 3 x the best sigma, the score the DoG response (the handcrafted baseline's confidence).
    """
    from skimage.feature import peak_local_max

    gray = np.asarray(img, dtype=np.float64).mean(axis=2)
    resp = np.stack([ndimage.gaussian_filter(gray, s) - ndimage.gaussian_filter(gray, 2.5 * s) for s in sigmas])
    best = resp.max(axis=0)
    peaks = peak_local_max(best, min_distance=8, num_peaks=max_candidates, exclude_border=False)
    out = []
    for y, x in peaks:
        s = sigmas[int(np.argmax(resp[:, y, x]))]
        half = int(round(1.5 * s))
        out.append(((int(x - half), int(y - half), int(x + half + 1), int(y + half + 1)), float(best[y, x])))
    return out


def synth_polyp(root: Path, size: SynthSize, h: int = 128, w: int = 160) -> None:
    """Videos whose first frames show a polyp (moving slightly) and later frames none."""
    videos = [f"v{i + 1:03d}" for i in range(size.cases)]
    rows = []
    for v in videos:
        rng = rng_for(size.seed, "synth-polyp", v)
        cy, cx, r = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w, rng.uniform(9, 14)
        # polyp colour between the mucosa's and a typical polyp's: faint polyps are hard
        t = rng.uniform(0.35, 1.0)
        color = (1 - t) * TISSUE_RGB + t * POLYP_RGB
        for f in range(size.per_case + 1):
            img = colon_frame(rng, h, w)
            for _ in range(rng.integers(1, 3)):  # mucosal bumps: polyp-shaped, tissue-coloured distractors
                add_polyp(rng, img, rng.uniform(0.15, 0.85) * h, rng.uniform(0.15, 0.85) * w,
                          r * rng.uniform(0.6, 1.0), color=TISSUE_RGB * rng.uniform(0.95, 1.25, 3))
            mask = np.zeros((h, w), bool)
            if f < size.per_case:  # the last frame of each video has no polyp
                mask = add_polyp(rng, img, cy + rng.normal(0, 3), cx + rng.normal(0, 3), r,
                                 color=color * rng.uniform(0.95, 1.05, 3))
            name = f"f{f + 1:04d}"
            write_png(root / "videos" / v / "frames" / f"{name}.png", img)
            write_png(root / "videos" / v / "masks" / f"{name}.png", mask * 255.0)
            for k, (box, score) in enumerate(polyp_candidate_generator(img)):
                rows.append([v, name, f"c{k + 1}", *box, f"{score:.3f}"])
    write_csv(root / "candidates.csv", ["video", "frame", "candidate", "x0", "y0", "x1", "y1", "score"], rows)
    write_split(root, videos)


# ----------------------------------------------------------------------------- frames
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


# ----------------------------------------------------------------------------- CT
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


# ----------------------------------------------------------------------------- ultrasound
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


WRITERS: dict[str, Callable[[Path, SynthSize], None]] = {
    "polyp": synth_polyp,
    "pe": synth_pe,
    "frames": synth_frames,
    "cimt": synth_cimt,
}

#: per-application default sizes: small enough for ``medft prep`` in well under a minute here
DEFAULT_SIZES: dict[str, SynthSize] = {
    "polyp": SynthSize(cases=6, per_case=2),
    "pe": SynthSize(cases=6, per_case=2),
    "frames": SynthSize(cases=4, per_case=2),
    "cimt": SynthSize(cases=6, per_case=2),
}


def synth_size(app: str, cases: int | None = None, per_case: int | None = None, seed: int = 0) -> SynthSize:
    """The synthetic set's size: the application's default where ``cases`` or ``per_case`` is None."""
    d = DEFAULT_SIZES[app]
    return SynthSize(cases=cases or d.cases, per_case=per_case or d.per_case, seed=seed)


def ensure_synthetic(app: str, data_root: str | Path, size: SynthSize | None = None) -> Path:
    """``<data_root>/synthetic/<app>``: the synthetic input set that ``medft prep --synthetic`` reads,
    written first if it is not there."""
    path = Path(data_root) / "synthetic" / app
    return path if path.exists() else write_synthetic(app, path.parent, size)


def write_synthetic(app: str, out: str | Path, size: SynthSize | None = None, force: bool = False) -> Path:
    """Write the synthetic input set of ``app`` to ``<out>/<app>`` (atomically); return that path."""
    import os
    import shutil

    from medft.apps import get_app
    from medft.prep.lmdb_writer import collect_stale_tmp, mark_output, refuse_existing
    from medft.util.atomic import replace_path

    get_app(app)
    final = Path(out) / app
    refuse_existing(final, force)
    collect_stale_tmp(final)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        WRITERS[app](tmp, size or DEFAULT_SIZES[app])
        mark_output(tmp, "synthetic")
        replace_path(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
