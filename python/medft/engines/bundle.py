"""Pack the GPU build to run on a GPU machine that has CUDA 13 but not Debian's Caffe libraries.

A GPU node of a cluster, or a rented cloud GPU, often has a driver and PyTorch's CUDA wheels but
none of boost, glog, gflags, protobuf, hdf5, lmdb or OpenBLAS. The bundle holds:

* ``caffe/``: the GPU build (``build/lib``, ``build/tools``, ``python/``, ``proto/``, ``BUILD.json``);
* ``lib/``: every shared library its tools load (``ldd``) except the C library, the NVIDIA driver and
  CUDA's own libraries (cuBLAS and cuDNN are 1 GB; the machine's CUDA 13 wheels provide them);
* ``site/``: the Python packages medft's driver needs beyond numpy (lmdb, protobuf, pytest), as
  wheels for the target Python, unpacked;
* ``env.sh``: ``source`` it to point medft at all of that.

``python3 -m medft.engines.bundle --out gpu-bundle.tar.xz [--python-version 3.12]``
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from medft.errors import MedftError

#: libraries the target machine must provide itself: the C runtime and the NVIDIA driver
SYSTEM_LIBS = re.compile(r"^(libc|libm|libdl|libpthread|librt|ld-linux[-\w]*|libcuda|libnvidia-[\w-]+)\.so")
#: CUDA's libraries, from the target machine's CUDA 13 (PyTorch's wheels, for instance)
CUDA_LIBS = re.compile(r"^lib(cudart|cublas|cublasLt|curand|cudnn[\w]*|nvrtc[\w-]*|nvJitLink)\.so")
#: Python packages of the driver beyond numpy (protobuf 4 reads the gencode of Debian's protoc 3.21)
WHEELS = ("lmdb>=1.4", "protobuf>=4.21,<5", "tqdm>=4.65", "pytest>=7")


def shared_libraries(binaries: list[Path], env: dict[str, str] | None = None) -> dict[str, Path | None]:
    """soname -> resolved path (None: not found) of everything ``ldd`` lists for ``binaries``."""
    found: dict[str, Path | None] = {}
    for b in binaries:
        r = subprocess.run(["ldd", str(b)], capture_output=True, text=True, env=env)
        for line in r.stdout.splitlines():
            m = re.match(r"\s*(\S+) => (not found|(\S+) \(0x)", line)
            if m:
                found[m.group(1)] = None if m.group(2) == "not found" else Path(m.group(3))
    return found


def carried_libraries(libs: dict[str, Path | None]) -> dict[str, Path]:
    """The libraries of ``libs`` the bundle carries; raises if one that it must carry is missing."""
    keep, missing = {}, []
    for soname, path in sorted(libs.items()):
        if SYSTEM_LIBS.match(soname) or CUDA_LIBS.match(soname) or soname.startswith("libcaffe"):
            continue
        if path is None:
            missing.append(soname)
        else:
            keep[soname] = path
    if missing:
        raise MedftError(f"ldd cannot find {', '.join(missing)}: install the Debian packages (make deps)")
    return keep


def _unpack_wheels(dest: Path, python_version: str) -> list[str]:
    wheels = dest.parent / "wheels"
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--only-binary", ":all:",
           "--python-version", python_version, "--platform", "manylinux2014_x86_64", "--platform",
           "manylinux_2_17_x86_64", "--platform", "manylinux_2_28_x86_64", "-d", str(wheels), *WHEELS]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise MedftError(f"pip could not download {', '.join(WHEELS)} for Python {python_version}:\n{r.stderr[-2000:]}")
    names = []
    for whl in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(whl) as z:
            z.extractall(dest)
        names.append(whl.name)
    shutil.rmtree(wheels)
    return names


ENV_SH = """# source me: medft with the bundled GPU build of Caffe
_b="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export MEDFT_CAFFE_GPU_ROOT="$_b/caffe"
export LD_LIBRARY_PATH="$_b/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYTHONPATH="$_b/site${PYTHONPATH:+:$PYTHONPATH}"
unset _b
"""


def make_bundle(out: Path, python_version: str = "3.12", root: Path | None = None) -> dict:
    """Write the bundle tarball ``out`` (``.tar.xz``); return what it holds."""
    from medft.engines.env import caffe_root, tool_env

    root = root or caffe_root(gpu=True)
    tools = sorted((root / "build" / "tools").glob("*.bin"))
    libcaffe = sorted((root / "build" / "lib").glob("libcaffe.so*"))
    libs = carried_libraries(shared_libraries([*tools, *libcaffe], env=tool_env(gpu=True)))
    stage = Path(tempfile.mkdtemp(prefix=".medft-bundle-", dir=Path(out).resolve().parent))
    try:
        top = stage / "medft-gpu-bundle"
        (top / "caffe" / "build").mkdir(parents=True)
        shutil.copytree(root / "build" / "lib", top / "caffe" / "build" / "lib", symlinks=True)
        shutil.copytree(root / "build" / "tools", top / "caffe" / "build" / "tools")
        for extra in ("python", "proto"):
            if (root / extra).is_dir():
                shutil.copytree(root / extra, top / "caffe" / extra)
        shutil.copy2(root / "BUILD.json", top / "caffe" / "BUILD.json")
        (top / "lib").mkdir()
        for soname, path in libs.items():
            shutil.copy2(path, top / "lib" / soname)  # follows links: the file under its soname
        wheels = _unpack_wheels(top / "site", python_version)
        (top / "env.sh").write_text(ENV_SH)
        tmp = Path(f"{out}.part")
        with tarfile.open(tmp, "w:xz", preset=6) as tar:
            tar.add(top, arcname=top.name)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return {"out": str(out), "bytes": Path(out).stat().st_size, "libraries": sorted(libs), "wheels": wheels,
            "python_version": python_version}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m medft.engines.bundle", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="gpu-bundle.tar.xz", help="the tarball to write")
    ap.add_argument("--python-version", default="3.12", help="Python of the target machine (for the wheels)")
    args = ap.parse_args(argv)
    try:
        info = make_bundle(Path(args.out), args.python_version)
    except MedftError as e:
        print(f"medft: {e}", file=sys.stderr)
        return 1
    print(f"medft: wrote {info['out']} ({info['bytes'] / 2**20:.1f} MiB): {len(info['libraries'])} libraries, "
          f"{len(info['wheels'])} wheels for Python {info['python_version']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
