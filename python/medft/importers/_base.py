"""What every importer shares: the staging folder, the import record, ids, file readers."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from medft import paths
from medft.errors import MedftError

#: ids are file-name stems of letters, digits, - and _ (data_prep/README.md rule common-1)
_ID_BAD = re.compile(r"[^A-Za-z0-9_-]")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def layout_error(missing: Path, dataset: str, layout: str) -> MedftError:
    """The one line for a source that is not in the published layout."""
    return MedftError(f"{missing}: missing; not the {dataset} layout, which is: {layout}")


def require(path: Path, dataset: str, layout: str, kind: str = "dir") -> Path:
    ok = path.is_dir() if kind == "dir" else path.is_file()
    if not ok:
        raise layout_error(path, dataset, layout)
    return path


def safe_id(name: str) -> str:
    """``name`` as an input-layout id (other characters become ``_``)."""
    return _ID_BAD.sub("_", name) or "_"


def unique_ids(names: Iterable[str], where: Path) -> dict[str, str]:
    """name -> safe id, refusing two names that become one id."""
    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for n in names:
        i = safe_id(n)
        if i in seen and seen[i] != n:
            raise MedftError(f"{where}: {seen[i]!r} and {n!r} both become the id {i!r}; rename one")
        seen[i] = n
        out[n] = i
    return out


def file_entry(path: Path, root: Path) -> dict:
    """Size and SHA-256 of one input file, its path relative to the source."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return {"path": path.relative_to(root).as_posix(), "bytes": path.stat().st_size, "sha256": h.hexdigest()}


def images_in(folder: Path) -> list[Path]:
    """Image files of a folder (not recursive), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_raster(path: Path) -> np.ndarray:
    """Pixels of a TIFF (tifffile), or a PNG/JPEG/BMP (Pillow); palette images looked up."""
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            arr = tifffile.imread(path)
        else:
            from PIL import Image

            with Image.open(path) as im:
                if im.mode in ("P", "PA", "LA", "RGBA", "CMYK", "YCbCr", "I;16", "1"):
                    im = im.convert("L" if im.mode in ("LA", "1") else "RGB" if im.mode != "I;16" else "I")
                arr = np.asarray(im)
    except Exception as e:
        raise MedftError(f"{path}: unreadable image ({type(e).__name__}: {e})") from None
    if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[2] not in (3, 4):
        arr = np.moveaxis(arr, 0, -1)  # planar TIFF
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise MedftError(f"{path}: expected a 2-D gray or RGB image, got shape {arr.shape}")
    return arr


def to_uint8(arr: np.ndarray, path: Path) -> np.ndarray:
    """8-bit pixels: 8-bit images unchanged; wider integers refused unless they fit in 0..255."""
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.integer) and arr.min() >= 0 and arr.max() <= 255:
        return arr.astype(np.uint8)
    raise MedftError(f"{path}: {arr.dtype} pixels with range {arr.min()}..{arr.max()}; expected 8-bit")


def binarise(mask: np.ndarray, path: Path, level: int = 128) -> tuple[np.ndarray, int]:
    """(mask >= ``level`` on the brightest channel, pixels that were neither 0 nor 255).

    JPEG masks are not binary (ringing puts grey levels near 0 and 255 along the edges); the
    middle of the range splits them, and the count of other values is recorded as the noise."""
    m = to_uint8(mask, path)
    if m.ndim == 3:
        m = m.max(axis=2)
    return m >= level, int(((m > 0) & (m < 255)).sum())


def write_png(path: Path, img: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(img)).save(path, format="PNG")


def write_csv(path: Path, rows: list[dict], columns: Iterable[str]) -> None:
    from medft.util.csvtext import csv_text

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(csv_text(rows, list(columns)))


def progress(items: list, desc: str, on: bool) -> Iterator:
    if not on:
        return iter(items)
    from tqdm import tqdm

    return iter(tqdm(items, desc=desc, unit="file"))


@contextmanager
def staging(out: Path, force: bool, source: Path) -> Iterator[Path]:
    """A temporary folder beside ``out`` that takes its name only when the import completes; on
    any error or interrupt it is removed and ``out`` is untouched. An existing ``out`` is refused
    without ``force`` (and even with it, when it is not a medft output or holds the source)."""
    from medft.datum_lmdb import collect_stale_tmp, mark_output, refuse_existing
    from medft.util.atomic import replace_path

    out = Path(out)
    refuse_existing(out, force, (source,))
    out.parent.mkdir(parents=True, exist_ok=True)
    collect_stale_tmp(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        mark_output(tmp, "import")
        refuse_existing(out, force, (source,))  # again: another command may have written out meanwhile
        replace_path(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_record(tmp: Path, *, dataset: str, app: str, source: Path, files: list[dict], counts: dict,
                 decisions: list[str], extra: dict | None = None) -> dict:
    """``import.json``: what was read (every file's size and SHA-256), what came out, what was decided."""
    from medft import __version__

    record = {
        "dataset": dataset,
        "app": app,
        "source": str(Path(source).resolve()),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "medft_version": __version__,
        "counts": counts,
        "decisions": decisions,
        **(extra or {}),
        "files": files,
    }
    (tmp / paths.IMPORT_RECORD).write_text(json.dumps(record, indent=1, allow_nan=True) + "\n")
    return record
