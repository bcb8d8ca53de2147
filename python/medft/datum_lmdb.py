"""Caffe Datum LMDBs without Caffe: seeded shuffled keys, a map that grows, atomic creation, reading back.

``medft prep`` writes them; the engines, the checks and the benchmarks read them.

Caffe's Data layer reads records in key order, so the key *is* the training order: keys are
zero-padded positions in a seeded permutation, and records may be written in any order (LMDB
keeps them sorted), which lets renderers work case by case.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import lmdb
import numpy as np

from medft import paths
from medft.errors import MedftError
from medft.schema import array_to_datum, datum_to_array
from medft.util.atomic import replace_path

KEY_DIGITS = 8


def shuffled_keys(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` distinct keys ``"00000000"..``; record ``i`` gets the key of its shuffled position."""
    if n >= 10**KEY_DIGITS:
        raise MedftError(f"{n} records exceed the {KEY_DIGITS}-digit key space")
    return [f"{p:0{KEY_DIGITS}d}" for p in rng.permutation(n)]


def mark_output(folder: Path, kind: str) -> None:
    """Label ``folder`` as medft's ``kind`` output (prep data set, synthetic input set)."""
    (Path(folder) / paths.OUTPUT_MARKER).write_text(f"{kind}\n")


def is_output(folder: Path) -> bool:
    """True for a folder medft wrote: its marker, prep.json (data sets of older versions) or an LMDB
    (medft's LMDB writer replaces only LMDBs)."""
    folder = Path(folder)
    return any((folder / name).is_file() for name in (paths.OUTPUT_MARKER, paths.PREP_RECORD, paths.LMDB_DATA))


def refuse_existing(path: Path, force: bool, inputs: tuple[Path, ...] = ()) -> None:
    """Error if ``path`` exists and ``force`` is off (outputs are never overwritten silently). With
    ``force``, still refuse a ``path`` that holds or is one of ``inputs``, or is not a medft output."""
    path = Path(path)
    if not path.exists():
        return
    if not force:
        raise MedftError(f"{path} exists; pass --force to replace it")
    real = path.resolve()
    for inp in inputs:
        r = Path(inp).resolve()
        if r == real or real in r.parents:
            raise MedftError(f"--force would remove {path}, which holds the input {inp}; choose another --out")
    if not path.is_dir() or not is_output(path):
        raise MedftError(f"--force would remove {path}, which medft did not write (no {paths.OUTPUT_MARKER}); "
                         "move or delete it yourself")
    runs = sorted(str(p.parent) for p in path.rglob(paths.RUN_RECORD))
    if runs:
        raise MedftError(f"--force would remove {path}, which holds the run folder(s) {', '.join(runs[:3])}"
                         f"{' ...' if len(runs) > 3 else ''}; move them out of the data set first")


def collect_stale_tmp(final: Path) -> None:
    """Remove ``.<name>.tmp-<pid>`` folders beside ``final`` left by killed processes."""
    final = Path(final)
    if not final.parent.is_dir():
        return
    for tmp in final.parent.glob(f".{final.name}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LmdbWriter:
    """Write Datums into a new LMDB at ``path``; only a complete one ever appears there.

    Use as a context manager: records go to ``.<name>.tmp-<pid>`` beside ``path``, committed
    every ``batch`` puts; the map doubles whenever it is full; on a clean exit the folder is
    renamed to ``path``, on an exception it is deleted.
    """

    def __init__(self, path: str | Path, force: bool = False, map_size: int = 1 << 28, batch: int = 256):
        self.path = Path(path)
        refuse_existing(self.path, force)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self.map_size = int(map_size)
        self.batch = batch
        self._pending: list[tuple[bytes, bytes]] = []
        self.count = 0
        self.env: lmdb.Environment | None = None

    def __enter__(self) -> LmdbWriter:
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.parent.mkdir(parents=True, exist_ok=True)
        self.env = lmdb.open(str(self.tmp), map_size=self.map_size, subdir=True, meminit=False)
        return self

    def put(self, key: str, img_chw: np.ndarray, label: int) -> None:
        """Queue one record: ``img_chw`` uint8 C x H x W (BGR), integer ``label``."""
        self._pending.append((key.encode(), array_to_datum(img_chw, label).SerializeToString()))
        if len(self._pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        """Commit queued records, doubling the map size until they fit."""
        assert self.env is not None
        while self._pending:
            try:
                with self.env.begin(write=True) as txn:
                    for k, v in self._pending:
                        if not txn.put(k, v, overwrite=False):
                            raise MedftError(f"{self.path}: duplicate key {k.decode()}")
                self.count += len(self._pending)
                self._pending = []
            except lmdb.MapFullError:
                self.map_size *= 2
                self.env.set_mapsize(self.map_size)

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.env is not None
        try:
            if exc_type is None:
                self.flush()
                self.env.sync(True)
        finally:
            self.env.close()
        if exc_type is None:
            replace_path(self.tmp, self.path)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def decode_record(path: Path, key: bytes, value: bytes) -> tuple[np.ndarray, int]:
    """(C x H x W array, label) of one LMDB record, or an error naming the LMDB and the key."""
    from google.protobuf.message import DecodeError

    try:
        return datum_to_array(value)
    except (DecodeError, ValueError, MedftError) as e:
        raise MedftError(f"{path}: record {key.decode(errors='replace')!r} is not a Caffe Datum "
                         f"({type(e).__name__}: {e}); run `medft prep --force`") from None


def read_lmdb(path: str | Path) -> Iterator[tuple[str, np.ndarray, int]]:
    """(key, C x H x W uint8 array, label) of every record, in key order (Caffe's read order)."""
    path = Path(path)
    if not (path / paths.LMDB_DATA).is_file():
        raise MedftError(f"{path}: not an LMDB folder (no {paths.LMDB_DATA})")
    env = lmdb.open(str(path), readonly=True, lock=False, subdir=True)
    try:
        with env.begin() as txn:
            for k, v in txn.cursor():
                yield k.decode(errors="replace"), *decode_record(path, k, v)
    finally:
        env.close()


def lmdb_fingerprint(path: str | Path) -> tuple[int, str]:
    """(record count, sha256 over every key and value in key order) of an LMDB."""
    env = lmdb.open(str(path), readonly=True, lock=False, subdir=True)
    h = hashlib.sha256()
    n = 0
    try:
        with env.begin() as txn:
            for k, v in txn.cursor():
                h.update(len(k).to_bytes(4, "little") + k + len(v).to_bytes(8, "little") + v)
                n += 1
    finally:
        env.close()
    return n, h.hexdigest()
