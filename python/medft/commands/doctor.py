"""Report the Caffe this toolkit uses: version, mode, path, BLAS, and the tools present."""

from __future__ import annotations

import argparse
import json

from medft import caffe_build
from medft.errors import MedftError

HELP = "what Caffe this is: version, mode (CPU/GPU), install path, BLAS"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def collect() -> dict:
    """Facts about the Caffe build and the pycaffe import (raises if not built)."""
    from medft.caffe_env import build_info, caffe_root, import_caffe

    root = caffe_root()
    info = build_info()
    caffe = import_caffe()
    from medft.caffe_env import caffe_tool

    tools = {t: str(caffe_tool(t)) for t in caffe_build.TOOLS}
    return {
        "caffe_version": caffe.__version__,
        "source": info["sdist"] + f" ({info['upstream']})",
        "mode": info["mode"],
        "gpu_available": False if info["mode"] == "CPU_ONLY" else None,
        "path": str(root),
        "pycaffe": caffe.__file__,
        "blas": info["blas"],
        "build_key": info["key"],
        "tools": tools,
    }


def run(args: argparse.Namespace) -> int:
    try:
        report = collect()
    except MedftError as e:
        print(f"Caffe: not built ({e})")
        print(f"expected at: {caffe_build.install_dir()}")
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for k, v in report.items():
        if k != "tools":
            print(f"{k:14s} {v}")
    for t, p in report["tools"].items():
        print(f"{'tool':14s} {t}: {p}")
    return 0
