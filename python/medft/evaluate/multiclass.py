"""Scoring an application of C > 2 classes (``classify``): one-vs-rest ROC per class, macro AUC.

The point estimates are scikit-learn's (``roc_auc_score(multi_class="ovr", average="macro")``: the
mean over classes of the AUC of class k against the rest). Their intervals and the paired
comparisons are the other applications': the case bootstrap of :mod:`.bootstrap` (one set of
resampling weights shared by every configuration, so differences are paired), percentile
intervals, the mid-p paired bootstrap p-value and the paper's CI rule of :mod:`.compare`.

* macro AUC: :func:`weighted_auc` computes every replicate's per-class AUC at once, with the
  case weights as sample weights (checked against scikit-learn's ``sample_weight`` in the tests);
* macro-average ROC: the mean over classes of the one-vs-rest TPR at each false-positive rate,
  read at the operating points like the frames application's ROC, so the report answers the
  paper's question in the same terms (sensitivity at a false-positive rate).

Two classes are scored as the frames application is (ROC, DeLong); :func:`n_classes` tells which.
``predictions.csv`` carries ``p0 .. p<C-1>``, each unit's mean class probabilities, beside ``label``
(the class index) and ``score`` (1 - p0).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from medft import paths
from medft.errors import MedftError
from medft.evaluate import bootstrap as bs
from medft.evaluate import compare, io, roc

#: what the report's test list says of the AUCs of this kind of application
AUC_TESTS = ("two classes: DeLong 95% CI and DeLong paired test; more: macro one-vs-rest AUC (scikit-learn), "
             "percentile case bootstrap CI, paired case bootstrap of the difference (mid-p)")
#: and of the paired tests at the operating points
PAIRED_TESTS = ("two classes: paired permutation as for the frames application; more: paired case bootstrap of "
                "the difference in macro-average one-vs-rest sensitivity on shared resamples (mid-p)")
#: cells of (replicate x unit) held at once by :func:`weighted_auc`
_CHUNK = 4_000_000


def macro_auc(labels, probs) -> float:
    """scikit-learn's macro one-vs-rest AUC of class probabilities ``probs`` (n, C) for ``labels`` (n,)
    in 0..C-1 (for C = 2 the AUC of p1)."""
    from sklearn.metrics import roc_auc_score

    probs = np.asarray(probs, float)
    labels = np.asarray(labels).astype(int)
    if probs.shape[1] == 2:
        return float(roc_auc_score(labels, probs[:, 1]))
    # rows renormalised: Caffe's softmax and 6-decimal CSVs sum to 1 only within float error
    return float(roc_auc_score(labels, probs / probs.sum(axis=1, keepdims=True), multi_class="ovr",
                               average="macro", labels=np.arange(probs.shape[1])))


def weighted_auc(is_pos, score, weights) -> np.ndarray:
    """AUC of ``score`` (n,) for ``is_pos`` (n,) under each row of unit ``weights`` (B, n): the
    Mann-Whitney statistic with ties counted half, positives and negatives weighted. Shape (B,);
    NaN where a replicate has no positive or no negative weight."""
    pos = np.asarray(is_pos, bool)
    s = np.asarray(score, float)
    w = np.atleast_2d(np.asarray(weights, float))
    order = np.argsort(s, kind="mergesort")
    s, pos, w = s[order], pos[order], w[:, order]
    starts = np.r_[0, np.flatnonzero(np.diff(s) != 0) + 1]
    run = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, s.size]))
    first, last = starts[run], np.r_[starts[1:], s.size][run] - 1
    out = np.empty(w.shape[0])
    step = max(1, _CHUNK // max(1, s.size))
    for b0 in range(0, w.shape[0], step):
        wb = w[b0:b0 + step]
        cum = np.cumsum(wb * ~pos, axis=1)
        below = np.where(first > 0, cum[:, np.maximum(first - 1, 0)], 0.0)
        tied = cum[:, last] - below
        num = np.sum(wb[:, pos] * (below + 0.5 * tied)[:, pos], axis=1)
        den = wb[:, pos].sum(axis=1) * wb[:, ~pos].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[b0:b0 + step] = np.where(den > 0, num / den, np.nan)
    return out


def n_classes(runs: list[io.RunFolder]) -> int:
    """C of the first run's ``predictions.csv`` (its ``p<k>`` columns; 2 where it has none)."""
    path = runs[0].path / paths.PREDICTIONS
    with open(path, newline="", encoding="utf-8") as f:
        header = {h.strip() for h in f.readline().split(",")}
    c = 0
    while f"p{c}" in header:
        c += 1
    return max(2, c)


