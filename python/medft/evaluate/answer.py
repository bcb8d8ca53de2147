"""The paper's question answered from the scores: full training or fine tuning, with all the
training data and with the smallest reduced set.

For each data level the best CNN run (the handcrafted baseline is not a candidate) is compared
with its rival: scratch if a fine-tuned run won, else the best fine-tuned run. The numbers come
from the paired comparisons `medft score` computed (paired bootstrap interval of the difference
and permutation p-value at an operating point; Wilcoxon p-value of per-ROI errors for CIMT), so
the answer repeats what the tables say and adds nothing of its own.

Where configurations were trained with several seeds (:mod:`medft.evaluate.seeds`) the answer is
about the mean over seeds: the winner has the best mean, the difference of the means carries an
interval over seeds and cases, and the answer states in how many seeds it holds: in how many
seeds the same pair's own paired comparison gives the same verdict (the same winner significantly
better, or no significant difference).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medft.evaluate import seeds as seedstats
from medft.paths import fraction_share

#: the run folder of the handcrafted baseline (`medft predict <app> handcrafted`)
HANDCRAFTED = "handcrafted"
#: significance level of the verdict
ALPHA = 0.05


@dataclass(frozen=True)
class Finding:
    """One data level's answer: ``winner`` against ``rival`` at ``where`` (operating point or metric)."""

    data: str
    winner: str
    rival: str
    where: float | str
    value_winner: float
    value_rival: float
    diff: float  # winner - rival, in the metric's own direction
    lo: float
    hi: float
    p_value: float
    higher_is_better: bool
    n_seeds: int = 1  # the seeds the values are the means of
    per_seed: tuple[tuple[int, Finding | None], ...] = ()  # each seed's own comparison of the pair

    @property
    def held(self) -> int:
        """In how many seeds the pair's own comparison gives this finding's verdict."""
        return sum(1 for _, f in self.per_seed if f is not None and agrees(f, self))

    @property
    def significant(self) -> bool:
        """p below :data:`ALPHA` and, where there is an interval, one that excludes 0."""
        if not np.isfinite(self.p_value) or self.p_value >= ALPHA:
            return False
        return not (np.isfinite(self.lo) and np.isfinite(self.hi) and self.lo <= 0 <= self.hi)


def data_levels(runs: list[tuple[str, str, str]]) -> list[tuple[str, list[tuple[str, str]]]]:
    """``runs`` as (folder, config, fraction): [("all", [(folder, config), ...]), (smallest, [...])],
    the CNN runs of all the data and of the smallest reduced fraction that has any."""
    cnn = [r for r in runs if r[1] != HANDCRAFTED]
    levels = [("", [(f, c) for f, c, fr in cnn if not fr])]
    reduced = sorted({fr for _, _, fr in cnn if fr}, key=fraction_share)
    if reduced:
        levels.append((reduced[0], [(f, c) for f, c, fr in cnn if fr == reduced[0]]))
    return [(fr, members) for fr, members in levels if len(members) >= 2]


def _rival(winner: tuple[str, str], members: list[tuple[str, str]], value: dict[str, float],
           higher: bool) -> tuple[str, str] | None:
    others = [m for m in members if m != winner]
    if winner[1] != "scratch":
        scratch = [m for m in others if m[1] == "scratch"]
        if scratch:
            return scratch[0]
    pool = [m for m in others if m[1] != "scratch"] or others
    return max(pool, key=lambda m: value[m[0]] if higher else -value[m[0]]) if pool else None


def _pair(rows: list[dict], a: str, b: str) -> tuple[dict, bool] | None:
    """The comparison row of (a, b) among ``rows`` and whether it lists them in that order."""
    for r in rows:
        if (r["a"], r["b"]) == (a, b):
            return r, True
        if (r["a"], r["b"]) == (b, a):
            return r, False
    return None


