"""The application-independent pipeline of ``medft prep``: input folder -> dataset folder.

Order of operations (each seeded from ``seed`` through its own stream, so changing one step's
draws never shifts another's):

1. load and check the input (application module), plan every patch as a :class:`Spec`;
2. test split by case (``split.csv`` if given, else a seeded ``test_fraction`` of cases);
3. reduced training set (``fraction``, at the level the paper names);
4. train/val 80/20 by case (by frame or ROI when a single case is left);
5. stratify train and val: every class down to the smallest, the two capped at 80% and 20% of the
   stratified set's size (``max_patches``, or the paper's, times the fraction's share); cap test by
   whole units at ``max_test_patches``.  Steps 2-5 (:func:`plan_dataset`) render nothing;
6. render the chosen specs into shuffled-key LMDBs with manifests, then the mean, lesion list,
   ``splits.json`` and ``prep.json``; all in a temporary folder renamed at the end.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np
from tqdm import tqdm

from medft import paths
from medft.apps import FROC, VAL_FRACTION, check_fraction, get_app, set_size, split_sizes
from medft.datum_lmdb import (
    LmdbWriter,
    collect_stale_tmp,
    lmdb_fingerprint,
    mark_output,
    refuse_existing,
    shuffled_keys,
)
from medft.errors import MedftError
from medft.paths import SPLITS, dataset_dir
from medft.prep.common import PATCH, Spec, rng_for
from medft.prep.manifest import write_manifest, write_rows_csv
from medft.prep.mean import MeanAccumulator, write_mean
from medft.prep.splits import check_classes, check_disjoint, read_split_table, split_groups
from medft.prep.stratify import cap_by_unit, class_counts, stratify
from medft.prep.verify import verify_input
from medft.provenance import stamp
from medft.util import faults
from medft.util.atomic import replace_path, write_text_atomic
from medft.util.lock import dataset_lock

LESION_COLUMNS = ("case", "frame_or_slice", "lesion", "subset", "candidates")


@dataclass
class PrepConfig:
    """Resolved arguments of one ``medft prep <app>`` run (saved in ``prep.json``)."""

    app: str
    input: str
    out: str
    fraction: str = "1"
    max_patches: int | None = None  # stratified train + val at full scale; None: the paper's (apps)
    max_test_patches: int | None = None  # None: every test patch
    test_views: int | None = None  # detection apps: first N augmented patches per test candidate; None: all
    seed: int = 0
    test_fraction: float = 0.5
    val_fraction: float = VAL_FRACTION
    force: bool = False
    progress: bool = True
    options: dict = field(default_factory=dict)  # application-specific (e.g. crops for frames)


def app_module(app: str) -> ModuleType:
    """The ``medft.prep.<app>`` module (after validating the name), checked against the
    :class:`~medft.prep.protocol.AppPrep` interface."""
    from medft.prep.protocol import check_module

    get_app(app)
    return check_module(importlib.import_module(f"medft.prep.{app}"))


def class_names(app_name: str, ds: object) -> tuple[str, ...]:
    """The application's classes, or the loaded input's own (``ds.class_names``) where the App
    takes them from the data."""
    app = get_app(app_name)
    return tuple(ds.class_names) if app.classes_from_data else app.class_names


def classes_by_group(specs: Sequence[Spec], group: Callable[[Spec], str]) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for s in specs:
        out.setdefault(group(s), set()).add(s.label)
    return out


def choose_splits(
    cfg: PrepConfig, specs: list[Spec], cases: list[str], class_names: Sequence[str], reduce: Callable
) -> tuple[dict[str, list[Spec]], dict]:
    """Specs per split before stratification, and the ``splits.json`` record."""
    nc = len(class_names)
    by_case = classes_by_group(specs, lambda s: s.case)
    table_path = Path(cfg.input) / "split.csv"
    if table_path.is_file():
        table = read_split_table(table_path, cases)
        pool = sorted(c for c, s in table.items() if s == "train")
        test = sorted(c for c, s in table.items() if s == "test")
        test_source = str(table_path)
    else:
        pool, test = split_groups(cases, by_case, cfg.test_fraction, nc, rng_for(cfg.seed, "test-split"))
        test_source = f"seeded random {cfg.test_fraction:g} of cases"
    check_classes("test", test, by_case, class_names)
    check_classes("train+val", pool, by_case, class_names)
    pool_set = set(pool)
    pool_specs = [s for s in specs if s.case in pool_set]
    if cfg.fraction != "1":
        pool_specs = reduce(pool_specs, cfg.fraction, rng_for(cfg.seed, "fraction", cfg.fraction))
    reduced_cases = sorted({s.case for s in pool_specs})
    if len(reduced_cases) >= 2:
        level, group = "case", (lambda s: s.case)
    else:  # a single training case (CIMT's one patient): split its frames / ROIs
        level, group = "frame_or_slice", (lambda s: f"{s.case}/{s.frame}")
    by_group = classes_by_group(pool_specs, group)
    train_g, val_g = split_groups(sorted(by_group), by_group, cfg.val_fraction, nc, rng_for(cfg.seed, "val-split"))
    check_classes("train", train_g, by_group, class_names)
    check_classes("val", val_g, by_group, class_names)
    train_set, test_set = set(train_g), set(test)
    parts = {
        "train": [s for s in pool_specs if group(s) in train_set],
        "val": [s for s in pool_specs if group(s) not in train_set],
        "test": [s for s in specs if s.case in test_set],
    }
    if level == "case":
        check_disjoint({"train": train_g, "val": val_g, "test": test})
    record = {
        "level": get_app(cfg.app).split_unit,
        "test_source": test_source,
        "val_level": level,
        "train_pool": pool,
        "train": sorted({s.case for s in parts["train"]}),
        "val": sorted({s.case for s in parts["val"]}),
        "test": test,
        "val_groups": val_g if level != "case" else [],
        "fraction": cfg.fraction,
        "dropped_by_fraction": sorted(pool_set - set(reduced_cases)),
    }
    return parts, record


def caps(cfg: PrepConfig, nc: int) -> dict[str, int]:
    """Most train and val patches: the stratified set at ``cfg.fraction`` divided 80/20 (val >= 1 per class)."""
    n_train, n_val = split_sizes(set_size(cfg.app, cfg.fraction, cfg.max_patches), cfg.val_fraction)
    return {"train": n_train, "val": max(nc, n_val)}


def select(cfg: PrepConfig, parts: dict[str, list[Spec]], nc: int) -> dict[str, list[Spec]]:
    """Stratified train and val (capped), test capped by whole units."""
    out = {}
    for name, cap_n in caps(cfg, nc).items():
        idx = stratify([s.label for s in parts[name]], nc, rng_for(cfg.seed, "stratify", name), cap_n)
        out[name] = [parts[name][i] for i in idx]
    idx = cap_by_unit(
        [s.unit for s in parts["test"]],
        [s.label for s in parts["test"]],
        cfg.max_test_patches,
        rng_for(cfg.seed, "test-cap"),
    )
    out["test"] = [parts["test"][i] for i in idx]
    return out


def plan_dataset(
    cfg: PrepConfig, ds: object, specs: list[Spec]
) -> tuple[dict[str, list[Spec]], dict[str, list[Spec]], dict]:
    """(chosen specs, specs before stratification, ``splits.json`` record) per split, nothing rendered.

    ``ds`` is the application's loaded input and ``specs`` its plan; splits, reduction, per-split
    filters and stratification run exactly as in :func:`build`.
    """
    mod = app_module(cfg.app)
    app = get_app(cfg.app)
    cfg.fraction = check_fraction(cfg.app, cfg.fraction)
    names = class_names(cfg.app, ds)
    parts, split_record = choose_splits(cfg, specs, mod.cases(ds), names, mod.reduce)
    if hasattr(mod, "split_filter"):  # e.g. fewer random crops per test frame
        parts = {name: mod.split_filter(ds, name, p) for name, p in parts.items()}
    if cfg.test_views is not None:
        if app.evaluation != FROC:
            raise MedftError(f"--test-views applies to the detection applications, not {cfg.app}")
        parts["test"] = first_views(parts["test"], cfg.test_views)
    chosen = select(cfg, parts, len(names))
    check_chosen_classes(chosen, names)
    return chosen, parts, split_record


def check_input(cfg: PrepConfig) -> list[str]:
    """``medft prep --verify``: every check ``medft prep`` makes before it renders (the format rules,
    loading, the splits, the reduced set and stratification with these arguments); what passed."""
    cfg.fraction = check_fraction(cfg.app, cfg.fraction)
    lines = verify_input(cfg.app, cfg.input)
    mod = app_module(cfg.app)
    ds = mod.load(Path(cfg.input), **cfg.options)
    chosen, _, _ = plan_dataset(cfg, ds, mod.plan(ds, cfg.seed))
    lines.append("the plan with these arguments: " + ", ".join(f"{len(chosen[n])} {n}" for n in SPLITS)
                 + " patches, every class in every split")
    return lines


def first_views(specs: list[Spec], n: int) -> list[Spec]:
    """The first ``n`` specs of every unit, in plan order: for polyp and pe the smallest scale,
    unshifted, in ``n`` orientations. Fewer test-time views per candidate (averaged into one
    score) make a larger test set affordable where prediction is slow."""
    seen: dict[str, int] = {}
    out = []
    for s in specs:
        k = seen.get(s.unit, 0)
        if k < n:
            out.append(s)
        seen[s.unit] = k + 1
    return out


def check_chosen_classes(chosen: dict[str, list[Spec]], class_names: Sequence[str]) -> None:
    """Every split must hold every class: a one-class test set has no AUC, a one-class training
    set teaches nothing, and either would otherwise pass silently."""
    for name, specs in chosen.items():
        counts = [sum(s.label == c for s in specs) for c in range(len(class_names))]
        if not specs or min(counts) == 0:
            have = ", ".join(f"{n} {c}" for n, c in zip(counts, class_names))
            raise MedftError(f"the {name} split would hold {have}: every class is needed (more cases, a "
                             f"larger --max-test-patches or another --test-fraction)")


def write_split(
    path: Path,
    specs: Sequence[Spec],
    keys: Sequence[str],
    render: Callable[[Spec], np.ndarray],
    mean: MeanAccumulator | None,
    progress: bool,
    desc: str,
) -> int:
    """Render ``specs`` in plan order into the LMDB at ``path`` under ``keys``; return the count."""
    est = (3 * PATCH * PATCH + 64) * max(1, len(specs))
    with LmdbWriter(path, map_size=max(1 << 24, int(est * 1.3))) as w:
        for spec, key in tqdm(
            list(zip(specs, keys)),
            desc=desc,
            unit="patch",
            disable=not progress,
            file=sys.stderr,
            smoothing=0.1,
            mininterval=0.5,
        ):
            img = render(spec)
            if img.shape != (3, PATCH, PATCH) or img.dtype != np.uint8:
                raise MedftError(f"internal: {desc} renderer gave {img.shape} {img.dtype} for unit {spec.unit}")
            w.put(key, img, spec.label)
            if mean is not None:
                mean.add(img)
    return w.count


def build(cfg: PrepConfig) -> dict:
    """Run the whole pipeline for ``cfg``; return the ``prep.json`` record. A data set being
    replaced is locked exclusively throughout: one that train or predict is reading is refused."""
    cfg.fraction = check_fraction(cfg.app, cfg.fraction)
    final = dataset_dir(cfg.out, cfg.app, cfg.fraction)
    refuse_existing(final, cfg.force, inputs=(Path(cfg.input),))
    with dataset_lock(final, "prep", exclusive=True) if final.is_dir() else nullcontext():
        return _build(cfg, final)


def _build(cfg: PrepConfig, final: Path) -> dict:
    mod = app_module(cfg.app)
    collect_stale_tmp(final)
    t0 = time.time()
    verify_input(cfg.app, cfg.input)  # the same rules as `medft prep --verify`, before anything is written
    ds = mod.load(Path(cfg.input), **cfg.options)
    specs = mod.plan(ds, cfg.seed)
    chosen, parts, split_record = plan_dataset(cfg, ds, specs)
    names = class_names(cfg.app, ds)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        render = mod.renderer(ds)
        mean = MeanAccumulator()
        records, fingerprints, timings = {}, {}, {}
        for name in SPLITS:
            keys = shuffled_keys(len(chosen[name]), rng_for(cfg.seed, "keys", name))
            t = time.time()
            records[name] = write_split(
                tmp / paths.lmdb_name(name),
                chosen[name],
                keys,
                render,
                mean if name == "train" else None,
                cfg.progress,
                f"{cfg.app} {name}",
            )
            timings[name] = round(time.time() - t, 3)
            write_manifest(tmp / paths.manifest_name(name), keys, chosen[name])
            fingerprints[name] = lmdb_fingerprint(tmp / paths.lmdb_name(name))[1]
        mean_info = write_mean(tmp, mean.mean_image(), mean.count)
        lesion_rows = mod.lesions(ds, split_record) if hasattr(mod, "lesions") else None
        if lesion_rows is not None:
            for row in lesion_rows:
                row["candidates"] = str(len({s.unit for s in specs if s.lesion == row["lesion"]}))
            write_rows_csv(tmp / paths.LESIONS, lesion_rows, LESION_COLUMNS)
        if hasattr(mod, "case_images"):  # the FP denominator of the FROC: test cases only
            column, images = mod.case_images(ds)
            rows = [{"case": c, column: str(images[c])} for c in sorted(split_record["test"])]
            write_rows_csv(tmp / paths.CASES, rows, ("case", column))
        extra_stats = mod.write_extras(ds, split_record, tmp) if hasattr(mod, "write_extras") else {}
        write_text_atomic(tmp / paths.SPLITS_RECORD, json.dumps(split_record, indent=2) + "\n")
        record = {
            "app": cfg.app,
            "fraction": cfg.fraction,
            "args": asdict(cfg),
            "seed": cfg.seed,
            "patch": [3, PATCH, PATCH],
            "channel_order": mod.CHANNELS,
            "class_names": list(names),
            "records": records,
            "caps": caps(cfg, len(names)),
            "counts": {n: class_counts([s.label for s in chosen[n]], names) for n in SPLITS},
            "before_stratification": {n: class_counts([s.label for s in parts[n]], names) for n in SPLITS},
            "units": {n: len({s.unit for s in chosen[n]}) for n in SPLITS},
            "cases": {n: len({s.case for s in chosen[n]}) for n in SPLITS},
            "mean_value": mean_info["mean_value"],
            "input_stats": {**getattr(ds, "stats", {}), **extra_stats},
            "fingerprint": {**fingerprints, "data": _combine(fingerprints[n] for n in SPLITS)},
            "seconds": {**timings, "total": round(time.time() - t0, 3)},
            **stamp(),
        }
        faults.point("prep:before-record")
        write_text_atomic(tmp / paths.PREP_RECORD, json.dumps(record, indent=2) + "\n")
        mark_output(tmp, "prep")
        final.parent.mkdir(parents=True, exist_ok=True)
        refuse_existing(final, cfg.force, inputs=(Path(cfg.input),))
        replace_path(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    record["dir"] = str(final)
    return record


def _combine(hexes) -> str:
    return hashlib.sha256("".join(hexes).encode()).hexdigest()


def summary(record: dict) -> str:
    """A small table: patches per class and split, units and cases, where it was written."""
    names = record["class_names"]
    w = max(12, *(len(n) + 2 for n in names))
    lines = [
        f"{record['app']} (fraction {record['fraction']}) -> {record.get('dir', '')}",
        f"{'split':<8}" + "".join(f"{n:>{w}}" for n in names) + f"{'total':>10}{'units':>8}{'cases':>7}",
    ]
    for s in SPLITS:
        c = record["counts"][s]
        lines.append(
            f"{s:<8}"
            + "".join(f"{c[n]:>{w}}" for n in names)
            + f"{record['records'][s]:>10}{record['units'][s]:>8}{record['cases'][s]:>7}"
        )
    lines.append("mean (" + record["channel_order"] + "): " + ", ".join(f"{v:.2f}" for v in record["mean_value"]))
    return "\n".join(lines)
