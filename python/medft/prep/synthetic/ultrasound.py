"""Carotid ultrasound: ROIs with the lumen-intima and media-adventitia interfaces (cimt).

A synthetic ROI is a longitudinal B-mode crop of the common carotid artery, depth downward:
subcutaneous tissue layers, the near wall (bright adventitia, grey media, faint intima line), the
anechoic lumen, the far wall whose two interfaces are traced (lumen-intima: dark lumen above a thin
echogenic intima line; media-adventitia: the grey media band above the bright adventitia) and
deeper tissue (perivascular tissue, hypoechoic muscle bands, bright fascia).  Every layer follows
the vessel's curvature with its own wobble; echo levels, the intima's and adventitia's contrast and
the wall's thickness vary from ROI to ROI and along the wall.

Background pixels lie among mimics of the interfaces: the near wall (the same layers in mirror
order), fascia lines under dark muscle (a dark-above, bright-below edge like the lumen-intima) and
fascia double lines (two bright lines around a grey gap: a plaque-free wall without a lumen).  So
every depth holds dark and bright layers in similar proportions, and per-ROI gain, offset, log
compression, depth attenuation, lateral gain drift and speckle size change the global statistics
more than the class does: only the local configuration at the centre pixel tells the class.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from medft.prep.common import rng_for
from medft.prep.synthetic.io import SynthSize, smooth_noise, write_csv, write_png, write_split

#: ROI size (rows, columns): room for the near wall above and tissue layers below the far wall
ROI_SHAPE = (80, 64)
#: depth of the far wall's lumen-intima interface (rows, before curvature)
LI_DEPTH = (26.0, 44.0)
#: far-wall intima-media thickness, lumen-intima to media-adventitia (rows)
IMT = (6.0, 12.0)
#: deviation of the intima-media thickness along the wall (rows)
IMT_DRIFT = 1.2
#: lumen diameter visible in the ROI, near-wall intima to far-wall intima (rows)
LUMEN = (12.0, 24.0)
#: near-wall media and adventitia thickness (rows)
NEAR_MEDIA, NEAR_ADVENTITIA = (4.0, 10.0), (3.0, 7.0)
#: far-wall adventitia thickness before it fades into perivascular tissue (rows)
ADVENTITIA = (3.0, 8.0)
#: echo amplitudes (0..1) of the lumen and the far wall's media and adventitia
LUMEN_ECHO, MEDIA_ECHO, ADVENTITIA_ECHO = (0.02, 0.10), (0.10, 0.35), (0.55, 1.0)
#: echo of the near wall's adventitia, dimmer than the far wall's (specular angle)
NEAR_ADVENTITIA_ECHO = (0.3, 0.7)
#: echo of the near wall's media, often darker than the far wall's
NEAR_MEDIA_ECHO = (0.03, 0.25)
#: echo of soft tissue (subcutaneous, between layers) and of hypoechoic muscle, as dark as the lumen
TISSUE_ECHO, MUSCLE_ECHO = (0.15, 0.50), (0.02, 0.15)
#: echo of the tissue right under the far adventitia: from hypoechoic muscle to fat
PERIVASCULAR_ECHO = (0.03, 0.3)
#: peak echo of the patchy haze in the lumen (blood echo, reverberation)
LUMEN_HAZE = (0.0, 0.25)
#: intima and fascia line amplitude above their surroundings, and their half-width (rows)
INTIMA_LINE, FASCIA_LINE, LINE_WIDTH = (0.10, 0.55), (0.30, 0.80), (0.7, 1.4)
#: muscle band thickness and the grey gap of a fascia double line (rows)
MUSCLE_BAND, FASCIA_GAP = (6.0, 18.0), (5.0, 12.0)
#: chance that a fascia is a double line, and the tissue between a fascia and the next muscle band (rows)
DOUBLE_LINE, TISSUE_GAP = 0.5, (3.0, 8.0)
#: edge blur of a layer boundary (rows of the logistic's scale)
EDGE_BLUR = (0.5, 1.0)
#: vessel curvature amplitude (rows) and tilt (rows per column)
CURVE_AMP, CURVE_TILT = (0.0, 4.0), (-0.06, 0.06)
#: standard deviation (rows) of a layer's own wobble around the vessel's curve
WOBBLE = 0.6
#: speckle correlation (rows, columns): axial resolution is finer than lateral
SPECKLE_SIGMA = ((0.5, 0.9), (0.9, 2.0))
#: electronic noise floor (echo units) and attenuation over the ROI's depth (negative: overcompensated TGC)
NOISE_FLOOR, ATTENUATION = (0.005, 0.03), (-1.0, 1.0)
#: lateral gain drift (relative) and display gain, log-compression strength and offset (gray levels)
LATERAL_GAIN, GAIN, COMPRESSION, OFFSET = 0.15, (0.6, 1.5), (2.0, 30.0), (0.0, 30.0)


def uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """One draw from the (low, high) range of a per-ROI or per-layer parameter."""
    return float(rng.uniform(*bounds))


def vessel_curve(rng: np.random.Generator, w: int) -> np.ndarray:
    """Depth offset per column shared by all layers: a partial sine (curvature) plus a tilt."""
    x = np.arange(w, dtype=np.float64)
    bend = np.sin(2 * np.pi * rng.uniform(0.2, 0.8) * x / w + rng.uniform(0, 2 * np.pi))
    return uniform(rng, CURVE_AMP) * bend + uniform(rng, CURVE_TILT) * (x - w / 2)


def drift(rng: np.random.Generator, w: int, sigma: float) -> np.ndarray:
    """Smooth zero-mean, unit-deviation series along the ``w`` columns (correlation ``sigma``)."""
    n = smooth_noise(rng, (w,), sigma)
    return (n - n.mean()) / (n.std() + 1e-9)


def wobble(rng: np.random.Generator, w: int) -> np.ndarray:
    """A layer's own smooth deviation from the vessel curve (rows), so layers are not parallel."""
    return WOBBLE * drift(rng, w, rng.uniform(3, 10))


