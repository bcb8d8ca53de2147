"""``medft report``: score an application, draw its figures and write ``report.md``.

The report opens with the paper's question answered from the paired comparisons
(:mod:`medft.evaluate.answer`) and the source model of the fine-tuned runs; then it holds a data
summary, one table of every configuration at the operating
points with 95% intervals, the pairwise comparison table, the figures (Figs. 2/4/6 (a) and
(b), 8, 9, 10 as they apply) and what produced them (run folders, seeds, versions).
Figures are drawn only from :class:`pipeline.Scores`; each has its CSV beside it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from medft import paths
from medft.apps import BOXPLOT, FROC, ONE_PATIENT, get_app
from medft.errors import MedftError
from medft.evaluate import answer, compare, io, pipeline, plots
from medft.evaluate import seeds as seedstats
from medft.evaluate.compare import to_markdown
from medft.paths import fraction_share
from medft.util.atomic import write_text_atomic

#: the representative subset drawn in panel (a) when there are more than 6 configurations
PANEL_A = ("handcrafted", "scratch", "ft-fc8", "ft-fc7", "ft-conv4", "ft-conv1")
#: the configurations of the reduced-data panel (b) and of the Fig. 8 maps, in preference order
DEEP = ("ft-conv1",)


def _panel_a(runs: list[pipeline.RunScores], chosen: list[str] | None) -> list[pipeline.RunScores]:
    full = [r for r in runs if not r.run.fraction]
    if chosen:
        return [r for r in runs if r.run.name in chosen]
    if len(full) <= 6:
        return full
    return [r for r in full if r.run.config in PANEL_A]


def _panel_b(runs: list[pipeline.RunScores]) -> list[pipeline.RunScores]:
    reduced = {r.run.config for r in runs if r.run.fraction}
    return [r for r in runs if r.run.config in reduced]


def fraction_label(fraction: str) -> str:
    """Run-folder fraction suffix as text: '0.25' -> '25%', '50' -> '50%', '1patient' -> '1 patient'."""
    return "1 patient" if fraction == ONE_PATIENT else f"{fraction_share(fraction) * 100:g}%"


def _curve_figure(s: pipeline.Scores, runs: list[pipeline.RunScores], path: Path, title: str,
                  colors: dict[str, int]) -> list[Path]:
    fractions = sorted({r.run.fraction for r in runs}, key=lambda f: -float(f or 100))
    curves = []
    for r in runs:
        label = r.run.config + (f" ({fraction_label(r.run.fraction)} data)" if r.run.fraction else "")
        p = r.points
        curves.append(plots.Curve(label, r.curve["x"], r.curve["y"], p.x, p.value, p.lo, p.hi,
                                  color=colors[r.run.config], style=fractions.index(r.run.fraction)))
    if get_app(s.app).evaluation != FROC:
        return plots.plot_curves(curves, path, xlabel=get_app(s.app).x_label, title=title,
                                 ylabel="true positive rate", xlim=(0, 1), diagonal=True)
    x_max = 1.5 * max(float(np.max(s.options.operating_points)), 1e-9)
    return plots.plot_curves(curves, path, xlabel=get_app(s.app).x_label, title=title, xlim=(0, x_max))


def _figures(s: pipeline.Scores, out: Path, chosen: list[str] | None, n_maps: int) -> list[tuple[str, Path]]:
    first = set(seedstats.first_seeds([r.run.name for r in s.runs]))
    s = replace(s, runs=[r for r in s.runs if r.run.name in first or (chosen and r.run.name in chosen)])
    figs: list[tuple[str, Path]] = []
    names = list(dict.fromkeys(r.run.config for r in s.runs))
    colors = {c: i for i, c in enumerate(names)}
    app = get_app(s.app)
    kind = "FROC" if app.evaluation == FROC else "ROC"
    if app.evaluation != BOXPLOT:
        a = _panel_a(s.runs, chosen)
        _curve_figure(s, a, out / paths.FIG_CONFIGS, f"{kind}: configurations (95% CI at operating points)", colors)
        figs.append((f"(a) {kind} curves of the configurations", (out / paths.FIG_CONFIGS).with_suffix(".png")))
        b = _panel_b(s.runs)
        if b:
            _curve_figure(s, b, out / paths.FIG_REDUCED, f"{kind}: reduced training data", colors)
            figs.append((f"(b) {kind} with reduced training data", (out / paths.FIG_REDUCED).with_suffix(".png")))
    else:
        mm = all(np.isfinite(x["li_error_mm"]) for r in s.runs for x in r.rois)
        unit, suffix = ("mm", "_mm") if mm else ("pixels", "")
        for key, name in (("li_error", "lumen-intima"), ("ma_error", "media-adventitia")):
            samples = {r.run.name: np.array([x[key + suffix] for x in r.rois]) for r in s.runs}
            plots.plot_boxes(samples, out / paths.fig_errors(key), ylabel=f"segmentation error ({unit})",
                             title=f"{name} interface")
            figs.append((f"Fig. 9: {name} segmentation error", (out / paths.fig_errors(key)).with_suffix(".png")))
        with_maps = [r for r in s.runs if any("li_colmax" in t for t in r.traces.values())]
        deep = [r for r in with_maps if r.run.name in DEEP]
        pick = (deep or with_maps or [None])[0]
        if pick is not None:
            for roi_name, t in list(pick.traces.items())[:n_maps]:
                roi: io.CimtRoi = t["roi"]
                stem = out / paths.fig_maps(roi_name)
                plots.plot_confidence_map(roi.image, roi.p_li, roi.p_ma, t, roi.gt_li, roi.gt_ma,
                                          stem, title=f"{pick.run.name}: {roi_name}")
                figs.append((f"Fig. 8: {pick.run.name}, ROI {roi_name}", stem.with_suffix(".png")))
    logs = {r.run.name: lg for r in s.runs if (lg := io.read_log(r.run.path)) is not None}
    if logs:
        plots.plot_convergence(logs, out / paths.FIG_CONVERGENCE, title="validation AUC during training")
        figs.append(("Fig. 10: convergence (validation AUC)", (out / paths.FIG_CONVERGENCE).with_suffix(".png")))
    return figs


def _ci(v, lo, hi, note: str = "") -> str:
    why = f" ({note})" if note else ""
    if v is None or not np.isfinite(v):
        return f"n/a{why}"
    if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{v:.3f} [n/a{why}]"
    return f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


def _summary_table(s: pipeline.Scores) -> str:
    if get_app(s.app).evaluation == BOXPLOT:
        rows = []
        for r in s.runs:
            row = {"config": r.run.name}
            for k, v in r.summary["errors"].items():
                if not k.startswith("imt_expert"):
                    row[k] = f"{v['mean']:.3f} ± {v['std']:.3f}"
            rows.append(row)
        return to_markdown(rows)
    rows = []
    for r in s.runs:
        row = {"config": r.run.name}
        for op in r.summary["operating_points"]:
            row[f"@{op['fp_rate']:g} bootstrap"] = _ci(op["value"], op["lo"], op["hi"], op.get("note", ""))
            if "binormal" in op:
                row[f"@{op['fp_rate']:g} binormal"] = _ci(op["binormal"], op["binormal_lo"],
                                                          op["binormal_hi"], op.get("binormal_note", ""))
        if "auc" in r.summary:
            a = r.summary["auc"]
            row[f"AUC ({a['method']})"] = _ci(a["auc"], a["lo"], a["hi"], a.get("note", ""))
        rows.append(row)
    return to_markdown(rows)


def _data_label(fraction: str) -> str:
    if not fraction:
        return "All training data"
    if fraction == ONE_PATIENT:
        return "Training data of 1 patient"
    return f"{fraction_label(fraction)} of the training data"


def _answer(s: pipeline.Scores) -> list[str]:
    """The report's opening: which configuration won with all and with the least training data,
    against whom, by how much (paired interval, p-value), and the source model of the fine-tuned runs."""
    app = get_app(s.app)
    runs = [(r.run.name, r.run.config, r.run.fraction) for r in s.runs]
    rows = s.tables.get("comparisons", [])
    lines = ["## The answer", ""]
    by_seed = seedstats.from_scores(s)
    if by_seed is not None:
        summaries, _ = by_seed
        if app.evaluation == BOXPLOT:
            found = [(f, f"{m.replace('_', ' ')} (px)") for k, m in enumerate(summaries[0].where)
                     for f in answer.seed_findings(summaries, [r for r in rows if r["metric"] == m], k, False,
                                                   s.options.level)]
        else:
            xs = summaries[0].where
            k = len(xs) // 2
            found = [(f, f"sensitivity at {xs[k]:g} ({app.x_label})")
                     for f in answer.seed_findings(summaries, [r for r in rows if np.isclose(r["fp_rate"], xs[k])],
                                                   k, True, s.options.level)]
    elif app.evaluation == BOXPLOT:
        found = [(f, f"mean {f.where.replace('_', ' ')} (px)") for m in ("li_error", "ma_error")
                 for f in answer.error_findings(runs, rows, m)]
    else:
        xs = sorted({r["fp_rate"] for r in rows})
        x = xs[len(xs) // 2] if xs else None
        found = [(f, f"sensitivity at {x:g} ({app.x_label})")
                 for f in (answer.point_findings(runs, rows, x) if x is not None else [])]
    if not found:
        lines += ["Fewer than two CNN runs share a training set: nothing to compare.", ""]
    lines += [answer.sentence(f, _data_label(f.data), what) for f, what in found]
    sources = sorted({str(rec[paths.RUN_RECORD].get("pretrained")) for rec in s.provenance["runs"]
                      if rec.get("config") not in ("scratch", answer.HANDCRAFTED)
                      and isinstance(rec.get(paths.RUN_RECORD), dict) and rec[paths.RUN_RECORD].get("pretrained")})
    source = "; ".join(sources) if sources else "none (no fine-tuned run)"
    lines += ["", f"Source model of the fine-tuned runs: {source}.", ""]
    return lines


def _seeds_section(s: pipeline.Scores, out: Path) -> list[str]:
    """Per configuration and operating point (or CIMT metric): each seed's value, their mean, spread
    and interval over seeds and cases; also written to ``seeds.csv``. Empty with one seed per run."""
    by_seed = seedstats.from_scores(s)
    if by_seed is None:
        return []
    summaries, x_name = by_seed
    rows = [row for g in summaries for row in g.rows(x_name)]
    compare.write_table(rows, out / paths.SEEDS_TABLE)
    shown = [{"config": r["config"], x_name: r[x_name], "seeds": r["seeds"], "per seed": r["per_seed"],
              "mean ± sd": f"{r['mean']:.3f}" + (f" ± {r['sd']:.3f}" if r["seeds"] > 1 else ""),
              "range": f"{r['min']:.3f}-{r['max']:.3f}",
              f"{s.options.level:.0%} interval (seeds and cases)": _ci(r["mean"], r["lo"], r["hi"]).split(" ", 1)[-1]}
             for r in rows]
    return ["## Training seeds", "",
            "Each configuration was trained once per seed (Caffe's random_seed: initial weights, dropout); "
            "every seed's run is scored on the same test set. The interval of the mean carries the seeds' "
            "variance (s²/S, at Student's t with S-1 degrees of freedom) and the case bootstrap's (at the normal "
            "quantile), their half-widths added in quadrature; n/a with one seed. The figures show each "
            "configuration's first seed. Data: `seeds.csv`.", "",
            to_markdown(shown), ""]


def write_report(s: pipeline.Scores, out: Path, figs: list[tuple[str, Path]], command: str) -> Path:
    """Write ``out/report.md`` from computed scores and drawn figures; returns its path."""
    app = get_app(s.app)
    tests = pipeline._tests_used(s.app)
    lines = [f"# {app.title}: scoring report", "",
             f"Generated by `{command}` (medft {s.provenance['versions']['medft']}). "
             "Every number below is in the CSV/JSON files of this folder.", ""]
    lines += _answer(s) + _seeds_section(s, out) + ["## Data", ""]
    lines += [f"- {k}: {v}" for k, v in s.data_summary.items()]
    lines += ["", "## Configurations at the operating points" if app.evaluation != BOXPLOT else
              "## Errors per configuration (mean ± std over ROIs)", ""]
    if app.evaluation != BOXPLOT:
        lines += [f"x = {get_app(s.app).x_label}; sensitivity with 95% percentile bootstrap intervals "
                  f"({s.options.n_boot} resamples by {s.options.resample}, seed {s.options.seed}). "
                  "Step convention: the largest sensitivity reached without exceeding the rate.", ""]
        if app.evaluation == FROC:
            lines += ["Binormal columns: the Edwards et al. (2002) fitted FROC with a 95% delta-method interval "
                      "that carries the uncertainty of the binormal fit and of the candidate generator's "
                      "sensitivity and false-positive rate (case-level variance); n/a where it cannot be "
                      "computed.", ""]
    lines += [_summary_table(s), "## Pairwise comparisons", ""]
    lines += [f"- {k}: {v}" for k, v in tests.items()] + [""]
    cols = (["metric", "a", "b", "mean_a", "mean_b", "median_diff", "n", "p_value", "test"]
            if get_app(s.app).evaluation == BOXPLOT else
            ["a", "b", "fp_rate", "value_a", "value_b", "diff", "diff_lo", "diff_hi", "p_value", "test",
             "ci_rule"])
    lines += [to_markdown(s.tables["comparisons"], cols)]
    if "auc_comparisons" in s.tables:
        rows = s.tables["auc_comparisons"]
        lines += [f"AUC comparisons ({rows[0]['test'] if rows else 'DeLong paired'}):", "",
                  to_markdown(rows, [c for c in ("a", "b", "auc_a", "auc_b", "diff", "z", "diff_lo", "diff_hi",
                                                 "p_value", "ci_rule", "note") if not rows or c in rows[0]])]
    lines += ["## Figures", ""]
    for title, path in figs:
        lines += [f"### {title}", "", f"![{title}]({path.relative_to(out)})",
                  f"(data: `{path.with_suffix('.csv').relative_to(out)}`, vector: "
                  f"`{path.with_suffix('.pdf').relative_to(out)}`)", ""]
    lines += ["## Provenance", "", "| run folder | fraction | run.json |", "|---|---|---|"]
    for rec in s.provenance["runs"]:
        meta = rec.get(paths.RUN_RECORD, "")
        if isinstance(meta, dict):
            meta = ", ".join(f"{k}={v}" for k, v in list(meta.items())[:8])
        lines.append(f"| `{rec['folder']}` | {rec['fraction'] or 'all'} | {meta} |")
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in s.provenance["versions"].items()), "",
              "Options: " + ", ".join(f"{k}={v}" for k, v in s.provenance["options"].items()), ""]
    path = out / paths.REPORT_PAGE
    write_text_atomic(path, "\n".join(lines))
    return path


def make_report(app: str, runs_dir: Path, out: Path, *, data_dir: Path | None = None,
                configs: list[str] | None = None, figure_configs: list[str] | None = None,
                options: pipeline.Options | None = None, snake: dict | None = None,
                n_maps: int = 3, force: bool = False, command: str | None = None,
                seeds: tuple[int, ...] | None = None) -> Path:
    """Score ``app`` into ``out``, draw the figures and write ``out/report.md``; ``seeds`` keeps the run
    folders of those training seeds (and the handcrafted baseline), None all of them.

    Refuses to overwrite an existing ``report.md`` unless ``force``.  Returns its path.
    """
    out = Path(out)
    if seeds:
        found = [r.name for r in io.discover_runs(runs_dir, app, configs)]
        configs = [n for n in found if n == answer.HANDCRAFTED or seedstats.seed_of(n) in seeds]
        if not [n for n in configs if n != answer.HANDCRAFTED]:
            raise MedftError(f"{runs_dir}: no run folder of training seed(s) {', '.join(map(str, seeds))}")
    if (out / paths.REPORT_PAGE).exists() and not force:
        raise MedftError(f"{out / paths.REPORT_PAGE} exists; pass --force to overwrite")
    scores = pipeline.score_app(app, runs_dir, out, data_dir=data_dir, configs=configs,
                                options=options or pipeline.Options(), snake=snake, force=True)
    if figure_configs:
        unknown = [c for c in figure_configs if c not in {r.run.name for r in scores.runs}]
        if unknown:
            raise MedftError(f"--figure-configs: {unknown[0]!r} is not a scored run folder")
    figs = _figures(scores, out, figure_configs, n_maps)
    return write_report(scores, out, figs, command or f"make_report({app!r}, {str(runs_dir)!r}, ...)")
