"""Write a public data set or your own folder as an application's input layout.

    medft import medmnist pathmnist.npz --out inputs/pathmnist     # MedMNIST, its split kept
    medft import folder my_images --out inputs/mine                # checked, linked or copied

Then ``medft prep <app> --input <out> --out data`` (the app is printed). The output holds the
layout of data_prep/README.md and ``import.json``: the source, its size and SHA-256, counts and
every decision taken.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from medft.importers import IMPORTERS, get_importer

HELP = "write MedMNIST or your own image folder as an application's input layout"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", metavar="DATASET", help=f"one of {', '.join(IMPORTERS)}")
    p.add_argument("source", type=Path, help="the data set's file or folder")
    p.add_argument("--out", type=Path, required=True, help="input folder to write (REQUIRED)")
    p.add_argument("--force", action="store_true", help="replace an existing --out that medft wrote")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    mod = get_importer(args.dataset)
    record = mod.run(args.source, args.out, force=args.force, progress=not args.no_progress)
    print(f"medft import {args.dataset}: {args.source} -> {record['out']} ({mod.APP} layout: {mod.LAYOUT})")
    for line in record.get("decisions", []):
        print(f"  - {line}")
    print(f"next: medft prep {mod.APP} --input {record['out']} --out data")
    return 0
