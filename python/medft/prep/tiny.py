"""Tiny data sets for benchmarks, notebooks and tests: synthetic input -> built data-set folder."""

from __future__ import annotations

from pathlib import Path

from medft.apps import get_app
from medft.prep.build import PrepConfig, build
from medft.prep.synthetic import synth_size, write_synthetic


def tiny_options(app: str) -> dict:
    """The reader options of a tiny build: few crops per frame or image (``App.inputs.tiny``)."""
    size = get_app(app).inputs.tiny
    return {k: v for k, v in (("crops", size.crops), ("test_crops", size.test_crops)) if v is not None}


def tiny_input(app: str, root: Path) -> Path:
    """Synthetic input of ``app`` under ``root`` (written once), of the smallest size that still gives
    every class in train, val and test (seed 0)."""
    path = Path(root) / app
    return path if path.exists() else write_synthetic(app, root, synth_size(app, purpose="tiny"))


def tiny_build(
    app: str, root: Path, fraction: str = "1", max_patches: int = 48, max_test_patches: int = 250, **kw
) -> dict:
    """Build a small dataset of ``app`` from its tiny synthetic input; the ``prep.json`` record."""
    cfg = PrepConfig(
        app=app,
        input=str(tiny_input(app, Path(root) / "in")),
        out=str(Path(root) / "out"),
        fraction=fraction,
        max_patches=max_patches,
        max_test_patches=max_test_patches,
        progress=False,
        options=tiny_options(app),
        **kw,
    )
    return build(cfg)
