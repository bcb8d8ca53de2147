"""Predict the test LMDB with a run's best snapshot; aggregate per candidate or frame.

Writes test_probs.npy and test_patches.csv (per patch, aligned with the test manifest) and
predictions.csv (case, unit, lesion, label, score: the mean positive-class probability of a
unit's patches), the input of `medft score`.
"""

from __future__ import annotations

import argparse

from medft.commands._types import positive_int
from medft.commands.train import add_common, dataset_folder, seeds_of
from medft.predict import handcrafted_predictions, predict_run
from medft.schedule import variant_name
from medft.solver import TEST_BATCH

HELP = "per-patch probabilities of a trained run, aggregated to candidates/frames"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common(p)
    p.description = (p.description or "") + (" CONFIG 'handcrafted' writes runs/<app>/handcrafted/"
                                             "predictions.csv from the candidate generator's scores.")
    p.add_argument("--batch", type=positive_int, default=TEST_BATCH,
                   help="patches per forward pass (BVLC AlexNet's test batch)")
    p.add_argument("--cimt-stride", type=positive_int, default=1,
                   help="cimt: run the net on every Nth ROI row/column and interpolate (1 = every pixel, as the paper)")


def run(args: argparse.Namespace) -> int:
    if args.config == "handcrafted":
        if handcrafted_predictions(args.app, dataset_folder(args), args.runs) is None:
            print(f"medft predict: {args.app} input has no candidate scores; no handcrafted baseline")
        return 0
    for seed in seeds_of(args):
        predict_run(args.app, variant_name(args.config, args.init), dataset_folder(args), runs=args.runs,
                    fraction=args.fraction, engine_name=args.engine, batch=args.batch,
                    cimt_stride=args.cimt_stride, gpu=args.gpu, force=args.force, seed=seed)
    return 0
