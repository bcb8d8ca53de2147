"""CSV written one way everywhere: a header, "\\n" line ends, atomic files."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path


def csv_text(rows: Iterable[dict], columns: Sequence[str]) -> str:
    """CSV text of ``rows`` (dicts) with ``columns``, header first."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def write_csv(path: str | Path, rows: Iterable[dict], columns: Sequence[str]) -> None:
    """Write ``rows`` as CSV with ``columns`` to ``path``, atomically."""
    from medft.util.atomic import write_text_atomic

    write_text_atomic(path, csv_text(rows, columns))
