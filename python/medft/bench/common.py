"""Helpers every benchmark uses: a table row, a Caffe tool run, timing LMDBs and nets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from medft.util.prototxt import to_text

Log = Callable[[str], None]



# -- helpers ------------------------------------------------------------------------------------------
def row(benchmark: str, medft: float | None, reference: float | None, unit: str, medft_is: str, reference_is: str,
         higher_is_better: bool) -> dict:
    """One table row; ``medft_speed`` > 1 means medft is faster than the reference (None: one is missing)."""
    speed = None
    if reference is not None and medft is not None and medft > 0 and reference > 0:
        speed = medft / reference if higher_is_better else reference / medft
    return {"benchmark": benchmark, "medft": medft, "reference": reference, "unit": unit, "medft_speed": speed,
            "medft_is": medft_is, "reference_is": reference_is}


def run_caffe_tool(argv: list[str], what: str, gpu: int | None = None) -> str:
    """Run a Caffe tool (``argv[0]`` its name) of the build for ``gpu``; its combined output."""
    from medft.engines.cli import run_tool

    return run_tool(argv[0], argv[1:], gpu_build=gpu is not None, what=what)


def write_text(path: Path, message) -> Path:
    path.write_text(to_text(message))
    return path


def random_lmdb(path: Path, n: int, seed: int, classes: int = 2) -> Path:
    """``n`` random uint8 3 x 227 x 227 Datums, labels 0..classes-1 in turn (timing data)."""
    from medft.datum_lmdb import LmdbWriter

    rng = np.random.default_rng(seed)
    with LmdbWriter(path, force=True) as w:
        for i in range(n):
            w.put(f"{i:08d}", rng.integers(0, 256, size=(3, 227, 227), dtype=np.uint8), i % classes)
    return path


def train_val(work: Path, app: str, config: str, source: Path, batch: int) -> Path:
    """A train_val prototxt reading ``source`` at ``batch`` (the TEST layer is never built here)."""
    from medft.alexnet import NetOptions, train_val_net

    net = train_val_net(app, config, options=NetOptions(train_source=str(source), val_source=str(source),
                                                         train_batch=batch, test_batch=batch))
    return write_text(work / f"train_val_{config}.prototxt", net)
