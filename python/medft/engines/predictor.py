"""One batched forward with mean subtraction, shared by validation, prediction, dense CIMT,
pretraining's held-out check and the benchmarks (BVLC's ``Net.forward_all`` in one place).

A :class:`Predictor` wraps any ``forward(batch) -> probabilities`` of an engine; it owns the
input check, the per-channel mean (Caffe's TEST-phase transform of our nets: no crop, no mirror,
scale 1) and the batching.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from medft.errors import MedftError

Forward = Callable[[np.ndarray], np.ndarray]


def iter_lmdb_batches(path: Path, batch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(uint8 N x C x H x W, int labels) batches of an LMDB's records in key order."""
    from medft.datum_lmdb import read_lmdb

    images, labels = [], []
    for _, img, label in read_lmdb(path):
        images.append(img)
        labels.append(label)
        if len(images) == batch:
            yield np.stack(images), np.asarray(labels)
            images, labels = [], []
    if images:
        yield np.stack(images), np.asarray(labels)


class Predictor:
    """``predictor(patches)``: class probabilities (N x classes) of patches (N x C x H x W, BGR,
    uint8 or float, before mean subtraction), computed ``batch`` patches at a time."""

    def __init__(self, forward: Forward, mean_bgr: tuple[float, ...], batch: int,
                 input_shape: tuple[int, int, int] | None = None, subtract_mean: bool = True) -> None:
        if batch < 1:
            raise MedftError(f"prediction batch must be at least 1, got {batch}")
        self.forward = forward
        self.mean = np.asarray(mean_bgr, dtype=np.float32).reshape(1, -1, 1, 1)
        self.batch = batch
        self.input_shape = input_shape
        self.subtract_mean = subtract_mean  # False: ``forward`` gets the raw patches (Caffe subtracts)

    def __call__(self, patches: np.ndarray) -> np.ndarray:
        patches = np.asarray(patches)
        if patches.ndim != 4 or (self.input_shape and patches.shape[1:] != tuple(self.input_shape)):
            want = "N x " + " x ".join(map(str, self.input_shape)) if self.input_shape else "N x C x H x W"
            raise MedftError(f"patches must be {want}, got {patches.shape}")
        if patches.shape[1] != self.mean.shape[1]:
            raise MedftError(f"patches have {patches.shape[1]} channels, the mean {self.mean.shape[1]}")
        out = [self.forward(patches[i:i + self.batch].astype(np.float32) - self.mean if self.subtract_mean
                            else patches[i:i + self.batch]) for i in range(0, len(patches), self.batch)]
        if not out:
            raise MedftError("no patches to predict")
        return np.concatenate(out)

    def predict_lmdb(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities N x C, labels N) for every record of an LMDB, in key order."""
        probs, labels = [], []
        for images, lab in iter_lmdb_batches(path, self.batch):
            probs.append(self(images))
            labels.append(lab)
        if not probs:
            raise MedftError(f"{path}: the LMDB is empty")
        return np.concatenate(probs), np.concatenate(labels)
