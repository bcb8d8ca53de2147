"""The root of medft's cache (Caffe builds, the CUDA toolkit, downloads)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$MEDFT_CACHE`` or ``~/.cache/medft``."""
    env = os.environ.get("MEDFT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "medft"
