"""Pairwise tables: the CI rule, the paired tests they name, and their CSV/Markdown."""

import csv

import numpy as np
import pytest
from medft.errors import MedftError
from medft.evaluate import compare
from medft.evaluate.roc import delong_paired_test
from scipy import stats


def test_overlap():
    assert compare.overlap(0.1, 0.3, 0.3, 0.5)
    assert not compare.overlap(0.1, 0.29, 0.3, 0.5)
    np.testing.assert_array_equal(compare.overlap([0, 0], [1, 1], [0.5, 2], [3, 3]), [True, False])


def points(name, value, lo, hi, boot):
    return compare.OperatingPoints(name, np.array([1.0, 2.0]), np.array(value), np.array(lo), np.array(hi),
                                   boot)


def test_operating_point_rows_rule_and_paired_bootstrap():
    boot_a = np.array([[0.5, 0.6], [0.6, 0.7], [0.7, 0.8]])
    boot_b = np.array([[0.4, 0.7], [0.5, 0.6], [0.5, 0.8]])
    rows = compare.compare_operating_points([
        points("a", [0.6, 0.7], [0.5, 0.6], [0.7, 0.8], boot_a),
        points("b", [0.3, 0.7], [0.2, 0.6], [0.4, 0.8], boot_b)])
    assert [r["fp_rate"] for r in rows] == [1.0, 2.0]
    assert rows[0]["ci_rule"] == "p<.05" and rows[1]["ci_rule"] == "n.s."
    assert rows[0]["diff"] == pytest.approx(0.3)
    # differences at x=1 are all positive: p = 2 * (0 + 1) / (3 + 1)
    assert rows[0]["p_value"] == pytest.approx(0.5)
    assert rows[0]["test"] == "paired case bootstrap"


def test_mismatched_operating_points_error():
    a = points("a", [0.6, 0.7], [0.5, 0.6], [0.7, 0.8], None)
    b = compare.OperatingPoints("b", np.array([1.0, 3.0]), *(np.zeros(2),) * 3)
    with pytest.raises(MedftError, match="different operating points"):
        compare.compare_operating_points([a, b])


def test_auc_rows_use_delong():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    s1, s2 = y + rng.normal(size=60), y + 2 * rng.normal(size=60)
    rows = compare.compare_aucs(y, {"x": s1, "y": s2}, {"x": (0.7, 0.9), "y": (0.5, 0.69)})
    assert rows[0]["p_value"] == pytest.approx(delong_paired_test(y, s1, s2).p_value)
    assert rows[0]["ci_rule"] == "p<.05" and rows[0]["test"] == "DeLong paired"


def test_wilcoxon_rows_match_scipy_and_need_same_rois():
    rng = np.random.default_rng(1)
    a, b = rng.random(15), rng.random(15) + 0.2
    row = compare.compare_paired_samples({"a": a, "b": b}, "li_error")[0]
    assert row["p_value"] == pytest.approx(stats.wilcoxon(a, b).pvalue)
    assert row["test"] == "Wilcoxon signed-rank" and row["n"] == 15
    assert compare.compare_paired_samples({"a": a, "b": a}, "m")[0]["p_value"] == 1.0
    with pytest.raises(MedftError, match="same ROIs"):
        compare.compare_paired_samples({"a": a, "b": b[:3]}, "m")


def test_table_files(tmp_path):
    rows = [{"a": "x", "v": 0.123456789, "n": 3}, {"a": "y", "v": float("nan"), "n": 4}]
    compare.write_table(rows, tmp_path / "t")
    got = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert got[0] == {"a": "x", "v": "0.123457", "n": "3"} and got[1]["v"] == ""
    md = (tmp_path / "t.md").read_text().splitlines()
    assert md[0] == "| a | v | n |" and md[2] == "| x | 0.123 | 3 |"
