"""Pairwise tables: the CI rule, the paired tests they name, and their CSV/Markdown."""

import csv
from pathlib import Path

import numpy as np
import pytest
from medft.errors import MedftError
from medft.evaluate import compare, pipeline, report
from medft.evaluate.froc import Detections, sensitivity_at_fp_score
from medft.evaluate.roc import roc_events, sensitivity_at_fpr_score
from scipy import stats

from tests.refdata import ASAH, ASAH_POOR, PROC_TESTS
from tests.synthetic_scores import write_detection, write_frames


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


def test_auc_rows_match_proc_roc_test():
    """compare_aucs on pROC's aSAH data gives pROC's published DeLong Z and p (see test_roc)."""
    scores = {name: ASAH[name] for name in ("wfns", "s100b", "ndka")}
    rows = compare.compare_aucs(ASAH_POOR, scores, {n: (0.0, 1.0) for n in scores})
    got = {(r["a"], r["b"]): r for r in rows}
    for first, second, z, p, _ in PROC_TESTS:
        r = got.get((first, second))
        if r is None:  # the table lists each pair once, in input order: a - b = -(b - a)
            r = got[(second, first)]
            z = -z
        assert r["z"] == pytest.approx(z, rel=1e-10) and r["p_value"] == pytest.approx(p, rel=1e-9)
        assert r["test"] == "DeLong paired" and r["ci_rule"] == "n.s."


def test_missing_intervals_read_na():
    nan = float("nan")
    np.testing.assert_array_equal(compare.ci_rule([0.1, nan, 0.1], [0.2, 0.3, 0.2], [0.5, 0.5, nan], [0.6, 0.6, 0.6]),
                                  ["p<.05", "n/a", "n/a"])
    rows = compare.compare_operating_points([
        points("a", [0.6, 0.7], [nan, 0.6], [nan, 0.8], None),
        points("b", [0.3, 0.7], [0.2, 0.6], [0.4, 0.8], None)])
    assert [r["ci_rule"] for r in rows] == ["n/a", "n.s."]


def test_auc_rows_without_positives_read_na():
    y, nan = np.zeros(6, int), float("nan")
    with pytest.warns(RuntimeWarning):
        rows = compare.compare_aucs(y, {"x": np.arange(6.0), "y": -np.arange(6.0)},
                                    {"x": (nan, nan), "y": (nan, nan)})
    assert rows[0]["ci_rule"] == "n/a" and np.isnan(rows[0]["p_value"])


def _pair_of_detectors(rng, shift: float):
    """Two detectors on the same candidates of 40 cases; b's lesion scores are lowered by ``shift``."""
    cases, lesions, lesion_case, cand_case, cand_lesion = list(range(40)), [], [], [], []
    for c in cases:
        for j in range(2):
            lesions.append(f"L{j}")
            lesion_case.append(c)
        cand_case += [c] * 6
        cand_lesion += ["L0", "L1"] + [""] * 4
    latent = np.where(np.array(cand_lesion) != "", 1.5, 0.0) + rng.normal(size=len(cand_case))
    score_b = latent + rng.normal(scale=0.3, size=latent.size) - shift * (np.array(cand_lesion) != "")
    return [Detections.from_ids(cand_case, cand_lesion, sc, lesion_case, lesions, cases, np.ones(40))
            for sc in (latent + rng.normal(scale=0.3, size=latent.size), score_b)]


def _points(name, det, fp):
    return compare.OperatingPoints(name, fp, sensitivity_at_fp_score(det, fp), np.zeros(fp.size),
                                   np.ones(fp.size), events=det.events())


def test_permutation_test_used_with_events():
    fp = np.array([0.5, 1.0, 2.0])
    da, db = _pair_of_detectors(np.random.default_rng(0), shift=1.5)
    rows = compare.compare_operating_points([_points("a", da, fp), _points("b", db, fp)], n_perm=400)
    assert [r["test"] for r in rows] == ["paired permutation"] * 3
    assert all(r["diff"] > 0.2 and r["p_value"] < 0.01 for r in rows)  # b misses many lesions
    same = compare.compare_operating_points([_points("a", da, fp), _points("a2", da, fp)], n_perm=50)
    assert [r["p_value"] for r in same] == [1.0] * 3  # identical configurations: no randomised verdict


