"""What an application's prep module (``medft.prep.<app>``) provides: the interface build() uses.

A new application adds one module with these functions (and its ``App`` record in
:mod:`medft.apps`); :func:`medft.prep.build.build` does the rest (splits, reduction, stratified
caps, LMDBs, manifests, mean, prep.json) the same way for every application.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from medft.prep.common import Spec


@runtime_checkable
class AppPrep(Protocol):
    """Required members; optional ones (``split_filter``, ``lesions``, ``case_images``,
    ``write_extras``) are looked up with ``hasattr`` where the application has them."""

    #: channel order of the rendered patches, e.g. "BGR" (recorded in prep.json)
    CHANNELS: str

    def load(self, root: Path, **options: Any) -> Any:
        """Read and check the input folder (data_prep/README.md); the loaded data set."""

    def verify(self, root: Path) -> list[str]:
        """The full format check of ``medft prep --verify``: lines describing what passed."""

    def cases(self, ds: Any) -> list[str]:
        """Case ids (videos, patients): the unit of the train/test split."""

    def plan(self, ds: Any, seed: int = 0) -> list[Spec]:
        """Every patch that could be drawn, as specs (nothing rendered)."""

    def reduce(self, specs: list[Spec], fraction: str, rng: np.random.Generator) -> list[Spec]:
        """The training pool at a reduced-data ``fraction`` (the paper's level: videos, PEs, frames)."""

    def renderer(self, ds: Any) -> Callable[[Spec], np.ndarray]:
        """A function drawing one spec as a uint8 3 x 227 x 227 patch."""


def check_module(module: Any) -> Any:
    """``module`` if it provides :class:`AppPrep`, else a TypeError naming what is missing."""
    missing = [name for name in ("CHANNELS", "load", "verify", "cases", "plan", "reduce", "renderer")
               if not hasattr(module, name)]
    if missing:
        raise TypeError(f"{module.__name__} lacks {', '.join(missing)} of medft.prep.protocol.AppPrep")
    return module
