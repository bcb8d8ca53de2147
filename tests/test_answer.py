"""The report's answer to the paper's question, from hand-made comparison rows and from a scored run set."""

import csv

import pytest
from medft import cli
from medft.evaluate import answer

from tests import synthetic_scores as synthetic

RUNS = [("handcrafted", "handcrafted", ""), ("scratch", "scratch", ""), ("ft-fc8", "ft-fc8", ""),
        ("ft-conv1", "ft-conv1", ""), ("scratch-50", "scratch", "50"), ("ft-conv1-50", "ft-conv1", "50"),
        ("scratch-25", "scratch", "25"), ("ft-conv1-25", "ft-conv1", "25")]


def _row(a, b, va, vb, lo, hi, p, x=0.5):
    return {"a": a, "b": b, "fp_rate": x, "value_a": va, "value_b": vb, "diff": va - vb, "diff_lo": lo,
            "diff_hi": hi, "p_value": p}


def test_levels_are_all_data_and_the_smallest_fraction_without_the_baseline():
    levels = answer.data_levels(RUNS)
    assert [fr for fr, _ in levels] == ["", "25"]
    assert [c for _, c in levels[0][1]] == ["scratch", "ft-fc8", "ft-conv1"]


def test_a_fine_tuned_winner_is_compared_with_scratch_in_the_winners_direction():
    rows = [_row("scratch", "ft-fc8", 0.60, 0.70, -0.2, 0.0, 0.06),
            _row("scratch", "ft-conv1", 0.60, 0.80, -0.3, -0.1, 0.01),
            _row("ft-fc8", "ft-conv1", 0.70, 0.80, -0.2, 0.0, 0.2),
            _row("scratch-25", "ft-conv1-25", 0.50, 0.52, -0.1, 0.14, 0.7),
            _row("scratch", "ft-conv1", 0.1, 0.2, -1, 1, 1.0, x=1.0)]  # another operating point: ignored
    full, reduced = answer.point_findings(RUNS, rows, 0.5)
    assert (full.winner, full.rival) == ("ft-conv1", "scratch")
    assert (full.diff, full.lo, full.hi) == pytest.approx((0.2, 0.1, 0.3))  # signs flipped: winner - rival
    assert full.significant
    assert (reduced.data, reduced.winner, reduced.rival) == ("25", "ft-conv1-25", "scratch-25")
    assert not reduced.significant  # the interval holds 0 and p = 0.7
    assert "no difference was found" in answer.sentence(reduced, "25%", "sensitivity")
    assert "**ft-conv1 is better**" in answer.sentence(full, "all", "sensitivity")


def test_a_scratch_winner_is_compared_with_the_best_fine_tuned_run():
    rows = [_row("scratch", "ft-fc8", 0.90, 0.70, 0.1, 0.3, 0.001),
            _row("scratch", "ft-conv1", 0.90, 0.80, 0.0, 0.2, 0.04),
            _row("ft-fc8", "ft-conv1", 0.70, 0.80, -0.2, 0.0, 0.2)]
    (full,) = answer.point_findings(RUNS, rows, 0.5)
    assert (full.winner, full.rival) == ("scratch", "ft-conv1")
    assert not full.significant  # p < 0.05 but the interval touches 0


def test_cimt_errors_lower_is_better():
    rows = [{"metric": "li_error", "a": "scratch", "b": "ft-conv1", "mean_a": 2.0, "mean_b": 1.5, "p_value": 0.01}]
    (f,) = answer.error_findings(RUNS[:4], rows, "li_error")
    assert (f.winner, f.rival, f.diff) == ("ft-conv1", "scratch", -0.5)
    assert f.significant and "more accurate" in answer.sentence(f, "all", "mean error")


def test_report_opens_with_the_answer_from_its_own_comparison_table(tmp_path):
    separations = {"handcrafted": 0.5, "scratch": 1.0, "ft-conv1": 3.0, "scratch-50": 1.0, "ft-conv1-50": 1.1}
    runs, data = synthetic.write_detection(tmp_path / "in", "polyp", separations, n_cases=30)
    out = tmp_path / "rep"
    assert cli.main(["report", "polyp", "--runs", str(runs.parent), "--data", str(data.parent), "--out", str(out),
                     "--n-boot", "200"]) == 0
    md = (out / "report.md").read_text()
    assert md.index("## The answer") < md.index("## Data")
    rows = list(csv.DictReader(open(out / "comparisons.csv")))
    xs = sorted({float(r["fp_rate"]) for r in rows})
    x = xs[len(xs) // 2]
    (r,) = [r for r in rows if {r["a"], r["b"]} == {"scratch", "ft-conv1"} and float(r["fp_rate"]) == x]
    sign = 1 if r["a"] == "ft-conv1" else -1
    line = next(ln for ln in md.splitlines() if ln.startswith("- **All training data**"))
    assert line.startswith("- **All training data**: ft-conv1 scored best")
    assert f"{sign * float(r['diff']):+.3f}" in line and f"p = {float(r['p_value']):.3g}" in line
    assert "- **50% of the training data**:" in md
    assert "Source model of the fine-tuned runs:" in md
