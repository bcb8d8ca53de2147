"""Case-level splits: test vs training pool, reduced sets, and the 80/20 train/val division.

Patches of one case (video, patient) never straddle two splits: the paper splits at video,
patient or PE level, and validation AUC on patches of training cases would be optimistic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from medft.errors import MedftError
from medft.prep.common import bad_input, check_id
from medft.prep.io import read_csv

SUBSETS = ("train", "test")


def read_split_table(path: Path, cases: Iterable[str]) -> dict[str, str]:
    """``{case: "train"|"test"}`` from an input ``split.csv`` (columns ``case, subset``).

    Every case must appear exactly once; unknown cases and other subset names are errors.
    """
    cases = set(cases)
    out: dict[str, str] = {}
    for i, row in enumerate(read_csv(path, "common-2", ("case", "subset")), start=1):
        case, subset = check_id(path, "case", row["case"].strip()), row["subset"].strip()
        if subset not in SUBSETS:
            raise bad_input(path, "common-2", f"row {i}: subset {subset!r} is not one of {', '.join(SUBSETS)}")
        if case in out:
            raise bad_input(path, "common-2", f"row {i}: case {case!r} listed twice (duplicate case id)")
        if case not in cases:
            raise bad_input(path, "common-2", f"row {i}: case {case!r} has no data in the input folder")
        out[case] = subset
    missing = sorted(cases - set(out))
    if missing:
        raise bad_input(path, "common-2", f"case(s) {', '.join(missing[:5])} missing from the table")
    return out


def missing_classes(cases: Sequence[str], classes_of: Mapping[str, set[int]], num_classes: int) -> list[int]:
    """Classes that none of ``cases`` has a patch of."""
    present: set[int] = set()
    for c in cases:
        present |= classes_of.get(c, set())
    return [k for k in range(num_classes) if k not in present]


def split_groups(
    groups: Sequence[str],
    classes_of: Mapping[str, set[int]],
    fraction: float,
    num_classes: int,
    rng: np.random.Generator,
    tries: int = 200,
) -> tuple[list[str], list[str]]:
    """(rest, held) with ``round(fraction * n)`` groups held out (at least 1, at most n - 1).

    Seeded shuffles are retried until both parts contain every class (an AUC needs both); the
    last draw is returned if none does, and :func:`check_classes` then reports it.
    """
    groups = sorted(groups)
    n = len(groups)
    if n < 2:
        raise MedftError(f"cannot split {n} case(s) in two: need at least 2 (have {', '.join(groups)})")
    k = min(n - 1, max(1, int(round(fraction * n))))
    for _ in range(tries):
        perm = [groups[i] for i in rng.permutation(n)]
        rest, held = sorted(perm[k:]), sorted(perm[:k])
        if not missing_classes(rest, classes_of, num_classes) and not missing_classes(held, classes_of, num_classes):
            break
    return rest, held


def check_classes(
    name: str, cases: Sequence[str], classes_of: Mapping[str, set[int]], class_names: Sequence[str]
) -> None:
    """Error naming the split and the class(es) it lacks ("an empty class after splitting")."""
    lack = missing_classes(cases, classes_of, len(class_names))
    if lack:
        names = ", ".join(class_names[k] for k in lack)
        raise MedftError(
            f"split {name!r} has no {names} patch after splitting (cases: {', '.join(cases) or 'none'}); "
            "use more cases, another --seed or a split.csv"
        )


def check_disjoint(parts: Mapping[str, Sequence[str]]) -> None:
    """Error if a case id is in two splits."""
    seen: dict[str, str] = {}
    for name, cases in parts.items():
        for c in cases:
            if c in seen:
                raise MedftError(f"case {c!r} is in both {seen[c]!r} and {name!r} splits")
            seen[c] = name


def keep_fraction(items: Sequence[str], fraction: float, rng: np.random.Generator) -> list[str]:
    """A seeded random ``round(fraction * n)`` of ``items`` (at least 1), sorted."""
    items = sorted(set(items))
    k = max(1, int(round(fraction * len(items))))
    return sorted(items[i] for i in rng.choice(len(items), size=min(k, len(items)), replace=False))


def lesion_row(case: str, frame: str, lesion: str, split_record: dict) -> dict[str, str]:
    """A ``lesions.csv`` row, with the subset (train/test) its case went to ("" if neither)."""
    subset = "test" if case in split_record["test"] else "train" if case in split_record["train_pool"] else ""
    return {"case": case, "frame_or_slice": frame, "lesion": lesion, "subset": subset}