class Echo:
    """Echo amplitude built top-down: steps between layer levels plus thin bright lines."""

    def __init__(self, h: int, w: int, level: float) -> None:
        self.yy = np.arange(h, dtype=np.float64)[:, None]
        self.img = np.full((h, w), level)
        self.level = level

    def step(self, rng: np.random.Generator, edge: np.ndarray, level: float) -> None:
        """Change to ``level`` below ``edge`` (rows per column) with a blurred boundary."""
        z = np.clip((self.yy - edge[None]) / uniform(rng, EDGE_BLUR), -40, 40)
        self.img += (level - self.level) / (1 + np.exp(-z))
        self.level = level

    def haze(self, rng: np.random.Generator, top: np.ndarray, bottom: np.ndarray, amp: float) -> None:
        """Patchy low echo between ``top`` and ``bottom`` (rows per column): blood echo, reverberation."""
        inside = (self.yy > top[None]) & (self.yy < bottom[None])
        field = ndimage.gaussian_filter(rng.random(self.img.shape), (2.0, 6.0))
        field = (field - field.min()) / (np.ptp(field) + 1e-9)
        self.img += amp * field * ndimage.gaussian_filter(inside.astype(np.float64), 1.0)

    def line(self, rng: np.random.Generator, centre: np.ndarray, amp: float) -> None:
        """A thin bright line (intima, fascia) centred on ``centre`` (rows per column)."""
        self.img += amp * np.exp(-0.5 * ((self.yy - centre[None]) / uniform(rng, LINE_WIDTH)) ** 2)


def tissue_layers(rng: np.random.Generator, echo: Echo, curve: np.ndarray, top: float, bottom: float) -> None:
    """Muscle bands each closed by a fascia single or double line, from depth ``top`` to ``bottom``.

    A fascia line under dark muscle mimics the lumen-intima edge; a double line around a grey gap
    mimics a plaque-free wall.
    """
    w = curve.size
    y = top
    while y + MUSCLE_BAND[1] < bottom:
        follow = curve * rng.uniform(0.3, 1.0)
        echo.step(rng, y + follow + wobble(rng, w), uniform(rng, MUSCLE_ECHO))
        y += uniform(rng, MUSCLE_BAND)
        fascia = y + follow + wobble(rng, w)
        echo.step(rng, fascia, uniform(rng, TISSUE_ECHO))
        echo.line(rng, fascia + 1, uniform(rng, FASCIA_LINE))
        gap = 2 + uniform(rng, FASCIA_GAP)
        if rng.random() < DOUBLE_LINE and y + gap < bottom:
            echo.step(rng, fascia + 2, uniform(rng, MEDIA_ECHO))
            y += gap
            echo.step(rng, y + follow + wobble(rng, w), uniform(rng, ADVENTITIA_ECHO))
        y += uniform(rng, TISSUE_GAP)


