"""Tiny data sets for benchmarks, notebooks and tests: synthetic input -> built data-set folder."""

from __future__ import annotations

from pathlib import Path

from medft.prep.build import PrepConfig, build
from medft.prep.synthetic import SynthSize, write_synthetic

#: the smallest inputs that still give every class in train, val and test (seed 0)
TINY_SIZES: dict[str, SynthSize] = {
    "polyp": SynthSize(cases=5, per_case=1),
    "pe": SynthSize(cases=5, per_case=2),
    "frames": SynthSize(cases=4, per_case=1),
    "cimt": SynthSize(cases=5, per_case=2),
    "classify": SynthSize(cases=4, per_case=2),
}
#: app-specific options for tiny builds (few crops per frame)
TINY_OPTIONS: dict[str, dict] = {"frames": {"crops": 6, "test_crops": 4}, "classify": {"crops": 4}}


def tiny_input(app: str, root: Path) -> Path:
    """Synthetic input of ``app`` under ``root`` (written once)."""
    path = Path(root) / app
    return path if path.exists() else write_synthetic(app, root, TINY_SIZES[app])


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
        options=TINY_OPTIONS.get(app, {}),
        **kw,
    )
    return build(cfg)