def _matches(runs: list[tuple[str, str, str]], rows: list[dict], keys: tuple[str, str], higher: bool):
    """Per data level with two or more scored CNN runs: (fraction, winner, rival, values by folder,
    their comparison row, whether the row lists winner first). ``keys`` name the row's values of a and b."""
    value = {}
    for r in rows:
        value[r["a"]], value[r["b"]] = r[keys[0]], r[keys[1]]
    for fraction, members in data_levels(runs):
        members = [m for m in members if m[0] in value]
        if len(members) < 2:
            continue
        pick = max if higher else min
        winner = pick(members, key=lambda m: value[m[0]])
        rival = _rival(winner, members, value, higher)
        found = _pair(rows, winner[0], rival[0])
        if found is not None:
            yield fraction, winner[0], rival[0], value, *found


def point_findings(runs: list[tuple[str, str, str]], comparisons: list[dict], x: float,
                   x_name: str = "fp_rate") -> list[Finding]:
    """Answers at operating point ``x`` (higher sensitivity is better) from ``compare_operating_points`` rows."""
    at = [r for r in comparisons if np.isclose(r[x_name], x)]
    out = []
    for fraction, winner, rival, value, row, same in _matches(runs, at, ("value_a", "value_b"), True):
        diff, lo, hi = (row["diff"], row["diff_lo"], row["diff_hi"]) if same else (
            -row["diff"], -row["diff_hi"], -row["diff_lo"])
        out.append(Finding(fraction, winner, rival, float(x), value[winner], value[rival],
                           float(diff), float(lo), float(hi), float(row["p_value"]), True))
    return out


def error_findings(runs: list[tuple[str, str, str]], comparisons: list[dict], metric: str) -> list[Finding]:
    """Answers on a per-ROI error ``metric`` (lower is better) from Wilcoxon comparison rows."""
    at = [r for r in comparisons if r["metric"] == metric]
    return [Finding(fraction, winner, rival, metric, value[winner], value[rival], value[winner] - value[rival],
                    float("nan"), float("nan"), float(row["p_value"]), False)
            for fraction, winner, rival, value, row, _ in _matches(runs, at, ("mean_a", "mean_b"), False)]


def agrees(seed: Finding, overall: Finding) -> bool:
    """A seed's comparison gives the overall verdict: both significant with the same winner
    (the seed's difference, winner minus rival, in the better direction), or both not significant.
    A comparison without a p-value agrees with nothing."""
    if not (np.isfinite(seed.p_value) and np.isfinite(overall.p_value)):
        return False
    if overall.significant != seed.significant:
        return False
    return not overall.significant or (seed.diff > 0) == (overall.diff > 0)


def _verdict(f: Finding) -> str:
    """Better, no difference, or n/a: a comparison whose p-value could not be computed (one class,
    constant scores, too few cases) decides nothing either way."""
    if not np.isfinite(f.p_value):
        return "**n/a: the paired test could not be computed**"
    return (f"**{f.winner} is {'better' if f.higher_is_better else 'more accurate'}**" if f.significant
            else "**no difference was found**")


def _p(p: float) -> str:
    return f"{p:.3g}" if np.isfinite(p) else "n/a"


