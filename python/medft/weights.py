"""Pretrained AlexNet files: the BVLC ImageNet model, its offline stand-in, what a caffemodel holds.

The paper fine-tunes BVLC's ImageNet AlexNet (``models/bvlc_alexnet``: 360,000 iterations,
a caffemodel of V1 ``layers``). :func:`download_bvlc_alexnet` fetches it from the model zoo's
published URL and checks the SHA-1 from that model's readme. Without a network there is no
ImageNet model, so ``medft pretrain`` makes a *stand-in* (see :mod:`medft.pretrain`);
:func:`find_pretrained` prefers the real one and :func:`describe` always says which it is.

:func:`copy_pretrained` copies weights into a live pycaffe net by layer name, as Caffe's
``Net::CopyTrainedLayersFrom`` does, but first checks every shape in Python: Caffe aborts
the whole process (glog FATAL) on a mismatch, where medft raises a one-line
:class:`~medft.errors.MedftError` naming the layer and both shapes.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from medft.errors import MedftError
from medft.paths import BVLC_ALEXNET_ENV, bvlc_path, standin_path
from medft.schema import pb, read_net
from medft.util.progress import eta

__all__ = [
    "BVLC_ALEXNET_URL", "BVLC_ALEXNET_SHA1", "BVLC_ALEXNET_ITERATIONS",
    "download_bvlc_alexnet", "sha1_of", "verify_sha1", "sidecar_path",
    "read_sidecar", "find_pretrained", "describe", "layer_shapes", "default_pretrained",
]

#: From BVLC Caffe ``models/bvlc_alexnet/readme.md`` (front matter ``caffemodel_url``, ``sha1``).
BVLC_ALEXNET_URL = "http://dl.caffe.berkeleyvision.org/bvlc_alexnet.caffemodel"
BVLC_ALEXNET_SHA1 = "9116a64c0fbe4459d18f4bb6b56d647b63920377"
BVLC_ALEXNET_ITERATIONS = 360_000
BVLC_ALEXNET_MB = 233  # approximate size, for messages only

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


def _offline_message(url: str, dest: Path, sha1: str, reason: object) -> str:
    return (
        f"cannot download the BVLC AlexNet weights from {url} ({reason}). Offline, fetch "
        f"bvlc_alexnet.caffemodel (~{BVLC_ALEXNET_MB} MB) from {url} on a connected machine, put it at "
        f"{dest} (or set {BVLC_ALEXNET_ENV} to its path) and check its SHA-1 is {sha1}; meanwhile "
        f"`medft pretrain` makes an offline stand-in (not ImageNet)"
    )


def _progress(done: int, total: int | None, t0: float, final: bool = False) -> None:
    mb, dt = done / 1e6, max(time.monotonic() - t0, 1e-6)
    rate = mb / dt
    if total:
        line = (f"{mb:7.1f}/{total / 1e6:.1f} MB ({100 * done / total:3.0f}%)  {rate:5.1f} MB/s  "
                f"ETA {eta(done, total, dt)}")
    else:
        line = f"{mb:7.1f} MB  {rate:5.1f} MB/s"
    tty = sys.stderr.isatty()
    end = "\n" if final or not tty else ""
    print(f"{chr(13) if tty else ''}medft: bvlc_alexnet.caffemodel {line}", end=end, file=sys.stderr,
          flush=True)


def download_bvlc_alexnet(dest: str | Path | None = None, force: bool = False, url: str = BVLC_ALEXNET_URL,
                          sha1: str = BVLC_ALEXNET_SHA1, timeout: float = 30.0) -> Path:
    """Download the BVLC AlexNet caffemodel to ``dest`` (default :func:`bvlc_path`) and verify its SHA-1.

    A file already at ``dest`` with the right SHA-1 is kept unless ``force``. The download goes to a
    temporary file beside ``dest`` that replaces it only once verified, so ``dest`` is never partial.
    Unreachable ``url`` (offline): :class:`MedftError` saying what to fetch, from where, where to
    put it, and its SHA-1. ``url`` and ``sha1`` are parameters for tests (e.g. a ``file://`` URL).
    """
    dest = Path(dest) if dest is not None else bvlc_path()
    if dest.is_file() and not force:
        if sha1_of(dest) == sha1:
            print(f"medft: {dest} present, SHA-1 ok", file=sys.stderr)
            return dest
        print(f"medft: {dest} fails its SHA-1 check; downloading it again", file=sys.stderr)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part-{os.getpid()}")
    h = hashlib.sha1()
    try:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
                total = int(r.headers.get("Content-Length") or 0) or None
                done, t0, shown = 0, time.monotonic(), 0.0
                while chunk := r.read(1 << 20):
                    f.write(chunk)
                    h.update(chunk)
                    done += len(chunk)
                    if time.monotonic() - shown >= (0.5 if sys.stderr.isatty() else 10.0):
                        shown = time.monotonic()
                        _progress(done, total, t0)
                _progress(done, total, t0, final=True)
        except urllib.error.HTTPError as e:
            reason = f"server answered {e.code} {e.reason}"
            raise MedftError(_offline_message(url, dest, sha1, reason)) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", None) or e
            raise MedftError(_offline_message(url, dest, sha1, reason)) from None
        if h.hexdigest() != sha1:
            raise MedftError(f"downloaded {url}: SHA-1 is {h.hexdigest()}, expected {sha1}: "
                             f"damaged or wrong file, not installed at {dest}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def find_pretrained() -> tuple[Path, str] | None:
    """(path, kind) of the weights to fine-tune from: the BVLC AlexNet (kind ``"bvlc"``) if present
    with the right SHA-1, else the stand-in of ``medft pretrain`` (kind ``"standin"``), else None."""
    bvlc = bvlc_path()
    if bvlc.is_file():
        if sha1_of(bvlc) == BVLC_ALEXNET_SHA1:
            return bvlc, BVLC
        print(f"medft: warning: ignoring {bvlc}: its SHA-1 is not BVLC AlexNet's {BVLC_ALEXNET_SHA1}",
              file=sys.stderr)
    standin = standin_path()
    if standin.is_file() and _is_standin(standin):
        return standin, STANDIN
    return None


def _is_standin(path: Path) -> bool:
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


def _file_layers(path: Path) -> dict[str, list[_Blob]]:
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
            for name, blobs in _file_layers(Path(caffemodel)).items() if blobs}


def default_pretrained(config: str, log=print) -> str | None:
    """The weights a configuration starts from when none are given: None for scratch, else BVLC
    AlexNet if present, else the offline stand-in (said plainly); neither is an error naming both."""
    from medft.schedule import get_config

    if not get_config(config).pretrained:
        return None
    found = find_pretrained()
    if found is None:
        raise MedftError(f"{config} needs pretrained AlexNet weights: run `make weights` (BVLC, online) or "
                         "`medft pretrain` (offline stand-in), or pass --weights")
    path, kind = found
    if kind != "bvlc":
        log(f"medft train: using the offline STAND-IN pretrained model {path} (not ImageNet)")
    return str(path)
