"""Find the Caffe build a run uses (CPU or GPU), its tools, and the environment they need.

``$MEDFT_CAFFE_ROOT`` / ``$MEDFT_CAFFE_GPU_ROOT`` point at a build elsewhere (a copy carried to
another machine); otherwise the cache folders of :mod:`medft.engines.build`. The GPU build finds
CUDA's libraries through its rpath (the wheels in the cache) or, on a machine without them,
through ``$MEDFT_CUDA_LIBS`` and the ``nvidia/*/lib`` folders of the running Python (PyTorch's
CUDA wheels, for instance).
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

from medft import paths
from medft.engines.build.install import install_dir, is_installed
from medft.engines.build.toolkit import toolkit_paths
from medft.errors import MedftError

#: sonames the GPU build loads, in dependency order
CUDA_SONAMES = ("libcudart.so.13", "libcublasLt.so.13", "libcublas.so.13", "libcurand.so.10", "libcudnn.so.9")


def caffe_root(gpu: bool = False) -> Path:
    """The installed build: the GPU one with ``gpu``; must be installed."""
    root = paths.caffe_root_override(gpu) or install_dir(gpu)
    if not is_installed(root) and not (root / "BUILD.json").is_file():
        hint = ("`make caffe-gpu` (the CUDA build; about 35 min on 2 cores)" if gpu
                else "`make caffe` (about 7 min on 2 cores)")
        raise MedftError(f"Caffe{' (GPU build)' if gpu else ''} is not built at {root}: run {hint}")
    return root


def caffe_tool(name: str, gpu: bool = False) -> Path:
    """Path of a Caffe command-line tool, e.g. ``caffe_tool("caffe")`` -> ``.../caffe.bin``."""
    exe = caffe_root(gpu) / "build" / "tools" / (name if name.endswith(".bin") else f"{name}.bin")
    if not exe.is_file():
        raise MedftError(f"Caffe tool {exe} is missing: rebuild with `make caffe{'-gpu' if gpu else ''} FORCE=1`")
    return exe


def build_info(gpu: bool = False) -> dict:
    """The BUILD.json written when this Caffe was built."""
    return json.loads((caffe_root(gpu) / "BUILD.json").read_text())


def caffe_version(gpu: bool = False) -> str | None:
    """``"BVLC Caffe 1.0.0-rc3 (brocolli-caffe==9.0.2, GPU)"`` for run records; None if not built."""
    try:
        info = build_info(gpu)
    except (MedftError, OSError, ValueError):
        return None
    return f"{info['upstream']} ({info['sdist']}, {info.get('mode', 'CPU_ONLY')})"


def cuda_library_dirs() -> list[Path]:
    """Folders that may hold CUDA 13's runtime libraries: ``$MEDFT_CUDA_LIBS`` (colon-separated),
    the cached wheels, then ``nvidia/*/lib`` of the running Python's site-packages."""
    dirs = paths.cuda_libs()
    toolkit = toolkit_paths()
    dirs += [toolkit["cuda"] / "lib", toolkit["cudnn"] / "lib"]
    for site in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *sys.path}:
        nv = Path(site) / "nvidia"
        if nv.is_dir():
            dirs += sorted(p for p in nv.glob("*/lib") if p.is_dir())
    seen, out = set(), []
    for d in dirs:
        if d.is_dir() and d.resolve() not in seen:
            seen.add(d.resolve())
            out.append(d)
    return out


def find_cuda_library(soname: str) -> Path | None:
    """The first of :func:`cuda_library_dirs` that holds ``soname``."""
    for d in cuda_library_dirs():
        if (d / soname).exists():
            return d / soname
    return None


def tool_env(gpu: bool = False, log_everything: bool = False) -> dict[str, str]:
    """Environment for a Caffe tool: glog to stderr; for the GPU build, CUDA's library folders
    on ``LD_LIBRARY_PATH`` after whatever is there already."""
    env = dict(os.environ, GLOG_logtostderr="1")
    if log_everything:
        env["GLOG_minloglevel"] = "0"
    if gpu:
        dirs = [str(d) for d in cuda_library_dirs()]
        env["LD_LIBRARY_PATH"] = os.pathsep.join([p for p in [env.get("LD_LIBRARY_PATH", "")] if p] + dirs)
    return env


def preload_cuda_libraries() -> list[str]:
    """Load CUDA's libraries into this process (global symbols) so pycaffe of the GPU build
    finds them without ``LD_LIBRARY_PATH``; return the paths loaded."""
    loaded = []
    for soname in CUDA_SONAMES:
        path = find_cuda_library(soname)
        if path is not None:
            ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
            loaded.append(str(path))
    return loaded


_LOADED: dict[str, bool] = {}


def import_caffe(gpu: bool = False, quiet: bool = True) -> ModuleType:
    """Import pycaffe from the CPU build, or from the GPU build with ``gpu`` (GLOG quiet unless asked).

    One process holds one pycaffe: asking for the other build after one is loaded is an error.
    """
    if quiet:
        os.environ.setdefault("GLOG_minloglevel", "2")
    want = "gpu" if gpu else "cpu"
    if _LOADED and want not in _LOADED:
        other = next(iter(_LOADED))
        raise MedftError(f"pycaffe of the {other.upper()} build is already loaded in this process; "
                         f"the {want.upper()} build needs a new process")
    path = str(caffe_root(gpu) / "python")
    if path not in sys.path:
        sys.path.insert(0, path)
    if gpu:
        preload_cuda_libraries()
    import caffe

    _LOADED[want] = True
    return caffe
