"""``medft score``'s work: run folders in, curves, intervals and comparison tables out.

:func:`score_app` reads the inputs of ``eval/README.md``, computes every statistic with
the functions of :mod:`medft.evaluate`, writes them under ``out`` and returns them as a
:class:`Scores` for :mod:`medft.evaluate.report` to draw.  Nothing here computes a
statistic itself.
"""

from __future__ import annotations

import json
import platform
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medft import __version__, paths
from medft.apps import BOXPLOT, FROC, OVR, ROC, get_app
from medft.errors import MedftError
from medft.evaluate import bootstrap as bs
from medft.evaluate import cimt, compare, froc, froc_binormal, io, multiclass, roc
from medft.util.atomic import write_text_atomic

#: CIMT measurements compared between configurations
CIMT_METRICS = ("li_error", "ma_error", "imt_error")
#: below this many independent cases (videos, patients) the intervals come with a caveat
FEW_CLUSTERS = 10
#: below this many a case-level bootstrap interval is not computed (2 cases: 3 distinct resamples)
MIN_CLUSTERS = 3


def cluster_caveat(n: int, unit: str) -> str:
    """The caveat for intervals over ``n`` independent ``unit``s ("" when there are enough)."""
    if n >= FEW_CLUSTERS:
        return ""
    return (f"only {n} {unit}: intervals and tests rest on few independent units, so they are rough "
            f"and likely too narrow although widened for few units (t quantiles with {max(n - 1, 0)} df)")


def _too_few(n: int, unit: str) -> str:
    return f"{n} {unit}: too few for a resampling interval" if n < MIN_CLUSTERS else ""


@dataclass(frozen=True)
class Options:
    """Scoring options; ``None`` means the application's default above."""

    operating_points: tuple[float, ...] | None = None
    n_boot: int = bs.N_BOOT
    seed: int = bs.SEED
    level: float = 0.95
    resample: str | None = None
    n_bins: int = froc_binormal.N_BINS
    grid_points: int = 41

    def resolved(self, app: str) -> Options:
        a = get_app(app)
        if not a.operating_points:
            return self
        return Options(tuple(self.operating_points or a.operating_points), self.n_boot, self.seed,
                       self.level, self.resample or a.resample, self.n_bins, self.grid_points)


@dataclass
class RunScores:
    """Everything computed for one run folder (arrays as documented in each function)."""

    run: io.RunFolder
    summary: dict
    curve: dict[str, np.ndarray] = field(default_factory=dict)  # x, y, threshold (T+1,)
    band: dict[str, np.ndarray] = field(default_factory=dict)  # x, value, lo, hi on the grid
    points: compare.OperatingPoints | None = None
    fitted: dict[str, np.ndarray] = field(default_factory=dict)  # binormal FROC x, y
    rois: list[dict] = field(default_factory=list)  # CIMT per-ROI errors
    traces: dict[str, dict] = field(default_factory=dict)  # CIMT roi -> boundaries


@dataclass
class Scores:
    app: str
    options: Options
    runs: list[RunScores]
    tables: dict[str, list[dict]]
    data_summary: dict
    provenance: dict


def versions() -> dict[str, str]:
    import matplotlib
    import scipy
    import skimage
    return {"medft": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "scikit-image": skimage.__version__,
            "matplotlib": matplotlib.__version__}


def _run_record(run: io.RunFolder) -> dict:
    rec = {"folder": str(run.path), "config": run.config, "fraction": run.fraction}
    meta = run.path / paths.RUN_RECORD
    if meta.is_file():
        try:
            data = json.loads(meta.read_text())
            rec[paths.RUN_RECORD] = {k: v for k, v in data.items() if isinstance(v, str | int | float | bool)}
        except (json.JSONDecodeError, AttributeError):
            rec[paths.RUN_RECORD] = "unreadable"
    return rec


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, float | np.floating):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def write_json(path: Path, obj) -> None:
    write_text_atomic(path, json.dumps(_jsonable(obj), indent=2) + "\n")


def _curve_csv(columns: dict[str, np.ndarray]) -> str:
    rows = [dict(zip(columns, vals)) for vals in zip(*[np.asarray(v, float) for v in columns.values()])]
    return compare.to_csv(rows, digits=8)


