"""The paper's figures, drawn only from statistics already computed (matplotlib, no pyplot).

Every ``plot_*`` function writes ``<path>.png``, ``<path>.pdf`` and ``<path>.csv``, the CSV
holding exactly the numbers drawn, so a figure can be checked or redrawn elsewhere.

* :func:`plot_curves` — FROC/ROC curves with 95% CI error bars at the operating points
  (Figs. 2a, 4a, 6a) and the reduced-data comparison (2b, 4b, 6b: line style = fraction).
* :func:`plot_boxes` — Tukey box plots with mean +- std written above each box (Fig. 9).
* :func:`plot_confidence_map` — a test ROI as in Fig. 8 (a)-(e).
* :func:`plot_convergence` — validation AUC against iteration (Fig. 10).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import cbook
from matplotlib.figure import Figure

from medft.evaluate.compare import to_csv
from medft.util.atomic import write_text_atomic

_STYLES = ("-", "--", ":", "-.")


@dataclass(frozen=True)
class Curve:
    """One curve to draw: ``x``, ``y`` (T,) and optional error bars ``ops_x``, ``ops_y``,
    ``ops_lo``, ``ops_hi`` (F,) at operating points.  ``color`` index, ``style`` index."""

    name: str
    x: np.ndarray
    y: np.ndarray
    ops_x: np.ndarray | None = None
    ops_y: np.ndarray | None = None
    ops_lo: np.ndarray | None = None
    ops_hi: np.ndarray | None = None
    color: int = 0
    style: int = 0


def _color(i: int):
    from matplotlib import colormaps
    return colormaps["tab10"](i % 10)


def _save(fig: Figure, path: Path, rows: list[dict]) -> list[Path]:
    """Write ``path`` as PNG (150 dpi) and PDF, and ``rows`` as the CSV beside them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for ext, kw in ((".png", {"dpi": 150}), (".pdf", {})):
        tmp = path.with_name(f".{path.name}.tmp{ext}")
        fig.savefig(tmp, bbox_inches="tight", **kw)
        tmp.replace(path.with_suffix(ext))
        written.append(path.with_suffix(ext))
    write_text_atomic(path.with_suffix(".csv"), to_csv(rows, digits=6))
    return [*written, path.with_suffix(".csv")]


def plot_curves(curves: list[Curve], path: Path, *, xlabel: str, ylabel: str = "sensitivity",
                title: str = "", xlim: tuple[float, float] | None = None,
                diagonal: bool = False) -> list[Path]:
    """Step curves with 95% CI error bars at operating points; returns the files written.

    CSV columns: ``series``, ``kind`` (``curve`` or ``operating_point``), ``x``, ``y``,
    ``lo``, ``hi``.
    """
    fig = Figure(figsize=(6.4, 4.8))
    ax = fig.subplots()
    rows: list[dict] = []
    with_ops = [c for c in curves if c.ops_x is not None]
    span = (xlim[1] - xlim[0]) if xlim else max((float(np.max(c.ops_x)) for c in with_ops), default=1.0)
    for c in curves:
        col = _color(c.color)
        ax.step(c.x, c.y, where="post", color=col, linestyle=_STYLES[c.style % 4], lw=1.6, label=c.name)
        rows += [{"series": c.name, "kind": "curve", "x": float(x), "y": float(y), "lo": np.nan,
                  "hi": np.nan} for x, y in zip(c.x, c.y)]
        if c.ops_x is not None:
            err = np.vstack([c.ops_y - c.ops_lo, c.ops_hi - c.ops_y])
            # dodge: the bars of the configurations sit side by side around each operating point
            k = with_ops.index(c)
            dx = (k - (len(with_ops) - 1) / 2) * 0.012 * span
            ax.errorbar(np.asarray(c.ops_x) + dx, c.ops_y, yerr=np.where(np.isfinite(err), err, 0), fmt="o",
                        ms=3.5, color=col, capsize=3, lw=1.2)
            rows += [{"series": c.name, "kind": "operating_point", "x": float(x), "y": float(y),
                      "lo": float(lo), "hi": float(hi)}
                     for x, y, lo, hi in zip(c.ops_x, c.ops_y, c.ops_lo, c.ops_hi)]
    if diagonal:
        ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls=":")
    if xlim:
        ax.set_xlim(*xlim)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, frameon=True)
    return _save(fig, path, rows)


