"""The main job on the embedded default: a small version of the study, end to end, offline.

For one application (default polyp) it runs, as separate ``medft`` stages so every step is a
command a person could type: synthetic input data -> `medft prep` (all the training data and the
smallest reduced set) -> pretrained weights (BVLC AlexNet if `make weights` fetched it, else the
offline stand-in of `medft pretrain`) -> `medft train` for scratch, ft-fc8 and ft-conv1 with all
the data and scratch and ft-conv1 with the smallest set -> `medft predict` -> `medft score` ->
`medft report`, whose opening answers the paper's question. ``scale`` multiplies patches, epochs
and test candidates. Every stage skips work that is already done, so a rerun is quick.

One training run is one sample of what SGD gives, so the cells that decide the answer (scratch and
ft-conv1, with all the data and with the smallest set) are trained once per training seed
(:data:`DEMO_SEEDS`, three) at a smaller per-seed budget; ft-fc8 once. The report's answer is
about the means over seeds and says in how many seeds it holds, each seed's comparison beside it.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from medft import paths
from medft.errors import MedftError
from medft.solver import RANDOM_SEED, training_seeds

DEMO_CONFIGS = ("scratch", "ft-fc8", "ft-conv1")
#: the configurations the demo also trains on the application's smallest reduced training set:
#: the paper's question is sharpest there (Figs. 2b, 4b, 6b)
REDUCED_CONFIGS = ("scratch", "ft-conv1")
#: Per-application extras of the demo's synthetic input and prep. Detection apps get many test
#: cases (about 100 test polyps) and average a few of each candidate's 120 (polyp) or 54 (pe) views
#: (:data:`VIEWS_APPS`, ``sizes()["test_views"]``), so that their bootstrap intervals are near +-0.1
#: and prediction stays affordable on a CPU; frames
#: gets more, smaller videos and fewer crops per frame; cimt more patients and ROIs; classify enough
#: images per class (180 in the training pool) that its smallest reduced set (1%) keeps two of each.
DEMO_PREP = {"polyp": ["--cases", "40", "--per-case", "6"],
             "pe": ["--cases", "24", "--per-case", "3"],
             "frames": ["--cases", "12", "--per-case", "8", "--crops", "20", "--test-crops", "10"],
             "cimt": ["--cases", "20", "--per-case", "2"],
             "classify": ["--cases", "30", "--per-case", "12", "--crops", "4", "--test-crops", "4"]}
#: the training seeds of the deciding cells (``medft demo --seeds``); the first is the default seed
DEMO_SEEDS: tuple[int, ...] = training_seeds("3")
#: Per-seed budget with several seeds (at scale 1), so that three seeds of the four deciding cells fit
#: the demo's time: fewer training patches, 2 epochs, the same 500 test candidates seen from one view.
SEEDED = {"max_patches": 480, "max_test_patches": 500, "epochs": 2, "test_views": 1}
#: the applications whose prep takes ``--test-views`` (candidates seen from many views)
VIEWS_APPS = ("polyp", "pe")
#: Operating points suited to the demo's synthetic test sets (about 120 test frames resolve false
#: positives per frame in steps of ~0.01; the paper's lowest points need far more frames).
DEMO_OPERATING_POINTS = {"polyp": "0.1,0.25,0.5"}


@dataclass
class DemoPlan:
    app: str = "polyp"
    out: str = "demo"
    scale: float = 1.0
    configs: tuple[str, ...] = DEMO_CONFIGS
    reduced: tuple[str, ...] = REDUCED_CONFIGS  # trained again at the smallest fraction; () for none
    gpu: int | None = None
    seeds: tuple[int, ...] = DEMO_SEEDS  # training seeds of the ``reduced`` configurations (the deciding cells)

    def sizes(self) -> dict:
        """Small-study sizes at this scale (the paper's are in prep/train defaults), per seed: with
        several seeds the smaller :data:`SEEDED` budget. Every epoch is validated and none stops
        early, so the convergence figure shows whole curves."""
        from medft.pretrain import PretrainOptions

        s, standin = self.scale, PretrainOptions()
        seeded = len(self.seeds) > 1
        epochs = max(2, round((SEEDED["epochs"] if seeded else 4) * s))
        patches, test = (SEEDED["max_patches"], SEEDED["max_test_patches"]) if seeded else (800, 1000)
        return {"max_patches": max(20, int(patches * s)), "max_test_patches": max(240, int(test * s)), "batch": 20,
                "epochs": epochs, "patience": epochs, "cimt_stride": max(1, round(8 / s)),
                "test_views": SEEDED["test_views"] if seeded else 2,
                "pretrain_iterations": max(4, round(standin.iterations * s)),
                "pretrain_images": max(64, round(standin.images * s))}

    def cells(self) -> list[tuple[str, str, tuple[int, ...]]]:
        """(configuration, fraction, training seeds) of every training command: the ``reduced``
        configurations once per seed, the others with the first seed only."""
        fractions = ["1"] + ([self.smallest_fraction()] if self.reduced else [])
        return ([(c, "1", self.seeds if c in self.reduced else self.seeds[:1]) for c in self.configs]
                + [(c, fractions[-1], self.seeds) for c in self.reduced])

    def smallest_fraction(self) -> str:
        """The application's smallest reduced training set (its last fraction)."""
        from medft.apps import get_app

        return get_app(self.app).fractions[-1]

    @property
    def data(self) -> str:
        return f"{self.out}/data"

    @property
    def runs(self) -> str:
        return f"{self.out}/runs"

    @property
    def gpu_argv(self) -> list[str]:
        return ["--gpu", str(self.gpu)] if self.gpu is not None else []


def prep_argv(plan: DemoPlan, fraction: str = "1") -> list[str]:
    """`medft prep` of the demo's synthetic training set at ``fraction``."""
    z = plan.sizes()
    return ["prep", plan.app, "--synthetic", "--out", plan.data, "--fraction", fraction,
            "--max-patches", str(z["max_patches"]), "--max-test-patches", str(z["max_test_patches"]),
            "--no-progress", *DEMO_PREP.get(plan.app, []),
            *(["--test-views", str(z["test_views"])] if plan.app in VIEWS_APPS else [])]


def seeds_argv(seeds: tuple[int, ...]) -> list[str]:
    """``--seeds S1,S2,..`` (nothing for the default seed alone; a lone seed written ``S,``, a list)."""
    if tuple(seeds) == (RANDOM_SEED,):
        return []
    return ["--seeds", ",".join(map(str, seeds)) + ("," if len(seeds) == 1 else "")]


def train_argv(plan: DemoPlan, config: str, fraction: str = "1", seeds: tuple[int, ...] = (RANDOM_SEED,)
               ) -> list[str]:
    """`medft train` of one demo cell, once per seed: the demo's budget (batch, epochs, patience)."""
    z = plan.sizes()
    return ["train", plan.app, config, "--data", plan.data, "--runs", plan.runs, "--fraction", fraction,
            "--batch", str(z["batch"]), "--test-batch", "50", "--max-epochs", str(z["epochs"]),
            "--patience", str(z["patience"]), *seeds_argv(seeds), *plan.gpu_argv]


def commands(plan: DemoPlan) -> list[list[str]]:
    """The medft command lines of the demo, in order."""
    from medft.weights import find_pretrained

    z = plan.sizes()
    data, runs = plan.data, plan.runs
    fractions = ["1"] + ([plan.smallest_fraction()] if plan.reduced else [])
    cmds = [prep_argv(plan, f) for f in fractions
            if not (paths.dataset_dir(data, plan.app, f) / paths.PREP_RECORD).is_file()]
    cells = plan.cells()
    if any(c != "scratch" for c, _, _ in cells) and find_pretrained() is None:
        cmds.append(["pretrain", "--iterations", str(z["pretrain_iterations"]), "--images",
                     str(z["pretrain_images"])])
    for config, fraction, seeds in cells:
        cmds.append(train_argv(plan, config, fraction, seeds))
        cmds.append(["predict", plan.app, config, "--data", data, "--runs", runs, "--fraction", fraction,
                     "--cimt-stride", str(z["cimt_stride"]), *seeds_argv(seeds), *plan.gpu_argv])
    cmds.append(["predict", plan.app, "handcrafted", "--data", data, "--runs", runs])
    points = ["--operating-points", DEMO_OPERATING_POINTS[plan.app]] if plan.app in DEMO_OPERATING_POINTS else []
    cmds.append(["score", plan.app, "--runs", runs, "--data", data, "--out", f"{runs}/{plan.app}/scores",
                 "--force", *points])
    cmds.append(["report", plan.app, "--runs", runs, "--data", data, "--out", f"{plan.out}/report",
                 "--force", *points])
    return cmds


def run_demo(plan: DemoPlan, log=print) -> Path:
    """Run :func:`commands` one after the other; return the report's path."""
    from medft.apps import get_app

    get_app(plan.app)
    t0 = time.time()
    todo = commands(plan)
    for i, argv in enumerate(todo, 1):
        log(f"\n[demo {i}/{len(todo)}, {time.time() - t0:.0f} s] medft {shlex.join(argv)}", flush=True)
        r = subprocess.run([sys.executable, "-m", "medft.cli", *argv])
        if r.returncode != 0:
            raise MedftError(f"stage `medft {argv[0]}` failed with status {r.returncode}; fix it and rerun "
                             "`make demo` (finished stages are skipped)")
    report = Path(plan.out) / paths.REPORT / paths.REPORT_PAGE
    check_report(report.parent, plan.configs)
    log("\n" + "\n".join(answer_lines(report)))
    log(f"\nmedft demo: done in {time.time() - t0:.0f} s. Report: {report.resolve()}")
    return report


def answer_lines(report: Path) -> list[str]:
    """The report's opening section, "The answer", as its lines (heading included)."""
    lines = Path(report).read_text().splitlines()
    if "## The answer" not in lines:
        raise MedftError(f"{report}: no '## The answer' section")
    start = lines.index("## The answer")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return [ln for ln in lines[start:end] if ln.strip()]


def check_report(folder: Path, configs: tuple[str, ...]) -> dict[str, list[str]]:
    """The report holds its main figure and, for every trained configuration, the numbers that
    `medft score` computed from that run: the operating-point values (operating_points.csv) for
    polyp, pe and frames, the mean errors (roi_summary.csv) for cimt; and it opens with the answer
    (:func:`answer_lines`). Returns the numbers per config."""
    import csv

    folder = Path(folder)
    page = folder / paths.REPORT_PAGE
    text = page.read_text() if page.is_file() else ""
    cimt = (folder / f"{paths.ROI_SUMMARY_TABLE}.csv").is_file()
    figure = folder / f"{paths.fig_errors('li_error') if cimt else paths.FIG_CONFIGS}.png"
    if f"]({figure.name})" not in text or not figure.is_file():
        raise MedftError(f"{folder}: {page.name} without its figure {figure.name}")
    if figure.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
        raise MedftError(f"{figure}: not a PNG file")
    answer_lines(page)
    table = f"{paths.ROI_SUMMARY_TABLE if cimt else paths.OPERATING_POINTS_TABLE}.csv"
    with open(folder / table, newline="") as f:
        rows = list(csv.DictReader(f))
    found: dict[str, list[str]] = {}
    for config in configs:
        if cimt:
            values = [f"{float(r['mean']):.3f}" for r in rows
                      if r["config"] == config and r["metric"] in ("li_error", "ma_error")]
        else:
            values = [f"{float(r['value']):.3f}" for r in rows if r["config"] == config]
        rows_md = [ln for ln in text.splitlines() if ln.startswith(f"| {config} |")]  # summary (and seeds) tables
        if not values or not any(all(v in ln for v in values) for ln in rows_md):
            raise MedftError(f"{folder}: {page.name} lacks {config}'s numbers {values} from {table}")
        found[config] = values
    return found
