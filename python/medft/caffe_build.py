"""Build real BVLC Caffe (CPU) from a pinned PyPI source distribution.

Debian 12 ships no Caffe and PyPI has no pycaffe wheel for Python 3.11, so medft
builds it: ``brocolli-caffe==9.0.2`` is BVLC Caffe 1.0.0-rc3 plus a few extra layers.
Its ``setup.py`` wants conda, so we use Caffe's classic ``Makefile`` with our own
``Makefile.config`` and four small OpenCV-4 source patches.

The result (pycaffe, ``libcaffe.so``, the ``*.bin`` tools and ``caffe.proto``) is
installed into a cache folder outside the repository, keyed by the sdist version and
a hash of the patch set and config, so a second run is instant::

    ~/.cache/medft/caffe/brocolli-caffe-9.0.2-<key>/
        build/lib/libcaffe.so*        build/tools/caffe.bin ...
        python/caffe/                  (import this: _caffe.so rpath is ../../build/lib)
        proto/caffe.proto              BUILD.json

This module uses only the standard library so it can run before anything is installed.
Run it as ``python3 -m medft.caffe_build`` (``make caffe`` does).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from pathlib import Path

SDIST_NAME = "brocolli-caffe"
SDIST_VERSION = "9.0.2"
SDIST_SHA256 = "c6410cc60bdd6db685d441b66be7df05410f8850ac88d6b75d48ef9b2315c08a"
CAFFE_UPSTREAM = "BVLC Caffe 1.0.0-rc3"

#: Debian packages the build needs (names from the foundation issue, measured on Debian 12).
DEBIAN_PACKAGES = (
    "build-essential libboost-system-dev libboost-thread-dev libboost-filesystem-dev "
    "libboost-python-dev libboost-regex-dev libprotobuf-dev protobuf-compiler "
    "libgoogle-glog-dev libgflags-dev libhdf5-dev liblmdb-dev libleveldb-dev libsnappy-dev "
    "libopencv-dev libopenblas-dev python3-dev python3-numpy python3-venv"
).split()

#: OpenCV 4 removed the old C constants; (file, old, new) literal substitutions.
SOURCE_PATCHES: tuple[tuple[str, str, str], ...] = (
    ("src/caffe/util/io.cpp", "CV_LOAD_IMAGE_COLOR", "cv::IMREAD_COLOR"),
    ("src/caffe/util/io.cpp", "CV_LOAD_IMAGE_GRAYSCALE", "cv::IMREAD_GRAYSCALE"),
    ("src/caffe/layers/window_data_layer.cpp", "CV_LOAD_IMAGE_COLOR", "cv::IMREAD_COLOR"),
    ("src/caffe/test/test_io.cpp", "CV_LOAD_IMAGE_COLOR", "cv::IMREAD_COLOR"),
    ("src/caffe/test/test_io.cpp", "CV_LOAD_IMAGE_GRAYSCALE", "cv::IMREAD_GRAYSCALE"),
    ("src/caffe/util/bbox_util.cpp", "CV_FILLED", "cv::FILLED"),
    ("src/caffe/util/bbox_util.cpp", "CV_FOURCC(", "cv::VideoWriter::fourcc("),
    ("src/caffe/layers/video_data_layer.cpp", "CV_CAP_PROP_", "cv::CAP_PROP_"),
)

#: Headers prepended to a file (OpenCV 4 moved the C constants there).
HEADER_PATCHES: tuple[tuple[str, str], ...] = (
    (
        "src/caffe/util/im_transforms.cpp",
        "#include <opencv2/imgproc/types_c.h>\n#include <opencv2/imgcodecs/legacy/constants_c.h>\n",
    ),
)

TOOLS = ("caffe.bin", "convert_imageset.bin", "compute_image_mean.bin", "extract_features.bin",
         "upgrade_net_proto_binary.bin", "upgrade_net_proto_text.bin")


def makefile_config(numpy_include: str) -> str:
    """The ``Makefile.config`` for a CPU build on Debian 12 with Python 3.11."""
    py = f"python{sys.version_info.major}.{sys.version_info.minor}"
    boost_py = f"boost_python{sys.version_info.major}{sys.version_info.minor}"
    return f"""# Written by medft.caffe_build: CPU-only Caffe for Debian 12.
