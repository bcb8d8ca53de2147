"""Shared fixtures: real pycaffe from the `make caffe` build and tiny Caffe LMDBs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import lmdb
import numpy as np
import pytest
from medft.schema import array_to_datum

ROOT = Path(__file__).resolve().parents[1]
POLYP_DEPLOY = ROOT / "prototxt/polyp/ft-conv1/deploy.prototxt"
#: the layers fine-tuning copies from a pretrained AlexNet (fc8 is renamed per application)
TRANSFERRED = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"]


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


# -- a tiny learnable polyp data set in prep's format (train, val, test LMDBs and manifests) ---------------
MANIFEST = ("key", "case", "frame_or_slice", "unit", "lesion", "label", "aug", "score")


def _write_split(folder: Path, name: str, n: int, seed: int) -> None:
    """Bright patches are positive, dark negative: learnable in a few SGD steps."""
    rng = np.random.default_rng(seed)
    env = lmdb.open(str(folder / f"{name}_lmdb"), map_size=1 << 28)
    rows = []
    with env.begin(write=True) as txn:
        for i in range(n):
            label = i % 2
            base = 170 if label else 70
            img = np.clip(rng.normal(base, 30, size=(3, 227, 227)), 0, 255).astype(np.uint8)
            key = f"{(i * 7919) % 1000:08d}"
            txn.put(key.encode(), array_to_datum(img, label).SerializeToString())
            rows.append({"key": key, "case": f"c{i // 4}", "frame_or_slice": "0", "unit": f"u{i // 4}x{label}",
                         "lesion": f"L{i // 4}" if label else "", "label": label, "aug": "", "score": ""})
    env.close()
    with open(folder / f"{name}_manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=MANIFEST)
        w.writeheader()
        w.writerows(sorted(rows, key=lambda r: r["key"]))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("data") / "polyp"
    d.mkdir()
    for name, n, seed in (("train", 8, 1), ("val", 6, 2), ("test", 8, 3)):
        _write_split(d, name, n, seed)
    (d / "prep.json").write_text(json.dumps({"mean_value": [120.0, 120.0, 120.0], "fingerprint": "tiny"}))
    return d


def train_opts(dataset, runs, **kw):
    """TrainOptions for the tiny ``dataset``: batch 4, 2 epochs unless ``kw`` says otherwise."""
    from medft.train.options import TrainOptions

    base = dict(app="polyp", config="scratch", data=str(dataset), runs=str(runs), train_batch=4, test_batch=3,
                max_epochs=2, patience=5)
    base.update(kw)
    return TrainOptions(**base)
