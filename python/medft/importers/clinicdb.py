"""CVC-ClinicDB (Bernal et al., CMIG 2015): 612 frames of 384 x 288 from 29 colonoscopy sequences."""

from __future__ import annotations

import bisect
from pathlib import Path

from medft.errors import MedftError
from medft.importers import _base, _polyp

APP = "polyp"
DATASET = "cvc-clinicdb"
DESCRIPTION = ("CVC-ClinicDB: Original/<n>.tif, 'Ground Truth'/<n>.tif (or under TIF/ or PNG/); 612 frames from 29 "
               "sequences -> polyp (one case per sequence, candidates generated)")
LAYOUT = ("CVC-ClinicDB/Original/<n>.tif and CVC-ClinicDB/Ground Truth/<n>.tif (n = 1..612), or the mirrors' "
          "CVC-ClinicDB/TIF/... or CVC-ClinicDB/PNG/... holding those two folders")
#: last frame number of each of the 29 sequences (the frame ranges published with the data set;
#: sources in docs/public-datasets.md)
SEQUENCE_ENDS = (25, 50, 67, 78, 103, 126, 151, 177, 199, 205, 227, 252, 277, 297, 317, 342, 363, 383,
                 408, 428, 447, 466, 478, 503, 528, 546, 571, 591, 612)


def sequence_of(n: int) -> int | None:
    """1-based sequence of frame number ``n``; None outside 1..612."""
    if not 1 <= n <= SEQUENCE_ENDS[-1]:
        return None
    return bisect.bisect_left(SEQUENCE_ENDS, n) + 1


def run(source: Path, out: Path, *, force: bool = False, progress: bool = True) -> dict:
    source = Path(source)
    root = next((source / sub for sub in ("", "TIF", "PNG") if (source / sub / "Original").is_dir()), source)
    orig = _base.require(root / "Original", DATASET, LAYOUT)
    gt = _base.require(root / "Ground Truth", DATASET, LAYOUT)
    images = _base.images_in(orig)
    masks = {p.stem: p for p in _base.images_in(gt)}
    items, unknown = [], 0
    for p in images:
        if not p.stem.isdigit():
            raise MedftError(f"{p}: frame names are numbers 1..612 in this layout")
        seq = sequence_of(int(p.stem))
        unknown += seq is None
        video = f"seq{seq:02d}" if seq else f"frame{int(p.stem)}"
        items.append(_polyp.Item(video, p.stem, p, masks.get(p.stem, gt / p.name)))
    with _base.staging(out, force, source) as tmp:
        files, counts, cands = _polyp.convert(tmp, source, items, progress)
        counts["frames_outside_known_sequences"] = unknown
        decisions = _polyp.decisions(
            "cases: frames 1..612 grouped into the 29 published sequences (ends "
            f"{', '.join(map(str, SEQUENCE_ENDS))}), case = seqNN; a frame number outside them is its own case")
        return _base.write_record(tmp, dataset=DATASET, app=APP, source=source, files=files, counts=counts,
                                  decisions=decisions, extra={"candidates": cands})