def _point_rows(res: RunScores, x_name: str, extra: dict[str, np.ndarray] | None = None) -> list[dict]:
    p = res.points
    rows = []
    for k, x in enumerate(p.x):
        row = {"config": res.run.name, x_name: float(x), "value": p.value[k], "lo": p.lo[k], "hi": p.hi[k]}
        for name, arr in (extra or {}).items():
            row[name] = arr[k]
        rows.append(row)
    return rows


def _align(keys: list, ref: list, run: io.RunFolder, what: str) -> np.ndarray:
    """Index that reorders ``keys`` to ``ref``; error if the two sets differ."""
    pos = {k: i for i, k in enumerate(keys)}
    missing = [k for k in ref if k not in pos]
    if missing or len(keys) != len(ref):
        extra = [k for k in keys if k not in set(ref)]
        raise MedftError(f"{run.path / paths.PREDICTIONS}: {what} differ from the first configuration's "
                         f"(missing {missing[:3]}, extra {extra[:3]}); paired comparisons need the same")
    return np.array([pos[k] for k in ref])


def _score_detection(app: str, runs: list[io.RunFolder], data_dir: Path, opt: Options) -> list[RunScores]:
    lesion_case, lesion_key, case_ids, n_images, uses_frame = io.read_ground_truth(data_dir, app)
    weights = bs.resample_weights(len(case_ids), opt.n_boot, opt.seed)
    ops = np.asarray(opt.operating_points, float)
    out = []
    dets = {}
    units = None
    for run in runs:
        pred = io.read_predictions(run.path / paths.PREDICTIONS, detection=True)
        units = same_units(pred, units, runs[0].name)
        if uses_frame and pred.frame is None:
            raise MedftError(f"{pred.path}: lesions.csv counts lesions per frame, so predictions need a "
                             "'frame' column")
        cand_lesion = ([(f, les) if les else "" for f, les in zip(pred.frame, pred.lesion)]
                       if uses_frame else list(pred.lesion))
        det = froc.Detections.from_ids(list(pred.case), cand_lesion, pred.score, lesion_case, lesion_key,
                                       case_ids, n_images, source=str(pred.path))
        dets[run.name] = det
    x_max = max(max(d.generator_operating_point()[0] for d in dets.values()), ops.max())
    grid = np.unique(np.r_[np.linspace(0, x_max, opt.grid_points), ops])
    for run in runs:
        det = dets[run.name]
        fps, sens, thr = froc.froc_curve(det)
        boot = froc.froc_bootstrap(det, grid, weights=weights)
        value = bs.value_at(fps, sens, grid)[0]
        lo, hi = bs.small_sample_widen(value, *bs.percentile_ci(boot, opt.level), len(case_ids), opt.level)
        note = _too_few(len(case_ids), "cases")
        if note:
            lo, hi = np.full_like(lo, np.nan), np.full_like(hi, np.nan)
        at = np.searchsorted(grid, ops)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = froc_binormal.fit_binormal_froc(det, n_bins=opt.n_bins)
        b_sens, b_lo, b_hi = fit.sensitivity(ops, opt.level)
        lam, nu = det.generator_operating_point()
        res = RunScores(run, {})
        res.curve = {"x": fps, "y": sens, "threshold": thr}
        res.band = {"x": grid, "value": value, "lo": lo, "hi": hi}
        res.points = compare.OperatingPoints(run.name, ops, value[at], lo[at], hi[at], boot[:, at],
                                             det.events())
        res.fitted = dict(zip(("x", "y"), fit.froc_curve()))
        res.summary = {
            "candidates": int(det.score.size), "lesions": det.n_lesions, "cases": len(det.case_ids),
            "images": float(det.n_images.sum()),
            "generator": {"fp_per_image": lam, "sensitivity": nu},
            "operating_points": _point_rows(res, "fp_rate", {
                "note": np.full(ops.size, note, object), "binormal": b_sens, "binormal_lo": b_lo,
                "binormal_hi": b_hi, "binormal_note": np.full(ops.size, fit.reason, object)}),
            "binormal": {"a": fit.a, "b": fit.b, "se_a": fit.se[0], "se_b": fit.se[1],
                         "candidate_auc": fit.auc_score(), "converged": fit.converged,
                         "n_bins": opt.n_bins, "clusters": fit.n_clusters, "reason": fit.reason,
                         "warnings": [str(w.message) for w in caught]},
        }
        out.append(res)
    return out


