"""The state of every cell of an application's grid (or all): done with its best validation AUC and
epoch, running, pending, stopped (resumes on the next `medft grid`) or failed with the first error
line and the job's log; read from the run folders, the grid's job records and Slurm's queue.
"""

from __future__ import annotations

import argparse

from medft.commands.grid import add_selection
from medft.grid.orchestrate import resolve_apps, select_cells
from medft.grid.status import show_status

HELP = "a table of every cell of the grid: pending, running, done (best val AUC, epoch), failed (error)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_selection(p)


def run(args: argparse.Namespace) -> int:
    apps = resolve_apps(args.app)
    show_status(select_cells(apps, args.configs, args.inits, args.fractions, args.seeds), args.runs)
    return 0
