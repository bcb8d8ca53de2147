"""The cells of the study and which of them are done, read from their run folders.

An application's grid is the nine Table II configurations on all training data, the two other
scratch initialisations (Fig. 10's convergence study) and the reduced-data runs of scratch and
ft-conv1 at each of the application's fractions (Figs. 2b, 4b, 6b), each once per training seed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from medft import chain, paths
from medft.apps import BOXPLOT, check_fraction, get_app
from medft.chain import REDUCED_CONFIGS
from medft.schedule import CONFIG_NAMES, INIT_NAMES, PAPER_INIT, check_init, get_config, variant_name
from medft.solver import RANDOM_SEED


@dataclass(frozen=True)
class Cell:
    """One training run of the study: its run folder is ``<runs>/<app>/<variant>[-<fraction>][-seed<seed>]``
    (:func:`medft.paths.run_dir`; ``seed`` None is the default training seed)."""

    app: str
    config: str
    init: str = PAPER_INIT
    fraction: str = "1"
    seed: int | None = None

    def stages(self) -> chain.Cell:
        """This run folder as a cell of the stage chain (:mod:`medft.chain`), which builds its commands."""
        return chain.Cell(self.app, self.config, self.init, self.fraction,
                          (RANDOM_SEED if self.seed is None else self.seed,))

    @property
    def variant(self) -> str:
        return variant_name(self.config, self.init)

    @property
    def folder(self) -> str:
        """The run folder's name, e.g. ``scratch-xavier``, ``ft-conv1-0.25`` or ``scratch-seed2017``."""
        return paths.run_dir("", self.app, self.variant, self.fraction, self.seed).name

    @property
    def job(self) -> str:
        """The grid's name for it: ``<app>/<run folder>``."""
        return f"{self.app}/{self.folder}"

    def run_dir(self, runs: str | Path) -> Path:
        return paths.run_dir(runs, self.app, self.variant, self.fraction, self.seed)

    def dataset(self, data: str | Path) -> Path:
        return paths.dataset_dir(data, self.app, self.fraction)


def grid_cells(app: str, configs: tuple[str, ...] | None = None, inits: tuple[str, ...] | None = None,
               fractions: tuple[str, ...] | None = None, seeds: tuple[int, ...] | None = None) -> list[Cell]:
    """The cells of ``app``'s grid, in study order, each once per training seed of ``seeds`` (None: the
    default seed alone); ``configs``, ``inits`` and ``fractions`` (None: all) select a part of it.
    Unknown names are one-line errors listing the valid ones."""
    a = get_app(app)
    configs = tuple(get_config(c).name for c in (configs or CONFIG_NAMES))
    inits = tuple(check_init(i) for i in (inits or INIT_NAMES))
    fractions = tuple(check_fraction(app, f) for f in (fractions or a.fractions))
    cells = []
    if "1" in fractions:
        cells += [Cell(app, c) for c in configs if PAPER_INIT in inits or c != "scratch"]
        if "scratch" in configs:
            cells += [Cell(app, "scratch", i) for i in inits if i != PAPER_INIT]
    cells += [Cell(app, c, PAPER_INIT, f) for f in a.fractions[1:] if f in fractions
              for c in REDUCED_CONFIGS if c in configs]
    if not seeds:
        return cells
    return [Cell(c.app, c.config, c.init, c.fraction, None if s == RANDOM_SEED else s) for c in cells for s in seeds]


def prediction_output(app: str) -> str:
    """What `medft predict` leaves in a run folder once it is done: predictions.csv, or cimt_maps/."""
    return paths.CIMT_MAPS if get_app(app).evaluation == BOXPLOT else paths.PREDICTIONS


def finished_record(cell: Cell, runs: str | Path) -> dict | None:
    """The run.json of a cell that is trained and predicted, else None."""
    out = cell.run_dir(runs)
    record = out / paths.RUN_RECORD
    if not (out / prediction_output(cell.app)).exists() or not record.is_file():
        return None
    try:
        data = json.loads(record.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("status") == "done" else None


def is_prepared(cell: Cell, data: str | Path) -> bool:
    """True once `medft prep` finished the cell's data set (it writes prep.json last)."""
    return chain.is_prepared(data, cell.app, cell.fraction)
