"""Readers of the documented input formats that name the file and rule on any problem."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from medft.prep.common import bad_input


def read_image(path: Path, rule: str, mode: str = "rgb") -> np.ndarray:
    """A uint8 image: H x W x 3 for ``mode="rgb"``, H x W for ``"gray"`` (lossless PNG expected)."""
    from PIL import Image

    if not path.is_file():
        raise bad_input(path, rule, "missing file")
    try:
        with Image.open(path) as im:
            if im.mode in ("P", "PA"):  # palette indices are not intensities: look the colours up
                im = im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB")
            elif im.mode == "LA":
                im = im.convert("L")
            img = np.asarray(im)
    except Exception as e:  # Pillow raises many types
        raise bad_input(path, rule, f"unreadable image ({type(e).__name__}: {e})") from None
    if img.dtype != np.uint8:
        raise bad_input(path, rule, f"pixels must be 8-bit, got {img.dtype}")
    if mode == "rgb":
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        if img.ndim != 3 or img.shape[2] not in (3, 4):
            raise bad_input(path, rule, f"expected an RGB image, got shape {img.shape}")
        return np.ascontiguousarray(img[..., :3])
    if img.ndim == 3:
        if img.shape[2] in (3, 4) and all(np.array_equal(img[..., 0], img[..., c]) for c in (1, 2)):
            return np.ascontiguousarray(img[..., 0])  # a gray image stored as RGB: all three channels equal
        raise bad_input(path, rule, f"expected a single-channel (gray) image, got shape {img.shape}")
    return img


def read_csv(path: Path, rule: str, columns: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows of a CSV with a header that has at least ``columns``."""
    if not path.is_file():
        raise bad_input(path, rule, "missing file")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise bad_input(path, rule, f"missing column(s) {', '.join(missing)}; header is {reader.fieldnames}")
            rows = []
            for r in reader:
                if None in r or any(v is None for v in r.values()):
                    raise bad_input(path, rule, f"line {reader.line_num}: {len(reader.fieldnames)} columns expected")
                rows.append(dict(r))
            return rows
    except UnicodeDecodeError as e:
        raise bad_input(path, rule, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except csv.Error as e:
        raise bad_input(path, rule, f"not a CSV file ({e})") from None


def to_number(path: Path, rule: str, row: int, col: str, text: str, kind=float) -> float:
    """``text`` as a finite number, or an error naming file, data row and column."""
    try:
        v = kind(text)
    except (TypeError, ValueError):
        raise bad_input(path, rule, f"row {row}: column {col!r} is not a number: {text!r}") from None
    if not math.isfinite(v):
        raise bad_input(path, rule, f"row {row}: column {col!r} is not finite: {text!r}")
    return v


def read_label(path: Path, rule: str, row: int, text: str, num_classes: int) -> int:
    """An integer class label in ``0..num_classes-1``."""
    try:
        v = int(text)
    except (TypeError, ValueError):
        v = -1
    if str(v) != str(text).strip() or not 0 <= v < num_classes:
        raise bad_input(path, rule, f"row {row}: label {text!r} out of range; valid: 0..{num_classes - 1}")
    return v


def _raw_pixdim(path: Path, header_type) -> list[float]:
    """pixdim[1:4] as the file holds it: nibabel's checked header turns a 0 spacing into 1 mm."""
    import nibabel as nib

    with nib.openers.ImageOpener(str(path)) as f:
        hdr = header_type.from_fileobj(f, check=False)
    return [float(z) for z in np.asarray(hdr["pixdim"]).ravel()[1:4]]


def read_volume(path: Path, rule: str, dtype=np.float32) -> tuple[np.ndarray, tuple[float, float, float]]:
    """(voxels in array order i, j, k; spacing in mm along i, j, k) of a 3-D NIfTI file."""
    import nibabel as nib

    if not path.is_file():
        raise bad_input(path, rule, "missing file")
    try:
        img = nib.load(str(path))
        vol = np.asarray(img.dataobj, dtype=dtype)
    except Exception as e:
        raise bad_input(path, rule, f"unreadable NIfTI ({type(e).__name__}: {e})") from None
    if vol.ndim != 3:
        raise bad_input(path, rule, f"expected a 3-D volume, got shape {vol.shape}")
    unit = img.header.get_xyzt_units()[0]
    scale = {"mm": 1.0, "micron": 1e-3, "meter": 1e3}.get(unit)
    raw = _raw_pixdim(path, type(img.header))
    zooms = tuple(abs(z) * (scale or 0.0) for z in raw)
    if scale is None or not all(math.isfinite(z) and z > 0 for z in zooms):
        raise bad_input(
            path,
            rule,
            f"missing voxel spacing (zero or unset: pixdim {tuple(raw)}, "
            f"spatial unit {unit!r}; set pixdim and xyzt_units to mm)",
        )
    if not np.isfinite(vol).all():
        n = int((~np.isfinite(vol)).sum())
        raise bad_input(path, rule, f"{n} NaN or non-finite voxel(s)")
    return vol, zooms  # type: ignore[return-value]
