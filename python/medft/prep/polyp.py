"""Polyp detection (section VI-A): candidate boxes -> 3 scales x 5 translations x 8 orientations.

Input (data_prep/README.md, "polyp"): ``videos/<video>/frames/<frame>.png`` (RGB),
``videos/<video>/masks/<frame>.png`` (binary ground truth, same size) and ``candidates.csv``
(``video, frame, candidate, x0, y0, x1, y1, score``; pixel box, x1/y1 exclusive).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from medft.prep.augment import ORIENTATIONS, crop_square, orient, rgb_to_datum
from medft.prep.common import Spec, bad_input, check_id
from medft.prep.io import read_csv, read_image, to_number
from medft.prep.splits import keep_fraction, lesion_row

CHANNELS = "BGR"
#: bounding box enlarged 1.0x, 1.2x, 1.5x (side = factor x the box's longer side)
SCALES: tuple[float, ...] = (1.0, 1.2, 1.5)
#: shifts in units of the resized box: none, and 10% left/right/up/down ("in horizontal and
#: vertical directions"); (dx, dy)
TRANSLATIONS: tuple[tuple[float, float], ...] = ((0.0, 0.0), (-0.1, 0.0), (0.1, 0.0), (0.0, -0.1), (0.0, 0.1))
CAND_COLUMNS = ("video", "frame", "candidate", "x0", "y0", "x1", "y1", "score")
PATCHES_PER_CANDIDATE = len(SCALES) * len(TRANSLATIONS) * len(ORIENTATIONS)


@dataclass
class Candidate:
    video: str
    frame: str
    cid: str
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 after clipping
    score: str


@dataclass
class PolypData:
    root: Path
    candidates: list[Candidate]
    videos: list[str]
    stats: dict = field(default_factory=dict)

    def frame_path(self, video: str, frame: str) -> Path:
        return self.root / "videos" / video / "frames" / f"{frame}.png"

    def mask_path(self, video: str, frame: str) -> Path:
        return self.root / "videos" / video / "masks" / f"{frame}.png"


def image_size(path: Path, rule: str) -> tuple[int, int]:
    """(height, width) of a PNG from its header, without decoding it."""
    from PIL import Image

    if not path.is_file():
        raise bad_input(path, rule, "missing file")
    try:
        with Image.open(path) as im:
            return im.size[1], im.size[0]
    except Exception as e:
        raise bad_input(path, rule, f"unreadable image ({type(e).__name__}: {e})") from None


def clip_box(box: tuple[float, float, float, float], h: int, w: int) -> tuple[tuple[int, int, int, int], bool]:
    """(box clipped to the image, whether clipping changed it); empty boxes become ``x1 <= x0``."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    c = (max(0, x0), max(0, y0), min(w, x1), min(h, y1))
    return c, c != (x0, y0, x1, y1)


def load(root: Path) -> PolypData:
    """Read and check ``candidates.csv`` against the frame and mask files it names."""
    root = Path(root)
    if not (root / "videos").is_dir():
        raise bad_input(root / "videos", "polyp-1", "missing folder")
    videos = sorted(check_id(p, "video", p.name) for p in (root / "videos").iterdir() if p.is_dir())
    path = root / "candidates.csv"
    cands, seen, sizes = [], set(), {}
    clipped = 0
    for i, r in enumerate(read_csv(path, "polyp-4", CAND_COLUMNS), start=1):
        video, frame, cid = r["video"].strip(), r["frame"].strip(), r["candidate"].strip()
        check_id(path, "video", video), check_id(path, "frame", frame)
        uid = f"{video}/{frame}/{cid}"
        if uid in seen:
            raise bad_input(path, "polyp-4", f"row {i}: duplicate candidate {uid}")
        seen.add(uid)
        box = tuple(to_number(path, "polyp-4", i, c, r[c]) for c in ("x0", "y0", "x1", "y1"))
        if (video, frame) not in sizes:
            fp = root / "videos" / video / "frames" / f"{frame}.png"
            mp = root / "videos" / video / "masks" / f"{frame}.png"
            sizes[(video, frame)] = hw = image_size(fp, "polyp-2")
            if image_size(mp, "polyp-3") != hw:
                raise bad_input(mp, "polyp-3", f"mask size {image_size(mp, 'polyp-3')} differs from frame {hw}")
        h, w = sizes[(video, frame)]
        cbox, was_clipped = clip_box(box, h, w)  # type: ignore[arg-type]
        if cbox[2] <= cbox[0] or cbox[3] <= cbox[1]:
            raise bad_input(
                path, "polyp-4", f"row {i}: candidate {uid} box {box} is empty or outside the {w}x{h} frame"
            )
        clipped += was_clipped
        score = r["score"].strip()
        if score:
            to_number(path, "polyp-4", i, "score", score)
        cands.append(Candidate(video, frame, cid, cbox, score))
    return PolypData(root, cands, videos, {"candidates": len(cands), "clipped_boxes": clipped})


def cases(ds: PolypData) -> list[str]:
    return ds.videos


