"""Find the Caffe that ``make caffe`` built and import pycaffe from it.

Host-side stages (generation, LMDB writing, scoring) never need this; only the
training engine and the tests that check real Caffe behaviour do.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from types import ModuleType

from medft import caffe_build
from medft.errors import MedftError


def caffe_root() -> Path:
    """``$MEDFT_CAFFE_ROOT`` or the cache folder of this build; must be installed."""
    env = os.environ.get("MEDFT_CAFFE_ROOT")
    root = Path(env) if env else caffe_build.install_dir()
    if not caffe_build.is_installed(root):
        raise MedftError(f"Caffe is not built at {root}: run `make caffe` (about 7 min on 2 cores)")
    return root


def caffe_tool(name: str) -> Path:
    """Path of a Caffe command-line tool, e.g. ``caffe_tool("caffe")`` -> ``.../caffe.bin``."""
    exe = caffe_root() / "build" / "tools" / (name if name.endswith(".bin") else f"{name}.bin")
    if not exe.is_file():
        raise MedftError(f"Caffe tool {exe} is missing: rebuild with `make caffe FORCE=1`")
    return exe


def import_caffe(quiet: bool = True) -> ModuleType:
    """Import pycaffe from the built tree (GLOG quiet unless asked otherwise)."""
    if quiet:
        os.environ.setdefault("GLOG_minloglevel", "2")
    path = str(caffe_root() / "python")
    if path not in sys.path:
        sys.path.insert(0, path)
    import caffe  # noqa: PLC0415

    return caffe


def build_info() -> dict:
    """The BUILD.json written when this Caffe was built."""
    return json.loads((caffe_root() / "BUILD.json").read_text())
