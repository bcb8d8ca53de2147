"""The polyp candidate generator: it finds bright domes it is shown, its recall count matches a hand
count, and `medft candidates polyp` writes candidates.csv that `medft prep polyp` accepts."""

from __future__ import annotations

import numpy as np
from medft.cli import main
from medft.prep.candidates import CandidateParams, frame_recall, polyp_candidates


def test_finds_a_lit_dome_and_counts_by_hand():
    h, w = 128, 160
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.full((h, w, 3), 120.0)
    dome = np.clip(1 - ((yy - 60) ** 2 + (xx - 90) ** 2) / 12.0**2, 0, None)
    img *= (1 + 0.6 * np.sqrt(dome))[..., None]
    cands = polyp_candidates(img, CandidateParams())
    (x0, y0, x1, y1), _ = cands[0]
    assert abs((x0 + x1 - 1) / 2 - 90) <= 2 and abs((y0 + y1 - 1) / 2 - 60) <= 2
    mask = dome > 0
    # hand count: one box on the dome, one far away, one on no polyp -> 1 polyp, hit, 2 false positives
    assert frame_recall([(85, 55, 96, 66), (0, 0, 5, 5), (140, 100, 150, 110)], mask) == (1, 1, 2)
    assert frame_recall([], mask) == (1, 0, 0)


def test_command_writes_candidates_prep_reads(tmp_path, capsys):
    assert main(["synth", "polyp", "--out", str(tmp_path), "--cases", "4", "--per-case", "2"]) == 0
    root = tmp_path / "polyp"
    assert main(["candidates", "polyp", "--input", str(root), "--no-progress"]) == 2  # exists: refused
    assert main(["candidates", "polyp", "--input", str(root), "--no-progress", "--force"]) == 0
    out = capsys.readouterr().out
    assert "sensitivity" in out and "false positives per frame" in out
    assert main(["prep", "polyp", "--input", str(root), "--verify"]) == 0
    assert main(["candidates", "polyp", "--input", str(root), "--evaluate", "--no-progress"]) == 0