def case_images(ds: PolypData) -> tuple[str, dict[str, int]]:
    """False positives are counted per frame: (column name, frames per video)."""
    return "n_frames", {v: len(list((ds.root / "videos" / v / "frames").glob("*.png"))) for v in ds.videos}


def read_mask(ds: PolypData, video: str, frame: str) -> np.ndarray:
    """Connected components of the frame's ground truth (0 background, 1.. polyps)."""
    mask = read_image(ds.mask_path(video, frame), "polyp-3", mode="gray") > 0
    return ndimage.label(mask)[0]


def box_center(box: tuple[int, int, int, int]) -> tuple[float, float]:
    """(cy, cx) of a pixel box ``x0, y0, x1, y1`` (x1, y1 exclusive), pixel ``i`` centred at ``i``."""
    x0, y0, x1, y1 = box
    return (y0 + y1 - 1) / 2.0, (x0 + x1 - 1) / 2.0


def candidate_specs(c: Candidate, label: int, lesion: str) -> list[Spec]:
    """The 3 x 5 x 8 = 120 patch specs of one candidate (paper section VI-A)."""
    cy, cx = box_center(c.box)
    long_side = max(c.box[2] - c.box[0], c.box[3] - c.box[1])
    out = []
    for s in SCALES:
        side = s * long_side
        for dx, dy in TRANSLATIONS:
            for o, oname in enumerate(ORIENTATIONS):
                out.append(
                    Spec(
                        case=c.video,
                        frame=c.frame,
                        unit=f"{c.video}/{c.frame}/{c.cid}",
                        lesion=lesion,
                        label=label,
                        aug=f"scale={s:g};dx={dx:+g};dy={dy:+g};orient={oname}",
                        geom=(cy + dy * side, cx + dx * side, side, o),
                        score=c.score,
                    )
                )
    return out


def plan(ds: PolypData, seed: int = 0) -> list[Spec]:
    """Every candidate's patch specs; label 1 when the box centre lies on a ground-truth pixel."""
    del seed  # deterministic: no random draws
    specs: list[Spec] = []
    by_frame: dict[tuple[str, str], list[Candidate]] = {}
    for c in ds.candidates:
        by_frame.setdefault((c.video, c.frame), []).append(c)
    for (video, frame), cands in sorted(by_frame.items()):
        labels = read_mask(ds, video, frame)
        for c in cands:
            cy, cx = box_center(c.box)
            comp = int(labels[int(np.floor(cy + 0.5)), int(np.floor(cx + 0.5))])
            specs.extend(candidate_specs(c, int(comp > 0), f"{video}/{frame}/p{comp}" if comp else ""))
    return specs


def reduce(specs: list[Spec], fraction: str, rng: np.random.Generator) -> list[Spec]:
    """Keep a seeded ``fraction`` of the training videos (reduction "at the video level")."""
    keep = set(keep_fraction([s.case for s in specs], float(fraction), rng))
    return [s for s in specs if s.case in keep]


def renderer(ds: PolypData) -> Callable[[Spec], np.ndarray]:
    """Spec -> 3 x 227 x 227 BGR uint8; caches the current frame and the un-oriented crop."""
    cache: dict = {"frame": None, "crop": None}

    def render(s: Spec) -> np.ndarray:
        if cache["frame"] is None or cache["frame"][0] != (s.case, s.frame):
            cache["frame"] = ((s.case, s.frame), read_image(ds.frame_path(s.case, s.frame), "polyp-2"))
        cy, cx, side, o = s.geom
        if cache["crop"] is None or cache["crop"][0] != (s.case, s.frame, cy, cx, side):
            cache["crop"] = ((s.case, s.frame, cy, cx, side), crop_square(cache["frame"][1], cy, cx, side))
        return rgb_to_datum(orient(cache["crop"][1], o))

    return render


def lesions(ds: PolypData, split_record: dict) -> list[dict[str, str]]:
    """Every ground-truth polyp (mask component) of every frame of every video, with its subset."""
    rows = []
    for video in ds.videos:
        for mp in sorted((ds.root / "videos" / video / "masks").glob("*.png")):
            labels = read_mask(ds, video, mp.stem)
            for k in range(1, int(labels.max()) + 1):
                rows.append(lesion_row(video, mp.stem, f"{video}/{mp.stem}/p{k}", split_record))
    return rows


def verify(root: Path) -> list[str]:
    """Full check of a polyp input folder (every frame and mask decoded); returns what was checked."""
    ds = load(root)
    n = 0
    for video in ds.videos:
        fdir, mdir = root / "videos" / video / "frames", root / "videos" / video / "masks"
        for fp in sorted(fdir.glob("*.png")):
            img = read_image(fp, "polyp-2")
            mask = read_image(mdir / fp.name, "polyp-3", mode="gray")
            if mask.shape != img.shape[:2]:
                raise bad_input(mdir / fp.name, "polyp-3", f"mask {mask.shape} differs from frame {img.shape[:2]}")
            if not np.isin(np.unique(mask), (0, 1, 255)).all():
                raise bad_input(mdir / fp.name, "polyp-3", "mask values must be 0 and 255 (or 0 and 1)")
            n += 1
    return [f"{len(ds.videos)} videos, {n} frames with masks, {len(ds.candidates)} candidates"]
