"""Reading the scoring inputs (the contract of ``eval/README.md``), with errors that name
the file, the row and the rule broken.

Run folders: ``runs/<app>/<config>[-<fraction>]/`` holding ``predictions.csv`` (polyp, pe,
frames) or ``cimt_maps/<roi>.npz`` (cimt), and optionally the training log ``log.csv``.
Data folder (detection apps): ``lesions.csv`` and ``cases.csv``.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medft import paths
from medft.apps import BOXPLOT, get_app
from medft.errors import MedftError
from medft.paths import fraction_share, parse_run_name

#: what ``medft predict cimt`` writes to predictions.csv after the last ROI's map: the set is complete
CIMT_DONE = "# cimt is scored from cimt_maps/ (dense prediction per ROI pixel)\n"
PRED_COLUMNS = ("case", "unit", "lesion", "label", "score")
#: images per case column of cases.csv, per detection app


def read_table(path: Path, required: tuple[str, ...]) -> dict[str, list[str]]:
    """Columns of a CSV file as lists of stripped strings; ``required`` columns must exist."""
    path = Path(path)
    if not path.is_file():
        raise MedftError(f"{path}: no such file")
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in required if c not in header]
            if missing:
                raise MedftError(f"{path}: missing column(s) {', '.join(missing)}; "
                                 f"found {', '.join(header) or 'no header'}; need {', '.join(required)}")
            cols: dict[str, list[str]] = {h: [] for h in header}
            for row in reader:
                if None in row or any(row.get(raw) is None for raw in reader.fieldnames or []):
                    raise MedftError(f"{path}: line {reader.line_num} has {len(reader.fieldnames or [])} columns "
                                     "expected, another number found")
                for raw, h in zip(reader.fieldnames or [], header):
                    cols[h].append((row.get(raw) or "").strip())
    except UnicodeDecodeError as e:
        raise MedftError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except csv.Error as e:
        raise MedftError(f"{path}: not a CSV file ({e})") from None
    if not cols[required[0]]:
        raise MedftError(f"{path}: no data rows")
    return cols


def _numbers(path: Path, col: str, values: list[str]) -> np.ndarray:
    out = np.empty(len(values))
    for i, v in enumerate(values):
        try:
            out[i] = float(v)
        except ValueError:
            raise MedftError(f"{path}: row {i + 2}, column {col}: {v!r} is not a number") from None
        if not np.isfinite(out[i]):
            raise MedftError(f"{path}: row {i + 2}, column {col}: {v!r} is not finite")
    return out


@dataclass(frozen=True)
class Predictions:
    """One row per scored unit: ``case``, ``unit``, ``lesion`` (str, "" for none) (n,),
    ``label`` (n,) int 0/1 and ``score`` (n,) float; ``frame`` (n,) str or None."""

    path: Path
    case: np.ndarray
    unit: np.ndarray
    lesion: np.ndarray
    label: np.ndarray
    score: np.ndarray
    frame: np.ndarray | None = None


def read_predictions(path: Path, *, detection: bool) -> Predictions:
    """Read and check a ``predictions.csv``.

    Rules: labels are 0 or 1; scores finite; (case, unit) unique; both classes present;
    for detection apps a row has a lesion id exactly when its label is 1.
    """
    path = Path(path)
    t = read_table(path, PRED_COLUMNS)
    label = _numbers(path, "label", t["label"])
    bad = np.flatnonzero(~np.isin(label, (0, 1)))
    if bad.size:
        raise MedftError(f"{path}: row {bad[0] + 2}: label {t['label'][bad[0]]!r} is not 0 or 1")
    score = _numbers(path, "score", t["score"])
    keys = list(zip(t["case"], t["unit"]))
    if len(set(keys)) != len(keys):
        seen: set = set()
        dup = next(k for k in keys if k in seen or seen.add(k))
        raise MedftError(f"{path}: unit {dup[1]!r} of case {dup[0]!r} appears more than once")
    for cls in (0, 1):
        if not np.any(label == cls):
            raise MedftError(f"{path}: no rows with label {cls}; both classes are needed")
    if detection:
        has = np.array([v != "" for v in t["lesion"]])
        wrong = np.flatnonzero(has != (label == 1))
        if wrong.size:
            i = wrong[0]
            raise MedftError(f"{path}: row {i + 2}: label {int(label[i])} with lesion "
                             f"{t['lesion'][i]!r}; a row names a lesion exactly when its label is 1")
    frame = np.array(t["frame"], dtype=object) if "frame" in t else None
    return Predictions(path, np.array(t["case"], dtype=object), np.array(t["unit"], dtype=object),
                       np.array(t["lesion"], dtype=object), label.astype(int), score, frame)


def read_ground_truth(data_dir: Path, app: str):
    """``(lesion_case, lesion_key, case_ids, n_images, uses_frame)`` from ``lesions.csv`` and ``cases.csv``.

    ``lesion_key`` is ``(frame, lesion)`` when ``lesions.csv`` has a ``frame`` column (a
    lesion is then one occurrence in one frame, the polyp counting) and ``lesion`` otherwise.
    """
    data_dir = Path(data_dir)
    col = get_app(app).image_column
    cases = read_table(data_dir / paths.CASES, ("case", col))
    n_images = _numbers(data_dir / paths.CASES, col, cases[col])
    les = read_table(data_dir / paths.LESIONS, ("case", "lesion"))
    if "subset" in les:  # medft prep lists every lesion with its subset: score the test ones
        keep = [i for i, s in enumerate(les["subset"]) if s == "test"]
        les = {k: [v[i] for i in keep] for k, v in les.items()}
    uses_frame = "frame" in les
    keys = list(zip(les["frame"], les["lesion"])) if uses_frame else les["lesion"]
    return les["case"], keys, cases["case"], n_images, uses_frame




@dataclass(frozen=True)
class RunFolder:
    """A run folder ``<config>[-<fraction>]``: ``name`` is the folder name, ``fraction`` the
    training-data fraction label ("" for all data)."""

    name: str
    config: str
    fraction: str
    path: Path


def _config_order(config: str) -> tuple:
    """handcrafted, scratch, then ft-* from shallow (fc8) to deep (conv1) tuning, then others."""
    if config == "handcrafted":
        return (0, 0, config)
    if config == "scratch":
        return (1, 0, config)
    m = re.fullmatch(r"ft-(conv|fc)(\d+)", config)
    if m:
        return (2, -int(m.group(2)), config)
    return (3, 0, config)


def discover_runs(runs_dir: Path, app: str, configs: list[str] | None = None) -> list[RunFolder]:
    """Run folders under ``runs_dir`` that hold this app's scoring input, in paper order.

    ``configs`` selects folder names (exact, e.g. ``ft-conv1`` or ``scratch-50``); an
    unknown name is an error listing the folders found.
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise MedftError(f"{runs_dir}: no such runs folder")
    marker = paths.CIMT_MAPS if get_app(app).evaluation == BOXPLOT else paths.PREDICTIONS
    found = {}
    for p in sorted(runs_dir.iterdir()):
        if (p / marker).exists():
            config, frac = parse_run_name(p.name)
            found[p.name] = RunFolder(p.name, config, frac, p)
    if not found:
        raise MedftError(f"{runs_dir}: no run folder with {marker}")
    if configs:
        unknown = [c for c in configs if c not in found]
        if unknown:
            raise MedftError(f"{runs_dir}: no run folder {unknown[0]!r} with {marker}; "
                             f"found: {', '.join(found)}")
        runs = [found[c] for c in configs]
    else:
        runs = list(found.values())
    return sorted(runs, key=lambda r: (r.fraction != "", -fraction_share(r.fraction),
                                       _config_order(r.config)))


