"""End to end: synthetic run folders -> medft score / medft report -> files and report.md."""

import json

import pytest
from medft import cli
from medft.errors import MedftError
from medft.evaluate import report

from tests import synthetic_scores as synthetic


@pytest.fixture(scope="module")
def polyp(tmp_path_factory):
    root = tmp_path_factory.mktemp("polyp")
    separations = {"handcrafted": 0.5, "scratch": 1.5, "ft-conv1": 2.5, "scratch-50": 1.0, "ft-conv1-50": 2.0}
    runs, data = synthetic.write_detection(root, "polyp", separations, n_cases=12)
    synthetic.write_log(runs / "scratch", 0.3)
    return runs, data


def test_polyp_report_cli(polyp, tmp_path, capsys):
    runs, data = polyp
    out = tmp_path / "rep"
    argv = ["report", "polyp", "--runs", str(runs.parent), "--data", str(data.parent), "--out", str(out),
            "--n-boot", "200"]
    assert cli.main(argv) == 0
    md = (out / "report.md").read_text()
    for part in ("## Configurations at the operating points", "@0.05 binormal", "paired case bootstrap",
                 "`medft report polyp --data",
                 "![(a) FROC", "fig_b.png", "fig10_convergence.png", "## Provenance"):
        assert part in md
    for f in ("fig_a.png", "fig_a.pdf", "fig_a.csv", "comparisons.csv", "operating_points.md",
              "scratch/curve.csv", "scratch/band.csv"):
        assert (out / f).is_file(), f
    summary = json.loads((out / "summary.json").read_text())
    assert summary["provenance"]["options"]["n_boot"] == 200
    assert summary["data"]["lesions"] == 36
    # refuses to overwrite without --force, one-line error
    assert cli.main(argv) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert cli.main([*argv, "--force"]) == 0


def test_score_is_reproducible(polyp, tmp_path):
    runs, data = polyp
    for name in ("a", "b"):
        assert cli.main(["score", "polyp", "--runs", str(runs.parent), "--data", str(data.parent), "--out",
                         str(tmp_path / name), "--n-boot", "100", "--configs", "scratch", "ft-conv1"]) == 0
    assert (tmp_path / "a/comparisons.csv").read_text() == (tmp_path / "b/comparisons.csv").read_text()


def test_frames_and_cimt_reports(tmp_path):
    runs = synthetic.write_frames(tmp_path / "f", {"scratch": 1.5, "ft-conv1": 3.0})
    md = report.make_report("frames", runs, tmp_path / "fr",
                            options=report.pipeline.Options(n_boot=100)).read_text()
    assert "AUC (DeLong clustered by video" in md and "DeLong paired" in md
    runs = synthetic.write_cimt(tmp_path / "c", {"ft-fc8": 0.9, "ft-conv1": 0.4}, n_rois=6)
    out = tmp_path / "cr"
    md = report.make_report("cimt", runs, out, n_maps=1).read_text()
    assert "Wilcoxon signed-rank" in md and (out / "fig9_li_error.png").is_file()
    assert (out / "fig8_roi00.png").is_file() and (out / "ft-conv1/roi_errors.csv").is_file()


def test_bad_inputs_named(polyp, tmp_path):
    runs, data = polyp
    with pytest.raises(MedftError, match="unknown application 'lung'"):
        report.make_report("lung", runs, tmp_path / "x")
    bad = tmp_path / "runs"
    (bad / "scratch").mkdir(parents=True)
    (bad / "scratch/predictions.csv").write_text("case,unit,label,score\nc,u,1,0.5\n")
    with pytest.raises(MedftError, match=r"predictions.csv: missing column\(s\) lesion"):
        report.make_report("frames", bad, tmp_path / "y")
    (bad / "scratch/predictions.csv").write_text("case,unit,lesion,label,score\nc,u,,1,0.5\nc,v,,1,0.2\n")
    with pytest.raises(MedftError, match="no rows with label 0"):
        report.make_report("frames", bad, tmp_path / "z")
    (bad / "scratch/predictions.csv").write_text("case,unit,lesion,label,score,frame\n"
                                                 "c000,u,L9,1,0.5,3\nc000,v,,0,.2,4\n")
    with pytest.raises(MedftError, match=r"candidate 0 hits lesion \('3', 'L9'\) of case 'c000'"):
        report.make_report("polyp", bad, tmp_path / "w", data_dir=data)
