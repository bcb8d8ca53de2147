"""Mean of the training LMDB: the image (Caffe's ``mean_file``) and per-channel values.

Same arithmetic as Caffe's ``compute_image_mean``: the per-pixel sum over records divided by
the count, written as a legacy 4-D ``BlobProto`` (1 x C x H x W); the per-channel values are
the means of that image over H x W (what ``compute_image_mean`` logs, and ``mean_value`` takes).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from medft import paths
from medft.errors import MedftError
from medft.schema import array_to_blob, blob_to_array, pb
from medft.util.atomic import write_text_atomic


class MeanAccumulator:
    """Running per-pixel sum of C x H x W uint8 images (float64, exact for any count here)."""

    def __init__(self) -> None:
        self.sum: np.ndarray | None = None
        self.count = 0

    def add(self, img_chw: np.ndarray) -> None:
        if self.sum is None:
            self.sum = np.zeros(img_chw.shape, dtype=np.float64)
        self.sum += img_chw
        self.count += 1

    def mean_image(self) -> np.ndarray:
        """C x H x W float32 mean; error if nothing was added."""
        if self.sum is None or self.count == 0:
            raise MedftError("cannot compute the mean of an empty training set")
        return (self.sum / self.count).astype(np.float32)


def channel_means(mean_image: np.ndarray) -> list[float]:
    """Per-channel mean values (BGR order for colour patches) of a C x H x W mean image."""
    return [float(v) for v in np.asarray(mean_image, dtype=np.float64).mean(axis=(1, 2))]


def write_mean(out_dir: Path, mean_image: np.ndarray, count: int) -> dict:
    """Write ``mean.binaryproto`` and ``mean.json`` into ``out_dir``; return the JSON content."""
    write_text_atomic(out_dir / paths.MEAN_PROTO, array_to_blob(mean_image, legacy_4d=True).SerializeToString())
    info = {
        "channel_order": "BGR",
        "mean_value": channel_means(mean_image),
        "shape_chw": list(mean_image.shape),
        "records": count,
        "source": paths.TRAIN_LMDB,
    }
    write_text_atomic(out_dir / paths.MEAN_RECORD, json.dumps(info, indent=2) + "\n")
    return info


def read_mean_binaryproto(path: str | Path) -> np.ndarray:
    """C x H x W float32 mean image of a Caffe mean ``.binaryproto``."""
    blob = pb.BlobProto()
    blob.ParseFromString(Path(path).read_bytes())
    arr = blob_to_array(blob)
    return arr[0] if arr.ndim == 4 else arr
