"""Shared fixtures: real pycaffe from the `make caffe` build and tiny Caffe LMDBs."""

from __future__ import annotations

from pathlib import Path

import lmdb
import numpy as np
import pytest
from medft.schema import array_to_datum

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def caffe():
    """Real pycaffe (CPU). `make test` builds it first, so a missing build is a failure."""
    from medft.engines.env import import_caffe

    c = import_caffe()
    c.set_mode_cpu()
    return c


def write_tiny_lmdb(path: Path, n: int, seed: int, size: int = 227, classes: int = 2) -> Path:
    """``n`` random uint8 3 x size x size Datums with labels 0..classes-1 in turn."""
    rng = np.random.default_rng(seed)
    env = lmdb.open(str(path), map_size=1 << 30)
    with env.begin(write=True) as txn:
        for i in range(n):
            img = rng.integers(0, 256, size=(3, size, size), dtype=np.uint8)
            txn.put(f"{i:08d}".encode(), array_to_datum(img, i % classes).SerializeToString())
    env.close()
    return path


@pytest.fixture(scope="session")
def tiny_lmdbs(tmp_path_factory) -> tuple[Path, Path]:
    """(train, val) LMDBs of 8 and 4 random 227x227 patches."""
    d = tmp_path_factory.mktemp("lmdb")
    return write_tiny_lmdb(d / "train_lmdb", 8, seed=1), write_tiny_lmdb(d / "val_lmdb", 4, seed=2)
