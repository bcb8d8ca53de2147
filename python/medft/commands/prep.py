"""Build the LMDBs of one application from its input folder (paper section VI).

    medft prep polyp --input data/polyp --out data/lmdb              # full training set
    medft prep polyp --input data/polyp --out data/lmdb --fraction 0.25
    medft prep cimt  --input data/cimt --verify                       # check the input format only
    medft prep frames --synthetic --out data/lmdb --crops 20          # synthetic input, then prep
    medft prep classify --input my_images --out data/lmdb             # your own classes (C >= 2)

Output: <out>/<app>[-f<fraction>]/ with train/val/test LMDBs, manifests, mean, splits.json and
prep.json (see data_prep/README.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from medft.apps import APP_NAMES, get_app
from medft.commands._types import nonneg_int, open_fraction, positive_int
from medft.errors import MedftError

HELP = "build the LMDBs of an application (section VI)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from medft.prep.build import PrepConfig

    p, d = parser, PrepConfig(app="", input="", out="")
    p.add_argument(
        "app",
        metavar="APP",
        help=f"one of {', '.join(APP_NAMES)} (`medft synth` writes a synthetic input set)",
    )
    p.add_argument(
        "--input",
        type=Path,
        default=None,
        help="input folder in the format of data_prep/README.md (required unless --synthetic)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output root; the dataset goes to <out>/<app>[-f<fraction>] "
        "(required except with --verify)",
    )
    p.add_argument(
        "--fraction",
        default=d.fraction,
        help="reduced training set: polyp/pe 1|0.5|0.25, frames and classify 1|0.1|0.05|0.01, cimt 1|1patient",
    )
    p.add_argument(
        "--max-patches",
        type=positive_int,
        default=None,
        help="size of the full stratified set, train + val split 80/20; reduced fractions get their share "
        "(default: the paper's: polyp 100000, pe 81000, frames 40000, cimt 200000; classify 40000)",
    )
    p.add_argument(
        "--max-test-patches",
        type=positive_int,
        default=None,
        help="cap on test patches, whole candidates/frames/pixels only (default: all)",
    )
    p.add_argument("--seed", type=nonneg_int, default=d.seed, help="seed of every random choice")
    p.add_argument(
        "--test-fraction",
        type=open_fraction,
        default=d.test_fraction,
        help="share of cases held out for test when the input has no split.csv",
    )
    p.add_argument("--force", action="store_true", help="DANGEROUS: replace an existing output")
    p.add_argument(
        "--verify",
        action="store_true",
        help="only check the input folder against the format, naming the file and rule broken",
    )
    p.add_argument(
        "--synthetic",
        action="store_true",
        help="write the synthetic input set to <out>/synthetic/<app> (if missing) and prepare it",
    )
    p.add_argument(
        "--crops",
        type=positive_int,
        default=None,
        help="frames, classify: random 227x227 crops per training frame or image (default: frames 200, the "
        "paper's; classify 10)",
    )
    p.add_argument(
        "--test-crops",
        type=positive_int,
        default=None,
        help="frames, classify: random crops per test frame or image (default: same as --crops)",
    )
    p.add_argument(
        "--mirror",
        action="store_true",
        help="classify: flip every second crop left-right, where a mirrored image keeps its class",
    )
    p.add_argument(
        "--window",
        type=positive_int,
        default=None,
        help="cimt: native patch window in pixels, resampled to 227 (default: 32)",
    )
    p.add_argument(
        "--bg-margin",
        type=nonneg_int,
        default=None,
        help="cimt: background pixels lie more than this many rows from both interfaces; must exceed the "
        "interface band of 3 rows (default: 8)",
    )
    p.add_argument(
        "--cases",
        type=positive_int,
        default=None,
        help="synth: videos/patients (default: per app, see data_prep/README.md)",
    )
    p.add_argument("--per-case", type=positive_int, default=None,
                   help="synth: frames/ROIs/emboli per case (default: per app)")
    p.add_argument("--test-views", type=positive_int, default=None,
                   help="polyp/pe: the first N augmented patches of each test candidate (smallest scale, "
                        "unshifted, N orientations) instead of all; a smaller test-time average that makes "
                        "larger test sets affordable (default: all, the paper's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def app_options(args: argparse.Namespace) -> dict:
    """The reader options of ``load`` that the application takes (``App.prep_options``), from the flags given."""
    given = {k: getattr(args, k) for k in get_app(args.app).prep_options}
    return {k: v for k, v in given.items() if v is not None and v is not False}


def run(args: argparse.Namespace) -> int:
    get_app(args.app)
    from medft.prep import build as B

    if args.synthetic:
        if args.out is None:
            raise MedftError("--synthetic needs --out DIR")
        from medft.prep.synthetic import ensure_synthetic, synth_size

        args.input = ensure_synthetic(args.app, args.out, synth_size(args.app, args.cases, args.per_case, args.seed))
    if args.input is None:
        raise MedftError("--input DIR is required (or --synthetic)")
    if args.out is None and not args.verify:
        raise MedftError("--out DIR is required")
    cfg = B.PrepConfig(
        app=args.app,
        input=str(args.input),
        out=str(args.out or ""),
        fraction=args.fraction,
        max_patches=args.max_patches,
        max_test_patches=args.max_test_patches,
        test_views=args.test_views,
        seed=args.seed,
        test_fraction=args.test_fraction,
        force=args.force,
        progress=not args.no_progress,
        options=app_options(args),
    )
    if args.verify:  # the checks prep makes before rendering, with the same arguments
        for line in B.check_input(cfg):
            print(f"medft prep {args.app}: {args.input}: OK: {line}")
        return 0
    print("medft prep: " + json.dumps({k: v for k, v in vars(cfg).items() if k != "progress"}), file=sys.stderr)
    record = B.build(cfg)
    print(B.summary(record))
    return 0
