"""A caffemodel file without Caffe: what it is and what it holds.

What it is: the BVLC ImageNet AlexNet (recognised by SHA-1), a medft stand-in (by the JSON sidecar
``medft pretrain`` writes beside it), or unknown (:func:`describe`). What it holds: each layer's
parameter blobs with the shapes Caffe matches them by (:func:`layer_shapes`), and the SHA-1 of each
blob's float32 values (:func:`caffemodel_hashes`), taken in Caffe's order (little-endian) and
independent of the legacy 4-D or N-D shape it is stored with, so BVLC's V1 file and a snapshot
compare directly.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medft.errors import MedftError
from medft.schema import blob_values, pb, read_net

#: From BVLC Caffe ``models/bvlc_alexnet/readme.md`` (front matter ``sha1``), and its iterations.
BVLC_ALEXNET_SHA1 = "9116a64c0fbe4459d18f4bb6b56d647b63920377"
BVLC_ALEXNET_ITERATIONS = 360_000

#: ``kind`` strings of :func:`find_pretrained` and of the stand-in's sidecar.
BVLC, STANDIN = "bvlc", "standin"

_LEGACY_DIMS = ("num", "channels", "height", "width")
_sha1_cache: dict[tuple[str, int, int], str] = {}


def sidecar_path(caffemodel: str | Path) -> Path:
    """The JSON record beside a medft-made caffemodel: same name, suffix ``.json``."""
    return Path(caffemodel).with_suffix(".json")


def read_sidecar(caffemodel: str | Path) -> dict | None:
    """The sidecar of ``caffemodel`` as a dict, or None when there is none (or it is not JSON)."""
    path = sidecar_path(caffemodel)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def sha1_of(path: str | Path) -> str:
    """Hex SHA-1 of a file; cached per (path, size, mtime) because models are ~240 MB."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _sha1_cache:
        h = hashlib.sha1()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        _sha1_cache[key] = h.hexdigest()
    return _sha1_cache[key]


def verify_sha1(path: str | Path, expected: str) -> None:
    """Raise :class:`MedftError` unless the SHA-1 of ``path`` is ``expected``."""
    got = sha1_of(path)
    if got != expected.lower():
        raise MedftError(f"{path}: SHA-1 is {got}, expected {expected}: wrong or damaged file")


def is_standin(path: Path) -> bool:
    """Whether ``path`` is a medft stand-in whose sidecar matches the file."""
    meta = read_sidecar(path)
    return bool(meta) and meta.get("kind") == STANDIN and meta.get("sha1") == sha1_of(path)


def describe(path: str | Path) -> str:
    """One line saying what a caffemodel is: the BVLC ImageNet AlexNet, a medft stand-in (NOT
    ImageNet), or unknown. BVLC is recognised by SHA-1, the stand-in by its sidecar."""
    path = Path(path)
    if not path.is_file():
        raise MedftError(f"{path}: no such caffemodel")
    meta = read_sidecar(path)
    if meta and meta.get("kind") == STANDIN:
        if meta.get("sha1") != sha1_of(path):
            return f"unknown caffemodel {path.name}: its medft stand-in sidecar does not match the file"
        budget = meta.get("budget", {})
        heldout = meta.get("heldout_accuracy")
        classes = len(meta.get("source_task", {}).get("classes", [])) or None
        skill = (f", held-out accuracy {heldout:.2f}" + (f" (chance {1 / classes:.2f})" if classes else "")
                 if isinstance(heldout, (int, float)) else "")
        return (f"medft stand-in: formula-driven patterns, {budget.get('iterations', '?')} iterations "
                f"(batch {budget.get('batch', '?')}){skill} — NOT ImageNet")
    if sha1_of(path) == BVLC_ALEXNET_SHA1:
        return f"BVLC AlexNet (ImageNet, {BVLC_ALEXNET_ITERATIONS // 1000}k iterations)"
    return f"unknown caffemodel {path.name}: neither BVLC AlexNet (by SHA-1) nor a medft stand-in"


