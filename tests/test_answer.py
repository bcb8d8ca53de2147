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


# --- training seeds ------------------------------------------------------------------------------

def test_the_interval_over_seeds_is_the_t_interval_of_their_spread_when_cases_do_not_vary():
    import numpy as np
    from medft.evaluate import seeds

    values = np.array([[1.0], [2.0], [3.0]])
    boot = np.repeat(values[:, None, :], 50, axis=1)  # no case variation at all
    c = seeds.combined_interval(values, boot)
    # mean 2, sd 1, se 1/sqrt(3), t(0.975, df 2) = 4.303 (a t table)
    assert c.value[0] == pytest.approx(2.0) and c.se[0] == pytest.approx(3 ** -0.5)
    assert (c.lo[0], c.hi[0]) == pytest.approx((2 - 4.303 / 3 ** 0.5, 2 + 4.303 / 3 ** 0.5), abs=1e-3)
    # t = 2 / (1/sqrt(3)) with 2 df: two-sided p = 1 - t / sqrt(2 + t^2) (Student's closed form for df 2)
    t = 2 * 3 ** 0.5
    assert c.p_value()[0] == pytest.approx(1 - t / (2 + t * t) ** 0.5, abs=1e-6)
    one = seeds.combined_interval(values[:1], boot[:1])
    assert np.isnan(one.lo[0]) and np.isnan(one.p_value()[0])  # one seed: training variance unknown


def _simulated_seeds(rng, s, n, b, mu, sd_seed, sd_case=0.15, sd_noise=0.05, u=None, w=None):
    """S seeds' per-case values mu + seed effect + case effect (shared) + noise, read on the case
    resamples ``w`` (drawn here if None) that every configuration shares, as `medft score` does."""
    from medft.evaluate.bootstrap import resample_weights

    u = rng.normal(0, sd_case, n) if u is None else u
    y = mu + rng.normal(0, sd_seed, s)[:, None] + u[None, :] + rng.normal(0, sd_noise, (s, n))
    w = resample_weights(n, b, int(rng.integers(1 << 30))) if w is None else w
    return y.mean(axis=1)[:, None], (w @ y.T / n).T[:, :, None], (u, w)


@pytest.mark.slow
@pytest.mark.parametrize("n_seeds", [3, 5])
def test_the_interval_over_seeds_and_cases_covers_the_true_mean(n_seeds):
    """Known truth: a seed population with mean 0.5 read on a random test set; 95% intervals must cover
    it 92-98% of the time, with a per-seed spread of 0.02 and of 0.1 against a case spread of 0.15."""
    import numpy as np
    from medft.evaluate import seeds

    rng = np.random.default_rng(n_seeds)
    for sd_seed in (0.02, 0.1):
        hits = 0
        for _ in range(400):
            v, b, _ = _simulated_seeds(rng, n_seeds, 60, 200, 0.5, sd_seed)
            c = seeds.combined_interval(v, b)
            hits += c.lo[0] <= 0.5 <= c.hi[0]
        assert 0.92 <= hits / 400 <= 0.98, (n_seeds, sd_seed, hits / 400)


@pytest.mark.slow
def test_the_difference_over_seeds_has_its_size_under_no_difference():
    """Two configurations with the same seed population on the same cases: p < 0.05 in 3.5-6.5% of trials."""
    import numpy as np
    from medft.evaluate import seeds

    rng = np.random.default_rng(7)
    rejected = 0
    for _ in range(600):
        va, ba, (u, w) = _simulated_seeds(rng, 3, 60, 300, 0.5, 0.05)
        vb, bb, _ = _simulated_seeds(rng, 3, 60, 300, 0.5, 0.05, u=u, w=w)
        rejected += seeds.difference_interval(va, ba, vb, bb).p_value()[0] < 0.05
    assert 0.035 <= rejected / 600 <= 0.065


def _group(name, config, values, boot_sd=0.0, b=40, seeds=(2016, 2017, 2018)):
    import numpy as np
    from medft.evaluate import seeds as seedstats

    v = np.asarray(values, float)[:, None]
    boot = v[:, None, :] + np.linspace(-boot_sd, boot_sd, b)[None, :, None]
    folders = tuple(name if s == 2016 else f"{name}-seed{s}" for s in seeds)
    return seedstats.GroupSummary(name, config, "", folders, tuple(seeds), (0.5,), v, boot,
                                  seedstats.combined_interval(v, boot))


def test_the_answer_over_seeds_counts_the_seeds_in_which_it_holds():
    groups = [_group("scratch", "scratch", [0.40, 0.42, 0.44]), _group("ft-conv1", "ft-conv1", [0.60, 0.62, 0.45])]
    rows = [_row("scratch", "ft-conv1", 0.40, 0.60, -0.3, -0.1, 0.001),
            _row("scratch-seed2017", "ft-conv1-seed2017", 0.42, 0.62, -0.3, -0.1, 0.002),
            _row("ft-conv1-seed2018", "scratch-seed2018", 0.45, 0.44, -0.1, 0.12, 0.8)]
    (f,) = answer.seed_findings(groups, rows, 0, True)
    assert (f.winner, f.rival, f.n_seeds) == ("ft-conv1", "scratch", 3)
    assert f.value_winner == pytest.approx(1.67 / 3) and f.diff == pytest.approx((1.67 - 1.26) / 3)
    assert not f.significant  # the interval holds 0: one seed in three sees no difference
    held = [(seed, answer.agrees(g, f)) for seed, g in f.per_seed]
    assert held == [(2016, False), (2017, False), (2018, True)] and f.held == 1
    text = answer.sentence(f, "All training data", "sensitivity")
    assert "**it holds in 1 of 3 seeds**" in text
    assert "  - seed 2018: ft-conv1-seed2018 0.450, scratch-seed2018 0.440" in text


