"""Score an application and write its figures (PNG, PDF, CSV beside each) and report.md.

Runs the same scoring as `medft score` into --out, then draws the paper's figures for the
application (FROC/ROC panels (a) and (b) with 95% CI error bars, CIMT box plots and
confidence maps, convergence curves from each run's log.csv) and writes report.md.
Refuses to overwrite an existing report.md without --force.
"""

from __future__ import annotations

import argparse

from medft import paths
from medft.commands._types import nonneg_int
from medft.commands.score import add_common, common_kwargs
from medft.commands.train import add_seeds_argument
from medft.evaluate import report

HELP = "figures (PNG/PDF) and a Markdown report of an application"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common(p)
    p.add_argument("--figure-configs", nargs="+", default=None, metavar="NAME",
                   help="run folders drawn in panel (a) (default: all full-data folders, or a "
                        f"representative subset {', '.join(report.PANEL_A)} when there are more than 6)")
    add_seeds_argument(p, "report the run folders of these training seeds (default: every seed found)")
    p.add_argument("--maps", type=nonneg_int, default=3,
                   help="cimt: number of ROIs drawn as Fig. 8 confidence maps")


def command_line(args: argparse.Namespace) -> str:
    """The resolved command (every option, defaults included) as a shell line for the report."""
    parts = ["medft report", args.app]
    for key, val in sorted(vars(args).items()):
        if key in ("app", "stage") or key.startswith("_") or val is None or val is False:
            continue
        flag = "--" + key.replace("_", "-")
        if val is True:
            parts.append(flag)
        elif isinstance(val, list | tuple):
            parts.append(f"{flag} " + (",".join(map(str, val)) + ("," if key == "seeds" and len(val) == 1 else "")
                                       if key in ("operating_points", "seeds") else " ".join(map(str, val))))
        else:
            parts.append(f"{flag} {val}")
    return " ".join(parts)


def run(args: argparse.Namespace) -> int:
    kw = common_kwargs(args)
    path = report.make_report(args.app, paths.app_runs(args.runs, args.app), args.out,
                              figure_configs=args.figure_configs,
                              n_maps=args.maps, command=command_line(args), seeds=args.seeds, **kw)
    print(f"medft report {args.app}: wrote {path}")
    return 0
