"""Colonoscopy frame classification (section VI-C): 200 random 227x227 crops per 500x350 frame.

The paper states both 200 crops of each of ~2,000 training frames and a stratified set of ~40,000
crops, which disagree tenfold: every frame is cropped 200 times (all 200 kept at test time) and the
stratified set draws 40,000 of them (``App.paper_train_patches``), about 20 per frame.

Input (data_prep/README.md, "frames"): ``videos/<video>/<frame>.png`` (RGB, any size; resized
to 500 x 350) and ``labels.csv`` (``video, frame, label``; 1 informative, 0 non-informative).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medft.prep.augment import rgb_to_datum
from medft.prep.common import PATCH, Spec, bad_input, check_id, rng_for
from medft.prep.io import read_csv, read_image, read_label
from medft.prep.splits import keep_fraction

CHANNELS = "BGR"
#: frame size of the paper, width x height
FRAME_W, FRAME_H = 500, 350
#: random sub-images per frame (section VI-C); training draws its stratified set from them
CROPS = 200


@dataclass
class FrameData:
    root: Path
    labels: dict[tuple[str, str], int]  # (video, frame) -> label
    crops: int = CROPS
    test_crops: int = CROPS
    stats: dict = field(default_factory=dict)

    def frame_path(self, video: str, frame: str) -> Path:
        return self.root / "videos" / video / f"{frame}.png"


def load(root: Path, crops: int = CROPS, test_crops: int | None = None) -> FrameData:
    """Read and check ``labels.csv`` and that every frame it names exists (and only those)."""
    root = Path(root)
    if crops < 1 or (test_crops is not None and test_crops < 1):
        raise bad_input(root, "frames-3", f"crops per frame must be >= 1 (got {crops}, {test_crops})")
    path = root / "labels.csv"
    labels: dict[tuple[str, str], int] = {}
    for i, r in enumerate(read_csv(path, "frames-2", ("video", "frame", "label")), start=1):
        key = (check_id(path, "video", r["video"].strip()), check_id(path, "frame", r["frame"].strip()))
        if key in labels:
            raise bad_input(path, "frames-2", f"row {i}: frame {key[0]}/{key[1]} listed twice")
        labels[key] = read_label(path, "frames-2", i, r["label"], 2)
        if not (fp := root / "videos" / key[0] / f"{key[1]}.png").is_file():
            raise bad_input(fp, "frames-1", f"missing file (named in {path.name} row {i})")
    if not labels:
        raise bad_input(path, "frames-2", "no frames listed")
    return FrameData(
        root,
        labels,
        crops,
        crops if test_crops is None else test_crops,
        {"frames": len(labels), "informative": sum(labels.values())},
    )


def cases(ds: FrameData) -> list[str]:
    return sorted({v for v, _ in ds.labels})


def crop_origins(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` x 2 top-left corners (y, x) of 227x227 crops uniformly inside a 500x350 frame."""
    return np.stack([rng.integers(0, FRAME_H - PATCH + 1, n), rng.integers(0, FRAME_W - PATCH + 1, n)], axis=1)


def plan(ds: FrameData, seed: int = 0) -> list[Spec]:
    """max(crops, test_crops) random crops of every frame (seeded per frame)."""
    n = max(ds.crops, ds.test_crops)
    specs = []
    for (video, frame), label in sorted(ds.labels.items()):
        for i, (y, x) in enumerate(crop_origins(n, rng_for(seed, "frames-crops", video, frame))):
            specs.append(
                Spec(
                    case=video,
                    frame=frame,
                    unit=f"{video}/{frame}",
                    lesion="",
                    label=label,
                    aug=f"crop={i};y={y};x={x}",
                    geom=(int(y), int(x), i),
                )
            )
    return specs


def split_filter(ds: FrameData, split: str, specs: list[Spec]) -> list[Spec]:
    """The first ``crops`` crops of each frame for train/val, ``test_crops`` for test."""
    n = ds.test_crops if split == "test" else ds.crops
    return [s for s in specs if s.geom[2] < n]


def reduce(specs: list[Spec], fraction: str, rng: np.random.Generator) -> list[Spec]:
    """Keep a seeded ``fraction`` of the training frames of each class (1/10, 1/20, 1/100)."""
    keep: set[str] = set()
    for label in sorted({s.label for s in specs}):
        keep |= set(keep_fraction([s.unit for s in specs if s.label == label], float(fraction), rng))
    return [s for s in specs if s.unit in keep]


def resize_frame(img: np.ndarray) -> np.ndarray:
    """H x W x 3 -> 350 x 500 x 3 float (bilinear, anti-aliased when shrinking)."""
    from skimage.transform import resize

    if img.shape[:2] == (FRAME_H, FRAME_W):
        return img.astype(np.float32)
    return resize(
        img.astype(np.float32),
        (FRAME_H, FRAME_W),
        order=1,
        preserve_range=True,
        anti_aliasing=img.shape[0] > FRAME_H or img.shape[1] > FRAME_W,
    )


def renderer(ds: FrameData) -> Callable[[Spec], np.ndarray]:
    """Spec -> 3 x 227 x 227 BGR uint8 crop of the resized frame (current frame cached)."""
    cache: dict = {"key": None, "img": None}

    def render(s: Spec) -> np.ndarray:
        if cache["key"] != (s.case, s.frame):
            cache["key"] = (s.case, s.frame)
            cache["img"] = resize_frame(read_image(ds.frame_path(s.case, s.frame), "frames-1"))
        y, x, _ = s.geom
        return rgb_to_datum(cache["img"][y : y + PATCH, x : x + PATCH])

    return render


def verify(root: Path) -> list[str]:
    """Full check of a frames input folder (every frame decoded, none unlabelled)."""
    ds = load(root)
    for video, frame in sorted(ds.labels):
        read_image(ds.frame_path(video, frame), "frames-1")
    listed = {ds.frame_path(v, f) for v, f in ds.labels}
    extra = sorted(p for p in (Path(root) / "videos").glob("*/*.png") if p not in listed)
    if extra:
        raise bad_input(extra[0], "frames-2", "frame has no row in labels.csv")
    return [f"{len(cases(ds))} videos, {len(ds.labels)} labelled frames"]
