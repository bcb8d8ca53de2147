"""log.csv of a run folder: one row per epoch."""

from __future__ import annotations

import csv
from pathlib import Path

LOG_COLUMNS = ("epoch", "iteration", "loss", "lr", "val_auc", "images_per_s", "seconds")


def read_log(path: Path) -> list[dict]:
    """The rows of log.csv ([] where there is none)."""
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_log(path: Path, rows: list[dict]) -> None:
    """Write all rows of log.csv (atomically)."""
    from medft.prep.manifest import write_rows_csv

    write_rows_csv(path, rows, LOG_COLUMNS)