def same_units(pred: io.Predictions, first: set | None, first_name: str) -> set:
    """The (case, unit) keys of ``pred``; every configuration must score the same ones, or the
    paired comparisons (and the FP denominators) would compare different candidate sets."""
    keys = set(zip(pred.case, pred.unit))
    if first is not None and keys != first:
        only_here, only_there = sorted(keys - first), sorted(first - keys)
        example = (only_here or only_there)[0]
        raise MedftError(f"{pred.path}: scores {len(keys)} units, {first_name} scores {len(first)} "
                         f"({len(only_here)} only here, {len(only_there)} only there, e.g. case {example[0]!r} "
                         f"unit {example[1]!r}): predict every configuration on the same test set")
    return keys


def _score_frames(app: str, runs: list[io.RunFolder], opt: Options) -> tuple[list[RunScores], list[dict]]:
    ops = np.asarray(opt.operating_points, float)
    grid = np.unique(np.r_[np.linspace(0, 1, opt.grid_points), ops])
    preds, ref = {}, None
    for run in runs:
        p = io.read_predictions(run.path / paths.PREDICTIONS, detection=False)
        keys = list(zip(p.case, p.unit))
        ref = ref or keys
        idx = _align(keys, ref, run, "frames (case, unit)")
        preds[run.name] = (p.label[idx], p.score[idx], p.case[idx])
    y0, _, case0 = preds[runs[0].name]
    by_case = opt.resample == "case"
    groups = np.unique(case0, return_inverse=True)[1].ravel() if by_case else np.arange(y0.size)
    n_clusters = int(groups.max()) + 1
    a = get_app(app)
    cluster_unit = f"{a.split_unit}s" if by_case else a.unit_name
    note = _too_few(n_clusters, cluster_unit)
    weights = bs.resample_weights(n_clusters, opt.n_boot, opt.seed)
    out, aucs = [], {}
    for run in runs:
        y, s, _ = preds[run.name]
        if not np.array_equal(y, y0):
            raise MedftError(f"{run.path / paths.PREDICTIONS}: labels differ from {runs[0].name}'s for "
                             "the same frames")
        fpr, tpr, thr = roc.roc_curve(y, s)
        boot = roc.roc_bootstrap(y, s, grid, groups=groups, weights=weights)
        value = bs.value_at(fpr, tpr, grid)[0]
        lo, hi = bs.small_sample_widen(value, *bs.percentile_ci(boot, opt.level), n_clusters, opt.level)
        if note:
            lo, hi = np.full_like(lo, np.nan), np.full_like(hi, np.nan)
        at = np.searchsorted(grid, ops)
        auc = roc.delong_ci(y, s, opt.level, groups=groups if by_case else None)
        aucs[run.name] = (auc.lo, auc.hi)
        res = RunScores(run, {})
        res.curve = {"x": fpr, "y": tpr, "threshold": thr}
        res.band = {"x": grid, "value": value, "lo": lo, "hi": hi}
        res.points = compare.OperatingPoints(run.name, ops, value[at], lo[at], hi[at], boot[:, at],
                                             roc.roc_events(y, s, groups))
        res.summary = {"units": int(y.size), "positives": int(y.sum()), "clusters": n_clusters,
                       "cluster_unit": cluster_unit,
                       "auc": {"auc": auc.auc, "se": auc.se, "lo": auc.lo, "hi": auc.hi,
                               "method": f"DeLong clustered by {a.split_unit} (Obuchowski; t, {n_clusters - 1} df)"
                                         if by_case else "DeLong",
                               "note": auc.reason},
                       "operating_points": _point_rows(res, "fp_rate", {"note": np.full(ops.size, note, object)})}
        out.append(res)
    auc_rows = compare.compare_aucs(y0, {r: preds[r][1] for r in preds}, aucs,
                                    groups=groups if by_case else None)
    return out, auc_rows


