"""The build itself: fetch the sdist, patch it, write its config, ``make``, install into the cache."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
from pathlib import Path

from medft.engines import build as package
from medft.engines.build.config import gpu_makefile_config, makefile_config
from medft.engines.build.debian import (
    DEBIAN_PACKAGES,
    GPU_DEBIAN_PACKAGES,
    install_debian_packages,
    missing_debian_packages,
)
from medft.engines.build.install import install_dir, install_from, is_installed
from medft.engines.build.patches import GPU_REMOVED_FILES, GPU_SOURCE_PATCHES, apply_patches
from medft.engines.build.sdist import CAFFE_UPSTREAM, SDIST_NAME, SDIST_VERSION, fetch_sdist
from medft.engines.build.toolkit import (
    CUDA_ARCHS,
    CUDA_CXX_STD,
    CUDA_PTX,
    CUDA_WHEELS,
    cudnn_version,
    install_toolkit,
    system_toolkit,
)
from medft.errors import MedftError


def numpy_include(python: str = "/usr/bin/python3") -> str:
    r = subprocess.run([python, "-c", "import numpy; print(numpy.get_include())"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise MedftError(f"{python} cannot import numpy (install python3-numpy): {r.stderr}")
    return r.stdout.strip()


def build(jobs: int | None = None, force: bool = False, install_deps: bool = False, gpu: bool = False) -> Path:
    """Build and install Caffe (the GPU build with ``gpu``) into :func:`install_dir`; return that path."""
    target = install_dir(gpu)
    if is_installed(target) and not force:
        return target
    if sysconfig.get_config_var("LDVERSION") != "3.11":
        print(f"medft: warning: building with Python {sys.version.split()[0]}; "
              "pycaffe links Debian's libpython3.11", file=sys.stderr)
    missing = missing_debian_packages(GPU_DEBIAN_PACKAGES if gpu else DEBIAN_PACKAGES)
    if missing:
        if install_deps:
            install_debian_packages(missing)
        else:
            raise MedftError("Caffe needs these Debian packages, which are not installed:\n  "
                             + " ".join(missing) + "\nRun `make setup` (as root) or: apt-get install "
                             + " ".join(missing))
    toolkit = (system_toolkit() or install_toolkit()) if gpu else None
    jobs = jobs or os.cpu_count() or 1
    target.parent.mkdir(parents=True, exist_ok=True)
    # One build folder per mode, kept after success: a failed or interrupted build, or a build
    # with changed patches, recompiles only the sources whose patched text changed.
    work = target.parent / f".build-{'gpu' if gpu else 'cpu'}"
    work.mkdir(parents=True, exist_ok=True)
    sdist = fetch_sdist(work)
    fresh = work / "fresh"
    shutil.rmtree(fresh, ignore_errors=True)
    with tarfile.open(sdist) as tar:
        tar.extractall(fresh, filter="data") if hasattr(tarfile, "data_filter") else tar.extractall(fresh)
    staged = fresh / f"{SDIST_NAME}-{SDIST_VERSION}"
    apply_patches(staged, gpu=gpu)
    config = (gpu_makefile_config(numpy_include(), str(toolkit["cuda"]), str(toolkit["cudnn"]))
              if gpu else makefile_config(numpy_include()))
    (staged / "Makefile.config").write_text(config)
    # The sdist ships a stale caffe_pb2.py from another protoc; let make regenerate it.
    (staged / "python/caffe/proto/caffe_pb2.py").unlink(missing_ok=True)
    shutil.rmtree(staged / "python/caffe/__pycache__", ignore_errors=True)
    src = work / "src"
    changed = sync_tree(staged, src)
    shutil.rmtree(fresh, ignore_errors=True)
    if changed:
        print(f"medft: {changed} source file(s) new or changed since the last build attempt", flush=True)
    what = "with CUDA 13 / cuDNN 9 (about 35 min on 2 cores)" if gpu else "(about 7 min on 2 cores)"
    print(f"medft: building {CAFFE_UPSTREAM} {what} with make -j{jobs}", flush=True)
    t0 = time.time()
    log = work / "build.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(["make", f"-j{jobs}", "all", "pycaffe"], cwd=src,
                                stdout=out, stderr=subprocess.STDOUT)
        n = 0
        while proc.poll() is None:
            time.sleep(5)
            n += 1
            if n % 6 == 0:
                objs = len(list((src / ".temp_release").rglob("*.o")))
                print(f"medft: caffe build {time.time() - t0:4.0f}s, {objs} objects compiled", flush=True)
    if proc.returncode != 0:
        kept = target.parent / f"build-failed-{target.name}.log"
        shutil.copyfile(log, kept)
        tail = log.read_text()[-4000:]
        raise MedftError(f"Caffe build failed (log {kept}):\n{tail}")
    extra = {}
    if gpu:
        extra = {"mode": "GPU", "cuda_wheels": None if system_toolkit() else list(CUDA_WHEELS),
                 "cuda_toolkit": str(toolkit["cuda"]),
                 "cudnn": cudnn_version(toolkit["cudnn"]), "cuda_archs": [f"sm_{a}" for a in CUDA_ARCHS],
                 "cuda_ptx": f"compute_{CUDA_PTX}", "nvcc_std": CUDA_CXX_STD, "opencv": False,
                 "patches": [reason for *_, reason in GPU_SOURCE_PATCHES]
                 + [f"removed {rel}: {why}" for rel, why in GPU_REMOVED_FILES]}
    install_from(src, target, build_seconds=time.time() - t0, extra=extra, gpu=gpu)
    print(f"medft: Caffe installed in {target} ({time.time() - t0:.0f}s)", flush=True)
    return target


def sync_tree(staged: Path, src: Path) -> int:
    """Make ``src`` hold exactly ``staged``'s files, touching only the ones whose bytes differ
    (so make's timestamps keep every object that is still valid); return how many changed."""
    changed = 0
    src.mkdir(parents=True, exist_ok=True)
    wanted = set()
    for f in staged.rglob("*"):
        rel = f.relative_to(staged)
        wanted.add(rel)
        dst = src / rel
        if f.is_dir():
            dst.mkdir(parents=True, exist_ok=True)
        elif not dst.is_file() or dst.read_bytes() != f.read_bytes():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dst)
            os.utime(dst)  # newer than any object built from the old text
            changed += 1
    for f in sorted(src.rglob("*"), reverse=True):  # sources the patches removed; build outputs stay
        rel = f.relative_to(src)
        if rel.parts[0] in (".temp_release", ".build_release", "build", "distribute") or rel in wanted:
            continue
        if f.is_file() and rel.suffix in (".h", ".hpp", ".cpp", ".cu", ".py"):
            f.unlink()
    return changed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m medft.engines.build", description=package.__doc__.split("\n")[0])
    ap.add_argument("--gpu", action="store_true",
                    help="the CUDA 13 / cuDNN 9 build (toolkit from NVIDIA's PyPI wheels) instead of the CPU one")
    ap.add_argument("--jobs", "-j", type=int, default=None, help="make -j (default: all cores)")
    ap.add_argument("--force", action="store_true", help="rebuild even if the cache has this build")
    ap.add_argument("--install-deps", action="store_true",
                    help="apt-get install missing Debian packages (root only)")
    ap.add_argument("--deps-only", action="store_true",
                    help="only check/install the Debian packages (with --install-deps), then exit")
    ap.add_argument("--print-path", action="store_true",
                    help="print the install folder and exit 0 if built, 1 if not")
    args = ap.parse_args(argv)
    if args.print_path:
        print(install_dir(args.gpu))
        return 0 if is_installed(install_dir(args.gpu)) else 1
    try:
        if args.deps_only:
            missing = missing_debian_packages(GPU_DEBIAN_PACKAGES if args.gpu else DEBIAN_PACKAGES)
            if missing and args.install_deps:
                install_debian_packages(missing)
            elif missing:
                print("medft: missing Debian packages: " + " ".join(missing), file=sys.stderr)
                return 1
            return 0
        path = build(jobs=args.jobs, force=args.force, install_deps=args.install_deps, gpu=args.gpu)
    except MedftError as e:
        print(f"medft: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0

