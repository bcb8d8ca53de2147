"""The study's flags shared by `medft grid` and `medft cell`: the data source and the training budget,
parsed into :class:`medft.chain.StudyOptions` (their defaults are the library's)."""

from __future__ import annotations

import argparse

from medft.chain import StudyOptions
from medft.commands._engine import add_engine_arguments
from medft.commands._types import positive_int


def add_study_arguments(p: argparse.ArgumentParser) -> None:
    """--data, --input, prep's sizes, the training budget, the stand-in's budget, --engine and --gpu."""
    d = StudyOptions()
    p.add_argument("--data", default=d.data, help="root of the prepared data sets (<data>/<app>[-f<fraction>])")
    p.add_argument("--input", default=None,
                   help="input folder in data_prep/README.md's format, or a folder of them named by application "
                        "(default: the synthetic input set)")
    p.add_argument("--max-patches", type=positive_int, default=None,
                   help="prep: size of the full stratified set (default: the paper's)")
    p.add_argument("--max-test-patches", type=positive_int, default=None,
                   help="prep: cap on test patches (default: all)")
    p.add_argument("--batch", type=positive_int, default=d.batch, help="training batch size (BVLC AlexNet's)")
    p.add_argument("--test-batch", type=positive_int, default=d.test_batch,
                   help="validation batch size (BVLC AlexNet's)")
    p.add_argument("--max-epochs", type=positive_int, default=d.max_epochs, help="train: stop after this many epochs")
    p.add_argument("--patience", type=positive_int, default=d.patience,
                   help="train: stop after this many epochs without a better validation AUC")
    p.add_argument("--pretrain-iterations", type=positive_int, default=None,
                   help="the stand-in's SGD iterations, when it must be made (default: medft pretrain's)")
    p.add_argument("--pretrain-images", type=positive_int, default=None,
                   help="the stand-in's synthetic images (default: medft pretrain's)")
    add_engine_arguments(p)


def study_options(args: argparse.Namespace) -> StudyOptions:
    """The :class:`StudyOptions` of parsed :func:`add_study_arguments` flags (and ``--runs``)."""
    return StudyOptions(data=args.data, runs=args.runs, input=args.input, max_patches=args.max_patches,
                        max_test_patches=args.max_test_patches, batch=args.batch, test_batch=args.test_batch,
                        max_epochs=args.max_epochs, patience=args.patience, engine=args.engine, gpu=args.gpu,
                        pretrain_iterations=args.pretrain_iterations, pretrain_images=args.pretrain_images)
