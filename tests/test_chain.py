"""`make cell`, `medft grid` and `medft demo` give one cell the same command lines: all three take them
from the one stage chain (python/medft/chain.py)."""

from __future__ import annotations

import pytest
from medft import chain
from medft.solver import RANDOM_SEED

from tests.test_grid import medft
from tests.test_makefile import make_cell_commands

SEED = RANDOM_SEED + 1  # not the default seed: its flag must reach every command


def flag(line: str, name: str) -> str:
    words = line.split()
    return words[words.index(name) + 1]


def stage(lines: list[str], name: str, config: str = "", fraction: str = "0.25") -> str:
    """The one line of ``lines`` that runs ``medft <name> polyp [config]`` (prep, train and predict: at
    ``fraction``)."""
    head = f"medft {name} polyp {config}".rstrip() + " "
    at = f" --fraction {fraction} " if name in ("prep", "train", "predict") else ""
    found = [ln.strip() for ln in lines if ln.strip().startswith(head) and at in ln]
    assert len(found) == 1, (head, lines)
    return found[0]


def test_make_cell_medft_grid_and_medft_demo_give_a_cell_the_same_commands(tmp_path):
    out = tmp_path / "demo"
    demo = medft("demo", "--dry-run", "--out", str(out), "--seeds", f"{SEED},")
    assert demo.returncode == 0, demo.stderr
    demo_lines = demo.stdout.splitlines()
    # the demo's deciding cell on its smallest set, and its budget, handed to the other two as knobs
    train = stage(demo_lines, "train", "ft-conv1")
    budget = {k: flag(train, f"--{k}") for k in ("batch", "max-epochs", "patience")}
    assert flag(train, "--seed") == str(SEED)

    make = make_cell_commands("cell", "APP=polyp", "CONFIG=ft-conv1", "FRACTION=0.25", f"SEEDS={SEED},",
                              f"DATA={out}/data", f"RUNS={out}/runs", f"BATCH={budget['batch']}",
                              f"MAX_EPOCHS={budget['max-epochs']}", f"PATIENCE={budget['patience']}")
    grid = medft("grid", "polyp", "--configs", "ft-conv1", "--fractions", "0.25", "--seeds", f"{SEED},",
                 "--data", f"{out}/data", "--runs", f"{out}/runs", "--batch", budget["batch"], "--max-epochs",
                 budget["max-epochs"], "--patience", budget["patience"], "--dry-run")
    assert grid.returncode == 0, grid.stderr
    grid_lines = grid.stdout.splitlines()

    for name in ("train", "predict"):
        lines = {src: stage(ls, name, "ft-conv1") for src, ls in
                 (("make cell", make), ("medft grid", grid_lines), ("medft demo", demo_lines))}
        assert len(set(lines.values())) == 1, lines
    assert stage(make, "prep") == stage(grid_lines, "prep")  # both the study's synthetic size
    assert stage(make, "score") == stage(grid_lines, "score")
    assert f"--fraction 0.25 --seed {SEED} --batch 20 --test-batch 50 --max-epochs 4 --patience 4 --engine pycaffe" \
        in train  # the demo's one-seed budget at scale 1 (medft/demo.py), written out whole


@pytest.mark.parametrize("seeds,flags", [((RANDOM_SEED,), []), ((7,), ["--seed", "7"]),
                                         ((7, 9), ["--seeds", "7,9"])])
def test_seed_flags(seeds, flags):
    assert chain.seeds_argv(seeds) == flags
    assert medft("train", "polyp", "scratch", *flags, "--help").returncode == 0


def test_every_reader_option_of_the_synthetic_sizes_is_a_prep_flag():
    """The crops of ``App.inputs`` reach `medft prep` as flags it parses."""
    from medft.apps import APPS
    from medft.cli import build_parser

    p = build_parser(["prep"])
    for app in APPS.values():
        for purpose in ("study", "demo"):
            argv = chain.prep_argv(app.name, "1", chain.StudyOptions(synthetic=purpose, test_views=2))
            args = p.parse_args(argv)
            size = app.inputs.of(purpose)
            assert (args.cases, args.per_case, args.crops, args.test_crops) == \
                (size.cases, size.per_case, size.crops, size.test_crops)
            assert args.test_views == (2 if app.test_views else None)