def plot_boxes(samples: dict[str, np.ndarray], path: Path, *, ylabel: str, title: str = "") -> list[Path]:
    """Tukey box plots (whiskers at 1.5 IQR, outliers as points), mean +- std above each box.

    CSV columns: ``config``, ``n``, ``mean``, ``std`` (ddof=1), ``median``, ``q1``, ``q3``,
    ``whisker_lo``, ``whisker_hi``, ``n_outliers``.
    """
    names = list(samples)
    box = [cbook.boxplot_stats(np.asarray(samples[n], float), whis=1.5)[0] for n in names]
    fig = Figure(figsize=(max(4.0, 0.9 * len(names) + 1.5), 4.8))
    ax = fig.subplots()
    ax.bxp(box, showfliers=True, flierprops={"marker": "+", "markersize": 4})
    rows = []
    top = max(max(b["whishi"], *(b["fliers"] if len(b["fliers"]) else [b["whishi"]])) for b in box)
    span = top - min(b["whislo"] for b in box) or 1.0
    for i, (n, b) in enumerate(zip(names, box), start=1):
        v = np.asarray(samples[n], float)
        sd = float(np.std(v, ddof=1)) if v.size > 1 else 0.0
        ax.text(i, top + 0.04 * span, f"{v.mean():.3g}\n±{sd:.2g}", ha="center", va="bottom", fontsize=7)
        rows.append({"config": n, "n": int(v.size), "mean": float(v.mean()), "std": sd,
                     "median": float(b["med"]), "q1": float(b["q1"]), "q3": float(b["q3"]),
                     "whisker_lo": float(b["whislo"]), "whisker_hi": float(b["whishi"]),
                     "n_outliers": int(len(b["fliers"]))})
    ax.set_ylim(top=top + 0.2 * span)
    ax.set_xticks(range(1, len(names) + 1), names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path, rows)


def plot_confidence_map(image: np.ndarray | None, p_li: np.ndarray, p_ma: np.ndarray,
                        traces: dict[str, np.ndarray], gt_li: np.ndarray, gt_ma: np.ndarray,
                        path: Path, *, title: str = "") -> list[Path]:
    """Fig. 8 for one ROI: (a) ROI, (b) colour-coded confidence map (green = lumen-intima,
    red = media-adventitia), (c) column-max boundaries, (d) snakes, (e) expert lines.

    ``traces`` has ``li_colmax``, ``ma_colmax``, ``li``, ``ma`` (W,).  CSV: one row per
    column with those and ``gt_li``, ``gt_ma``.
    """
    h, w = p_li.shape
    rgb = np.zeros((h, w, 3))
    rgb[..., 0] = p_ma / max(float(p_ma.max()), 1e-12)
    rgb[..., 1] = p_li / max(float(p_li.max()), 1e-12)
    base = image if image is not None else np.zeros((h, w))
    cols = np.arange(w)
    panels = [("(a) test ROI", base, None), ("(b) confidence map", rgb, None),
              ("(c) column maxima", rgb, ("li_colmax", "ma_colmax")), ("(d) open snakes", base, ("li", "ma")),
              ("(e) ground truth", base, "gt")]
    fig = Figure(figsize=(3.0 * len(panels), 3.0 * h / w + 0.8))
    axes = fig.subplots(1, len(panels))
    for ax, (name, img, lines) in zip(axes, panels):
        ax.imshow(img, cmap="gray", aspect="equal")
        if lines == "gt":
            ax.plot(cols, gt_li, color="lime", lw=1)
            ax.plot(cols, gt_ma, color="red", lw=1)
        elif lines:  # on the colour map (c) the lines need colours that stand out from it
            on_map = img is rgb
            ax.plot(cols, traces[lines[0]], color="cyan" if on_map else "lime", lw=0.8, drawstyle="steps-mid")
            ax.plot(cols, traces[lines[1]], color="yellow" if on_map else "red", lw=0.8,
                    drawstyle="steps-mid")
        ax.set_title(name, fontsize=9)
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    rows = [{"column": int(j), "li_colmax": traces["li_colmax"][j], "ma_colmax": traces["ma_colmax"][j],
             "li_snake": traces["li"][j], "ma_snake": traces["ma"][j], "gt_li": gt_li[j], "gt_ma": gt_ma[j]}
            for j in cols]
    return _save(fig, path, rows)


def plot_convergence(logs: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, *,
                     title: str = "") -> list[Path]:
    """Validation AUC against training iteration per run (Fig. 10).  CSV: ``series``,
    ``iteration``, ``val_auc``."""
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    rows = []
    for i, (name, (it, auc)) in enumerate(logs.items()):
        ax.plot(it, auc, marker="o", ms=2.5, lw=1.4, color=_color(i), label=name)
        rows += [{"series": name, "iteration": float(a), "val_auc": float(b)} for a, b in zip(it, auc)]
    ax.set_xlabel("iteration")
    ax.set_ylabel("validation AUC")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path, rows)
