"""Your own classification images (``classify``): C >= 2 classes read from the input.

Input (data_prep/README.md, "classify"), one of two forms:

* ``images/<class>/<image>``: one folder per class; the class names are the folder names;
* ``labels.csv`` with ``image,label[,case]`` (where present it is the label source, and the images
  may lie anywhere below the input folder): ``image`` a path below the input folder, ``label``
  a class name (integers 0..C-1 or any names), ``case`` the patient the image belongs to, so that
  splits keep a patient's images together. Without ``case`` each image is its own case.

and an optional ``split.csv`` (``case,subset``) as for the other applications.

Patches: the frames application's random 227 x 227 crops of every image. An image whose shorter
side is under 227 pixels (MedMNIST's 28-224) is first resized so that its shorter side is 256
(bilinear), the classic AlexNet practice, and then cropped; larger images are cropped as they are.
Grey images become three equal channels. Mirroring (every odd crop flipped left-right) is off by
default: it is right only where a mirrored image keeps its class (``--mirror``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medft.prep import frames
from medft.prep.augment import rgb_to_datum
from medft.prep.common import PATCH, Spec, bad_input, rng_for
from medft.prep.io import read_csv, read_image

CHANNELS = "BGR"
#: training crops per image (each image is one unit, its crops averaged at test time)
CROPS = 10
#: an image whose shorter side is below PATCH is resized so that its shorter side is this
SMALL_SIDE = 256
#: images a class needs at least: one each for training, validation and test
MIN_PER_CLASS = 3
#: image files read in the folder form
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
FOLDERS, CSV = "images", "labels.csv"


@dataclass
class ClassifyData:
    root: Path
    images: dict[str, tuple[int, str]]  # image path (relative to root) -> (label, case)
    class_names: tuple[str, ...]
    cases_given: bool
    crops: int = CROPS
    test_crops: int = CROPS
    mirror: bool = False
    stats: dict = field(default_factory=dict)


def _class_order(names: set[str]) -> tuple[str, ...]:
    """Integer names in numeric order (they are then the labels 0..C-1), other names sorted."""
    if all(n.isdigit() for n in names):
        return tuple(sorted(names, key=int))
    return tuple(sorted(names))


def image_case(image: str) -> str:
    """The case id of an image when the input names no patients: its path with every character
    outside rule common-1's letters, digits, '-' and '_' written as '_' (``split.csv`` names it so)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", image)