CPU_ONLY := 1
USE_OPENCV := 1
USE_LEVELDB := 1
USE_LMDB := 1
OPENCV_VERSION := 3
BLAS := open
BLAS_INCLUDE := /usr/include/x86_64-linux-gnu/openblas-pthread
BLAS_LIB := /usr/lib/x86_64-linux-gnu/openblas-pthread
PYTHON_INCLUDE := /usr/include/{py} {numpy_include}
PYTHON_LIB := /usr/lib/x86_64-linux-gnu
PYTHON_LIBRARIES := {boost_py} {py}
INCLUDE_DIRS := $(PYTHON_INCLUDE) /usr/local/include /usr/include/hdf5/serial /usr/include/opencv4
LIBRARY_DIRS := $(PYTHON_LIB) /usr/local/lib /usr/lib /usr/lib/x86_64-linux-gnu/hdf5/serial
BUILD_DIR := build
DISTRIBUTE_DIR := distribute
TEST_GPUID := 0
Q ?= @
"""


def cache_root() -> Path:
    """``$MEDFT_CACHE`` or ``~/.cache/medft``."""
    env = os.environ.get("MEDFT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "medft"


def build_key() -> str:
    """Hash of everything that changes the build: sdist, patches, config template."""
    h = hashlib.sha256()
    h.update(SDIST_SHA256.encode())
    h.update(repr((SOURCE_PATCHES, HEADER_PATCHES)).encode())
    h.update(makefile_config("NUMPY").encode())
    return h.hexdigest()[:12]


def install_dir() -> Path:
    """Where this build of Caffe lives (may not exist yet)."""
    return cache_root() / "caffe" / f"{SDIST_NAME}-{SDIST_VERSION}-{build_key()}"


def is_installed(path: Path | None = None) -> bool:
    path = path or install_dir()
    return (path / "BUILD.json").is_file() and (path / "python" / "caffe" / "_caffe.so").is_file()


def missing_debian_packages(packages: tuple[str, ...] | list[str] = DEBIAN_PACKAGES) -> list[str]:
    """Packages of ``packages`` that dpkg does not report as installed."""
    if shutil.which("dpkg-query") is None:
        return []  # not Debian: let the compiler say what is missing
    missing = []
    for pkg in packages:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
        if "install ok installed" not in r.stdout:
            missing.append(pkg)
    return missing


def install_debian_packages(packages: list[str]) -> None:
    """apt-get install ``packages`` (root only); raise with the exact command otherwise."""
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    if os.geteuid() != 0:
        raise SystemExit(
            "medft: Caffe needs these Debian packages, which are not installed:\n  "
            + " ".join(packages) + "\nInstall them with:\n  sudo " + " ".join(cmd)
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print(f"medft: installing {len(packages)} Debian packages: {' '.join(packages)}", flush=True)
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)


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
        raise SystemExit(
            f"medft: could not download {SDIST_NAME}=={SDIST_VERSION} from PyPI.\n{r.stderr[-2000:]}\n"
            f"Offline? Put the file at {cached} (sha256 {SDIST_SHA256})."
        )
    got = sha256_of(found[0])
    if got != SDIST_SHA256:
        raise SystemExit(f"medft: sha256 mismatch for {found[0]}: got {got}, expected {SDIST_SHA256}")
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".part")
    shutil.copyfile(found[0], tmp)
    os.replace(tmp, cached)
    return cached


def apply_patches(src: Path) -> None:
    """Apply the OpenCV-4 patches; each substitution must find its target."""
    for rel, old, new in SOURCE_PATCHES:
        p = src / rel
        text = p.read_text()
        if old not in text:
            raise SystemExit(f"medft: patch target {old!r} not found in {rel}")
        p.write_text(text.replace(old, new))
    for rel, header in HEADER_PATCHES:
        p = src / rel
        p.write_text(header + p.read_text())


def numpy_include(python: str = "/usr/bin/python3") -> str:
    r = subprocess.run([python, "-c", "import numpy; print(numpy.get_include())"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"medft: {python} cannot import numpy (install python3-numpy): {r.stderr}")
    return r.stdout.strip()


def build(jobs: int | None = None, force: bool = False, install_deps: bool = False) -> Path:
    """Build and install Caffe into :func:`install_dir`; return that path."""
    target = install_dir()
    if is_installed(target) and not force:
        return target
    if sysconfig.get_config_var("LDVERSION") != "3.11":
        print(f"medft: warning: building with Python {sys.version.split()[0]}; "
              "pycaffe links Debian's libpython3.11", file=sys.stderr)
    missing = missing_debian_packages()
    if missing:
        if install_deps:
            install_debian_packages(missing)
        else:
            raise SystemExit(
                "medft: Caffe needs these Debian packages, which are not installed:\n  "
                + " ".join(missing) + "\nRun `make setup` (as root) or: apt-get install "
                + " ".join(missing))
    jobs = jobs or os.cpu_count() or 1
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="medft-caffe-build-", dir=target.parent))
    try:
        sdist = fetch_sdist(work)
        with tarfile.open(sdist) as tar:
            tar.extractall(work, filter="data") if hasattr(tarfile, "data_filter") else tar.extractall(work)
        src = work / f"{SDIST_NAME}-{SDIST_VERSION}"
        apply_patches(src)
        (src / "Makefile.config").write_text(makefile_config(numpy_include()))
        # The sdist ships a stale caffe_pb2.py from another protoc; let make regenerate it.
        (src / "python/caffe/proto/caffe_pb2.py").unlink(missing_ok=True)
        shutil.rmtree(src / "python/caffe/__pycache__", ignore_errors=True)
        print(f"medft: building {CAFFE_UPSTREAM} with make -j{jobs} (about 7 min on 2 cores)", flush=True)
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
                    print(f"medft: caffe build {time.time() - t0:4.0f}s, {objs} objects compiled",
                          flush=True)
        if proc.returncode != 0:
            tail = log.read_text()[-4000:]
            raise SystemExit(f"medft: Caffe build failed (log {log}):\n{tail}")
        install_from(src, target, build_seconds=time.time() - t0)
        print(f"medft: Caffe installed in {target} ({time.time() - t0:.0f}s)", flush=True)
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)



def install_from(src: Path, target: Path, build_seconds: float = 0.0) -> None:
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
            "upstream": CAFFE_UPSTREAM, "key": build_key(), "mode": "CPU_ONLY",
            "blas": "OpenBLAS (openblas-pthread)", "python": sys.version.split()[0],
            "build_seconds": round(build_seconds, 1),
            "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(stage, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m medft.caffe_build", description=__doc__.split("\n")[0])
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
        print(install_dir())
        return 0 if is_installed() else 1
    if args.deps_only:
        missing = missing_debian_packages()
        if missing and args.install_deps:
            install_debian_packages(missing)
        elif missing:
            print("medft: missing Debian packages: " + " ".join(missing), file=sys.stderr)
            return 1
        return 0
    path = build(jobs=args.jobs, force=args.force, install_deps=args.install_deps)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