def near_wall(rng: np.random.Generator, echo: Echo, curve: np.ndarray, intima: float) -> np.ndarray:
    """Tissue, bright adventitia, grey media and a faint intima line ending at the lumen at ``intima``;
    returns the lumen's upper edge per column."""
    w = curve.size
    follow = curve * rng.uniform(0.5, 1.0)
    media_top = intima - uniform(rng, NEAR_MEDIA)
    adventitia_top = media_top - uniform(rng, NEAR_ADVENTITIA)
    tissue_layers(rng, echo, curve, adventitia_top - 40, adventitia_top - 4)
    echo.step(rng, adventitia_top + follow + wobble(rng, w), uniform(rng, NEAR_ADVENTITIA_ECHO))
    echo.step(rng, media_top + follow + wobble(rng, w), uniform(rng, NEAR_MEDIA_ECHO))
    lumen_edge = intima + follow + wobble(rng, w)
    echo.line(rng, lumen_edge - 1, uniform(rng, INTIMA_LINE))
    echo.step(rng, lumen_edge, uniform(rng, LUMEN_ECHO))
    return lumen_edge


def far_wall(rng: np.random.Generator, echo: Echo, li: np.ndarray, ma: np.ndarray) -> np.ndarray:
    """Intima line below the lumen at ``li``, grey media, bright adventitia below ``ma``; returns
    the depth per column where the adventitia fades into perivascular tissue."""
    echo.step(rng, li, uniform(rng, MEDIA_ECHO))
    echo.line(rng, li + 1, uniform(rng, INTIMA_LINE))
    echo.step(rng, ma, uniform(rng, ADVENTITIA_ECHO))
    fade = ma + uniform(rng, ADVENTITIA)
    echo.step(rng, fade, uniform(rng, PERIVASCULAR_ECHO))
    return fade


def speckle(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Multiplicative Rayleigh speckle (mean 1), correlated more laterally than axially."""
    s = rng.rayleigh(1.0, (h, w))
    s = ndimage.gaussian_filter(s, (uniform(rng, SPECKLE_SIGMA[0]), uniform(rng, SPECKLE_SIGMA[1])))
    return s / s.mean()


def display(rng: np.random.Generator, echo: np.ndarray) -> np.ndarray:
    """Scanner chain: depth attenuation, lateral gain drift, noise floor, gain, log compression."""
    h, w = echo.shape
    depth = np.exp(-uniform(rng, ATTENUATION) * np.arange(h)[:, None] / h)
    lateral = 1 + LATERAL_GAIN * drift(rng, w, rng.uniform(8, 20))[None]
    a = echo * depth * lateral + np.abs(rng.normal(0, uniform(rng, NOISE_FLOOR), (h, w)))
    k = uniform(rng, COMPRESSION)
    return uniform(rng, OFFSET) + 255 * np.log1p(k * uniform(rng, GAIN) * a) / np.log1p(k)


def interfaces(rng: np.random.Generator, h: int, curve: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lumen-intima y, media-adventitia y) per column: the far wall on the vessel curve, its
    thickness drifting along the wall."""
    w = curve.size
    li = uniform(rng, LI_DEPTH) * h / ROI_SHAPE[0] + curve + wobble(rng, w)
    ma = li + uniform(rng, IMT) + IMT_DRIFT * drift(rng, w, rng.uniform(6, 16))
    return np.clip(li, 1, h - 12), np.clip(ma, li + 5, h - 2)


def cimt_roi(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ROI gray levels, lumen-intima y, media-adventitia y): near wall, lumen, far wall and tissue
    layers under speckle and a randomised scanner chain."""
    curve = vessel_curve(rng, w)
    li, ma = interfaces(rng, h, curve)
    echo = Echo(h, w, uniform(rng, TISSUE_ECHO))
    lumen_top = near_wall(rng, echo, curve, float(li.mean() - curve.mean()) - uniform(rng, LUMEN))
    fade = far_wall(rng, echo, li, ma)
    echo.haze(rng, lumen_top, li, uniform(rng, LUMEN_HAZE))
    tissue_layers(rng, echo, curve, float(fade.max() - curve.min()) + uniform(rng, (1.0, 6.0)), h + 8.0)
    img = display(rng, np.maximum(echo.img, 0) * speckle(rng, h, w))
    return np.clip(img, 0, 255), li, ma


def synth_cimt(root: Path, size: SynthSize, h: int = ROI_SHAPE[0], w: int = ROI_SHAPE[1]) -> None:
    """``per_case`` ROIs per patient, each a PNG with its two interface polylines as CSV."""
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
