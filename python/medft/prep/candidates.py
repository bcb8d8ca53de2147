"""Handcrafted polyp candidates for colonoscopy frames that have none, and their measured recall.

The study's FROC curves (Fig. 2) start from candidate boxes: every polyp the generator misses is
missed by every CNN after it, so the generator's sensitivity caps each curve. The paper used its
own pre-CNN detector; public data sets bring masks only. This generator follows the pre-CNN
polyp-detection literature's two cues (polyps are bright convex protrusions with a darker rim:
blob detectors on the intensity, and shape cues on the edges, e.g. valley/rim and radial-symmetry
responses) in the simplest form that works on any frame size:

1. specular highlights are removed with a grey opening (bright spots under ``highlight_px``);
2. **blob cue**: the strongest difference-of-Gaussians (scale-normalised bright-blob) response of
   the log intensity over ``sigmas``;
3. **edge-shape cue**: at the same scale, the mean inward-pointing intensity gradient on a ring of
   radius 2 sigma (a closed dome lit from any side has gradients pointing in all round its rim;
   a fold or an edge has them on one side only), weighted by ``edge_weight``;
4. the search is restricted to the lit wall (coarse brightness above ``lit_level`` x the frame's
   bright level: not the dark lumen or black borders) away from a ``margin`` share of each side;
5. non-maximum suppression: the ``max_candidates`` strongest local maxima at least
   ``min_distance`` apart and above ``threshold``; ties are broken by a seeded permutation.

Scale-dependent settings are given in pixels at ``ref_height`` and scaled to the frame's height,
so one preset serves 128-row synthetic frames and 288- or 576-row endoscope frames alike. The
score of a candidate is its response (the handcrafted baseline's confidence).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

#: candidates.csv columns (data_prep/README.md rule polyp-4)
COLUMNS = ("video", "frame", "candidate", "x0", "y0", "x1", "y1", "score")


@dataclass(frozen=True)
class CandidateParams:
    """Settings of :func:`polyp_candidates`; lengths in pixels at ``ref_height`` rows."""

    ref_height: int = 128
    sigmas: tuple[float, ...] = (4.0, 5.0, 6.0, 7.0, 8.0)
    highlight_px: int = 7
    edge_weight: float = 0.5
    lit_level: float = 0.65
    margin: float = 0.05
    threshold: float = 0.08
    min_distance: float = 8.0
    max_candidates: int = 12
    #: half-side of every box (one size for all, so a patch's zoom does not tell the object's
    #: kind); None: 2 x the best scale's sigma (boxes follow the blob's size)
    box_half: float | None = None

    def record(self) -> dict:
        return asdict(self)


#: the preset for public data sets: boxes follow the blob's scale, a thin margin
DEFAULT = CandidateParams()


def _ring_kernels(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(kx, ky): unit inward directions on a ring of radius 2 sigma, normalised to mean 1."""
    r = 2.0 * sigma
    n = int(np.ceil(r + 2 * 0.5 * sigma + 1))
    yy, xx = np.mgrid[-n : n + 1, -n : n + 1].astype(np.float64)
    d = np.hypot(xx, yy)
    ring = np.exp(-((d - r) ** 2) / (2 * (0.5 * sigma) ** 2))
    ring /= ring.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        ux, uy = np.where(d > 0, -xx / d, 0.0), np.where(d > 0, -yy / d, 0.0)
    # correlation with these kernels = mean over the ring of the gradient's inward component
    return ring * ux, ring * uy


def responses(img: np.ndarray, p: CandidateParams = DEFAULT) -> tuple[np.ndarray, np.ndarray, float]:
    """(combined response H x W, best scale's sigma per pixel, scale factor) of an RGB frame."""
    from scipy.signal import fftconvolve

    h = img.shape[0]
    k = h / p.ref_height
    size = max(1, int(round(p.highlight_px * k)))
    gray = np.log1p(ndimage.grey_opening(np.asarray(img, dtype=np.float64).mean(axis=2), size=(size, size)))
    best = np.full(gray.shape, -np.inf)
    best_sigma = np.zeros(gray.shape)
    for s0 in p.sigmas:
        s = s0 * k
        sm = ndimage.gaussian_filter(gray, s)
        resp = sm - ndimage.gaussian_filter(gray, 2.5 * s)
        if p.edge_weight:
            g = ndimage.gaussian_filter(gray, 0.5 * s)
            gy, gx = np.gradient(g)
            kx, ky = _ring_kernels(s)
            # flip for correlation: inward gradient mean, times the ring's radius = the brightness
            # rise from rim to centre it implies (comparable with the DoG's units)
            edge = fftconvolve(gx, kx[::-1, ::-1], mode="same") + fftconvolve(gy, ky[::-1, ::-1], mode="same")
            resp = resp + p.edge_weight * np.clip(edge, 0, None) * 2.0 * s
        better = resp > best
        best = np.where(better, resp, best)
        best_sigma = np.where(better, s, best_sigma)
    coarse = ndimage.gaussian_filter(gray, 8.0 * k)
    lit = coarse > np.percentile(coarse, 90) + np.log(p.lit_level)
    hh, ww = gray.shape
    inner = np.zeros(gray.shape, bool)
    my, mx = int(p.margin * hh), int(p.margin * ww)
    inner[my : hh - my, mx : ww - mx] = True
    return np.where(lit & inner, best, 0.0), best_sigma, k


