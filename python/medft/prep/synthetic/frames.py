"""Colonoscopy frame classification: informative frames and non-informative ones (frames).

Every frame is the mucosa of :func:`colon_frame` seen through one camera model: an exposure gain,
a few extra specular highlights, then sensor noise. An informative frame shows the wall clearly but
may carry mild flaws, as real ones do: slightly soft (a little defocus or motion blur), a few
bubbles, dim or bright. A non-informative frame has one dominant artefact of :data:`ARTEFACTS`
whose severity is drawn from mild to strong: motion blur, defocus, wall contact (part of the view
a featureless, over-exposed smear), bubbles covering part of the view, or over-/under-exposure.
The mildest artefacts meet the strongest flaws of informative frames, and a partial artefact may
miss a 227 x 227 crop, so the two classes overlap near the boundary instead of splitting cleanly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage, signal

from medft.prep.common import rng_for
from medft.prep.synthetic.colon import TISSUE_RGB, add_highlight, colon_frame
from medft.prep.synthetic.io import SynthSize, smooth_noise, write_csv, write_png, write_split

#: the dominant artefact of a non-informative frame, taken in turn within each video
ARTEFACTS = ("motion", "defocus", "contact", "bubbles", "exposure")

# Camera model shared by both classes.
#: exposure gain of a normally lit frame (dim to bright, all still readable)
GAIN = (0.7, 1.25)
#: sensor noise, standard deviation in grey levels (added after the gain: dim frames are noisier)
NOISE_SD = (1.5, 4.5)
#: extra specular highlights per frame (the scene already has 2-5)
EXTRA_HIGHLIGHTS = (0, 6)

# Mild flaws of informative frames, each drawn independently.
#: chance that an informative frame is slightly soft (defocus or short motion blur)
P_SOFT = 0.4
#: slight defocus of a soft informative frame, Gaussian sigma in px
SOFT_DEFOCUS_PX = (0.6, 2.0)
#: short motion blur of a soft informative frame, streak length in px
SOFT_MOTION_PX = (2.0, 9.0)
#: chance that an informative frame has a few bubbles, and the share of the view they cover
P_FEW_BUBBLES = 0.35
FEW_BUBBLES_COVER = (0.01, 0.08)

# Severity ranges of the non-informative artefacts (mild end first); the mild ends of blur and
# exposure meet the informative flaws above, and a partial contact smear or bubble pool may miss a crop.
#: motion blur streak length in px
MOTION_PX = (7.0, 40.0)
#: defocus, Gaussian sigma in px
DEFOCUS_PX = (1.6, 8.0)
#: wall contact: share of the view covered by the over-exposed, featureless smear
CONTACT_COVER = (0.3, 1.0)
#: brightness gain of the contact smear (the light source touches the wall)
CONTACT_GAIN = (1.1, 1.7)
#: bubbles: share of the view they cover
BUBBLE_COVER = (0.25, 0.9)
#: exposure gain of an under-exposed frame (dark to nearly black) and of an over-exposed one
UNDER_GAIN = (0.5, 0.22)
OVER_GAIN = (1.45, 2.6)

#: bubble radius in px
BUBBLE_RADIUS_PX = (4.0, 22.0)


def severity_value(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """A value drawn uniformly between ``bounds`` (mild, strong): every grade equally likely."""
    return float(bounds[0] + rng.random() * (bounds[1] - bounds[0]))


def defocus(img: np.ndarray, sigma: float) -> np.ndarray:
    """``img`` out of focus: a Gaussian blur of ``sigma`` px."""
    return ndimage.gaussian_filter(img, (sigma, sigma, 0), mode="reflect")


def motion_blur(img: np.ndarray, length: float, angle: float) -> np.ndarray:
    """``img`` smeared along a straight streak of ``length`` px at ``angle`` (radians), as when the
    scope moves during the exposure."""
    half = int(np.ceil(length / 2))
    t = np.linspace(-length / 2, length / 2, max(2 * int(np.ceil(length)), 3))
    k = np.zeros((2 * half + 1, 2 * half + 1))
    np.add.at(k, (np.rint(half + t * np.sin(angle)).astype(int), np.rint(half + t * np.cos(angle)).astype(int)), 1.0)
    k /= k.sum()
    padded = np.pad(img, ((half, half), (half, half), (0, 0)), mode="reflect")
    return signal.fftconvolve(padded, k[..., None], mode="valid", axes=(0, 1))


def region_mask(rng: np.random.Generator, h: int, w: int, cover: float) -> np.ndarray:
    """A soft H x W mask (0..1) of one irregular region covering about ``cover`` of the view,
    leaning towards a random side (contact and bubble pools enter from an edge)."""
    small = (max(h // 10, 4), max(w // 10, 4))
    ang = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0 : small[0], 0 : small[1]] / max(small)
    field = smooth_noise(rng, small, 5.0) + 4.0 * (np.cos(ang) * xx + np.sin(ang) * yy)
    field = ndimage.zoom(field, (h / small[0], w / small[1]), order=1)[:h, :w]
    thr = np.quantile(field, 1.0 - min(cover, 0.999))
    return 1.0 / (1.0 + np.exp(-(field - thr) / 0.12))


def wall_contact(rng: np.random.Generator, img: np.ndarray, cover: float) -> np.ndarray:
    """``img`` with about ``cover`` of the view pressed against the wall: a featureless, bright,
    partly saturated smear of the tissue colour with soft edges."""
    h, w = img.shape[:2]
    shade = 1.0 + 0.08 * smooth_noise(rng, (h // 8, w // 8), 4.0)
    shade = ndimage.zoom(shade, (h / shade.shape[0], w / shade.shape[1]), order=1)[:h, :w]
    smear = shade[..., None] * TISSUE_RGB * rng.uniform(0.9, 1.1, 3) * severity_value(rng, CONTACT_GAIN)
    m = region_mask(rng, h, w, cover)[..., None]
    return img * (1 - m) + smear * m


def add_bubble(img: np.ndarray, cy: float, cx: float, r: float) -> None:
    """Paint one air bubble into ``img`` in place: a thin bright rim, a faintly brightened inside
    and a small reflection on its upper left."""
    h, w = img.shape[:2]
    y0, y1 = max(int(cy - r - 4), 0), min(int(cy + r + 5), h)
    x0, x1 = max(int(cx - r - 4), 0), min(int(cx + r + 5), w)
    if y0 >= y1 or x0 >= x1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    d = np.hypot(yy - cy, xx - cx)
    rim = 0.75 * np.exp(-((d - r) ** 2) / (0.6 + 0.04 * r))
    inside = 0.12 * (d < r)
    spot = np.exp(-((yy - cy + 0.45 * r) ** 2 + (xx - cx + 0.45 * r) ** 2) / (0.02 * r * r + 0.8))
    a = np.clip(rim + inside + spot, 0, 1)[..., None]
    img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1 - a) + 245.0 * a


def add_bubbles(rng: np.random.Generator, img: np.ndarray, cover: float) -> None:
    """Fill a region of about ``cover`` of the view with bubbles, packed where the region is."""
    h, w = img.shape[:2]
    m = region_mask(rng, h, w, cover)
    ys, xs = np.nonzero(m > 0.5)
    if ys.size == 0:
        return
    mean_area = np.pi * np.mean(np.square(BUBBLE_RADIUS_PX)) / 2
    for i in rng.integers(0, ys.size, max(1, int(1.3 * ys.size / mean_area))):
        add_bubble(img, ys[i] + rng.uniform(-0.5, 0.5), xs[i] + rng.uniform(-0.5, 0.5), rng.uniform(*BUBBLE_RADIUS_PX))


def camera(rng: np.random.Generator, img: np.ndarray, gain: float) -> np.ndarray:
    """The exposure ``gain`` (saturating at 255), extra specular highlights and sensor noise."""
    h, w = img.shape[:2]
    out = np.clip(img * gain, 0, 255)
    for _ in range(rng.integers(EXTRA_HIGHLIGHTS[0], EXTRA_HIGHLIGHTS[1] + 1)):
        add_highlight(out, rng.uniform(0, h), rng.uniform(0, w), rng.uniform(1.0, 2.5))
    return np.clip(out + rng.normal(0, rng.uniform(*NOISE_SD), out.shape), 0, 255)


def informative_frame(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A clear view of the wall, sometimes slightly soft, with a few bubbles, dim or bright."""
    img = colon_frame(rng, h, w)
    if rng.random() < P_SOFT:
        if rng.random() < 0.5:
            img = defocus(img, severity_value(rng, SOFT_DEFOCUS_PX))
        else:
            img = motion_blur(img, severity_value(rng, SOFT_MOTION_PX), rng.uniform(0, np.pi))
    if rng.random() < P_FEW_BUBBLES:
        add_bubbles(rng, img, severity_value(rng, FEW_BUBBLES_COVER))
    return camera(rng, img, severity_value(rng, GAIN))


