"""The CUDA 13 toolkit and cuDNN 9 of the GPU build: NVIDIA's wheels from PyPI, or one installed."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from medft.errors import MedftError
from medft.paths import cache_root
from medft.util.atomic import replace_path

#: NVIDIA's CUDA 13.0 wheels on PyPI (13.0 is what driver 580 supports without compatibility
#: packages; a newer toolkit's PTX would not load on it). ``nvidia-cuda-nvcc`` holds bin/nvcc,
#: cudafe++, nvlink, fatbinary and ptxas; ``nvidia-nvvm`` the cicc that nvcc calls.
CUDA_WHEELS: tuple[str, ...] = (
    "nvidia-cuda-nvcc==13.0.88", "nvidia-nvvm==13.0.88", "nvidia-cuda-crt==13.0.88",
    "nvidia-cuda-runtime==13.0.96", "nvidia-cublas==13.0.2.14", "nvidia-curand==10.4.0.35",
    "nvidia-cuda-cccl==13.0.85", "nvidia-cudnn-cu13==9.13.0.50",
)

#: Real code for Ampere (sm_80) and Hopper (sm_90), PTX of sm_90 for newer cards (Ada's sm_89
#: runs the sm_80 code; Blackwell JIT-compiles the PTX). CUDA 13 supports Turing and newer only;
#: the paper's Maxwell/Pascal era is docker/gpu-2016's CUDA 8.
CUDA_ARCHS: tuple[str, ...] = ("80", "90")
CUDA_PTX = "90"

#: The C++ standard that CUDA 13's headers (CCCL) require of nvcc.
CUDA_CXX_STD = "c++17"


def toolkit_dir() -> Path:
    """Where the CUDA wheels of :data:`CUDA_WHEELS` are installed (may not exist yet)."""
    key = hashlib.sha256(repr(CUDA_WHEELS).encode()).hexdigest()[:12]
    return cache_root() / "cuda" / f"cuda-13.0-{key}"


def toolkit_paths(root: Path | None = None) -> dict[str, Path]:
    """``cuda`` (bin/nvcc, include, lib) and ``cudnn`` (include, lib) folders of the toolkit."""
    root = root or toolkit_dir()
    return {"cuda": root / "nvidia" / "cu13", "cudnn": root / "nvidia" / "cudnn"}


def system_toolkit() -> dict[str, Path] | None:
    """An installed CUDA toolkit named by ``$MEDFT_CUDA_HOME`` (and cuDNN by ``$MEDFT_CUDNN_HOME``,
    default ``/usr``), as in NVIDIA's CUDA images; None: use the PyPI wheels."""
    home = os.environ.get("MEDFT_CUDA_HOME")
    if not home:
        return None
    paths = {"cuda": Path(home), "cudnn": Path(os.environ.get("MEDFT_CUDNN_HOME", "/usr"))}
    if not (paths["cuda"] / "bin" / "nvcc").is_file():
        raise MedftError(f"MEDFT_CUDA_HOME={home}: no bin/nvcc there")
    if not (paths["cudnn"] / "include" / "cudnn_version.h").exists():
        raise MedftError(f"MEDFT_CUDNN_HOME={paths['cudnn']}: no include/cudnn_version.h there")
    return paths


def install_toolkit(python: str = sys.executable) -> dict[str, Path]:
    """pip-install :data:`CUDA_WHEELS` into :func:`toolkit_dir` (once) and return its folders.

    The wheels ship only versioned libraries (``libcudart.so.13``); the linker's ``-lcudart`` needs
    the unversioned names, so links to them are added beside.
    """
    target = toolkit_dir()
    paths = toolkit_paths(target)
    if (target / "TOOLKIT.json").is_file():
        return paths
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".medft-cuda-", dir=target.parent))
    try:
        print(f"medft: installing the CUDA 13.0 toolkit from PyPI ({len(CUDA_WHEELS)} wheels, ~1 GB) "
              f"into {target}", flush=True)
        cmd = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
               "--target", str(stage), *CUDA_WHEELS]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise MedftError(f"could not install the CUDA wheels with pip ({' '.join(CUDA_WHEELS)}):\n"
                             f"{r.stderr[-2000:]}")
        staged = toolkit_paths(stage)
        for lib in [*(staged["cuda"] / "lib").glob("lib*.so.*"), *(staged["cudnn"] / "lib").glob("lib*.so.*")]:
            link = lib.with_name(lib.name.split(".so.")[0] + ".so")
            if not link.exists():
                link.symlink_to(lib.name)
        nvcc = staged["cuda"] / "bin" / "nvcc"
        if not nvcc.is_file():
            raise MedftError(f"the CUDA wheels hold no {nvcc.relative_to(stage)}: is nvidia-cuda-nvcc 13 installed?")
        version = subprocess.run([str(nvcc), "--version"], capture_output=True, text=True).stdout.strip()
        (stage / "TOOLKIT.json").write_text(json.dumps(
            {"wheels": list(CUDA_WHEELS), "nvcc": version.splitlines()[-1] if version else None}, indent=2) + "\n")
        replace_path(stage, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return toolkit_paths(target)


def cudnn_version(cudnn_dir: Path) -> str:
    """``major.minor.patch`` from ``cudnn_version.h``."""
    text = (Path(cudnn_dir) / "include" / "cudnn_version.h").read_text()
    parts = {}
    for key in ("CUDNN_MAJOR", "CUDNN_MINOR", "CUDNN_PATCHLEVEL"):
        line = next(ln for ln in text.splitlines() if ln.startswith(f"#define {key} "))
        parts[key] = line.split()[2]
    return f"{parts['CUDNN_MAJOR']}.{parts['CUDNN_MINOR']}.{parts['CUDNN_PATCHLEVEL']}"

