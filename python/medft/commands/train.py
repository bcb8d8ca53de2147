"""Train one cell of the study on real Caffe: an application x a Table II configuration.

Fine-tuning configurations start from pretrained AlexNet weights (BVLC's if `make weights`
fetched them, else medft's offline stand-in from `medft pretrain`); scratch from random
weights (--init gaussian as the paper, or xavier/msra for Fig. 10). Validation AUC after
every epoch selects best.caffemodel; rerunning resumes from the last snapshot.
"""

from __future__ import annotations

import argparse

from medft import paths
from medft.apps import APP_NAMES
from medft.chain import PAPER_INIT
from medft.commands._engine import add_engine_arguments
from medft.commands._types import nonneg_int, positive_int
from medft.schedule import CONFIG_NAMES, INIT_NAMES
from medft.solver import MAX_EPOCHS, RANDOM_SEED, TEST_BATCH, TRAIN_BATCH, training_seeds
from medft.train.driver import train
from medft.train.options import PATIENCE, TrainOptions

HELP = "train one app x configuration with real Caffe; keep the best validation-AUC snapshot"


def add_common(p: argparse.ArgumentParser) -> None:
    """Arguments shared by train and predict: which run, on which data."""
    p.add_argument("app", help=f"application: {', '.join(APP_NAMES)}")
    p.add_argument("config", help=f"Table II configuration: {', '.join(CONFIG_NAMES)}")
    p.add_argument("--init", default=PAPER_INIT, help=f"scratch initialisation: {', '.join(INIT_NAMES)}")
    p.add_argument("--data", default=paths.DATA_ROOT,
                   help="folder given to `medft prep --out` (the app's dataset is read from <data>/<app>)")
    p.add_argument("--fraction", default="1", help="reduced training set prepared with `medft prep --fraction`")
    p.add_argument("--runs", default=paths.RUNS_ROOT, help="root of the run folders (<runs>/<app>/<variant>)")
    add_engine_arguments(p)
    p.add_argument("--force", action="store_true", help="redo a finished run (deletes its folder first)")
    seed = p.add_mutually_exclusive_group()
    seed.add_argument("--seed", type=nonneg_int, default=None,
                      help=f"one training seed: Caffe's random_seed (default: {RANDOM_SEED}); a run folder of "
                           "another seed is named <variant>[-<fraction>]-seed<seed>")
    add_seeds_argument(seed)


def seeds_type(text: str) -> tuple[int, ...]:
    """argparse type of --seeds (:func:`medft.solver.training_seeds`)."""
    try:
        return training_seeds(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_seeds_argument(p, what: str = "train one run per seed") -> None:
    """``--seeds N`` or ``--seeds 1,2,3``: shared by train, predict, grid, demo and report."""
    p.add_argument("--seeds", type=seeds_type, default=None, metavar="N|S1,S2,..",
                   help=f"training seeds: a count N (the N seeds from {RANDOM_SEED} on) or a list; {what}")


def seeds_of(args: argparse.Namespace) -> tuple[int, ...]:
    """The training seeds a command line names (--seed, --seeds, else the default seed)."""
    if getattr(args, "seeds", None):
        return tuple(args.seeds)
    return (args.seed if getattr(args, "seed", None) is not None else RANDOM_SEED,)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common(p)
    p.add_argument("--weights", default=None,
                   help="pretrained caffemodel for ft-* configurations (None: BVLC AlexNet if present, "
                        "else the `medft pretrain` stand-in)")
    p.add_argument("--batch", type=positive_int, default=TRAIN_BATCH, help="training batch size (BVLC AlexNet's)")
    p.add_argument("--test-batch", type=positive_int, default=TEST_BATCH, help="validation batch size (BVLC AlexNet's)")
    p.add_argument("--max-epochs", type=positive_int, default=MAX_EPOCHS, help="stop after this many epochs")
    p.add_argument("--patience", type=positive_int, default=PATIENCE,
                   help="stop after this many epochs without a better validation AUC")


def dataset_folder(args: argparse.Namespace):
    from medft.paths import dataset_dir

    return dataset_dir(args.data, args.app, args.fraction)


def run(args: argparse.Namespace) -> int:
    from medft.schedule import get_config, variant_name

    get_config(args.config)
    variant_name(args.config, args.init)
    from medft.weights import default_pretrained

    weights = args.weights if args.weights else default_pretrained(args.config)
    for seed in seeds_of(args):
        opts = TrainOptions(app=args.app, config=args.config, data=str(dataset_folder(args)), runs=args.runs,
                            init=args.init, fraction=args.fraction, weights=weights, engine=args.engine,
                            gpu=args.gpu, train_batch=args.batch, test_batch=args.test_batch,
                            max_epochs=args.max_epochs, patience=args.patience, seed=seed, force=args.force)
        train(opts)
    return 0
