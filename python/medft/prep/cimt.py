"""Intima-media interface segmentation (section VI-D): 3-class pixel patches from ultrasound ROIs.

Input (data_prep/README.md, "cimt"): ``rois/<patient>/<roi>.png`` (8-bit gray) and
``rois/<patient>/<roi>.csv`` (``x, lumen_intima_y, media_adventitia_y``: one row per column).
Classes: 0 background (a random pixel farther than ``bg_margin`` rows from both interfaces),
1 lumen-intima, 2 media-adventitia (the interface pixel of every column).  Positives are not
augmented; the gray patch is repeated into 3 channels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medft.prep.augment import crop_square, window_to_uint8
from medft.prep.common import Spec, bad_input, rng_for
from medft.prep.io import read_csv, read_image, to_number
from medft.schema import write_npz_atomic

CHANNELS = "gray,gray,gray"
#: native window (pixels) around the centre pixel, resampled to 227x227 (paper silent)
WINDOW = 32
#: background pixels are more than this many rows from both interfaces in their column (paper: "far")
BG_MARGIN = 8
#: background pixels drawn per ROI column (one per column = as many as each interface class)
BG_PER_COLUMN = 1
LINE_COLUMNS = ("x", "lumen_intima_y", "media_adventitia_y")


@dataclass
class Roi:
    patient: str
    roi: str
    shape: tuple[int, int]
    li: np.ndarray  # lumen-intima y per column (float)
    ma: np.ndarray  # media-adventitia y per column (float)


@dataclass
class CimtData:
    root: Path
    rois: list[Roi]
    window: int = WINDOW
    bg_margin: int = BG_MARGIN
    stats: dict = field(default_factory=dict)

    def image_path(self, patient: str, roi: str) -> Path:
        return self.root / "rois" / patient / f"{roi}.png"


def read_lines(path: Path, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(lumen-intima y, media-adventitia y) per column from an interface CSV, checked."""
    h, w = shape
    rows = read_csv(path, "cimt-2", LINE_COLUMNS)
    if len(rows) != w:
        raise bad_input(path, "cimt-2", f"{len(rows)} rows but the ROI is {w} columns wide (one row per column)")
    li, ma = np.empty(w), np.empty(w)
    for i, r in enumerate(rows, start=1):
        if to_number(path, "cimt-2", i, "x", r["x"], int) != i - 1:
            raise bad_input(path, "cimt-2", f"row {i}: x must be {i - 1} (columns 0..{w - 1} in order)")
        li[i - 1] = to_number(path, "cimt-2", i, "lumen_intima_y", r["lumen_intima_y"])
        ma[i - 1] = to_number(path, "cimt-2", i, "media_adventitia_y", r["media_adventitia_y"])
    for name, y in (("lumen_intima_y", li), ("media_adventitia_y", ma)):
        if (y < 0).any() or (y > h - 1).any():
            bad = int(np.flatnonzero((y < 0) | (y > h - 1))[0])
            raise bad_input(path, "cimt-2", f"row {bad + 1}: {name} {y[bad]:g} outside the ROI rows 0..{h - 1}")
    if (li >= ma).any():
        bad = int(np.flatnonzero(li >= ma)[0])
        raise bad_input(
            path,
            "cimt-2",
            f"row {bad + 1}: lumen-intima y {li[bad]:g} must be above (less than) media-adventitia y {ma[bad]:g}",
        )
    return li, ma


def load(root: Path, window: int = WINDOW, bg_margin: int = BG_MARGIN) -> CimtData:
    """Read every ROI's size and interface polylines."""
    root = Path(root)
    if not (root / "rois").is_dir():
        raise bad_input(root / "rois", "cimt-1", "missing folder")
    rois = []
    for img_path in sorted((root / "rois").glob("*/*.png")):
        img = read_image(img_path, "cimt-1", mode="gray")
        rois.append(
            Roi(
                img_path.parent.name,
                img_path.stem,
                img.shape,
                *read_lines(img_path.with_suffix(".csv"), img.shape),
            )
        )
    if not rois:
        raise bad_input(root / "rois", "cimt-1", "no <patient>/<roi>.png files")
    return CimtData(root, rois, window, bg_margin, {"rois": len(rois)})