# --- reading shapes -----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Blob:
    """A parameter blob as stored: its shape, whether that is the legacy num/channels/height/width,
    and how many values it holds (what Caffe's ``Blob::FromProto`` checks)."""

    shape: tuple[int, ...]
    legacy: bool
    values: int

    @property
    def canonical(self) -> tuple[int, ...]:
        """Legacy dims are right-aligned (Caffe's rule), so drop their leading 1s."""
        if not self.legacy:
            return self.shape
        dims = list(self.shape)
        while len(dims) > 1 and dims[0] == 1:
            dims.pop(0)
        return tuple(dims)

    def fits(self, net_shape: tuple[int, ...]) -> bool:
        """Caffe's ``Blob::ShapeEquals``: legacy dims equal the net shape left-padded with 1s to 4-D."""
        if self.legacy:
            return len(net_shape) <= 4 and (1,) * (4 - len(net_shape)) + tuple(net_shape) == self.shape
        return tuple(net_shape) == self.shape


def _blob(b: pb.BlobProto) -> _Blob:
    values = len(b.double_data) or len(b.data)
    if any(b.HasField(d) for d in _LEGACY_DIMS):
        return _Blob((b.num, b.channels, b.height, b.width), True, values)
    return _Blob(tuple(b.shape.dim), False, values)


def file_layers(path: Path) -> dict[str, list[_Blob]]:
    """Every layer of a caffemodel (V1 or V2 form) -> its blobs, refusing what would make Caffe abort."""
    net = read_net(path)
    if len(net.layer) and len(net.layers):
        raise MedftError(f"{path}: has both V2 'layer' and V1 'layers' entries; Caffe refuses to upgrade it")
    out: dict[str, list[_Blob]] = {}
    for layer in list(net.layer) + list(net.layers):
        out[layer.name] = [_blob(b) for b in layer.blobs]
    return out


def layer_shapes(caffemodel: str | Path) -> dict[str, list[tuple[int, ...]]]:
    """Layer name -> shapes of its parameter blobs, for layers that have any (V1 or V2 files).

    Legacy 4-D blobs (V1 files such as bvlc_alexnet) are given without their leading 1s, as
    Caffe matches them right-aligned: ``(1, 1, 4096, 9216)`` reads ``(4096, 9216)``, a bias
    ``(1, 1, 1, 96)`` reads ``(96,)``. (So a legacy convolution with one output would read 3-D.)
    """
    return {name: [b.canonical for b in blobs]
            for name, blobs in file_layers(Path(caffemodel)).items() if blobs}


# --- hashing blobs ------------------------------------------------------------------------------

def blob_sha1(values: np.ndarray) -> str:
    """SHA-1 of a parameter blob's float32 values (little-endian, C order)."""
    return hashlib.sha1(np.ascontiguousarray(values, dtype="<f4").tobytes()).hexdigest()


def layer_hashes(layers: dict[str, list[np.ndarray]], names: list[str] | None = None) -> dict[str, list[str]]:
    """Layer -> SHA-1 of each of its blobs, for ``names`` (default: every layer given)."""
    return {n: [blob_sha1(b) for b in layers[n]] for n in (names if names is not None else layers) if n in layers}


def caffemodel_blobs(path: str | Path, names: list[str] | None = None) -> dict[str, list[np.ndarray]]:
    """Layer -> flat float32 values of each blob, for ``names`` (default: every layer with blobs) of a
    caffemodel file (V1 ``layers`` or V2 ``layer``)."""
    net = read_net(Path(path))
    return {la.name: [blob_values(b) for b in la.blobs] for la in list(net.layer) + list(net.layers)
            if len(la.blobs) and (names is None or la.name in names)}


def caffemodel_hashes(path: str | Path, names: list[str] | None = None) -> dict[str, list[str]]:
    """:func:`layer_hashes` of a caffemodel file."""
    return layer_hashes(caffemodel_blobs(path, names))
