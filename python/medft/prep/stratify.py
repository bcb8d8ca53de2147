"""Stratified patch sets (section VI): every class down-sampled to the smallest, then capped."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def stratify(
    labels: Sequence[int], num_classes: int, rng: np.random.Generator, max_total: int | None = None
) -> np.ndarray:
    """Sorted indices of a class-balanced subset of ``labels``.

    Each class keeps ``min(count over classes)`` items chosen at random (the minority class is
    kept whole); with ``max_total``, each class is further capped at ``max_total // num_classes``.
    Classes absent from ``labels`` make the result empty: callers check for empty classes first.
    """
    labels = np.asarray(labels, dtype=np.int64)
    by_class = [np.flatnonzero(labels == c) for c in range(num_classes)]
    n = min(len(ix) for ix in by_class)
    if max_total is not None:
        n = min(n, max_total // num_classes)
    keep = [rng.choice(ix, size=n, replace=False) for ix in by_class]
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


def cap_by_unit(
    units: Sequence[str], labels: Sequence[int], max_total: int | None, rng: np.random.Generator
) -> np.ndarray:
    """Sorted indices keeping whole units (candidates/frames/pixels) up to ``max_total`` items.

    Test sets are not stratified, but may be capped for small runs without splitting a unit
    (test-time aggregation averages over all of a unit's patches).  Units are taken in turn from
    each class (a unit's class is its first patch's label), so every class stays represented.
    """
    units = np.asarray(units, dtype=object)
    if max_total is None or len(units) <= max_total:
        return np.arange(len(units))
    uniq, first, inverse = np.unique(units, return_index=True, return_inverse=True)
    sizes = np.bincount(inverse)
    unit_label = np.asarray(labels)[first]
    queues = [list(rng.permutation(np.flatnonzero(unit_label == c))) for c in np.unique(unit_label)]
    chosen, total = [], 0
    while any(queues):
        for q in queues:
            if q:
                u = q.pop(0)
                if total + sizes[u] <= max_total:
                    chosen.append(u)
                    total += sizes[u]
    return np.flatnonzero(np.isin(inverse, chosen))


def class_counts(labels: Sequence[int], class_names: Sequence[str]) -> dict[str, int]:
    """``{class name: count}`` for labels ``0..len(class_names)-1``."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(class_names))
    return {name: int(c) for name, c in zip(class_names, counts)}
