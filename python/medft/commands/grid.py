"""Run the study's grid of one application (or all): every cell not yet done, then the report.

One job a cell (`medft train` then `medft predict`), after `medft prep` of each data set not yet
prepared and `medft pretrain` where fine-tuning needs the stand-in; then per application
`medft score` and `medft report` of every finished run. Done cells are skipped, a stopped one
resumes from its last snapshot, a failed one is reported with its log and the others go on.
--executor local runs the jobs here one after the other; --executor slurm submits them as job
arrays (submitit) and returns (or waits, with --wait). `medft status` shows every cell.
"""

from __future__ import annotations

import argparse

from medft import paths
from medft.apps import APP_NAMES
from medft.commands._study import add_study_arguments, study_options
from medft.commands._types import nonneg_int, positive_int
from medft.commands.train import add_seeds_argument
from medft.grid.orchestrate import EXECUTORS, resolve_apps, run_grid, select_cells
from medft.grid.slurm import SlurmResources
from medft.schedule import CONFIG_NAMES, INIT_NAMES

HELP = "run every missing cell of the study's grid, locally or on a Slurm cluster, then the report"


def time_minutes(text: str) -> int:
    """argparse type of --time: minutes, or H:MM:SS / D-HH:MM:SS as sbatch writes them."""
    try:
        days, _, clock = text.rpartition("-")
        parts = [int(p) for p in clock.split(":")]
        if len(parts) == 1:
            minutes = parts[0]
        else:
            parts = [0] * (3 - len(parts)) + parts
            minutes = parts[0] * 60 + parts[1] + (1 if parts[2] else 0)
        minutes += int(days or 0) * 24 * 60
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time limit (minutes or H:MM:SS): {text!r}") from None
    if minutes < 1:
        raise argparse.ArgumentTypeError(f"must be at least one minute, got {text!r}")
    return minutes


def sbatch_option(text: str) -> tuple[str, str]:
    """argparse type of --sbatch: KEY=VALUE, an sbatch long option without its dashes."""
    key, sep, value = text.lstrip("-").partition("=")
    if not key or not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (an sbatch option, e.g. account=mylab), got {text!r}")
    return key, value


def add_selection(p: argparse.ArgumentParser) -> None:
    """Which cells: shared by grid and status."""
    p.add_argument("app", help=f"application, or all: {', '.join(APP_NAMES)}, all")
    p.add_argument("--configs", nargs="+", default=None, metavar="CONFIG",
                   help=f"Table II configurations (default: all nine: {' '.join(CONFIG_NAMES)})")
    p.add_argument("--inits", nargs="+", default=None, metavar="INIT",
                   help=f"scratch initialisations (default: {' '.join(INIT_NAMES)}; Fig. 10)")
    p.add_argument("--fractions", nargs="+", default=None, metavar="F",
                   help="training fractions, 1 = all data (default: every reduced set of the application; "
                        "Figs. 2b, 4b, 6b)")
    p.add_argument("--runs", default=paths.RUNS_ROOT, help="root of the run folders")
    add_seeds_argument(p, "every cell once per seed (default: the default seed alone)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_selection(p)
    add_study_arguments(p)
    r = SlurmResources()
    p.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local: the jobs one after the other here; slurm: job arrays on a Slurm cluster")
    p.add_argument("--dry-run", action="store_true", help="print the jobs (and their Slurm resources); run nothing")
    p.add_argument("--wait", action="store_true", help="slurm: wait until every submitted job has ended")
    s = p.add_argument_group("Slurm (--executor slurm)")
    s.add_argument("--partition", default=r.partition, help="partition (default: the cluster's default)")
    s.add_argument("--gpus-per-job", type=nonneg_int, default=r.gpus,
                   help="GPUs of each cell and pretrain job (0: CPU; prep and report jobs get none)")
    s.add_argument("--cpus-per-job", type=positive_int, default=r.cpus, help="CPUs of each job")
    s.add_argument("--mem-gb", type=positive_int, default=r.mem_gb, help="memory of each job, GB")
    s.add_argument("--time", type=time_minutes, default=r.time_min, metavar="LIMIT",
                   help="time limit of each job, minutes or H:MM:SS; a cell that reaches it is requeued and "
                        f"resumes (default: {r.time_min} = {r.time_min // 60}:{r.time_min % 60:02d}:00)")
    s.add_argument("--array-parallelism", type=positive_int, default=r.array_parallelism,
                   help="cells of one application running at once")
    s.add_argument("--sbatch", type=sbatch_option, action="append", default=[], metavar="KEY=VALUE",
                   help="a further sbatch option, repeatable, e.g. --sbatch account=mylab --sbatch qos=high")
    p.add_argument("--poll", type=positive_int, default=10, help="--wait: seconds between looks at the queue")


def run(args: argparse.Namespace) -> int:
    cells = select_cells(resolve_apps(args.app), args.configs, args.inits, args.fractions, args.seeds)
    opts = study_options(args)
    res = SlurmResources(partition=args.partition, gpus=args.gpus_per_job, cpus=args.cpus_per_job,
                         mem_gb=args.mem_gb, time_min=args.time, array_parallelism=args.array_parallelism,
                         sbatch=tuple(args.sbatch))
    return run_grid(cells, opts, args.executor, res, dry_run=args.dry_run, wait=args.wait, poll_s=args.poll)