def _own_cases(path: Path, images: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """Each image its own case (:func:`image_case`); two paths that read alike are refused."""
    out, seen = {}, {}
    for image, (label, _) in images.items():
        case = image_case(image)
        if case in seen:
            raise bad_input(path, "classify-2", f"images {seen[case]!r} and {image!r} give the same case id "
                            f"{case!r}; rename one or add a case column")
        seen[case] = image
        out[image] = (label, case)
    return out


def _from_folders(root: Path) -> tuple[dict[str, tuple[str, str]], bool]:
    folder = root / FOLDERS
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    if not classes:
        raise bad_input(folder, "classify-1", "no class folders (images/<class>/<image>)")
    out = {}
    for c in classes:
        if not any(p.is_file() and not p.name.startswith(".") for p in c.rglob("*")):
            raise bad_input(c, "classify-1", "class folder holds no image")
        for p in sorted(c.rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                if p.suffix.lower() not in IMAGE_SUFFIXES:
                    raise bad_input(p, "classify-1", f"not an image file ({', '.join(IMAGE_SUFFIXES)})")
                rel = p.relative_to(root).as_posix()
                out[rel] = (c.name, rel)
    return _own_cases(folder, out), False


def _from_csv(root: Path) -> tuple[dict[str, tuple[str, str]], bool]:
    path = root / CSV
    rows = read_csv(path, "classify-2", ("image", "label"))
    cases_given = bool(rows) and "case" in rows[0]
    out: dict[str, tuple[str, str]] = {}
    for i, r in enumerate(rows, start=1):
        image, label = r["image"].strip(), r["label"].strip()
        if not image or not label:
            raise bad_input(path, "classify-2", f"row {i}: empty image or label")
        if Path(image).is_absolute() or ".." in Path(image).parts:
            raise bad_input(path, "classify-2", f"row {i}: image {image!r} must be a path below the input folder")
        if image in out:
            raise bad_input(path, "classify-2", f"row {i}: image {image!r} listed twice")
        case = r["case"].strip() if cases_given else image
        if not case:
            raise bad_input(path, "classify-2", f"row {i}: empty case")
        if not (root / image).is_file():
            raise bad_input(root / image, "classify-2", f"missing file (named in {CSV} row {i})")
        out[image] = (label, case)
    if not out:
        raise bad_input(path, "classify-2", "no images listed")
    return (out if cases_given else _own_cases(path, out)), cases_given


def load(root: Path, crops: int = CROPS, test_crops: int | None = None, mirror: bool = False) -> ClassifyData:
    """Read and check the input's labels (either form), its classes and their sizes."""
    root = Path(root)
    if crops < 1 or (test_crops is not None and test_crops < 1):
        raise bad_input(root, "classify-4", f"crops per image must be >= 1 (got {crops}, {test_crops})")
    has_csv = (root / CSV).is_file()
    if not has_csv and not (root / FOLDERS).is_dir():
        raise bad_input(root, "classify-1", f"needs {FOLDERS}/<class>/<image> or {CSV}; found neither")
    raw, cases_given = _from_csv(root) if has_csv else _from_folders(root)
    names = _class_order({label for label, _ in raw.values()})
    where = root / (CSV if has_csv else FOLDERS)
    if all(n.isdigit() for n in names) and [int(n) for n in names] != list(range(len(names))):
        missing = sorted(set(range(int(names[-1]) + 1)) - {int(n) for n in names})
        bad = next(n for n in names if int(n) >= len(names))
        raise bad_input(where, "classify-3", f"label {bad} out of range: integer labels must be 0..{len(names) - 1} "
                                             f"with every class present (no image of {missing[0]})")
    if len(names) < 2:
        raise bad_input(where, "classify-3", f"{len(names)} class ({', '.join(names)}): 2 or more are needed")
    index = {n: k for k, n in enumerate(names)}
    images = {img: (index[label], case) for img, (label, case) in raw.items()}
    counts = np.bincount([k for k, _ in images.values()], minlength=len(names))
    for k, n in enumerate(counts):
        if n < MIN_PER_CLASS:
            raise bad_input(where, "classify-3", f"class {names[k]!r} has {n} image(s); every class needs at least "
                                                 f"{MIN_PER_CLASS} (training, validation and test)")
    stats = {"images": len(images), "classes": len(names), "cases": len({c for _, c in images.values()}),
             "cases_given": cases_given, "per_class": {n: int(c) for n, c in zip(names, counts)}}
    return ClassifyData(root, images, names, cases_given, crops, crops if test_crops is None else test_crops,
                        mirror, stats)


def cases(ds: ClassifyData) -> list[str]:
    return sorted({c for _, c in ds.images.values()})


def work_size(h: int, w: int) -> tuple[int, int]:
    """The size an ``h`` x ``w`` image is cropped at: as it is, or with its shorter side resized to
    :data:`SMALL_SIDE` where it is below the patch."""
    if min(h, w) >= PATCH:
        return h, w
    scale = SMALL_SIDE / min(h, w)
    return max(SMALL_SIDE, round(h * scale)), max(SMALL_SIDE, round(w * scale))


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.height, im.width
    except Exception as e:
        raise bad_input(path, "classify-4", f"unreadable image ({type(e).__name__}: {e})") from None


def plan(ds: ClassifyData, seed: int = 0) -> list[Spec]:
    """max(crops, test_crops) random crops of every image (seeded per image)."""
    n = max(ds.crops, ds.test_crops)
    specs = []
    sizes: dict[tuple[int, int], tuple[int, int]] = {}
    for image, (label, case) in sorted(ds.images.items()):
        hw = _image_size(ds.root / image)
        h, w = sizes.setdefault(hw, work_size(*hw))
        rng = rng_for(seed, "classify-crops", image)
        ys, xs = rng.integers(0, h - PATCH + 1, n), rng.integers(0, w - PATCH + 1, n)
        for i in range(n):
            flip = ds.mirror and i % 2 == 1
            specs.append(Spec(case=case, frame=image, unit=image, lesion="", label=label,
                              aug=f"crop={i};y={ys[i]};x={xs[i]}" + (";mirror" if flip else ""),
                              geom=(int(ys[i]), int(xs[i]), i, flip)))
    return specs


#: the first ``crops`` crops of each image for train/val (``test_crops`` for test), and a seeded fraction
#: of each class's images: as frames does with its frames
split_filter = frames.split_filter
reduce = frames.reduce


def prepare_image(img: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8 -> the float image the crops are cut from (:func:`work_size`)."""
    h, w = work_size(*img.shape[:2])
    if (h, w) == img.shape[:2]:
        return img.astype(np.float32)
    from skimage.transform import resize

    return resize(img.astype(np.float32), (h, w), order=1, preserve_range=True, anti_aliasing=False)


def renderer(ds: ClassifyData) -> Callable[[Spec], np.ndarray]:
    """Spec -> 3 x 227 x 227 BGR uint8 crop (the current image cached)."""
    cache: dict = {"key": None, "img": None}

    def render(s: Spec) -> np.ndarray:
        if cache["key"] != s.frame:
            cache["key"] = s.frame
            cache["img"] = prepare_image(read_image(ds.root / s.frame, "classify-4"))
        y, x, _, flip = s.geom
        crop = cache["img"][y: y + PATCH, x: x + PATCH]
        return rgb_to_datum(crop[:, ::-1] if flip else crop)

    return render


def verify(root: Path) -> list[str]:
    """Full check of a classify input folder: every image decoded, none unlabelled."""
    ds = load(root)
    for image in sorted(ds.images):
        read_image(ds.root / image, "classify-4")
    per_class = ", ".join(f"{n} {c}" for c, n in ds.stats["per_class"].items())
    cases_line = (f"{ds.stats['cases']} cases (labels.csv's case column)" if ds.cases_given else
                  "no case column: each image is its own case")
    return [f"{ds.stats['images']} images in {len(ds.class_names)} classes ({per_class}); {cases_line}"]