def _score_cimt(runs: list[io.RunFolder], snake: dict) -> list[RunScores]:
    out, ref = [], None
    for run in runs:
        if not (run.path / paths.PREDICTIONS).is_file():  # predict writes it after the last ROI's map
            n = len(list((run.path / paths.CIMT_MAPS).glob("*.npz")))
            raise MedftError(f"{run.path}: prediction did not finish ({n} ROI map(s) in {paths.CIMT_MAPS}, no "
                             f"{paths.PREDICTIONS}); rerun `medft predict cimt ...`")
        maps = io.cimt_roi_paths(run.path)
        names = [p.stem for p in maps]
        ref = ref or names
        if sorted(names) != sorted(ref):
            raise MedftError(f"{run.path / paths.CIMT_MAPS}: ROIs differ from {runs[0].name}'s; "
                             "paired tests need the same ROIs")
        res = RunScores(run, {})
        for path in sorted(maps, key=lambda p: ref.index(p.stem)):
            roi = io.read_cimt_roi(path)
            if roi.li is not None:
                tr = {"li": roi.li.astype(float), "ma": roi.ma.astype(float)}
            else:
                tr = cimt.trace_interfaces(roi.p_li, roi.p_ma, **snake)
            res.traces[roi.roi] = {**tr, "roi": roi}
            res.rois.append({"roi": roi.roi, **cimt.roi_errors(tr["li"], tr["ma"], roi.gt_li, roi.gt_ma,
                                                               roi.spacing_mm)})
        res.summary = {"rois": len(res.rois), "snake": snake, "errors": {
            k: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                "median": float(np.median(v))}
            for k in cimt.ERROR_FIELDS + tuple(f"{f}_mm" for f in cimt.ERROR_FIELDS)
            if np.all(np.isfinite(v := np.array([r[k] for r in res.rois])))}}
        out.append(res)
    return out


def score_app(app: str, runs_dir: Path, out: Path, *, data_dir: Path | None = None,
              configs: list[str] | None = None, options: Options | None = None,
              snake: dict | None = None, force: bool = False) -> Scores:
    """Score every run folder of ``app`` under ``runs_dir`` and write the results to ``out``.

    Writes ``summary.json`` (options, versions, data summary, every configuration's
    summary), ``operating_points.csv|md``, ``comparisons.csv|md`` (+ ``auc_comparisons``
    for frames; Wilcoxon tables for cimt) and per run ``<run>/curve.csv``, ``<run>/band.csv``
    (detection/frames) or ``<run>/roi_errors.csv`` (cimt).  Refuses to overwrite an
    existing ``summary.json`` unless ``force``.
    """
    get_app(app)
    out = Path(out)
    if (out / paths.SCORES_SUMMARY).exists() and not force:
        raise MedftError(f"{out / paths.SCORES_SUMMARY} exists; pass --force to overwrite")
    opt = (options or Options()).resolved(app)
    if opt.n_boot < 1:
        raise MedftError(f"--n-boot must be >= 1, got {opt.n_boot}")
    if opt.resample not in (None, "case", "unit"):
        raise MedftError(f"unknown resampling unit {opt.resample!r}; valid: case, unit")
    runs = io.discover_runs(runs_dir, app, configs)
    io.check_same_data(runs)  # one test set, one training set per label
    tables: dict[str, list[dict]] = {}
    kind = get_app(app).evaluation
    if kind == FROC:
        data_dir = Path(data_dir) if data_dir else Path("data") / app
        results = _score_detection(app, runs, data_dir, opt)
        first = results[0].summary
        data = {k: first[k] for k in ("cases", "images", "lesions", "candidates", "generator")}
        data["clusters"] = f"{first['cases']} cases (the independent units of every interval and test)"
        caveat = cluster_caveat(first["cases"], "cases")
    elif kind == OVR and multiclass.n_classes(runs) > 2:
        results, tables["auc_comparisons"] = multiclass.score_runs(runs, opt, data_dir)
        data = {**multiclass.data_summary(results), **multiclass.case_note(runs, opt)}
        caveat = cluster_caveat(results[0].summary["clusters"], "cases")
    elif kind in (ROC, OVR):
        results, tables["auc_comparisons"] = _score_frames(app, runs, opt)
        first = results[0].summary
        data = {k: first[k] for k in ("units", "positives")}
        data["clusters"] = f"{first['clusters']} {first['cluster_unit']} (the resampling units)"
        caveat = cluster_caveat(first["clusters"], first["cluster_unit"])
        data.update(multiclass.case_note(runs, opt) if kind == OVR else {})
    else:
        snake = snake or {}
        results = _score_cimt(runs, snake)
        data = {"rois": results[0].summary["rois"]}
        caveat = ""
    if caveat:
        warnings.warn(caveat, RuntimeWarning, stacklevel=2)
        data["caveat"] = caveat
    if kind == BOXPLOT:
        samples = {m: {r.run.name: np.array([x[m] for x in r.rois]) for r in results} for m in CIMT_METRICS}
        tables["comparisons"] = [row for m in CIMT_METRICS
                                 for row in compare.compare_paired_samples(samples[m], m)]
        tables[paths.ROI_SUMMARY_TABLE] = [{"config": r.run.name, "metric": k, **v}
                                 for r in results for k, v in r.summary["errors"].items()]
    else:
        tables[paths.OPERATING_POINTS_TABLE] = [row for r in results for row in r.summary["operating_points"]]
        tables["comparisons"] = compare.compare_operating_points([r.points for r in results], level=opt.level,
                                                                 n_perm=opt.n_boot, seed=opt.seed)
    prov = {"runs": [_run_record(r.run) for r in results], "versions": versions(),
            "options": {**opt.__dict__, "snake": snake} if kind == BOXPLOT else dict(opt.__dict__),
            "data_dir": str(data_dir) if data_dir else None}
    scores = Scores(app, opt, results, tables, data, prov)
    _write(scores, out)
    return scores