def polyp_candidates(img: np.ndarray, p: CandidateParams = DEFAULT,
                     seed: int = 0) -> list[tuple[tuple[int, int, int, int], float]]:
    """``[((x0, y0, x1, y1), score), ...]`` (x1, y1 exclusive), strongest first, of an RGB frame."""
    from skimage.feature import peak_local_max

    resp, sig, k = responses(img, p)
    rng = np.random.default_rng(seed)
    tie = rng.random(resp.shape) * 1e-9  # seeded tie-break among equal responses
    peaks = peak_local_max(resp + tie * (resp > 0), min_distance=max(1, int(round(p.min_distance * k))),
                           num_peaks=p.max_candidates, threshold_abs=p.threshold, exclude_border=False)
    out = []
    for y, x in peaks:
        half = p.box_half * k if p.box_half is not None else 2.0 * sig[y, x]
        hf = int(round(half))
        out.append(((int(x - hf), int(y - hf), int(x + hf + 1), int(y + hf + 1)), float(resp[y, x])))
    return out


def box_hits(box: tuple[int, int, int, int], labels: np.ndarray) -> int:
    """The mask component (1..) under the box centre, 0 for none: prep's labelling rule
    ("the candidate box centre lies on a mask pixel")."""
    x0, y0, x1, y1 = box
    cy, cx = int(round((y0 + y1 - 1) / 2)), int(round((x0 + x1 - 1) / 2))
    if 0 <= cy < labels.shape[0] and 0 <= cx < labels.shape[1]:
        return int(labels[cy, cx])
    return 0


def frame_recall(boxes: Iterable[tuple[int, int, int, int]], mask: np.ndarray) -> tuple[int, int, int]:
    """(polyps in the mask, polyps hit by a box centre, boxes whose centre misses every polyp)."""
    labels, n = ndimage.label(np.asarray(mask) > 0)
    hit, fp = set(), 0
    for b in boxes:
        c = box_hits(b, labels)
        if c:
            hit.add(c)
        else:
            fp += 1
    return n, len(hit), fp


def summarise(per_frame: list[tuple[int, int, int]], candidates: int) -> dict:
    """Sensitivity (share of polyps with a candidate centre on them) and false positives per frame."""
    polyps = sum(f[0] for f in per_frame)
    hit = sum(f[1] for f in per_frame)
    fps = sum(f[2] for f in per_frame)
    frames = len(per_frame)
    return {
        "frames": frames,
        "polyps": polyps,
        "polyps_hit": hit,
        "sensitivity": hit / polyps if polyps else float("nan"),
        "candidates": candidates,
        "false_positives": fps,
        "fp_per_frame": fps / frames if frames else float("nan"),
        "candidates_per_frame": candidates / frames if frames else float("nan"),
    }


def describe(s: dict) -> str:
    """One line: the generator's recall on a set (what caps every FROC built on it)."""
    return (f"{s['polyps_hit']}/{s['polyps']} polyps hit (sensitivity {s['sensitivity']:.1%}), "
            f"{s['fp_per_frame']:.2f} false positives per frame, {s['candidates_per_frame']:.2f} candidates "
            f"per frame over {s['frames']} frames")


def candidates_for_input(root, p: CandidateParams = DEFAULT, seed: int = 0, progress: bool = True
                         ) -> tuple[list[dict], dict]:
    """(candidates.csv rows, recall summary) for every frame of a polyp input folder
    (``videos/<video>/frames/<frame>.png`` with masks; data_prep/README.md)."""
    from pathlib import Path

    from medft.prep.common import bad_input
    from medft.prep.io import read_image

    root = Path(root)
    if not (root / "videos").is_dir():
        raise bad_input(root / "videos", "polyp-1", "missing folder")
    frames = sorted((root / "videos").glob("*/frames/*.png"))
    if not frames:
        raise bad_input(root / "videos", "polyp-2", "no videos/<video>/frames/<frame>.png files")
    rows, per_frame = [], []
    for fp in _progress(frames, "candidates", progress):
        video, frame = fp.parent.parent.name, fp.stem
        img = read_image(fp, "polyp-2")
        mp = root / "videos" / video / "masks" / f"{frame}.png"
        mask = read_image(mp, "polyp-3", mode="gray")
        if mask.shape != img.shape[:2]:
            raise bad_input(mp, "polyp-3", f"mask size {mask.shape} differs from frame {img.shape[:2]}")
        cands = polyp_candidates(img, p, seed)
        for i, (box, score) in enumerate(cands, 1):
            rows.append(dict(zip(COLUMNS, (video, frame, f"c{i}", *box, f"{score:.4f}"), strict=True)))
        per_frame.append(frame_recall([b for b, _ in cands], mask))
    return rows, summarise(per_frame, len(rows))


def evaluate_csv(root, progress: bool = False) -> dict:
    """Recall summary of an existing ``candidates.csv`` against the masks of its input folder."""
    from pathlib import Path

    from medft.prep import polyp

    ds = polyp.load(Path(root))
    by_frame: dict[tuple[str, str], list] = {}
    for c in ds.candidates:
        by_frame.setdefault((c.video, c.frame), []).append(c.box)
    frames = sorted(Path(root).glob("videos/*/frames/*.png"))
    per = []
    for fp in _progress(frames, "recall", progress):
        video, frame = fp.parent.parent.name, fp.stem
        per.append(frame_recall(by_frame.get((video, frame), []), polyp.read_mask(ds, video, frame)))
    return summarise(per, len(ds.candidates))


def _progress(items, desc: str, on: bool):
    if not on:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="frame", leave=False)
