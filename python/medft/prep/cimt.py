"""Intima-media interface segmentation (section VI-D): 3-class pixel patches from ultrasound ROIs.

Input (data_prep/README.md, "cimt"): ``rois/<patient>/<roi>.png`` (8-bit gray) and
``rois/<patient>/<roi>.csv`` (``x, lumen_intima_y, media_adventitia_y``: one row per column).
Classes: 1 lumen-intima and 2 media-adventitia, every pixel of each column within ``band`` rows of
the interface's rounded row (so at most ``band`` + 0.5 px from the trace) and nearer it than the
other interface ("a large number of patches around" each interface, without label noise);
0 background, (2 ``band`` + 1) x width random pixels per ROI (as many as an interface band), each
more than ``bg_margin`` rows from both interfaces.  The test split keeps one pixel per column on
each interface and as many background pixels (the ``core`` flag of ``geom``).  Positives are
not augmented; the gray patch is repeated into 3 channels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medft import paths
from medft.errors import MedftError
from medft.prep.augment import crop_square, window_to_uint8
from medft.prep.common import Spec, bad_input, check_id, rng_for
from medft.prep.io import read_csv, read_image, to_number
from medft.util.atomic import write_npz_atomic

CHANNELS = "gray,gray,gray"
#: native window (pixels) around the centre pixel, resampled to 227x227 (paper silent)
WINDOW = 32
#: interface-class centres: rows round(y) - BAND .. round(y) + BAND of their interface in each column
#: (paper: "around" the interfaces, without label noise); 3 classes x 7 rows x 92 columns x 144 ROIs
#: = 278,208 pixels, enough for the 200,000 patches of section VI-D
BAND = 3
#: background pixels are more than this many rows from both interfaces in their column (paper: "far")
BG_MARGIN = 8
LINE_COLUMNS = ("x", "lumen_intima_y", "media_adventitia_y")


@dataclass
class Roi:
    patient: str
    roi: str
    shape: tuple[int, int]
    li: np.ndarray  # lumen-intima y per column (float)
    ma: np.ndarray  # media-adventitia y per column (float)
    spacing_mm: float | None = None  # mm per pixel (calibration.csv), None when not given


@dataclass
class CimtData:
    root: Path
    rois: list[Roi]
    window: int = WINDOW
    bg_margin: int = BG_MARGIN
    band: int = BAND
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


#: optional ``patient,roi,mm_per_pixel`` per ROI (rule cimt-3): errors are then reported in mm too
CALIBRATION = "calibration.csv"


def read_calibration(path: Path) -> dict[tuple[str, str], float]:
    """(patient, roi) -> mm per pixel from an optional ``calibration.csv``; empty without one."""
    if not path.is_file():
        return {}
    out = {}
    for i, r in enumerate(read_csv(path, "cimt-3", ("patient", "roi", "mm_per_pixel")), start=1):
        v = to_number(path, "cimt-3", i, "mm_per_pixel", r["mm_per_pixel"])
        if v <= 0:
            raise bad_input(path, "cimt-3", f"row {i}: mm_per_pixel {v:g} must be positive")
        out[(r["patient"].strip(), r["roi"].strip())] = v
    return out


def check_margins(bg_margin: int, band: int) -> None:
    """Background must stay clear of the interface bands: ``bg_margin`` > ``band`` >= 0."""
    if band < 0 or bg_margin <= band:
        raise MedftError(f"cimt: background margin {bg_margin} must exceed the interface band {band} rows (>= 0)")


def load(root: Path, window: int = WINDOW, bg_margin: int = BG_MARGIN, band: int = BAND) -> CimtData:
    """Read every ROI's size and interface polylines."""
    check_margins(bg_margin, band)
    root = Path(root)
    if not (root / "rois").is_dir():
        raise bad_input(root / "rois", "cimt-1", "missing folder")
    rois = []
    for img_path in sorted((root / "rois").glob("*/*.png")):
        check_id(img_path, "patient", img_path.parent.name), check_id(img_path, "ROI", img_path.stem)
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
    calib = read_calibration(root / CALIBRATION)
    for r in rois:
        r.spacing_mm = calib.get((r.patient, r.roi))
    return CimtData(root, rois, window, bg_margin, band, {"rois": len(rois)})


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