def _write(s: Scores, out: Path) -> None:
    for r in s.runs:
        d = out / r.run.name
        if r.curve:
            write_text_atomic(d / paths.CURVE, _curve_csv(r.curve))
            write_text_atomic(d / paths.BAND, _curve_csv(r.band))
        if r.rois:
            write_text_atomic(d / paths.ROI_ERRORS, compare.to_csv(r.rois))
        write_json(d / paths.SCORES_SUMMARY, {"run": r.run.name, **r.summary})
    for name, rows in s.tables.items():
        compare.write_table(rows, out / name)
    write_json(out / paths.SCORES_SUMMARY, {"app": s.app, "data": s.data_summary, "provenance": s.provenance,
                                      "configs": {r.run.name: r.summary for r in s.runs},
                                      "tests": _tests_used(s.app)})


def _tests_used(app: str) -> dict[str, str]:
    kind = get_app(app).evaluation
    if kind == BOXPLOT:
        return {"paired": "Wilcoxon signed-rank (two-sided, paired by ROI)"}
    unit = "cases" if kind == FROC else "resampling units (see options)"
    boot = "case bootstrap" if kind == FROC else "bootstrap (resampling unit in options)"
    out = {"intervals": ("percentile case-level bootstrap" if kind == FROC
                         else "percentile bootstrap (resampling unit in options)")
           + ", half-widths scaled by sqrt(G / (G - 1)) t_{G-1} / z for G resampled units",
           "paired": f"paired permutation: the two configurations swapped within random {unit} "
                     "(n_boot permutations, each system's scores replaced by their ranks); two-sided p randomised "
                     "within ties, so its size is alpha although the sensitivity is discrete",
           "diff interval": f"paired {boot} of the difference on shared resamples (percentile)",
           "ci_rule": "non-overlapping 95% intervals => p < .05 (paper, section VI); n/a where an "
                      "interval is missing"}
    if kind == ROC:
        out["auc"] = ("DeLong 95% CI and DeLong paired test; resampling by case uses Obuchowski's (1997) "
                      "clustered variance over videos with t quantiles (I - 1 df)")
    elif kind == OVR:
        out["auc"], out["paired"] = multiclass.AUC_TESTS, multiclass.PAIRED_TESTS
    else:
        out["binormal"] = ("Edwards et al. 2002 IDCA ML binormal fit; delta-method CI over (a, b, nu, lam) "
                           "on the logit scale, with the case-level (cluster-robust sandwich) covariance of all "
                           "four and t quantiles (cases - 1 df)")
    return out
