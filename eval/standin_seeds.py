"""The demo's answer with stand-ins of other seeds: how much of the answer is the stand-in's draw.

For each stand-in seed, ``medft pretrain --seed S`` trains a stand-in with the default recipe; the
demo's fine-tuned cells are trained again from it (every training seed, the demo's budget, the demo's
data), the demo's own scratch and handcrafted runs are linked beside them, and ``medft score`` and
``medft report`` write the answer. Run it after ``make demo``:

    python eval/standin_seeds.py --demo demo --out standin-seeds --seeds 2017,2018

Each seed's report is ``<out>/<seed>/report/report.md``; the answers are printed at the end and
written to ``<out>/answers-<schedule>.md``. docs/stand-in.md quotes a measured run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from medft import chain, paths
from medft.apps import get_app
from medft.demo import DemoPlan, answer_lines
from medft.pretrain import SCHEDULES
from medft.util.atomic import write_text_atomic


def medft(argv: list[str]) -> None:
    """Run one medft stage, printing its command line; stop on failure."""
    print(f"\n[{time.strftime('%H:%M:%S')}] medft {' '.join(argv)}", flush=True)
    subprocess.run([sys.executable, "-m", "medft.cli", *argv], check=True)


def one_seed(plan: DemoPlan, seed: int, schedule: str, out: Path) -> list[str]:
    """Pretrain the stand-in of ``seed`` (learning-rate ``schedule``), fine-tune the demo's pretrained
    cells from it, score and report against the demo's scratch runs; return the report's answer lines."""
    folder = out / (str(seed) if schedule == SCHEDULES[0] else f"{seed}-{schedule}")
    weights = folder / f"standin-{seed}.caffemodel"
    if not weights.is_file():
        medft(["pretrain", "--seed", str(seed), "--schedule", schedule, "--out", str(weights)])
    opts = replace(plan.options(), runs=str(folder / "runs"))
    mine, demo_runs = paths.app_runs(opts.runs, plan.app), paths.app_runs(plan.runs, plan.app)
    mine.mkdir(parents=True, exist_ok=True)
    for run in demo_runs.iterdir():  # scratch and the handcrafted baseline are the demo's own runs
        if run.is_dir() and (run.name.startswith("scratch") or run.name == "handcrafted"):
            link = mine / run.name
            if not link.exists():
                link.symlink_to(run.resolve(), target_is_directory=True)
    for cell in (c for c in plan.cells() if c.pretrained):
        medft([*chain.train_argv(cell, opts), "--weights", str(weights)])
        medft(chain.predict_argv(cell, opts))
    points = get_app(plan.app).demo_operating_points
    medft(chain.score_argv(plan.app, opts, points))
    report = folder / paths.REPORT
    medft(chain.report_argv(plan.app, opts, report, points))
    return answer_lines(report / paths.REPORT_PAGE)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--demo", default="demo", help="a finished `make demo` folder (its data and scratch runs)")
    p.add_argument("--out", default="standin-seeds", help="where the stand-ins, runs and reports go")
    p.add_argument("--seeds", default="2017,2018", help="stand-in seeds (the demo's stand-in is 2016)")
    p.add_argument("--schedule", default=SCHEDULES[0], choices=SCHEDULES, help="the stand-in's learning rate "
                   "(medft pretrain --schedule); results of another than the default go to <out>/<seed>-<schedule>")
    a = p.parse_args()
    plan, out = DemoPlan(out=a.demo), Path(a.out)
    answers = []
    for seed in (int(s) for s in a.seeds.split(",") if s):
        answers += [f"### Stand-in seed {seed}, schedule {a.schedule}", *one_seed(plan, seed, a.schedule, out)[1:], ""]
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / f"answers-{a.schedule}.md", "\n".join(answers) + "\n")
    print("\n" + "\n".join(answers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
