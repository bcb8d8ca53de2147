"""Geometry shared by the applications: square crops resampled to 227, the 8 orientations,
planes through a volume, and conversion to Datum layout.

Coordinates are continuous with pixel (or voxel) ``i`` centred at ``i``, so a crop of ``side``
pixels centred at ``(cy, cx)`` covers ``[c - side/2, c + side/2]`` on each axis.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from medft.prep.common import PATCH

#: the dihedral group D4 (section VI-A: "rotated each resulting patch 8 times by horizontal and
#: vertical mirroring and flipping"): o < 4 rotates by o x 90 degrees counter-clockwise,
#: o >= 4 mirrors left-right first.
ORIENTATIONS: tuple[str, ...] = ("r0", "r90", "r180", "r270", "m", "m-r90", "m-r180", "m-r270")


def orient(patch: np.ndarray, o: int) -> np.ndarray:
    """``patch`` (H x W [x C]) in orientation ``o`` of :data:`ORIENTATIONS`."""
    if not 0 <= o < 8:
        raise ValueError(f"orientation {o} not in 0..7")
    p = patch[:, ::-1] if o >= 4 else patch
    return np.rot90(p, k=o % 4)


def sample_grid(center: float, side: float, out: int = PATCH) -> np.ndarray:
    """Source coordinates of the ``out`` pixel centres of a ``side``-long window around ``center``."""
    return center - side / 2.0 + (np.arange(out) + 0.5) * (side / out)


def crop_square(
    img: np.ndarray,
    cy: float,
    cx: float,
    side: float,
    out: int = PATCH,
    mode: str = "constant",
    cval: float = 0.0,
) -> np.ndarray:
    """Bilinear resample of the ``side`` x ``side`` window of ``img`` (H x W [x C]) centred at
    ``(cy, cx)`` to ``out`` x ``out``; outside the image: ``mode`` as in ``scipy.ndimage``."""
    ys, xs = sample_grid(cy, side, out), sample_grid(cx, side, out)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    img = np.asarray(img, dtype=np.float32)
    if img.ndim == 2:
        return ndimage.map_coordinates(img, [yy, xx], order=1, mode=mode, cval=cval)
    return np.stack(
        [ndimage.map_coordinates(img[..., c], [yy, xx], order=1, mode=mode, cval=cval) for c in range(img.shape[2])],
        axis=-1,
    )


def sample_plane(
    vol: np.ndarray,
    spacing: tuple[float, float, float],
    center_mm: np.ndarray,
    e_row: np.ndarray,
    e_col: np.ndarray,
    size_mm: float,
    out: int = PATCH,
    cval: float = -1024.0,
) -> np.ndarray:
    """``out`` x ``out`` trilinear samples of ``vol`` on the square plane through ``center_mm``
    (physical mm, array axes) spanned by unit vectors ``e_row`` (down the rows) and ``e_col``
    (along a row), ``size_mm`` wide; outside the volume reads ``cval`` (air)."""
    t = sample_grid(0.0, size_mm, out)
    pts = (
        np.asarray(center_mm, dtype=np.float64)[:, None, None]
        + np.asarray(e_row, dtype=np.float64)[:, None, None] * t[None, :, None]
        + np.asarray(e_col, dtype=np.float64)[:, None, None] * t[None, None, :]
    )
    idx = pts / np.asarray(spacing, dtype=np.float64)[:, None, None]
    return ndimage.map_coordinates(vol, idx, order=1, mode="constant", cval=cval)


def perpendicular_frame(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, u, v): unit ``axis`` and two unit vectors completing a right-handed orthonormal frame."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    helper = np.eye(3)[int(np.argmin(np.abs(a)))]
    u = np.cross(a, helper)
    u /= np.linalg.norm(u)
    return a, u, np.cross(a, u)


def rotate_about(a: np.ndarray, u: np.ndarray, v: np.ndarray, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """``u`` and ``v`` rotated by ``theta`` radians around the unit axis ``a`` (perpendicular to both)."""
    c, s = np.cos(theta), np.sin(theta)
    return c * u + s * v, -s * u + c * v


def window_to_uint8(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Linear map of ``[lo, hi]`` to ``0..255``, clipped and rounded."""
    return np.clip(np.rint((np.asarray(x, dtype=np.float32) - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)


def rgb_to_datum(patch_hwc: np.ndarray) -> np.ndarray:
    """H x W x 3 RGB (any numeric) -> C x H x W uint8 BGR, Caffe's OpenCV layout."""
    p = np.clip(np.rint(patch_hwc), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(p[..., ::-1].transpose(2, 0, 1))


def channels_to_datum(*planes: np.ndarray) -> np.ndarray:
    """C x H x W uint8 from H x W uint8 planes in Datum channel order."""
    return np.ascontiguousarray(np.stack(planes, axis=0))
