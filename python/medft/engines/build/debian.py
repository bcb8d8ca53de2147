"""The Debian packages a Caffe build needs: which are missing, and installing them (root only)."""

from __future__ import annotations

import os
import shutil
import subprocess

from medft.errors import MedftError

#: Debian packages the build needs (measured on Debian 12).
DEBIAN_PACKAGES = (
    "build-essential libboost-system-dev libboost-thread-dev libboost-filesystem-dev "
    "libboost-python-dev libboost-regex-dev libprotobuf-dev protobuf-compiler "
    "libgoogle-glog-dev libgflags-dev libhdf5-dev liblmdb-dev libleveldb-dev libsnappy-dev "
    "libopencv-dev libopenblas-dev python3-dev python3-numpy python3-venv"
).split()

#: the GPU build's packages: the same without OpenCV
GPU_DEBIAN_PACKAGES = tuple(p for p in DEBIAN_PACKAGES if p != "libopencv-dev")


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


def install_debian_packages(packages: list[str], purpose: str = "Caffe") -> None:
    """apt-get install ``packages`` (root only); raise with the exact command otherwise."""
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    if os.geteuid() != 0:
        raise MedftError(f"{purpose} needs these Debian packages, which are not installed:\n  "
                         + " ".join(packages) + "\nInstall them with:\n  sudo " + " ".join(cmd))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print(f"medft: installing {len(packages)} Debian packages: {' '.join(packages)}", flush=True)
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
