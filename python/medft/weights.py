"""Pretrained AlexNet files: the BVLC ImageNet model, its offline stand-in, which one a run starts from.

The paper fine-tunes BVLC's ImageNet AlexNet (``models/bvlc_alexnet``: 360,000 iterations,
a caffemodel of V1 ``layers``). :func:`download_bvlc_alexnet` fetches it from the model zoo's
published URL and checks the SHA-1 from that model's readme. Without a network there is no
ImageNet model, so ``medft pretrain`` makes a *stand-in* (see :mod:`medft.pretrain`);
:func:`find_pretrained` prefers the real one and :func:`medft.caffemodel.describe` always says
which it is. :func:`medft.engines.transfer.copy_pretrained` copies weights into a net.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from medft.caffemodel import BVLC, BVLC_ALEXNET_SHA1, STANDIN, is_standin, sha1_of
from medft.errors import MedftError
from medft.paths import BVLC_ALEXNET_ENV, bvlc_path, standin_path
from medft.util.progress import eta

__all__ = ["BVLC_ALEXNET_URL", "download_bvlc_alexnet", "find_pretrained", "default_pretrained"]

#: From BVLC Caffe ``models/bvlc_alexnet/readme.md`` (front matter ``caffemodel_url``).
BVLC_ALEXNET_URL = "http://dl.caffe.berkeleyvision.org/bvlc_alexnet.caffemodel"
BVLC_ALEXNET_MB = 233  # approximate size, for messages only




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
    if standin.is_file() and is_standin(standin):
        return standin, STANDIN
    return None


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