def band_pixels(own: np.ndarray, other: np.ndarray, height: int, band: int) -> tuple[np.ndarray, np.ndarray]:
    """((y, x) pixels, on-interface flags) within ``band`` rows of ``own``'s rounded row in each column.

    Pixels outside the ROI or not strictly nearer ``own`` than ``other`` are left out, so the two
    interface classes never share a pixel; column by column, offsets -band..band.
    """
    offsets = np.arange(-band, band + 1)
    y = np.rint(own).astype(int)[:, None] + offsets[None, :]
    x = np.broadcast_to(np.arange(len(own))[:, None], y.shape)
    ok = (y >= 0) & (y < height) & (np.abs(y - own[:, None]) < np.abs(y - other[:, None]))
    return np.stack([y[ok], x[ok]], axis=1), np.broadcast_to(offsets == 0, y.shape)[ok]


def roi_specs(roi: Roi, margin: int, rng: np.random.Generator, band: int = BAND) -> list[Spec]:
    """Interface band pixels (classes 1, 2) and as many random far background pixels (class 0).

    ``geom`` is (y, x, core): core marks the on-interface pixel of each column and the first
    ROI-width background draws, the one-per-column set the test split keeps.
    """
    w = roi.shape[1]
    li, li_core = band_pixels(roi.li, roi.ma, roi.shape[0], band)
    ma, ma_core = band_pixels(roi.ma, roi.li, roi.shape[0], band)
    bg = background_pixels(roi, margin, (2 * band + 1) * w, rng)
    pix = [(1, li, li_core), (2, ma, ma_core), (0, bg, np.arange(len(bg)) < w)]
    out = []
    for label, yx, core in pix:
        for (y, x), c in zip(yx, core):
            out.append(
                Spec(
                    case=roi.patient,
                    frame=roi.roi,
                    unit=f"{roi.patient}/{roi.roi}/y{y}x{x}",
                    lesion="",
                    label=label,
                    aug="none",
                    geom=(int(y), int(x), bool(c)),
                )
            )
    return out


def plan(ds: CimtData, seed: int = 0) -> list[Spec]:
    specs = []
    for roi in ds.rois:
        specs.extend(roi_specs(roi, ds.bg_margin, rng_for(seed, "cimt-bg", roi.patient, roi.roi), ds.band))
    return specs


def split_filter(ds: CimtData, split: str, specs: list[Spec]) -> list[Spec]:
    """Every planned pixel for train/val; for test only the core (one per column and class)."""
    del ds
    return [s for s in specs if s.geom[2]] if split == "test" else specs


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
        y, x, _ = s.geom
        return patch(cache["img"], y, x, window=ds.window)

    return render


def write_extras(ds: CimtData, split_record: dict, out: Path) -> dict:
    """``test_rois/<patient>__<roi>.npz``: image, both expert polylines and the patch settings."""
    test = set(split_record["test"])
    n = 0
    for roi in ds.rois:
        if roi.patient not in test:
            continue
        write_npz_atomic(
            out / paths.TEST_ROIS / f"{roi.patient}__{roi.roi}.npz",
            image=read_image(ds.image_path(roi.patient, roi.roi), "cimt-1", mode="gray"),
            lumen_intima_y=roi.li,
            media_adventitia_y=roi.ma,
            case=roi.patient,
            roi=roi.roi,
            window=ds.window,
            bg_margin=ds.bg_margin,
            band=ds.band,
            **({"spacing_mm": roi.spacing_mm} if roi.spacing_mm is not None else {}),
        )
        n += 1
    return {paths.TEST_ROIS: n}


def verify(root: Path) -> list[str]:
    ds = load(root)
    return [f"{len(cases(ds))} patients, {len(ds.rois)} ROIs with both interfaces"]
