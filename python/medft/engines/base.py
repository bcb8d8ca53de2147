"""What every engine offers the driver: the :class:`Engine` protocol and its small records."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import lmdb
import numpy as np

from medft import paths
from medft.engines.predictor import Predictor
from medft.errors import MedftError

#: called after each SGD iteration with (iterations done, its loss, the train net's other scalar outputs)
OnIter = Callable[[int, float, dict[str, float]], None]


@dataclass
class StepStats:
    """What one training call did: last iteration reached, the loss of each iteration, images
    per second, and the mean of each scalar output of the train net (e.g. ``accuracy``)."""

    iteration: int
    losses: list[float]
    images_per_s: float
    outputs: dict[str, float] = field(default_factory=dict)


class Engine(Protocol):
    name: str
    weights_report: dict | None  # set by start(): which layers were copied / initialised

    def start(self, solver_path: Path, *, weights: Path | None = None, resume: Path | None = None,
              gpu: int | None = None, snapshot_every: int | None = None) -> int:
        """Create the solver; load ``weights`` or restore ``resume`` (.solverstate). Return its iteration.
        ``snapshot_every``: the iterations at which :meth:`snapshot` will be asked for (an epoch)."""

    def train_until(self, iteration: int, on_iter: OnIter | None = None) -> StepStats:
        """Run SGD until ``iteration`` updates are done."""

    def snapshot(self) -> tuple[Path, Path]:
        """Write (caffemodel, solverstate) of the current iteration; return their paths."""

    def predictor(self, deploy: Path, caffemodel: Path | None, mean_bgr: tuple[float, ...],
                  batch: int) -> Predictor:
        """A batched forward of ``deploy`` with ``caffemodel`` (None: the weights being trained)."""

    def predict_lmdb(self, lmdb_path: Path, mean_bgr: tuple[float, ...], batch: int,
                     caffemodel: Path | None = None, deploy: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities N x C, labels N) for every record of an LMDB, in key order."""

    def set_device(self, gpu: int | None) -> None:
        """Use this GPU (None: the CPU) for what follows."""

    def close(self) -> None: ...


def lmdb_size(path: Path) -> int:
    """Number of records of an LMDB, after checking that its data file holds every page the LMDB
    says it has (a truncated ``data.mdb`` makes Caffe die of SIGBUS when it maps it)."""
    path = Path(path)
    data = path / paths.LMDB_DATA
    if not data.is_file():
        raise MedftError(f"{path}: not an LMDB (no {paths.LMDB_DATA}); run `medft prep` first")
    try:
        env = lmdb.open(str(path), readonly=True, lock=False)
    except lmdb.Error as e:
        raise MedftError(f"{data}: not a readable LMDB ({e}); run `medft prep --force`") from None
    try:
        need = (int(env.info()["last_pgno"]) + 1) * int(env.stat()["psize"])
        if data.stat().st_size < need:
            raise MedftError(f"{data}: truncated ({data.stat().st_size} of {need} bytes); run `medft prep --force`")
        return int(env.stat()["entries"])
    finally:
        env.close()
