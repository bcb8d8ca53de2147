"""Convert a public data set as it is distributed, a MedMNIST file or your own image folder into the
input layout of `medft prep` (data_prep/README.md), with an import record (import.json: every input
file's size and SHA-256, counts, decisions). Polyp sets get candidates from `medft candidates polyp`'s
generator. Nothing is written unless the whole import succeeds. Data sets, licences and decisions:
docs/public-datasets.md and docs/your-own-data.md.
"""

from __future__ import annotations

import argparse

HELP = "convert a public data set, a MedMNIST file or an image folder into an input folder of `medft prep`"


def _epilog() -> str:
    from medft.importers import IMPORTERS, importer

    return "data sets:\n" + "\n".join(f"  {n:16s} {importer(n).DESCRIPTION}" for n in IMPORTERS)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from medft.importers import IMPORTERS

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = _epilog()
    p.add_argument("dataset", metavar="DATASET", choices=list(IMPORTERS), help=", ".join(IMPORTERS))
    p.add_argument("source", metavar="SOURCE",
                   help="the data set's folder as downloaded and unpacked (medmnist: the .npz file)")
    p.add_argument("--out", required=True,
                   help="the input folder to write (REQUIRED; then `medft prep APP --input OUT`)")
    p.add_argument("--force", action="store_true", help="replace an existing import at --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from medft.importers import importer

    mod = importer(args.dataset)
    record = mod.run(Path(args.source), Path(args.out), force=args.force, progress=not args.no_progress)
    print(f"medft import: {args.dataset} -> {args.out} ({mod.APP}): {json.dumps(record['counts'])}")
    if "candidates" in record:
        from medft.prep.candidates import describe

        print(f"medft import: candidates: {describe(record['candidates'])}")
    for line in record.get("decisions", []):
        print(f"medft import:   - {line}")
    print(f"medft import: next: medft prep {mod.APP} --input {args.out} --out <data root>")
    return 0
