"""The CSV beside each LMDB: which source every record key came from.

Columns (one place for them; data_prep/README.md explains each):
``key, case, frame_or_slice, unit, lesion, label, aug, score``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from medft.errors import MedftError
from medft.prep.common import Spec
from medft.util.csvtext import write_csv

COLUMNS: tuple[str, ...] = ("key", "case", "frame_or_slice", "unit", "lesion", "label", "aug", "score")


def manifest_rows(keys: Sequence[str], specs: Sequence[Spec]) -> list[dict[str, str]]:
    """Manifest rows sorted by key, i.e. in the order Caffe's Data layer reads the LMDB."""
    rows = [
        {
            "key": k,
            "case": s.case,
            "frame_or_slice": s.frame,
            "unit": s.unit,
            "lesion": s.lesion,
            "label": str(s.label),
            "aug": s.aug,
            "score": s.score,
        }
        for k, s in zip(keys, specs, strict=True)
    ]
    rows.sort(key=lambda r: r["key"])
    return rows


def write_rows_csv(path: Path, rows: Sequence[dict[str, str]], columns: Sequence[str]) -> None:
    """Write ``rows`` as CSV with ``columns``, atomically (:func:`medft.util.csvtext.write_csv`)."""
    write_csv(path, rows, columns)


def write_manifest(path: Path, keys: Sequence[str], specs: Sequence[Spec]) -> None:
    write_rows_csv(path, manifest_rows(keys, specs), COLUMNS)


def read_manifest(path: str | Path) -> list[dict[str, str]]:
    """Rows of a manifest written by :func:`write_manifest`, in key order."""
    path = Path(path)
    if not path.is_file():
        raise MedftError(f"{path}: no such manifest")
    with open(path, newline="") as f:
        r = csv.DictReader(f)
        if tuple(r.fieldnames or ()) != COLUMNS:
            raise MedftError(f"{path}: manifest columns {r.fieldnames} differ from {list(COLUMNS)}")
        return list(r)
