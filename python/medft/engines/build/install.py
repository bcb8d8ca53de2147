"""Where a build lives: its cache key and folder, whether it is finished, and installing it there."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from medft.engines.build import config, patches, toolkit
from medft.engines.build.sdist import CAFFE_UPSTREAM, SDIST_NAME, SDIST_SHA256, SDIST_VERSION
from medft.paths import cache_root
from medft.util.atomic import replace_path

TOOLS = ("caffe.bin", "convert_imageset.bin", "compute_image_mean.bin", "extract_features.bin",
         "upgrade_net_proto_binary.bin", "upgrade_net_proto_text.bin")


def build_key(gpu: bool = False) -> str:
    """Hash of everything that changes the build: sdist, patches, config template (and toolkit)."""
    h = hashlib.sha256()
    h.update(SDIST_SHA256.encode())
    h.update(repr((patches.SOURCE_PATCHES, patches.HEADER_PATCHES)).encode())
    h.update(config.makefile_config("NUMPY").encode())
    if gpu:
        h.update(repr((toolkit.CUDA_WHEELS, patches.GPU_SOURCE_PATCHES, patches.GPU_REMOVED_FILES)).encode())
        if os.environ.get("MEDFT_CUDA_HOME"):  # an installed toolkit instead of the wheels
            h.update(f"toolkit:{os.environ['MEDFT_CUDA_HOME']}:{os.environ.get('MEDFT_CUDNN_HOME', '/usr')}".encode())
        h.update(config.gpu_makefile_config("NUMPY", "CUDA", "CUDNN").encode())
    return h.hexdigest()[:12]


def install_dir(gpu: bool = False) -> Path:
    """Where this build of Caffe lives (may not exist yet)."""
    flavour = "cuda-" if gpu else ""
    return cache_root() / "caffe" / f"{SDIST_NAME}-{SDIST_VERSION}-{flavour}{build_key(gpu)}"


def is_installed(path: Path | None = None) -> bool:
    """True if ``path`` (default: the CPU build) holds a finished install with pycaffe."""
    path = path or install_dir()
    return (path / "BUILD.json").is_file() and (path / "python" / "caffe" / "_caffe.so").is_file()


def install_from(src: Path, target: Path, build_seconds: float = 0.0, extra: dict | None = None,
                 gpu: bool = False) -> None:
    """Copy the kept parts of a finished build in ``src`` into ``target``, atomically."""
    stage = Path(tempfile.mkdtemp(prefix="medft-caffe-stage-", dir=target.parent))
    try:
        (stage / "build").mkdir()
        shutil.copytree(src / ".temp_release/lib", stage / "build/lib", symlinks=True,
                        ignore=shutil.ignore_patterns("*.a"))
        (stage / "build/tools").mkdir()
        for tool in TOOLS:
            shutil.copy2(src / ".temp_release/tools" / tool, stage / "build/tools" / tool)
        shutil.copytree(src / "python/caffe", stage / "python/caffe", symlinks=False,
                        ignore=shutil.ignore_patterns("test", "__pycache__", "*.cpp"))
        (stage / "proto").mkdir()
        shutil.copy2(src / "src/caffe/proto/caffe.proto", stage / "proto/caffe.proto")
        (stage / "BUILD.json").write_text(json.dumps({
            "sdist": f"{SDIST_NAME}=={SDIST_VERSION}", "sha256": SDIST_SHA256,
            "upstream": CAFFE_UPSTREAM, "key": build_key(gpu), "mode": "CPU_ONLY",
            "blas": "OpenBLAS (openblas-pthread)", "python": sys.version.split()[0],
            "build_seconds": round(build_seconds, 1),
            "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **(extra or {}),
        }, indent=2) + "\n")
        replace_path(stage, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)

