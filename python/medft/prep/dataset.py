"""Reading a prepared data set (what :mod:`medft.prep.build` writes): its LMDBs, sizes, mean and record."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from medft import paths
from medft.engines.base import lmdb_size
from medft.errors import MedftError


@dataclass
class Dataset:
    """The parts of a `medft prep` output folder that training reads."""

    root: Path
    train_lmdb: Path
    val_lmdb: Path
    n_train: int
    n_val: int
    mean_bgr: tuple[float, ...]
    fingerprint: str | None
    record: dict = field(default_factory=dict)  # prep.json ({} where there is none)


def check_labels(ds: Dataset, num_classes: int) -> None:
    """Every label of the train/val manifests must be a class of the net (0 .. C-1): Caffe's
    SoftmaxWithLoss would abort the process on one that is not."""
    for name in ("train", "val"):
        path = ds.root / paths.manifest_name(name)
        if not path.is_file():
            raise MedftError(f"{path}: missing (medft prep writes one beside each LMDB)")
        with open(path, newline="") as f:
            for i, row in enumerate(csv.DictReader(f), start=2):
                label = row.get("label", "")
                if not label.lstrip("-").isdigit() or not 0 <= int(label) < num_classes:
                    raise MedftError(f"{path}: row {i}: label {label!r} is not a class of this "
                                     f"{num_classes}-class net (0..{num_classes - 1})")


def read_dataset(folder: str | Path) -> Dataset:
    """The prepared data set in ``folder``; one line naming the folder when it is not one."""
    root = Path(folder)
    if not root.is_dir():
        raise MedftError(f"{root}: no prepared dataset here; run `medft prep` first")
    prep_json = root / paths.PREP_RECORD
    record = json.loads(prep_json.read_text()) if prep_json.is_file() else {}
    mean_json = root / paths.MEAN_RECORD
    if "mean_value" in record:
        mean = tuple(float(v) for v in record["mean_value"])
    elif mean_json.is_file():
        mean = tuple(float(v) for v in json.loads(mean_json.read_text())["mean_value"])
    else:
        raise MedftError(f"{root}: no {paths.MEAN_RECORD} or {paths.PREP_RECORD} with mean_value")
    if len(mean) != 3 or not all(math.isfinite(v) for v in mean):
        raise MedftError(f"{root}: mean_value must be 3 finite numbers, got {mean}")
    train, val = root / paths.TRAIN_LMDB, root / paths.VAL_LMDB
    return Dataset(root, train, val, lmdb_size(train), lmdb_size(val), mean, record.get("fingerprint"), record)