def non_informative_frame(rng: np.random.Generator, h: int, w: int, kind: int) -> np.ndarray:
    """A frame spoilt by the artefact ``ARTEFACTS[kind]`` at a random severity (mild to strong)."""
    img = colon_frame(rng, h, w)
    gain = severity_value(rng, GAIN)
    artefact = ARTEFACTS[kind % len(ARTEFACTS)]
    if artefact == "motion":
        img = motion_blur(img, severity_value(rng, MOTION_PX), rng.uniform(0, np.pi))
    elif artefact == "defocus":
        img = defocus(img, severity_value(rng, DEFOCUS_PX))
    elif artefact == "contact":
        img = wall_contact(rng, img, severity_value(rng, CONTACT_COVER))
    elif artefact == "bubbles":
        add_bubbles(rng, img, severity_value(rng, BUBBLE_COVER))
    else:
        gain = severity_value(rng, UNDER_GAIN if rng.random() < 0.5 else OVER_GAIN)
    return camera(rng, img, gain)


def synth_frames(root: Path, size: SynthSize, h: int = 350, w: int = 500) -> None:
    """``per_case`` informative and ``per_case`` non-informative frames per video, the latter
    cycling through :data:`ARTEFACTS` (each video starting one further on, so all are equally common)."""
    videos = [f"v{i + 1:03d}" for i in range(size.cases)]
    rows = []
    for i, v in enumerate(videos):
        rng = rng_for(size.seed, "synth-frames", v)
        for f in range(2 * size.per_case):
            label = int(f % 2 == 0)
            img = informative_frame(rng, h, w) if label else non_informative_frame(rng, h, w, i + f // 2)
            name = f"f{f + 1:04d}"
            write_png(root / "videos" / v / f"{name}.png", img)
            rows.append([v, name, label])
    write_csv(root / "labels.csv", ["video", "frame", "label"], rows)
    write_split(root, videos)
