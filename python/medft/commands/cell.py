"""Run one cell of the study from data to scores: an application x a Table II configuration.

The chain of stages, each a `medft` command a person could type: `medft prep` (unless the data
set is prepared), `medft pretrain` (a fine-tuning cell without pretrained weights), `medft train`,
`medft predict`, then `medft score` of every run folder of the application. `make <app>-<config>`
runs this command; `medft grid` and `medft demo` build their commands with the same functions
(:mod:`medft.chain`). --dry-run prints the command lines and runs nothing.
"""

from __future__ import annotations

import argparse

from medft import paths
from medft.apps import APP_NAMES
from medft.chain import Cell, cell_commands, command_line, run_commands
from medft.commands._study import add_study_arguments, study_options
from medft.commands._types import nonneg_int
from medft.commands.train import add_seeds_argument, seeds_of
from medft.schedule import CONFIG_NAMES, INIT_NAMES, PAPER_INIT

HELP = "one cell of the study: prep, pretrain, train, predict and score in turn (--dry-run prints them)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("app", help=f"application: {', '.join(APP_NAMES)}")
    p.add_argument("config", help=f"Table II configuration: {', '.join(CONFIG_NAMES)}")
    p.add_argument("--init", default=PAPER_INIT, help=f"scratch initialisation: {', '.join(INIT_NAMES)}")
    p.add_argument("--fraction", default="1", help="reduced training set (`medft prep --fraction`)")
    p.add_argument("--runs", default=paths.RUNS_ROOT, help="root of the run folders (<runs>/<app>/<variant>)")
    seed = p.add_mutually_exclusive_group()
    seed.add_argument("--seed", type=nonneg_int, default=None,
                      help="one training seed (default: medft train's); its run folder ends in -seed<seed>")
    add_seeds_argument(seed, "the cell once per seed")
    add_study_arguments(p)
    p.add_argument("--dry-run", action="store_true", help="print the command lines; run nothing")


def run(args: argparse.Namespace) -> int:
    from medft.apps import check_fraction, get_app
    from medft.schedule import check_init, get_config

    get_app(args.app), get_config(args.config), check_init(args.init), check_fraction(args.app, args.fraction)
    cell = Cell(args.app, args.config, args.init, args.fraction, seeds_of(args))
    cmds = cell_commands(cell, study_options(args))
    if args.dry_run:
        for argv in cmds:
            print(command_line(argv))
        return 0
    run_commands(cmds, f"cell {args.app} {args.config}", f"medft cell {args.app} {args.config} ...")
    return 0
