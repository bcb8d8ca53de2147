"""Score the run folders of one application: curves, 95% intervals and pairwise tables.

Reads runs/<app>/<config>[-<fraction>]/predictions.csv (polyp, pe, frames) or
cimt_maps/<roi>.npz (cimt), plus lesions.csv and cases.csv of the data folder for the
detection apps (formats: eval/README.md).  Writes, under --out: summary.json,
operating_points.csv|md, comparisons.csv|md and per run curve.csv, band.csv,
summary.json (or roi_errors.csv for cimt).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from medft import paths
from medft.apps import APP_NAMES, APPS, get_app
from medft.commands._types import nonneg_int, positive_int
from medft.evaluate import bootstrap, froc_binormal, pipeline
from medft.evaluate.cimt import SNAKE

HELP = "FROC/ROC/box-plot statistics with 95% CIs and pairwise comparisons"


def _floats(text: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if any(v < 0 for v in vals):
        raise argparse.ArgumentTypeError(f"operating points must be >= 0, got {text!r}")
    return vals


def add_common(p: argparse.ArgumentParser) -> None:
    """Arguments shared by ``medft score`` and ``medft report``."""
    p.add_argument("app", help=f"application: {', '.join(APP_NAMES)} (required)")
    p.add_argument("--runs", type=Path, default=Path(paths.RUNS_ROOT),
                   help="root of the run folders, as for train and predict: <runs>/<app>/<variant>")
    p.add_argument("--data", type=Path, default=Path(paths.DATA_ROOT),
                   help="root of the prepared data, as for train and predict: lesions.csv and cases.csv "
                        "of <data>/<app> (polyp, pe)")
    p.add_argument("--configs", nargs="+", default=None, metavar="NAME",
                   help="run folders to score, e.g. scratch ft-conv1 scratch-50 "
                        "(default: every folder found)")
    p.add_argument("--out", type=Path, required=True, help="output folder (required)")
    curves = [a for a in APPS.values() if a.operating_points]  # the applications scored by a curve
    defaults = ", ".join(f"{a.name} {','.join(f'{v:g}' for v in a.operating_points)}" for a in curves)
    p.add_argument("--operating-points", type=_floats, default=None, metavar="X1,X2,...",
                   help=f"FP rates to read sensitivities at (default per app: {defaults})")
    p.add_argument("--n-boot", type=positive_int, default=bootstrap.N_BOOT,
                   help="bootstrap resamples, and permutations of the paired tests")
    p.add_argument("--seed", type=nonneg_int, default=bootstrap.SEED, help="bootstrap seed")
    p.add_argument("--resample", choices=("case", "unit"), default=None,
                   help="bootstrap unit: case (video/patient) or unit (candidate/frame) "
                        f"(default per app: {', '.join(f'{a.name} {a.resample}' for a in curves)})")
    p.add_argument("--n-bins", type=positive_int, default=froc_binormal.N_BINS,
                   help="score categories of the binormal FROC fit")
    p.add_argument("--snake-alpha", type=float, default=SNAKE["alpha"],
                   help="cimt snake elasticity")
    p.add_argument("--snake-beta", type=float, default=SNAKE["beta"],
                   help="cimt snake rigidity")
    p.add_argument("--force", action="store_true",
                   help="overwrite existing outputs in --out (dangerous; default: refuse)")


def common_kwargs(args: argparse.Namespace) -> dict:
    """Keyword arguments of :func:`pipeline.score_app` from parsed arguments."""
    get_app(args.app)
    return {"data_dir": paths.dataset_dir(args.data, args.app), "configs": args.configs,
            "options": pipeline.Options(args.operating_points, args.n_boot, args.seed, 0.95, args.resample,
                                        args.n_bins),
            "snake": {"alpha": args.snake_alpha, "beta": args.snake_beta}, "force": args.force}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common(p)


def run(args: argparse.Namespace) -> int:
    kw = common_kwargs(args)
    scores = pipeline.score_app(args.app, paths.app_runs(args.runs, args.app), args.out, **kw)
    print(f"medft score {args.app}: {len(scores.runs)} run folders -> {args.out}")
    if "clusters" in scores.data_summary:
        print(f"  independent units: {scores.data_summary['clusters']}")
    if scores.data_summary.get("caveat"):
        print(f"  caveat: {scores.data_summary['caveat']}")
    for r in scores.runs:
        print(f"  {r.run.name}")
    return 0
