"""Aggregation, the handcrafted baseline, the dense CIMT maps and the demo's command plan."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from medft.demo import DemoPlan, commands
from medft.errors import MedftError
from medft.predict import dense_maps, handcrafted_predictions


def _center_predictor(patches: np.ndarray) -> np.ndarray:
    """Class probabilities from the centre pixel's gray value: p1 = v/255, p2 = 1 - v/255, p0 = 0."""
    v = patches[:, 0, 113, 113].astype(float) / 255.0
    return np.stack([np.zeros_like(v), v, 1 - v], axis=1)


def test_dense_maps_every_pixel_follow_the_image():
    img = np.tile(np.linspace(0, 255, 20), (12, 1)).astype(np.float32)  # brightness grows along x
    p_li, p_ma = dense_maps(img, _center_predictor, window=8, stride=1, batch=7)
    assert p_li.shape == p_ma.shape == (12, 20)
    assert np.all(np.diff(p_li, axis=1) > 0) and np.allclose(p_li + p_ma, 1.0, atol=1e-6)


def test_dense_maps_stride_interpolates_a_linear_field():
    img = np.tile(np.linspace(0, 255, 25), (9, 1)).astype(np.float32)
    full, _ = dense_maps(img, _center_predictor, window=4, stride=1)
    coarse, _ = dense_maps(img, _center_predictor, window=4, stride=4)
    assert coarse.shape == full.shape
    np.testing.assert_allclose(coarse, full, atol=0.02)  # linear in x: interpolation is near exact
    with pytest.raises(MedftError, match="2-D"):
        dense_maps(np.zeros((3, 4, 5)), _center_predictor, window=4)


def _manifest(path, scores):
    cols = ("key", "case", "frame_or_slice", "unit", "lesion", "label", "aug", "score")
    rows = [("0", "v1", "f1", "c1", "p1", "1", "", scores[0]), ("1", "v1", "f1", "c1", "p1", "1", "", scores[1]),
            ("2", "v1", "f1", "c2", "", "0", "", scores[2])]
    with open(path / "test_manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        w.writerows(rows)


def test_handcrafted_baseline_from_candidate_scores(tmp_path):
    _manifest(tmp_path, ["3", "3", "1.5"])
    target = handcrafted_predictions("polyp", tmp_path, tmp_path / "runs", log=lambda *_: None)
    with open(target) as f:
        rows = list(csv.DictReader(f))
    assert [(r["unit"], r["label"], float(r["score"])) for r in rows] == [("c1", "1", 3.0), ("c2", "0", 1.5)]
    _manifest(tmp_path, ["", "", ""])
    assert handcrafted_predictions("frames", tmp_path, tmp_path / "runs2") is None


def test_demo_plan_runs_every_stage_in_order(tmp_path):
    plan = DemoPlan(app="polyp", out=str(tmp_path / "demo"), scale=1)
    stages = [c[0] for c in commands(plan)]
    assert stages[0] == "prep" and stages[-2:] == ["score", "report"]
    trained = [(c[2], c[c.index("--fraction") + 1]) for c in commands(plan) if c[0] == "train"]
    assert trained == [("scratch", "1"), ("ft-fc8", "1"), ("ft-conv1", "1"), ("scratch", "0.25"), ("ft-conv1", "0.25")]
    prepped = [c[c.index("--fraction") + 1] for c in commands(plan) if c[0] == "prep"]
    assert prepped == ["1", "0.25"]  # polyp's smallest reduced set is the paper's 25%
    predicted = [(c[2], c[c.index("--fraction") + 1] if "--fraction" in c else "1") for c in commands(plan)
                 if c[0] == "predict"]
    assert predicted == [*trained, ("handcrafted", "1")]
    big = DemoPlan(scale=2).sizes()
    assert big["max_patches"] == 2 * DemoPlan().sizes()["max_patches"]


def test_check_report_reads_cimt_numbers_from_roi_summary(tmp_path):
    from medft.demo import check_report

    png = b"\x89PNG\r\n\x1a\n" + b"0" * 16
    (tmp_path / "fig9_li_error.png").write_bytes(png)
    (tmp_path / "roi_summary.csv").write_text("config,metric,mean,std,median\n"
                                              "scratch,li_error,2.395420,0.9,2.1\nscratch,ma_error,1.315761,0.3,1.2\n")
    opening = "## The answer\n\n- **All training data**: scratch scored best\n\n"
    (tmp_path / "report.md").write_text("| scratch | 2.395 ± 0.911 | 1.316 ± 0.302 |\n![x](fig9_li_error.png)\n")
    with pytest.raises(MedftError, match="The answer"):
        check_report(tmp_path, ("scratch",))
    figure = "![x](fig9_li_error.png)\n"
    (tmp_path / "report.md").write_text(opening + "| scratch | 2.395 ± 0.911 | 1.316 ± 0.302 |\n" + figure)
    assert check_report(tmp_path, ("scratch",)) == {"scratch": ["2.395", "1.316"]}
    (tmp_path / "report.md").write_text(opening + "| scratch | 2.400 ± 0.911 | 1.316 ± 0.302 |\n" + figure)
    with pytest.raises(MedftError, match="lacks scratch's numbers"):
        check_report(tmp_path, ("scratch",))