def cases(ds: CimtData) -> list[str]:
    return sorted({r.patient for r in ds.rois})


def background_pixels(roi: Roi, margin: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` (or fewer, if not enough) distinct (y, x) pixels > ``margin`` rows from both lines."""
    h, w = roi.shape
    yy = np.arange(h)[:, None]
    far = (np.abs(yy - roi.li[None, :]) > margin) & (np.abs(yy - roi.ma[None, :]) > margin)
    ys, xs = np.nonzero(far)
    pick = rng.choice(len(ys), size=min(n, len(ys)), replace=False)
    return np.stack([ys[pick], xs[pick]], axis=1)


def roi_specs(roi: Roi, margin: int, rng: np.random.Generator) -> list[Spec]:
    """Interface pixels of every column (classes 1, 2) and random far background pixels (class 0)."""
    cols = np.arange(roi.shape[1])
    pix = [
        (1, np.stack([np.rint(roi.li).astype(int), cols], 1)),
        (2, np.stack([np.rint(roi.ma).astype(int), cols], 1)),
        (0, background_pixels(roi, margin, BG_PER_COLUMN * roi.shape[1], rng)),
    ]
    out = []
    for label, yx in pix:
        for y, x in yx:
            out.append(
                Spec(
                    case=roi.patient,
                    frame=roi.roi,
                    unit=f"{roi.patient}/{roi.roi}/y{y}x{x}",
                    lesion="",
                    label=label,
                    aug="none",
                    geom=(int(y), int(x)),
                )
            )
    return out


def plan(ds: CimtData, seed: int = 0) -> list[Spec]:
    specs = []
    for roi in ds.rois:
        specs.extend(roi_specs(roi, ds.bg_margin, rng_for(seed, "cimt-bg", roi.patient, roi.roi)))
    return specs


def reduce(specs: list[Spec], fraction: str, rng: np.random.Generator) -> list[Spec]:
    """``1patient``: keep the ROIs of one seeded random training patient."""
    patients = sorted({s.case for s in specs})
    keep = patients[int(rng.integers(len(patients)))]
    return [s for s in specs if s.case == keep]


def patch(img: np.ndarray, y: int, x: int, window: int = WINDOW) -> np.ndarray:
    """3 x 227 x 227 uint8 patch centred on pixel (y, x) of a gray ROI (edges replicated).

    The dense segmentation stage calls this for every test pixel, so train and test patches match.
    """
    g = window_to_uint8(crop_square(img, y, x, window, mode="nearest"), 0.0, 255.0)
    return np.ascontiguousarray(np.broadcast_to(g, (3, *g.shape)))


def renderer(ds: CimtData) -> Callable[[Spec], np.ndarray]:
    cache: dict = {"key": None, "img": None}

    def render(s: Spec) -> np.ndarray:
        if cache["key"] != (s.case, s.frame):
            cache["key"] = (s.case, s.frame)
            cache["img"] = read_image(ds.image_path(s.case, s.frame), "cimt-1", mode="gray").astype(np.float32)
        return patch(cache["img"], *s.geom, window=ds.window)

    return render


def write_extras(ds: CimtData, split_record: dict, out: Path) -> dict:
    """``test_rois/<patient>__<roi>.npz``: image, both expert polylines and the patch settings."""
    test = set(split_record["test"])
    n = 0
    for roi in ds.rois:
        if roi.patient not in test:
            continue
        write_npz_atomic(
            out / "test_rois" / f"{roi.patient}__{roi.roi}.npz",
            image=read_image(ds.image_path(roi.patient, roi.roi), "cimt-1", mode="gray"),
            lumen_intima_y=roi.li,
            media_adventitia_y=roi.ma,
            case=roi.patient,
            roi=roi.roi,
            window=ds.window,
            bg_margin=ds.bg_margin,
        )
        n += 1
    return {"test_rois": n}


def verify(root: Path) -> list[str]:
    ds = load(root)
    return [f"{len(cases(ds))} patients, {len(ds.rois)} ROIs with both interfaces"]
