"""One public data set per application, from its published layout to a report, on real Caffe:
`medft import` -> `medft prep` (the smallest sizes that keep both classes in every split) ->
`medft train APP scratch` (1 epoch; a pretrained source model would add a minute of CPU and is
tested elsewhere) -> `medft predict` -> `medft score` ->
`medft report`. Checked: every split holds every class, the report opens with the answer and its
figures are PNG files, its numbers are score's; for CUBS the calibration reaches the maps and the
errors in mm are the pixel errors times the calibration written into the fixture."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
from medft.cli import main
from medft.demo import answer_lines, check_report

from tests.public_layouts import synth_pe, write_cadpe, write_cubs, write_kvasir, write_labelled_frames

pytestmark = [pytest.mark.caffe, pytest.mark.slow]

CONFIG = "scratch"
CUBS_MM_PER_PIXEL = 0.0625  # what write_cubs puts in every CF/<id>_CF.txt


def _kvasir(src: Path, tmp: Path) -> None:
    write_kvasir(src, 8)


def _cadpe(src: Path, tmp: Path) -> None:
    write_cadpe(src, synth_pe(tmp / "synth"))


def _frames(src: Path, tmp: Path) -> None:
    write_labelled_frames(src, ("informative", "non-informative"), extra_first=False, loose=False)


def _cubs(src: Path, tmp: Path) -> None:
    write_cubs(src, patients=4, cols=40)


#: app -> (data set, fixture writer, prep flags, predict flags)
STUDIES = {
    "polyp": ("kvasir-seg", _kvasir, ["--max-patches", "30", "--max-test-patches", "40", "--test-views", "1"], []),
    "pe": ("cad-pe", _cadpe, ["--max-patches", "30", "--max-test-patches", "30", "--test-views", "1"], []),
    "frames": ("labelled-frames", _frames, ["--max-patches", "30", "--crops", "2", "--test-crops", "1"], []),
    "cimt": ("cubs", _cubs, ["--max-patches", "30", "--max-test-patches", "30"], ["--cimt-stride", "16"]),
}


def labels_per_split(folder: Path) -> dict[str, set[str]]:
    out = {}
    for split in ("train", "val", "test"):
        with open(folder / f"{split}_manifest.csv", newline="") as f:
            out[split] = {r["label"] for r in csv.DictReader(f)}
    return out


@pytest.mark.parametrize("app", list(STUDIES))
def test_public_dataset_to_report(app, tmp_path):
    dataset, write, prep_flags, predict_flags = STUDIES[app]
    src, inp, data, runs, report = (tmp_path / d for d in ("src", "in", "data", "runs", "report"))
    write(src, tmp_path)
    assert main(["import", dataset, str(src), "--out", str(inp), "--no-progress"]) == 0
    assert main(["prep", app, "--input", str(inp), "--out", str(data), "--no-progress", *prep_flags]) == 0
    classes = labels_per_split(data / app)
    assert len(classes["train"]) >= 2 and classes["val"] == classes["train"] == classes["test"], classes

    where = ["--data", str(data), "--runs", str(runs)]
    assert main(["train", app, CONFIG, *where, "--batch", "10", "--test-batch", "20",
                 "--max-epochs", "1", "--patience", "1"]) == 0
    assert main(["predict", app, CONFIG, *where, "--batch", "20", *predict_flags]) == 0
    boot = ["--n-boot", "50"]
    assert main(["score", app, *where, "--out", str(runs / app / "scores"), *boot]) == 0
    assert main(["report", app, *where, "--out", str(report), *boot]) == 0

    text = (report / "report.md").read_text()
    first_section = next(ln for ln in text.splitlines() if ln.startswith("## "))
    assert first_section == "## The answer" and len(answer_lines(report / "report.md")) > 1
    figures = re.findall(r"\]\(([^)]+\.png)\)", text)
    assert figures, "report.md shows no figure"
    for name in figures:
        assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert check_report(report, (CONFIG,))[CONFIG]  # the report's numbers are score's

    if app == "cimt":
        maps = sorted((runs / app / CONFIG / "cimt_maps").glob("*.npz"))
        assert maps and all(float(np.load(m)["spacing_mm"]) == CUBS_MM_PER_PIXEL for m in maps)
        with open(runs / app / "scores" / CONFIG / "roi_errors.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        for r in rows:
            for k in ("li_error", "ma_error", "imt_error"):
                assert float(r[f"{k}_mm"]) == pytest.approx(float(r[k]) * CUBS_MM_PER_PIXEL, rel=1e-5)
        row = next(ln for ln in text.splitlines() if ln.startswith(f"| {CONFIG} |"))
        assert "li_error_mm" in text and "nan" not in row  # the report states the errors in mm too