def read_predictions(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(case, unit, label, probs (n, C)) of a multi-class ``predictions.csv``; labels in 0..C-1,
    every class present, probabilities finite."""
    t = io.read_table(path, ("case", "unit", "label", "p0"))
    cols = [f"p{k}" for k in range(len(t)) if f"p{k}" in t]
    probs = np.stack([io._numbers(path, c, t[c]) for c in cols], axis=1)
    label = io._numbers(path, "label", t["label"])
    bad = np.flatnonzero((label != np.round(label)) | (label < 0) | (label >= len(cols)))
    if bad.size:
        raise MedftError(f"{path}: row {bad[0] + 2}: label {t['label'][bad[0]]!r} is not a class 0..{len(cols) - 1}")
    label = label.astype(int)
    absent = [k for k in range(len(cols)) if not np.any(label == k)]
    if absent:
        raise MedftError(f"{path}: no rows of class {absent[0]}; every class is needed for its one-vs-rest ROC")
    return np.array(t["case"], dtype=object), np.array(t["unit"], dtype=object), label, probs


def class_names(data_dir: Path | None, c: int) -> list[str]:
    """The data set's class names (its prep.json) where it is there and has C of them, else ``class k``."""
    rec = Path(data_dir or "") / paths.PREP_RECORD
    if data_dir and rec.is_file():
        names = json.loads(rec.read_text()).get("class_names") or []
        if len(names) == c:
            return [str(n) for n in names]
    return [f"class {k}" for k in range(c)]


def score_runs(runs: list[io.RunFolder], opt, data_dir: Path | None = None) -> tuple[list, list[dict]]:
    """(RunScores per run, macro-AUC comparison rows) of the configurations in ``runs``, every one
    scored on the same units with the same case-bootstrap weights."""
    from medft.evaluate.pipeline import RunScores, _align, _point_rows

    preds, ref = {}, None
    for run in runs:
        case, unit, label, probs = read_predictions(run.path / paths.PREDICTIONS)
        keys = list(zip(case, unit))
        ref = ref or keys
        idx = _align(keys, ref, run, "units (case, unit)")
        preds[run.name] = (label[idx], probs[idx], case[idx])
    y, p0, case0 = preds[runs[0].name]
    c = p0.shape[1]
    names = class_names(data_dir, c)
    groups = (np.unique(case0, return_inverse=True)[1] if opt.resample == "case" else np.arange(y.size))
    weights = bs.resample_weights(int(groups.max()) + 1, opt.n_boot, opt.seed)
    unit_w = weights[:, groups]
    ops = np.asarray(opt.operating_points, float)
    grid = np.unique(np.r_[np.linspace(0, 1, opt.grid_points), ops])
    at = np.searchsorted(grid, ops)
    out, boots, cis = [], {}, {}
    for run in runs:
        label, probs, _ = preds[run.name]
        if probs.shape[1] != c or not np.array_equal(label, y):
            raise MedftError(f"{run.path / paths.PREDICTIONS}: classes or labels differ from {runs[0].name}'s "
                             "for the same units")
        per_class, tpr, tpr_boot, auc_boot = [], [], [], []
        for k in range(c):
            pos = label == k
            fpr_k, tpr_k, _ = roc.roc_curve(pos, probs[:, k])
            tpr.append(bs.value_at(fpr_k, tpr_k, grid)[0])
            tpr_boot.append(roc.roc_bootstrap(pos, probs[:, k], grid, groups=groups, weights=weights))
            auc_boot.append(weighted_auc(pos, probs[:, k], unit_w))
            lo, hi = bs.percentile_ci(auc_boot[-1][:, None], opt.level)
            per_class.append({"class": names[k], "index": k, "units": int(pos.sum()),
                              "auc": float(weighted_auc(pos, probs[:, k], np.ones((1, y.size)))[0]),
                              "lo": float(lo[0]), "hi": float(hi[0])})
        value, boot = np.mean(tpr, axis=0), np.mean(tpr_boot, axis=0)
        lo, hi = bs.percentile_ci(boot, opt.level)
        macro_boot = np.mean(auc_boot, axis=0)
        a_lo, a_hi = bs.percentile_ci(macro_boot[:, None], opt.level)
        auc = macro_auc(label, probs)
        boots[run.name], cis[run.name] = macro_boot, (float(a_lo[0]), float(a_hi[0]))
        res = RunScores(run, {})
        res.curve = {"x": grid, "y": value}
        res.band = {"x": grid, "value": value, "lo": lo, "hi": hi}
        res.points = compare.OperatingPoints(run.name, ops, value[at], lo[at], hi[at], boot[:, at], None)
        res.summary = {"units": int(y.size), "clusters": int(groups.max()) + 1, "classes": c, "per_class": per_class,
                       "auc": {"auc": auc, "lo": cis[run.name][0], "hi": cis[run.name][1],
                               "method": "macro one-vs-rest (scikit-learn), case bootstrap"},
                       "operating_points": _point_rows(res, "fp_rate")}
        out.append(res)
    return out, compare_macro_aucs(out, boots, cis, opt.level)


def compare_macro_aucs(results: list, boots: dict[str, np.ndarray], cis: dict[str, tuple[float, float]],
                       level: float = 0.95) -> list[dict]:
    """Every pair's macro-AUC difference with its paired case-bootstrap interval and mid-p value."""
    rows = []
    for ra, rb in itertools.combinations(results, 2):
        a, b = ra.run.name, rb.run.name
        d = boots[a] - boots[b]
        lo, hi = bs.percentile_ci(d[:, None], level)
        auc_a, auc_b = ra.summary["auc"]["auc"], rb.summary["auc"]["auc"]
        rows.append({"a": a, "b": b, "auc_a": auc_a, "auc_b": auc_b, "diff": auc_a - auc_b,
                     "diff_lo": float(lo[0]), "diff_hi": float(hi[0]),
                     "p_value": float(bs.paired_p_value(d[:, None])[0]), "test": "paired case bootstrap",
                     "ci_rule": str(compare.ci_rule(*cis[a], *cis[b]))})
    return rows


def data_summary(results: list) -> dict:
    """The data lines of the report: units and their classes."""
    first = results[0].summary
    return {"units": first["units"], "clusters": f"{first['clusters']} cases (the resampling units)",
            "classes": first["classes"],
            "per class": ", ".join(f"{c['class']} {c['units']}" for c in first["per_class"])}


def case_note(runs: list[io.RunFolder], opt) -> dict:
    """A data line where every scored unit is its own case (no patients in the input): the intervals
    then treat images as independent, which overstates certainty if one patient gave several."""
    t = io.read_table(runs[0].path / paths.PREDICTIONS, ("case", "unit"))
    if opt.resample == "case" and len(set(t["case"])) < len(set(t["unit"])):
        return {}
    return {"cases": "each image is its own case (the input named no patients): intervals and tests treat "
                     "images as independent"}
