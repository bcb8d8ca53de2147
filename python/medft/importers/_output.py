"""What every importer shares: the input file's identity, and an output folder written whole."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from medft.prep.lmdb_writer import collect_stale_tmp, mark_output, refuse_existing
from medft.schema import write_text_atomic
from medft.util.atomic import replace_path

#: the import record written into the output folder
RECORD = "import.json"


def file_facts(path: Path) -> dict:
    """Size in bytes and SHA-256 of one input file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return {"path": str(Path(path).resolve()), "bytes": Path(path).stat().st_size, "sha256": h.hexdigest()}


@contextmanager
def staged(out: Path, force: bool, source: Path) -> Iterator[Path]:
    """A temporary folder beside ``out`` that takes ``out``'s name when the block ends without an
    error (and is removed otherwise). An existing ``out`` is refused without ``force``, and even
    with it where it holds ``source`` or is not a medft output."""
    out = Path(out)
    refuse_existing(out, force, inputs=(Path(source),))
    collect_stale_tmp(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        mark_output(tmp, "import")
        refuse_existing(out, force, inputs=(Path(source),))
        replace_path(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_record(folder: Path, record: dict) -> None:
    write_text_atomic(Path(folder) / RECORD, json.dumps(record, indent=2) + "\n")