@dataclass(frozen=True)
class CimtRoi:
    """One test ROI: ``li``/``ma`` traced interfaces (W,) or maps ``p_li``/``p_ma`` (H, W),
    expert ``gt_li``/``gt_ma`` (W,) with NaN where not annotated, ``spacing_mm`` or None,
    optional ``image`` (H, W)."""

    roi: str
    gt_li: np.ndarray
    gt_ma: np.ndarray
    spacing_mm: float | None
    p_li: np.ndarray | None = None
    p_ma: np.ndarray | None = None
    li: np.ndarray | None = None
    ma: np.ndarray | None = None
    image: np.ndarray | None = None


def read_cimt_roi(path: Path) -> CimtRoi:
    """Read ``cimt_maps/<roi>.npz``: ``gt_li``, ``gt_ma`` and either maps ``p_li``, ``p_ma``
    or traced boundaries ``li``, ``ma`` (external systems); optional ``spacing_mm``, ``image``."""
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise MedftError(f"{path}: not a readable .npz ({e})") from None
    with z:
        d = {k: z[k] for k in z.files}
    for k in ("gt_li", "gt_ma"):
        if k not in d:
            raise MedftError(f"{path}: missing array {k!r}; found {', '.join(d) or 'none'}")
    maps = "p_li" in d and "p_ma" in d
    lines = "li" in d and "ma" in d
    if not (maps or lines):
        raise MedftError(f"{path}: needs confidence maps 'p_li' and 'p_ma' or boundaries 'li' and 'ma'")
    w = d["gt_li"].shape
    if d["gt_ma"].shape != w or len(w) != 1:
        raise MedftError(f"{path}: gt_li {d['gt_li'].shape} and gt_ma {d['gt_ma'].shape} must be (W,)")
    if maps:
        for k in ("p_li", "p_ma"):
            if d[k].ndim != 2 or d[k].shape[1] != w[0]:
                raise MedftError(f"{path}: {k} has shape {d[k].shape}; expected (H, {w[0]})")
            if not np.isfinite(d[k]).all():
                raise MedftError(f"{path}: {k} has non-finite values")
    for k in ("li", "ma"):
        if k in d and (d[k].shape != w or not np.isfinite(d[k]).all()):
            raise MedftError(f"{path}: {k} must be finite with shape {w}")
    spacing = float(d["spacing_mm"]) if "spacing_mm" in d else None
    if spacing is not None and not (np.isfinite(spacing) and spacing > 0):
        raise MedftError(f"{path}: spacing_mm {spacing!r} must be a positive number")
    return CimtRoi(path.stem, d["gt_li"].astype(float), d["gt_ma"].astype(float), spacing,
                   d.get("p_li"), d.get("p_ma"), d.get("li"), d.get("ma"), d.get("image"))


