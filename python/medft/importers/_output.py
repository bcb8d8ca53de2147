"""What every importer shares: the input file's identity, and an output folder written whole."""

from __future__ import annotations

import json
from pathlib import Path

from medft import paths
from medft.importers._base import file_entry, staging
from medft.util.atomic import write_text_atomic


def file_facts(path: Path) -> dict:
    """Size in bytes and SHA-256 of one input file, under its absolute path."""
    return {**file_entry(Path(path), Path(path).parent), "path": str(Path(path).resolve())}


#: the output folder written whole (one mechanism for every importer)
staged = staging


def write_record(folder: Path, record: dict) -> None:
    write_text_atomic(Path(folder) / paths.IMPORT_RECORD, json.dumps(record, indent=2) + "\n")
