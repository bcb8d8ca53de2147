"""Figures are real files and their CSVs hold exactly the numbers drawn."""

import csv

import numpy as np
import pytest
from medft.evaluate import plots


def read(path):
    return list(csv.DictReader(path.open()))


def check_files(written, stem):
    assert [p.suffix for p in written] == [".png", ".pdf", ".csv"]
    assert stem.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert stem.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"


def test_curves_with_error_bars(tmp_path):
    c = plots.Curve("ft-conv1", np.array([0, 0.1, 0.2]), np.array([0, 0.5, 0.8]),
                    np.array([0.1]), np.array([0.5]), np.array([0.4]), np.array([0.6]))
    written = plots.plot_curves([c], tmp_path / "froc", xlabel="false positives per frame")
    check_files(written, tmp_path / "froc")
    rows = read(tmp_path / "froc.csv")
    assert [r["kind"] for r in rows] == ["curve"] * 3 + ["operating_point"]
    assert float(rows[3]["lo"]) == 0.4 and float(rows[3]["hi"]) == 0.6


def test_boxes_tukey_and_mean_std(tmp_path):
    data = {"a": np.r_[np.arange(1.0, 11.0), 40.0], "b": np.array([2.0, 2.5, 3.0])}
    written = plots.plot_boxes(data, tmp_path / "box", ylabel="error (px)")
    check_files(written, tmp_path / "box")
    a = read(tmp_path / "box.csv")[0]
    q1, q3 = np.percentile(data["a"], [25, 75])
    assert float(a["q1"]) == pytest.approx(q1) and float(a["q3"]) == pytest.approx(q3)
    assert float(a["whisker_hi"]) == 10.0 and int(a["n_outliers"]) == 1  # 40 > q3 + 1.5 IQR
    assert float(a["mean"]) == pytest.approx(data["a"].mean())
    assert float(a["std"]) == pytest.approx(data["a"].std(ddof=1))


def test_confidence_map_and_convergence(tmp_path):
    h, w = 20, 30
    p = np.random.default_rng(0).random((h, w))
    tr = {k: np.full(w, 5.0) for k in ("li_colmax", "ma_colmax", "li", "ma")}
    written = plots.plot_confidence_map(None, p, p, tr, np.full(w, 5.0), np.full(w, 9.0), tmp_path / "m")
    check_files(written, tmp_path / "m")
    assert len(read(tmp_path / "m.csv")) == w
    logs = {"scratch": (np.array([100, 200]), np.array([0.6, 0.7]))}
    check_files(plots.plot_convergence(logs, tmp_path / "conv"), tmp_path / "conv")
    assert read(tmp_path / "conv.csv")[1] == {"series": "scratch", "iteration": "200.000000",
                                              "val_auc": "0.700000"}
