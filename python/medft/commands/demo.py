"""Run a small version of the study on the embedded synthetic default, end to end, offline.

Synthetic data -> prep -> (stand-in) pretrained weights -> train scratch, ft-fc8 and ft-conv1
(scratch and ft-conv1 once per training seed, three by default) -> predict -> score with 95% CIs
-> report with figures and the answer over seeds. About 12 minutes on 2 CPU cores at --scale 1;
finished stages are skipped on a rerun.
"""

from __future__ import annotations

import argparse

from medft.apps import APP_NAMES
from medft.chain import command_line
from medft.commands._engine import gpu_index
from medft.commands._types import positive_float
from medft.commands.train import add_seeds_argument
from medft.demo import DEMO_SEEDS, DemoPlan, commands, run_demo

HELP = "the main job: a small study on synthetic data, from data to report (about 10 min)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = DemoPlan()
    p.add_argument("--app", default=d.app, help=f"application: {', '.join(APP_NAMES)}")
    p.add_argument("--out", default=d.out, help="folder for the demo's data, runs and report")
    p.add_argument("--scale", type=positive_float, default=d.scale,
                   help="multiplies patches, test candidates and epochs (1: ~10 min on 2 cores)")
    p.add_argument("--configs", nargs="+", default=list(d.configs), help="Table II configurations to train")
    p.add_argument("--gpu", type=gpu_index, default=None, metavar="N",
                   help="compute on GPU N with the GPU build (make caffe-gpu); default: the CPU")
    add_seeds_argument(p, "scratch and ft-conv1 are trained once per seed at a smaller per-seed budget "
                          f"(default: {','.join(map(str, DEMO_SEEDS))}; 1: the default seed at the full budget)")
    p.add_argument("--dry-run", action="store_true", help="print the command lines of the stages still to run; "
                                                          "run nothing")


def run(args: argparse.Namespace) -> int:
    from medft.schedule import get_config

    for c in args.configs:
        get_config(c)
    plan = DemoPlan(app=args.app, out=args.out, scale=args.scale, configs=tuple(args.configs), gpu=args.gpu,
                    seeds=tuple(args.seeds or DEMO_SEEDS))
    if args.dry_run:
        for argv in commands(plan):
            print(command_line(argv))
        return 0
    run_demo(plan)
    return 0
