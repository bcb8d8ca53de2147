"""Small, seeded scoring inputs in the exact format of ``eval/README.md``.

For the tests: the functions write a runs folder (and for detection a data folder) whose configurations
differ only in how well their scores separate the classes.  Not a stand-in for real
predictions; only the file format and the statistics are exercised.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from medft import paths
from medft.apps import get_app
from medft.evaluate import io


def _write_csv(path: Path, header: list[str], rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def write_detection(root: Path, app: str, separations: dict[str, float], *, n_cases: int = 20,
                    lesions_per_case: int = 3, negatives_per_case: int = 40, images_per_case: int = 50,
                    seed: int = 0) -> tuple[Path, Path]:
    """Write ``root/data/<app>/{lesions,cases}.csv`` and ``root/runs/<app>/<config>/predictions.csv``.

    Each lesion gets 0-3 candidates (0 = missed by the generator); each config's latent
    score is ``separation * label + shared noise + own noise``.  Polyp lesions are counted
    per frame (``frame`` column).  Returns ``(runs_dir, data_dir)``.
    """
    rng = np.random.default_rng(seed)
    runs, data = Path(root) / "runs" / app, Path(root) / "data" / app
    per_frame = app == "polyp"
    cases = [f"c{i:03d}" for i in range(n_cases)]
    _write_csv(data / paths.CASES, ["case", get_app(app).image_column], [(c, images_per_case) for c in cases])
    lesion_rows, cands = [], []
    for c in cases:
        for j in range(lesions_per_case):
            frame = str(rng.integers(images_per_case))
            lesion_rows.append((c, frame, f"L{j}") if per_frame else (c, f"L{j}"))
            for _ in range(rng.choice(4, p=[0.15, 0.45, 0.25, 0.15])):
                cands.append((c, frame, f"L{j}", 1))
        for _ in range(rng.poisson(negatives_per_case)):
            cands.append((c, str(rng.integers(images_per_case)), "", 0))
    _write_csv(data / paths.LESIONS, ["case", "frame", "lesion"] if per_frame else ["case", "lesion"],
               lesion_rows)
    labels = np.array([r[3] for r in cands])
    shared = rng.normal(size=labels.size)
    for name, sep in separations.items():
        score = _sigmoid(sep * labels + 0.7 * shared + 0.7 * rng.normal(size=labels.size) - 1.0)
        rows = [(c, f"u{i}", les, lab, f"{s:.6f}", fr)
                for i, ((c, fr, les, lab), s) in enumerate(zip(cands, score))]
        _write_csv(runs / name / paths.PREDICTIONS, [*io.PRED_COLUMNS, "frame"], rows)
    return runs, data


def write_frames(root: Path, separations: dict[str, float], *, n_videos: int = 6, per_video: int = 60,
                 seed: int = 0) -> Path:
    """Write ``root/runs/frames/<config>/predictions.csv`` for frame classification; returns that runs dir."""
    rng = np.random.default_rng(seed)
    n = n_videos * per_video
    case = np.repeat([f"v{i}" for i in range(n_videos)], per_video)
    label = rng.integers(0, 2, n)
    label[:2] = (0, 1)
    shared = rng.normal(size=n)
    runs = Path(root) / "runs" / "frames"
    for name, sep in separations.items():
        score = _sigmoid(sep * (label - 0.5) + 0.6 * shared + 0.6 * rng.normal(size=n))
        rows = [(c, f"f{i}", "", lab, f"{s:.6f}") for i, (c, lab, s) in enumerate(zip(case, label, score))]
        _write_csv(runs / name / paths.PREDICTIONS, list(io.PRED_COLUMNS), rows)
    return runs


def synthetic_roi(rng: np.random.Generator, h: int = 60, w: int = 120, noise: float = 0.4):
    """A synthetic ROI: ``(image, p_li, p_ma, gt_li, gt_ma)``; maps (h, w) are Gaussian
    ridges along smooth interfaces plus uniform noise of amplitude ``noise``."""
    x = np.arange(w)
    phase = rng.uniform(0, 2 * np.pi)
    li = h * 0.35 + 4 * np.sin(2 * np.pi * x / w + phase)
    ma = li + h * 0.2 + 1.5 * np.cos(2 * np.pi * x / w)
    r = np.arange(h)[:, None]
    p_li = np.exp(-0.5 * ((r - li) / 2.5) ** 2) + noise * rng.random((h, w))
    p_ma = np.exp(-0.5 * ((r - ma) / 2.5) ** 2) + noise * rng.random((h, w))
    image = 80 + 120 * (r > li) * (r < ma + 3) + 20 * rng.normal(size=(h, w))
    return np.clip(image, 0, 255), p_li, p_ma, li, ma


def write_cimt(root: Path, noises: dict[str, float], *, n_rois: int = 8, seed: int = 0) -> Path:
    """Write ``root/runs/cimt/<config>/cimt_maps/<roi>.npz`` (maps noisier for larger ``noise``)."""
    runs = Path(root) / "runs" / "cimt"
    for name, noise in noises.items():
        rng = np.random.default_rng(seed)
        for k in range(n_rois):
            image, p_li, p_ma, li, ma = synthetic_roi(rng, noise=noise)
            gt_li, gt_ma = li.copy(), ma.copy()
            gt_li[:3] = np.nan  # unannotated columns
            d = runs / name / paths.CIMT_MAPS
            d.mkdir(parents=True, exist_ok=True)
            np.savez(d / f"roi{k:02d}.npz", p_li=p_li, p_ma=p_ma, gt_li=gt_li, gt_ma=gt_ma,
                     spacing_mm=np.float64(0.09), image=image)
        (runs / name / paths.PREDICTIONS).write_text(io.CIMT_DONE)  # as predict marks a finished set
    return runs


def write_log(run: Path, rate: float, *, epochs: int = 12, iters_per_epoch: int = 500, seed: int = 0) -> None:
    """Write ``<run>/log.csv`` with a validation AUC rising at ``rate`` per epoch."""
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(1, epochs + 1):
        auc = 0.5 + 0.45 * (1 - np.exp(-rate * e)) + 0.005 * rng.normal()
        rows.append((e * iters_per_epoch, f"{1 / e:.4f}", "0.001", f"{auc:.4f}"))
    _write_csv(Path(run) / paths.LOG, ["iteration", "loss", "lr", "val_auc"], rows)