def test_report_over_seeds_shows_each_seed_and_the_count(tmp_path):
    separations = {"handcrafted": 0.5, "scratch": 1.0, "scratch-seed2017": 1.2, "scratch-seed2018": 0.9,
                   "ft-conv1": 3.0, "ft-conv1-seed2017": 2.6, "ft-conv1-seed2018": 3.2, "ft-fc8": 1.5}
    runs, data = synthetic.write_detection(tmp_path / "in", "polyp", separations, n_cases=30)
    out = tmp_path / "rep"
    assert cli.main(["report", "polyp", "--runs", str(runs.parent), "--data", str(data.parent), "--out", str(out),
                     "--n-boot", "200"]) == 0
    md = (out / "report.md").read_text()
    assert md.index("## The answer") < md.index("## Training seeds") < md.index("## Data")
    line = next(ln for ln in md.splitlines() if ln.startswith("- **All training data**"))
    assert "over 3 training seeds ft-conv1 scored best" in line and "of 3 seeds**" in line
    ops = list(csv.DictReader(open(out / "operating_points.csv")))
    table = list(csv.DictReader(open(out / "seeds.csv")))
    x = sorted({float(r["fp_rate"]) for r in ops})[1]
    per_seed = [float(r["value"]) for r in ops if r["config"].startswith("ft-conv1") and float(r["fp_rate"]) == x]
    (row,) = [r for r in table if r["config"] == "ft-conv1" and float(r["fp_rate"]) == x]
    assert float(row["mean"]) == pytest.approx(sum(per_seed) / 3, abs=1e-6)
    assert row["per_seed"] == " ".join(f"{s}:{v:.3f}" for s, v in zip((2016, 2017, 2018), per_seed))
    for seed in (2016, 2017, 2018):
        assert f"  - seed {seed}: ft-conv1" in md
    (ft_fc8,) = [r for r in table if r["config"] == "ft-fc8" and float(r["fp_rate"]) == x]
    assert ft_fc8["seeds"] == "1" and ft_fc8["lo"] == ""  # one seed: n/a
    # --seeds keeps those seeds' run folders: two of three
    assert cli.main(["report", "polyp", "--runs", str(runs.parent), "--data", str(data.parent), "--out", str(out),
                     "--n-boot", "200", "--seeds", "2016,2018", "--force"]) == 0
    (row,) = [r for r in csv.DictReader(open(out / "seeds.csv")) if r["config"] == "ft-conv1"
              and float(r["fp_rate"]) == x]
    assert row["per_seed"].split() == [f"2016:{per_seed[0]:.3f}", f"2018:{per_seed[2]:.3f}"]
    assert "--seeds 2016,2018" in (out / "report.md").read_text()


def test_frames_and_cimt_answers_over_seeds(tmp_path):
    """ROC operating points and CIMT mean errors take the same path: per-seed rows, the count of seeds."""
    from medft.evaluate import report

    names = {"scratch": 1.5, "scratch-seed2017": 1.4, "ft-conv1": 3.0, "ft-conv1-seed2017": 2.8}
    runs = synthetic.write_frames(tmp_path / "f", names)
    md = report.make_report("frames", runs, tmp_path / "fr", options=report.pipeline.Options(n_boot=100)).read_text()
    assert "over 2 training seeds ft-conv1 scored best" in md and "of 2 seeds**" in md
    runs = synthetic.write_cimt(tmp_path / "c", {"scratch": 0.9, "scratch-seed2017": 0.8, "ft-conv1": 0.4,
                                                  "ft-conv1-seed2017": 0.5}, n_rois=6)
    out = tmp_path / "cr"
    md = report.make_report("cimt", runs, out, n_maps=1).read_text()
    line = next(ln for ln in md.splitlines() if ln.startswith("- **All training data**") and "li error" in ln)
    assert "over 2 training seeds ft-conv1 scored best" in line and "of 2 seeds**" in line
    rows = list(csv.DictReader(open(out / "seeds.csv")))
    mine = [float(r["mean"]) for r in csv.DictReader(open(out / "roi_summary.csv"))
            if r["config"].startswith("ft-conv1") and r["metric"] == "li_error"]
    (row,) = [r for r in rows if r["config"] == "ft-conv1" and r["metric"] == "li_error"]
    assert float(row["mean"]) == pytest.approx(sum(mine) / 2, abs=1e-6)


def test_a_comparison_without_a_p_value_reads_n_a_not_no_difference():
    # a paired test that could not be computed (e.g. one class in the test set) decides nothing
    rows = [_row("scratch", "ft-conv1", 0.60, 0.80, float("nan"), float("nan"), float("nan"))]
    (f,) = answer.point_findings(RUNS[:4], rows, 0.5)
    text = answer.sentence(f, "all", "sensitivity")
    assert "no difference" not in text and "is better" not in text
    assert "p = n/a" in text and "n/a: the paired test could not be computed" in text
    assert not answer.agrees(f, f)  # a seed without a p-value is not counted as holding