def cimt_roi_paths(run: Path) -> list[Path]:
    maps = sorted((Path(run) / paths.CIMT_MAPS).glob("*.npz"))
    if not maps:
        raise MedftError(f"{Path(run) / paths.CIMT_MAPS}: no <roi>.npz files")
    return maps


def read_log(run: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """``(iteration, val_auc)`` (n,) rows with a validation AUC from ``<run>/log.csv``, or None."""
    path = Path(run) / paths.LOG
    if not path.is_file():
        return None
    t = read_table(path, ("iteration", "val_auc"))
    rows = [(it, a) for it, a in zip(t["iteration"], t["val_auc"]) if a not in ("", "nan", "NaN")]
    if not rows:
        return None
    it, auc = zip(*rows)
    return _numbers(path, "iteration", list(it)), _numbers(path, "val_auc", list(auc))


def _fingerprints(run_folder: Path) -> dict | None:
    """(``data``: train + val, ``test``) fingerprints of the data set a run was trained on, from its run.json."""
    try:
        record = json.loads((Path(run_folder) / paths.RUN_RECORD).read_text())
    except (OSError, ValueError):
        return None
    fp = (record.get("data") or {}).get("fingerprint") if isinstance(record, dict) else None
    if fp is None:
        return None
    return fp if isinstance(fp, dict) else {"data": fp}


def check_same_data(runs: list) -> None:
    """Runs under one training-set label (e.g. all training data) must have trained on one data
    set (prep.json's fingerprint, recorded in run.json): refuse a mix, naming both runs."""
    seen: dict[tuple[str, str], tuple[str, str]] = {}
    for run in runs:
        fp = _fingerprints(run.path)
        if fp is None:
            continue
        for part, group in (("data", run.fraction),):
            if part not in fp:
                continue
            first = seen.setdefault((part, group), (run.name, fp[part]))
            if first[1] != fp[part]:
                what = f"training data ({run.fraction or 'all'} of it)"
                raise MedftError(f"{run.path} and {first[0]}: trained on a different {what} (data fingerprint "
                                 f"{str(fp[part])[:12]} vs {str(first[1])[:12]}); score runs of one data set "
                                 "together (retrain one, or select runs with --configs)")
