"""Handcrafted polyp candidates (multi-scale blob and edge-shape cues, non-maximum suppression;
medft/prep/candidates.py) for the frames of a polyp input folder, written to its candidates.csv,
and the generator's sensitivity and false positives per frame against the masks: every FROC of
the study is capped by them. With --evaluate, only measure an existing candidates.csv.
"""

from __future__ import annotations

import argparse

from medft.commands._types import nonneg_int

HELP = "generate polyp candidates for frames that have none, and measure their recall"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("cand_app", metavar="APP", choices=["polyp"], help="polyp")
    p.add_argument("--input", required=True, help="polyp input folder (videos/<video>/frames, masks)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of the tie-break among equal responses")
    p.add_argument("--evaluate", action="store_true", help="only report the recall of the existing candidates.csv")
    p.add_argument("--force", action="store_true", help="replace an existing candidates.csv")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from medft.errors import MedftError
    from medft.prep import candidates as gen
    from medft.util.atomic import write_text_atomic
    from medft.util.csvtext import write_csv

    root = Path(args.input)
    if args.evaluate:
        summary = gen.evaluate_csv(root, progress=not args.no_progress)
    else:
        out = root / "candidates.csv"
        if out.exists() and not args.force:
            raise MedftError(f"{out} exists; pass --force to replace it (or --evaluate to measure it)")
        rows, summary = gen.candidates_for_input(root, gen.DEFAULT, args.seed, progress=not args.no_progress)
        write_csv(out, rows, gen.COLUMNS)
        summary = {"params": gen.DEFAULT.record(), "seed": args.seed, **summary}
        write_text_atomic(root / "candidates.json", json.dumps(summary, indent=1) + "\n")
        print(f"medft candidates: wrote {out} and candidates.json")
    print(f"medft candidates: {gen.describe(summary)}")
    return 0
