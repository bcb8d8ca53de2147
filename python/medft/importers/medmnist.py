"""A MedMNIST ``.npz`` file -> the classify input layout (``labels.csv``, images, ``split.csv``).

MedMNIST (Yang et al., Scientific Data 2023) ships each 2-D data set as one NumPy archive with
``train_images``, ``train_labels``, ``val_images``, ``val_labels``, ``test_images`` and
``test_labels``: images uint8, (N, H, W) grey or (N, H, W, 3) RGB, 28, 64, 128 or 224 pixels
square; labels (N, 1) integer classes. Every image becomes ``images/<split>/<index>.png`` with a
``labels.csv`` row (no case column: MedMNIST names no patients, so each image is its own case).

MedMNIST's test split is kept as medft's test set (``split.csv``); its training and validation
images together form the training pool, from which ``medft prep`` draws its 20% validation split
as for every application (the paper's protocol). Refused, with one line: multi-label sets
(ChestMNIST, labels (N, 14): medft trains one class per image with a softmax) and 3-D sets
(OrganMNIST3D and the other ``...MNIST3D``, images (N, D, H, W)).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from medft.errors import MedftError
from medft.importers._output import file_facts, staged, write_record
from medft.prep.classify import image_case
from medft.prep.synthetic.io import write_csv, write_png

APP = "classify"
DESCRIPTION = "a MedMNIST 2-D data set (.npz with train/val/test images and labels), its split kept"
LAYOUT = "labels.csv (image,label), images/<split>/<index>.png, split.csv (MedMNIST test -> test, train+val -> train)"
SPLITS = ("train", "val", "test")
KEYS = tuple(f"{s}_{k}" for s in SPLITS for k in ("images", "labels"))


def _check_images(path: Path, key: str, images: np.ndarray) -> None:
    if images.ndim == 4 and images.shape[-1] != 3 or images.ndim == 5:
        raise MedftError(f"{path}: {key} has shape {images.shape}: 3-D volumes (N, D, H, W), as in OrganMNIST3D; "
                         "medft classifies 2-D images (use a 2-D MedMNIST set)")
    if images.ndim not in (3, 4):
        raise MedftError(f"{path}: {key} has shape {images.shape}; expected (N, H, W) grey or (N, H, W, 3) RGB")
    if images.dtype != np.uint8:
        raise MedftError(f"{path}: {key} has dtype {images.dtype}; MedMNIST images are uint8")
    if images.shape[1] < 8 or images.shape[2] < 8:
        raise MedftError(f"{path}: {key} images are {images.shape[1]}x{images.shape[2]} pixels; too small to classify")


def _check_labels(path: Path, key: str, labels: np.ndarray, n: int) -> np.ndarray:
    if labels.ndim == 2 and labels.shape[1] > 1:
        raise MedftError(f"{path}: {key} has shape {labels.shape}: a multi-label set (as ChestMNIST); medft "
                         "trains one class per image (softmax), so each image needs a single label (N, 1)")
    labels = labels.reshape(-1) if labels.ndim == 2 else labels
    if labels.ndim != 1 or labels.size != n:
        raise MedftError(f"{path}: {key} has shape {labels.shape} for {n} images; expected ({n}, 1)")
    if not np.issubdtype(labels.dtype, np.integer):
        raise MedftError(f"{path}: {key} has dtype {labels.dtype}; class labels are integers")
    if labels.size and labels.min() < 0:
        raise MedftError(f"{path}: {key} holds label {int(labels.min())}, out of range: classes are 0..C-1")
    return labels.astype(np.int64)


def read(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{split: (images, labels (N,))}`` of a MedMNIST archive, checked (one-line errors)."""
    path = Path(path)
    if not path.is_file():
        raise MedftError(f"{path}: no such file")
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as e:  # numpy raises several types for a file that is not an archive
        raise MedftError(f"{path}: not a NumPy .npz archive ({type(e).__name__}: {e})") from None
    with npz:
        missing = [k for k in KEYS if k not in npz.files]
        if missing:
            raise MedftError(f"{path}: missing {', '.join(missing)}; a MedMNIST file holds {', '.join(KEYS)}")
        out = {}
        for s in SPLITS:
            images = npz[f"{s}_images"]
            _check_images(path, f"{s}_images", images)
            out[s] = (images, _check_labels(path, f"{s}_labels", npz[f"{s}_labels"], len(images)))
    shapes = {im.shape[1:] for im, _ in out.values()}
    if len(shapes) != 1:
        raise MedftError(f"{path}: the splits' images differ in shape ({', '.join(map(str, sorted(shapes)))})")
    c = 1 + max(int(lab.max()) for _, lab in out.values() if lab.size)
    absent = sorted(set(range(c)) - set(np.concatenate([lab for _, lab in out.values()]).tolist()))
    if absent:
        raise MedftError(f"{path}: label {c - 1} out of range: {c} classes would leave class {absent[0]} without "
                         "an image (labels must be 0..C-1, every class present)")
    return out


def run(source: Path, out: Path, *, force: bool = False, progress: bool = True) -> dict:
    """Write the classify layout of the MedMNIST file ``source`` to ``out``; the import record."""
    source, out = Path(source), Path(out)
    data = read(source)
    c = 1 + max(int(lab.max()) for _, lab in data.values() if lab.size)
    shape = next(iter(data.values()))[0].shape[1:]
    rows, split_rows = [], []
    with staged(out, force, source) as tmp:
        total = sum(len(im) for im, _ in data.values())
        bar = tqdm(total=total, desc=f"medft import {source.name}", unit="image", disable=not progress,
                   file=sys.stderr, mininterval=0.5)
        for s, (images, labels) in data.items():
            width = max(5, len(str(len(images))))
            for i, (img, lab) in enumerate(zip(images, labels)):
                name = f"images/{s}/{i:0{width}d}.png"
                write_png(tmp / name, img)
                rows.append([name, str(int(lab))])
                split_rows.append([image_case(name), "test" if s == "test" else "train"])
                bar.update()
        bar.close()
        write_csv(tmp / "labels.csv", ["image", "label"], rows)
        write_csv(tmp / "split.csv", ["case", "subset"], split_rows)
        record = {
            "source": str(source.resolve()), "dataset": source.stem, "importer": "medmnist", "app": APP,
            "input_files": [file_facts(source)],
            "image_shape": list(shape), "channels": "RGB" if len(shape) == 3 else "grey", "classes": c,
            "counts": {s: {str(k): int(np.sum(lab == k)) for k in range(c)} for s, (_, lab) in data.items()},
            "decisions": [
                "MedMNIST's test split is medft's test set (split.csv)",
                "MedMNIST's train and val images form the training pool; medft prep draws its own 20% "
                "validation split from it, as for every application",
                "no patient ids in MedMNIST: each image is its own case",
                "class names are the label integers 0..C-1 (MedMNIST's own names are in its INFO, not the file)",
                "images written losslessly as PNG, pixels unchanged",
            ],
        }
        write_record(tmp, record)
    record["out"] = str(out)
    return record
