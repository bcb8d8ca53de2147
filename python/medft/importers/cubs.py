"""CUBS (Meiburger et al., 2021): 2,176 longitudinal carotid B-mode images, LI/MA traces, calibration."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from medft.errors import MedftError
from medft.importers import _base

APP = "cimt"
DATASET = "cubs"
DESCRIPTION = ("CUBS: IMAGES/<id>.tiff, SEGMENTATIONS/Manual-A1/<id>-LI.txt and -MA.txt, CF/<id>_CF.txt -> "
               "cimt (traces one y per column, ROI cropped around the far wall, mm/pixel kept)")
LAYOUT = ("CUBS/IMAGES/<id>.tiff (id e.g. clin_0001_L), CUBS/SEGMENTATIONS/Manual-A1/<id>-LI.txt and "
          "<id>-MA.txt (an x line and a y line; LIMA-Profiles/ or PROFILES/ in place of SEGMENTATIONS/ too), "
          "CUBS/CF/<id>_CF.txt (mm per pixel)")
#: the expert whose traces become the ground truth (CUBS ships A1, A1s (repeat), A2, A3)
ANALYST = "Manual-A1"
#: the folder holding the analysts' trace folders, in the releases' spellings, first found is used
TRACE_FOLDERS = ("SEGMENTATIONS", "LIMA-Profiles", "LIMA-Profiles-interpolated", "PROFILES")
#: rows kept above the shallowest lumen-intima point and below the deepest media-adventitia point:
#: the far wall with tissue on both sides, about the paper's 60-row ROI height for a flat wall
ROI_MARGIN = 24
#: CUBS traces are MATLAB pixel coordinates: the first column and row are 1
ONE_BASED = 1.0
#: patient and side from an image id: clin_0001_L -> (clin_0001, L)
_SIDE = re.compile(r"^(.*?)[_-]?([LR])$")


def read_trace(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """(N, 2) x, y points of a trace file in 0-based pixel coordinates, every point inside the image.

    CUBS writes a trace as two lines (all x, then all y) in MATLAB's 1-based pixel coordinates;
    one ``x y`` pair per line is read too. A 2 x 2 file could be either and is refused."""
    if not path.is_file():
        raise MedftError(f"{path}: missing trace")
    try:
        text = path.read_text()
        arr = np.loadtxt(path, delimiter="," if "," in text[:200] else None, ndmin=2)
    except (ValueError, UnicodeDecodeError) as e:
        raise MedftError(f"{path}: not rows of numbers ({e})") from None
    if arr.shape == (2, 2):
        raise MedftError(f"{path}: 2 x 2 numbers: cannot tell an x line and a y line from two 'x y' "
                         "points; a trace needs at least 3 points")
    pts = arr.T if arr.shape[0] == 2 else arr
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 2 or not np.isfinite(pts).all():
        raise MedftError(f"{path}: expected an x line and a y line (or 'x y' lines), got shape {arr.shape}")
    pts = pts - ONE_BASED
    h, w = shape
    bad = np.flatnonzero((pts[:, 0] < -0.5) | (pts[:, 0] > w - 0.5) | (pts[:, 1] < -0.5) | (pts[:, 1] > h - 0.5))
    if bad.size:
        x, y = pts[bad[0]] + ONE_BASED
        raise MedftError(f"{path}: point {bad[0] + 1} ({x:g}, {y:g}) outside the {w}x{h} image "
                         "(trace outside the image; coordinates are 1-based)")
    return pts


def per_column(pts: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """y at each integer column of ``cols``: points sorted by x (repeated x averaged), linear in between."""
    xs, inv = np.unique(pts[:, 0], return_inverse=True)
    ys = np.bincount(inv, pts[:, 1]) / np.bincount(inv)
    return np.interp(cols, xs, ys)


def largest_gap(pts: np.ndarray) -> float:
    return float(np.diff(np.unique(pts[:, 0])).max(initial=0.0))


def read_calibration(path: Path) -> float:
    """mm per pixel: the first number of ``CF/<id>_CF.txt`` (a single value)."""
    if not path.is_file():
        raise MedftError(f"{path}: missing calibration factor (mm per pixel)")
    words = path.read_text(errors="replace").split()
    try:
        v = float(words[0])
    except (ValueError, IndexError):
        raise MedftError(f"{path}: first word {words[0] if words else ''!r} is not a number (mm per pixel)") from None
    if not (np.isfinite(v) and v > 0):
        raise MedftError(f"{path}: calibration {v!r} must be a positive number (mm per pixel)")
    return v


def to_gray(img: np.ndarray, path: Path) -> tuple[np.ndarray, bool]:
    """(8-bit gray, whether colour had to be mixed): equal channels are one gray channel."""
    img = _base.to_uint8(img, path)
    if img.ndim == 2:
        return img, False
    if np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2]):
        return img[..., 0], False
    gray = np.rint(img[..., :3].astype(float) @ np.array([0.299, 0.587, 0.114]))
    return gray.astype(np.uint8), True


def convert_one(img: np.ndarray, li: np.ndarray, ma: np.ndarray, path: Path) -> tuple[np.ndarray, list[dict], dict]:
    """(ROI image, per-column rows, crop record): both traces on their common span of columns,
    rows from ROI_MARGIN above the intima to ROI_MARGIN below the adventitia."""
    h, w = img.shape
    c0 = int(np.ceil(max(li[:, 0].min(), ma[:, 0].min())))
    c1 = int(np.floor(min(li[:, 0].max(), ma[:, 0].max())))
    if c1 - c0 < 1:
        raise MedftError(f"{path}: the LI and MA traces share no columns")
    cols = np.arange(c0, c1 + 1)
    yl, ym = per_column(li, cols), per_column(ma, cols)
    crossed = np.flatnonzero(yl >= ym)
    if crossed.size:
        raise MedftError(f"{path}: column {cols[crossed[0]]}: lumen-intima y {yl[crossed[0]]:.2f} is not above "
                         f"media-adventitia y {ym[crossed[0]]:.2f}")
    r0 = max(0, int(np.floor(yl.min())) - ROI_MARGIN)
    r1 = min(h, int(np.ceil(ym.max())) + ROI_MARGIN + 1)
    roi = img[r0:r1, c0 : c1 + 1]
    rows = [{"x": i, "lumen_intima_y": f"{a - r0:.3f}", "media_adventitia_y": f"{b - r0:.3f}"}
            for i, (a, b) in enumerate(zip(yl, ym, strict=True))]
    return roi, rows, {"x0": c0, "y0": r0, "x1": c1 + 1, "y1": r1,
                       "largest_gap_px": max(largest_gap(li), largest_gap(ma))}


def run(source: Path, out: Path, *, force: bool = False, progress: bool = True) -> dict:
    source = Path(source)
    images_dir = _base.require(source / "IMAGES", DATASET, LAYOUT)
    seg = next((source / d / ANALYST for d in TRACE_FOLDERS if (source / d / ANALYST).is_dir()),
               source / TRACE_FOLDERS[0] / ANALYST)
    _base.require(seg, DATASET, LAYOUT)
    cf_dir = _base.require(source / "CF", DATASET, LAYOUT)
    images = _base.images_in(images_dir)
    if not images:
        raise _base.layout_error(images_dir / "<id>.tiff", DATASET, LAYOUT)
    ids = _base.unique_ids([p.stem for p in images], images_dir)
    files, crops, calib, mixed = [], {}, [], 0
    with _base.staging(out, force, source) as tmp:
        for p in _base.progress(images, "images", progress):
            img, was_colour = to_gray(_base.read_raster(p), p)
            mixed += was_colour
            li_p, ma_p, cf_p = seg / f"{p.stem}-LI.txt", seg / f"{p.stem}-MA.txt", cf_dir / f"{p.stem}_CF.txt"
            li, ma = read_trace(li_p, img.shape), read_trace(ma_p, img.shape)
            mm = read_calibration(cf_p)
            roi, rows, crop = convert_one(img, li, ma, li_p)
            m = _SIDE.match(ids[p.stem])
            patient, side = (m.group(1), ids[p.stem]) if m and m.group(1) else (ids[p.stem], ids[p.stem])
            _base.write_png(tmp / "rois" / patient / f"{side}.png", roi)
            _base.write_csv(tmp / "rois" / patient / f"{side}.csv", rows,
                            ("x", "lumen_intima_y", "media_adventitia_y"))
            calib.append({"patient": patient, "roi": side, "mm_per_pixel": f"{mm:.6g}"})
            crops[f"{patient}/{side}"] = crop
            files += [_base.file_entry(x, source) for x in (p, li_p, ma_p, cf_p)]
        _base.write_csv(tmp / "calibration.csv", calib, ("patient", "roi", "mm_per_pixel"))
        decisions = [
            f"ground truth: {ANALYST}'s traces, read from {seg.relative_to(source).as_posix()} (CUBS also ships "
            "A1s, A2, A3 for observer-variability studies)",
            "patient = image id without its _L/_R side; ROI id = the image id (one ROI per image)",
            "trace files read as an x line and a y line (or one 'x y' pair per line), MATLAB 1-based "
            "pixel coordinates made 0-based (x - 1, y - 1)",
            "traces resampled to one y per integer column over the columns both traces cover "
            "(points sorted by x, repeated x averaged, linear across gaps: crops.<roi>.largest_gap_px)",
            f"ROI: those columns, rows from {ROI_MARGIN} above the shallowest lumen-intima point to "
            f"{ROI_MARGIN} below the deepest media-adventitia point (section VI-D measures in an ROI "
            "around the far wall); crop offsets in 'crops' map ROI pixels back to the image",
            "calibration (mm per pixel, CF/<id>_CF.txt) kept in calibration.csv so errors are "
            "reported in mm as well as pixels",
            "images with unequal colour channels mixed to gray with ITU-R 601 weights "
            f"({mixed} here)",
        ]
        return _base.write_record(tmp, dataset=DATASET, app=APP, source=source, files=files,
                                  counts={"images": len(images), "patients": len({c["patient"] for c in calib}),
                                          "colour_images_mixed": mixed},
                                  decisions=decisions, extra={"crops": crops})