def sentence(f: Finding, data_label: str, what: str) -> str:
    """One finding in words and numbers (with several seeds: the means, the count of seeds in which
    the verdict holds, then one line per seed)."""
    ci = f" [{f.lo:+.3f}, {f.hi:+.3f}]" if np.isfinite(f.lo) and np.isfinite(f.hi) else " [n/a]"
    if not f.per_seed:
        ci = ci if ci != " [n/a]" else ""
        return (f"- **{data_label}**: {f.winner} scored best, {what} {f.value_winner:.3f} against "
                f"{f.rival}'s {f.value_rival:.3f}; paired difference {f.diff:+.3f}{ci}, p = {_p(f.p_value)}: "
                f"{_verdict(f)} (α = {ALPHA:g}).")
    lines = [f"- **{data_label}**: over {f.n_seeds} training seeds {f.winner} scored best, mean {what} "
             f"{f.value_winner:.3f} against {f.rival}'s {f.value_rival:.3f}; difference of the means "
             f"{f.diff:+.3f}{ci} (interval over seeds and cases), p = {_p(f.p_value)}: {_verdict(f)} "
             f"(α = {ALPHA:g}); **it holds in {f.held} of {len(f.per_seed)} seeds**."]
    for seed, g in f.per_seed:
        if g is None:
            lines.append(f"  - seed {seed}: no paired comparison of the two runs")
            continue
        ci = f" [{g.lo:+.3f}, {g.hi:+.3f}]" if np.isfinite(g.lo) and np.isfinite(g.hi) else ""
        lines.append(f"  - seed {seed}: {g.winner} {g.value_winner:.3f}, {g.rival} {g.value_rival:.3f}, "
                     f"difference {g.diff:+.3f}{ci}, p = {_p(g.p_value)}: "
                     f"{'holds' if agrees(g, f) else 'does not hold'}")
    return "\n".join(lines)


def seed_findings(summaries: list[seedstats.GroupSummary], comparisons: list[dict], k: int,
                  higher: bool, level: float = 0.95) -> list[Finding]:
    """Answers at the ``k``-th operating point (or the one metric, ``higher`` False) over training
    seeds, from each group's :class:`~medft.evaluate.seeds.GroupSummary` and the per-folder
    comparison rows read at that point (permutation or Wilcoxon rows of `medft score`). At each data
    level the configurations trained with the most seeds compete (one trained once, such as the
    demo's ft-fc8, has no training variance to compare with); the others are in the seeds table."""
    by_group = {g.group: g for g in summaries}
    value = {g.group: float(g.values[:, k].mean()) for g in summaries}
    out = []
    for fraction, members in data_levels([(g.group, g.config, g.fraction) for g in summaries]):
        most = max(len(by_group[m[0]].seeds) for m in members)
        members = [m for m in members if len(by_group[m[0]].seeds) == most]  # only the fully seeded compete
        if len(members) < 2:
            continue
        pick = max if higher else min
        winner = pick(members, key=lambda m: value[m[0]])
        rival = _rival(winner, members, value, higher)
        if rival is None:
            continue
        w, r = by_group[winner[0]], by_group[rival[0]]
        d = seedstats.difference_interval(w.values[:, [k]], w.boot[:, :, [k]], r.values[:, [k]],
                                          r.boot[:, :, [k]], level)
        diff = float(d.value[0])
        per_seed = []
        for seed in [s for s in w.seeds if s in r.seeds]:
            fw, fr = w.folders[w.seeds.index(seed)], r.folders[r.seeds.index(seed)]
            per_seed.append((seed, _folder_finding(comparisons, fraction, fw, fr, w.where[k], higher)))
        out.append(Finding(fraction, winner[0], rival[0], w.where[k], value[winner[0]], value[rival[0]], diff,
                           float(d.lo[0]), float(d.hi[0]), float(d.p_value()[0]), higher,
                           n_seeds=min(len(w.seeds), len(r.seeds)), per_seed=tuple(per_seed)))
    return out


def _folder_finding(rows: list[dict], fraction: str, a: str, b: str, where, higher: bool) -> Finding | None:
    """The comparison of run folders a (the winner's) and b as a :class:`Finding`, from their row."""
    found = _pair(rows, a, b)
    if found is None:
        return None
    row, same = found
    if higher:
        va, vb = (row["value_a"], row["value_b"]) if same else (row["value_b"], row["value_a"])
        diff, lo, hi = (row["diff"], row["diff_lo"], row["diff_hi"]) if same else (
            -row["diff"], -row["diff_hi"], -row["diff_lo"])
    else:
        va, vb = (row["mean_a"], row["mean_b"]) if same else (row["mean_b"], row["mean_a"])
        diff, lo, hi = va - vb, float("nan"), float("nan")
    return Finding(fraction, a, b, where, float(va), float(vb), float(diff), float(lo), float(hi),
                   float(row["p_value"]), higher)
