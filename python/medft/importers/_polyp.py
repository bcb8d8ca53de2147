"""Colonoscopy frames with polyp masks -> the polyp input layout, candidates from the generator."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medft.errors import MedftError
from medft.importers._base import binarise, file_entry, progress, read_raster, to_uint8, write_csv, write_png

APP = "polyp"


@dataclass(frozen=True)
class Item:
    """One frame of the source: its case (video), frame id, image and mask files."""

    video: str
    frame: str
    image: Path
    mask: Path


def convert(tmp: Path, source: Path, items: list[Item], show: bool = True) -> tuple[list[dict], dict, dict]:
    """Write ``videos/<video>/{frames,masks}/<frame>.png`` and ``candidates.csv`` into ``tmp``.

    Returns (input file entries, counts, candidate recall summary)."""
    from medft.prep.candidates import COLUMNS, DEFAULT, candidates_for_input

    if not items:
        raise MedftError(f"{source}: no frames found")
    files, noisy, polyps = [], 0, 0
    for it in progress(items, "frames", show):
        if not it.mask.is_file():
            raise MedftError(f"{it.mask}: missing mask of frame {it.image}")
        img = to_uint8(read_raster(it.image), it.image)
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        mask, n_noise = binarise(read_raster(it.mask), it.mask)
        if mask.shape != img.shape[:2]:
            raise MedftError(f"{it.mask}: mask of size {mask.shape[1]}x{mask.shape[0]} but the frame "
                             f"{it.image.name} is {img.shape[1]}x{img.shape[0]}")
        noisy += n_noise
        from scipy import ndimage

        polyps += ndimage.label(mask)[1]
        base = tmp / "videos" / it.video
        write_png(base / "frames" / f"{it.frame}.png", img)
        write_png(base / "masks" / f"{it.frame}.png", mask.astype(np.uint8) * 255)
        files += [file_entry(it.image, source), file_entry(it.mask, source)]
    rows, recall = candidates_for_input(tmp, DEFAULT, progress=show)
    write_csv(tmp / "candidates.csv", rows, COLUMNS)
    counts = {"videos": len({i.video for i in items}), "frames": len(items), "polyps": polyps,
              "candidates": len(rows), "mask_pixels_not_0_or_255": noisy}
    return files, counts, {"params": DEFAULT.record(), **recall}


def decisions(case_rule: str) -> list[str]:
    return [
        case_rule,
        "frames written as lossless RGB PNG, pixels unchanged (gray frames repeated into 3 channels)",
        "masks: a pixel is polyp when its brightest channel is >= 128 (JPEG masks carry grey levels "
        "near edges; their count is counts.mask_pixels_not_0_or_255); each connected component "
        "is one polyp",
        "candidates: medft.prep.candidates with its default preset (blob and edge-shape cues, "
        "non-maximum suppression); its sensitivity and false positives per frame against the masks "
        "are in 'candidates' and cap every FROC of the study",
    ]