def test_permutation_test_ignores_each_systems_score_scale():
    """Frames, one unit per group: the p-values do not change when b's scores go through a
    monotone map (b is swapped with a on the shared false-positive-rate scale, not raw)."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    sa = y * 2.0 + rng.normal(size=200)
    sb = sa + rng.normal(scale=0.5, size=200)
    fpr = np.array([0.1, 0.2])

    def p_values(score_b):
        pts = [compare.OperatingPoints(n, fpr, sensitivity_at_fpr_score(y, s, fpr), np.zeros(2), np.ones(2),
                                       events=roc_events(y, s)) for n, s in (("a", sa), ("b", score_b))]
        return [r["p_value"] for r in compare.compare_operating_points(pts, n_perm=300, seed=1)]

    p = p_values(sb)
    assert all(0.0 < v <= 1.0 for v in p)
    assert p_values(np.exp(3 * sb) + 7) == pytest.approx(p, abs=1e-12)


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


def _constant(pred: Path) -> None:
    """Rewrite a predictions.csv with every score 0.5 (a constant classifier)."""
    rows = list(csv.reader(pred.open()))
    col = rows[0].index("score")
    for r in rows[1:]:
        r[col] = "0.5"
    with pred.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def test_scoring_goes_on_past_a_constant_configuration(tmp_path):
    """A constant classifier among three: its binormal fit and AUC interval read n/a with the
    reason, its comparisons' rule reads n/a, the others are scored, and the number of
    independent cases is stated with a caveat below 10."""
    runs, data = write_detection(tmp_path / "d", "polyp", {"scratch": 1.0, "ft-conv1": 2.0, "ft-fc8": 0.0},
                                 n_cases=12)
    _constant(runs / "ft-fc8" / "predictions.csv")
    s = pipeline.score_app("polyp", runs, tmp_path / "out", data_dir=data, options=pipeline.Options(n_boot=100))
    by = {r.run.name: r.summary for r in s.runs}
    assert "distinct value" in by["ft-fc8"]["binormal"]["reason"]
    const, good = by["ft-fc8"]["operating_points"][0], by["ft-conv1"]["operating_points"][0]
    assert const["binormal_note"] and np.isnan(const["binormal"])
    assert np.isfinite(good["binormal_lo"]) and by["ft-conv1"]["binormal"]["clusters"] == 12
    assert s.data_summary["clusters"].startswith("12 cases") and "caveat" not in s.data_summary

    frames = write_frames(tmp_path / "f", {"scratch": 1.0, "ft-conv1": 2.0, "ft-fc8": 0.0}, n_videos=6)
    _constant(frames / "ft-fc8" / "predictions.csv")
    with pytest.warns(RuntimeWarning, match="only 6 videos"):
        s = pipeline.score_app("frames", frames, tmp_path / "outf", options=pipeline.Options(n_boot=100))
    auc = {r.run.name: r.summary["auc"] for r in s.runs}
    assert "variance 0" in auc["ft-fc8"]["note"] and np.isnan(auc["ft-fc8"]["lo"])
    assert "Obuchowski" in auc["scratch"]["method"] and np.isfinite(auc["scratch"]["lo"])
    rows = {(r["a"], r["b"]): r for r in s.tables["auc_comparisons"]}
    assert rows[("scratch", "ft-fc8")]["ci_rule"] == "n/a" and rows[("scratch", "ft-conv1")]["ci_rule"] != "n/a"
    assert "caveat" in s.data_summary
    assert report._ci(0.5, float("nan"), float("nan"), auc["ft-fc8"]["note"]) == \
        "0.500 [n/a (variance 0 (constant scores or perfect separation))]"
