"""Writers of the synthetic inputs' files and one noise primitive they all share."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from medft.util.atomic import write_text_atomic


@dataclass(frozen=True)
class SynthSize:
    """How much synthetic data to write (the defaults keep ``medft prep`` of any app < ~30 s)."""

    cases: int = 6  # videos (polyp, frames) or patients (pe, cimt)
    per_case: int = 2  # frames per video, ROIs per patient; frames: frames per class per video
    seed: int = 0


def write_png(path: Path, img: np.ndarray) -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8)).save(buf, format="PNG")
    write_text_atomic(path, buf.getvalue())


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    """``rows`` (lists in ``header`` order) as an atomic CSV file."""
    from medft.util.csvtext import write_csv as write_dicts

    write_dicts(path, (dict(zip(header, r, strict=True)) for r in rows), header)


def write_nifti(path: Path, vol: np.ndarray, spacing: tuple[float, float, float]) -> None:
    import nibabel as nib

    img = nib.Nifti1Image(vol, affine=np.diag([*spacing, 1.0]))
    img.header.set_zooms(spacing)
    img.header.set_xyzt_units("mm")
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))


def write_split(root: Path, cases: list[str]) -> None:
    """Alternate cases into train and test (``split.csv``), so both see every kind of case."""
    write_csv(
        root / "split.csv",
        ["case", "subset"],
        [[c, "train" if i % 2 == 0 else "test"] for i, c in enumerate(cases)],
    )


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise rescaled to unit standard deviation."""
    n = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return n / (n.std() + 1e-9)
