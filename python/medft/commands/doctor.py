"""Report the Caffe builds this toolkit uses: version, mode, path, BLAS, tools, and the GPU."""

from __future__ import annotations

import argparse
import json

from medft.commands._types import nonneg_int
from medft.engines.doctor import report

HELP = "which Caffe builds are installed (CPU, GPU), their tools, and the GPU: name, compute capability, CUDA, cuDNN"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--gpu", type=nonneg_int, default=0, metavar="N", help="the GPU to describe")


def run(args: argparse.Namespace) -> int:
    rep = report(args.gpu)
    if args.json:
        print(json.dumps(rep, indent=2))
    else:
        for name in ("cpu", "gpu"):
            b = rep["builds"][name]
            print(f"{name.upper()} build: " + ("not built: " + b["error"] if "error" in b else
                                                f"{b['caffe_version']}"))
            for k, v in b.items():
                if k not in ("error", "tools", "caffe_version", "source", "mode"):
                    print(f"  {k:14s} {v}")
        g = rep["gpu"]
        print(f"GPU {g['gpu']}: " + (g["error"] if "error" in g else
                                     f"{g.get('name')}, compute capability {g.get('compute_capability')}, "
                                     f"{g.get('memory_gib')} GiB"))
        for k in ("cuda_driver", "cuda_runtime", "cudnn"):
            if k in g:
                print(f"  {k:14s} {g[k]}")
    return 0 if "error" not in rep["builds"]["cpu"] or "error" not in rep["builds"]["gpu"] else 1
