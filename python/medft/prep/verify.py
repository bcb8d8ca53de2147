"""``medft prep <app> --verify``: check an input folder against data_prep/README.md.

Every problem is a :class:`~medft.errors.MedftError` naming the file and the rule broken
(``polyp-3``, ``common-2``, ...); the first one found stops the check.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from medft.apps import get_app
from medft.prep.common import bad_input
from medft.prep.splits import read_split_table


def verify_input(app: str, root: str | Path) -> list[str]:
    """Full check of ``root`` as ``app`` input (every file decoded); lines describing what passed."""
    get_app(app)
    root = Path(root)
    if not root.is_dir():
        raise bad_input(root, "common-1", "input folder does not exist")
    mod = importlib.import_module(f"medft.prep.{app}")
    lines = mod.verify(root)
    split = root / "split.csv"
    if split.is_file():
        table = read_split_table(split, mod.cases(mod.load(root)))
        lines.append(
            f"split.csv: {sum(v == 'train' for v in table.values())} train, "
            f"{sum(v == 'test' for v in table.values())} test cases"
        )
    else:
        lines.append("no split.csv: test cases are drawn at random (--test-fraction, --seed)")
    return lines
