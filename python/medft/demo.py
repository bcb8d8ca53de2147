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

import time
from dataclasses import dataclass
from pathlib import Path

from medft import chain, paths
from medft.chain import REDUCED_CONFIGS, StudyOptions
from medft.errors import MedftError
from medft.schedule import PAPER_INIT
from medft.solver import training_seeds

DEMO_CONFIGS = ("scratch", "ft-fc8", "ft-conv1")
#: the training seeds of the deciding cells (``medft demo --seeds``); the first is the default seed
DEMO_SEEDS: tuple[int, ...] = training_seeds("3")
#: Per-seed budget with several seeds (at scale 1), so that three seeds of the four deciding cells fit
#: the demo's time: fewer training patches, 2 epochs, the same 500 test candidates seen from one view.
SEEDED = {"max_patches": 480, "max_test_patches": 500, "epochs": 2, "test_views": 1}


@dataclass
class DemoPlan:
    app: str = "polyp"
    out: str = "demo"
    scale: float = 1.0
    configs: tuple[str, ...] = DEMO_CONFIGS
    #: trained again at the smallest fraction (the paper's question is sharpest there: Figs. 2b, 4b,
    #: 6b); () for none
    reduced: tuple[str, ...] = REDUCED_CONFIGS
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

    def options(self) -> StudyOptions:
        """The demo's roots and budget as the stage chain's options (the synthetic input of the demo's
        size, :attr:`medft.apps.InputSizes.demo`)."""
        z = self.sizes()
        return StudyOptions(data=self.data, runs=self.runs, synthetic="demo", max_patches=z["max_patches"],
                            max_test_patches=z["max_test_patches"], test_views=z["test_views"], batch=z["batch"],
                            max_epochs=z["epochs"], patience=z["patience"], gpu=self.gpu,
                            cimt_stride=z["cimt_stride"], pretrain_iterations=z["pretrain_iterations"],
                            pretrain_images=z["pretrain_images"])

    def cells(self) -> list[chain.Cell]:
        """Every training command's cell: the ``reduced`` configurations once per seed, the others with
        the first seed only."""
        fractions = ["1"] + ([self.smallest_fraction()] if self.reduced else [])
        return ([chain.Cell(self.app, c, PAPER_INIT, "1", self.seeds if c in self.reduced else self.seeds[:1])
                 for c in self.configs]
                + [chain.Cell(self.app, c, PAPER_INIT, fractions[-1], self.seeds) for c in self.reduced])

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
    def report(self) -> Path:
        """The report's folder: ``<out>/report``."""
        return Path(self.out) / paths.REPORT


def commands(plan: DemoPlan) -> list[list[str]]:
    """The medft command lines of the demo, in order, from the stage chain (:mod:`medft.chain`)."""
    from medft.apps import get_app

    o, app = plan.options(), plan.app
    fractions = ["1"] + ([plan.smallest_fraction()] if plan.reduced else [])
    cmds = [chain.prep_argv(app, f, o) for f in fractions if not chain.is_prepared(o.data, app, f)]
    cells = plan.cells()
    if chain.needs_pretrain(cells):
        cmds.append(chain.pretrain_argv(o))
    for cell in cells:
        cmds += [chain.train_argv(cell, o), chain.predict_argv(cell, o)]
    points = get_app(app).demo_operating_points
    return [*cmds, chain.handcrafted_argv(app, o), chain.score_argv(app, o, points),
            chain.report_argv(app, o, plan.report, points)]


def run_demo(plan: DemoPlan, log=print) -> Path:
    """Run :func:`commands` one after the other; return the report's path."""
    from medft.apps import get_app

    get_app(plan.app)
    t0 = time.time()
    chain.run_commands(commands(plan), "demo", "make demo", log)
    report = plan.report / paths.REPORT_PAGE
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
