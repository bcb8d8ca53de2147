"""Write the embedded synthetic data set of an application in its documented input format:
colonoscopy-like frames with polyps, masks and candidates; CT-like volumes with vessels and emboli;
informative vs blurred frames; ultrasound-like CIMT ROIs with two interfaces. Formats: data_prep/README.md.
"""

from __future__ import annotations

import argparse

from medft.apps import APP_NAMES
from medft.commands._types import nonneg_int, positive_int

HELP = "write the synthetic input set of an application"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("synth_app", metavar="APP", nargs="?", default="all",
                   help=f"{', '.join(APP_NAMES)} or all")
    p.add_argument("--out", required=True, help="folder that receives <out>/<app>/ (REQUIRED)")
    p.add_argument("--cases", type=positive_int, default=None,
                   help="videos/patients (None: per app, see data_prep/README.md)")
    p.add_argument("--per-case", type=positive_int, default=None, help="frames/ROIs/emboli per case (None: per app)")
    from medft.prep.synthetic.io import SynthSize

    p.add_argument("--seed", type=nonneg_int, default=SynthSize().seed, help="seed of the generator")
    p.add_argument("--force", action="store_true", help="replace an existing synthetic set")


def run(args: argparse.Namespace) -> int:
    from medft.apps import get_app
    from medft.prep.synthetic import synth_size, write_synthetic

    apps = APP_NAMES if args.synth_app == "all" else (get_app(args.synth_app).name,)
    for app in apps:
        path = write_synthetic(app, args.out, synth_size(app, args.cases, args.per_case, args.seed), force=args.force)
        print(f"medft synth: wrote {path}")
    return 0
