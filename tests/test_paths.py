"""medft.paths: every folder built in one place, each parser the inverse of its builder."""

from __future__ import annotations

from pathlib import Path

import pytest
from medft import paths
from medft.errors import MedftError


@pytest.mark.parametrize("app,fraction,name", [("polyp", "1", "polyp"), ("polyp", "0.25", "polyp-f0.25"),
                                               ("frames", "0.01", "frames-f0.01"), ("cimt", "1patient",
                                                                                    "cimt-f1patient")])
def test_dataset_dir_and_its_parser(app, fraction, name):
    d = paths.dataset_dir("data", app, fraction)
    assert d == Path("data") / name
    assert paths.parse_dataset_dir(d) == (app, fraction)


def test_a_fraction_the_app_does_not_have_is_refused():
    with pytest.raises(MedftError, match="valid"):
        paths.dataset_dir("data", "polyp", "0.1")


@pytest.mark.parametrize("variant,fraction,name", [("scratch", "1", "scratch"), ("ft-conv1", "0.5", "ft-conv1-0.5"),
                                                   ("scratch-xavier", "1", "scratch-xavier"),
                                                   ("ft-conv1", "1patient", "ft-conv1-1patient")])
def test_run_dir_and_its_parser(variant, fraction, name):
    d = paths.run_dir("runs", "pe", variant, fraction)
    assert d == Path("runs") / "pe" / name
    assert paths.parse_run_name(d.name) == (variant, "" if fraction == "1" else fraction)


def test_every_stage_takes_the_same_roots():
    """train, predict, score and report: --data and --runs are roots, not per-application folders."""
    from medft.cli import build_parser

    parser = build_parser()
    for argv in (["train", "polyp", "scratch"], ["predict", "polyp", "scratch"], ["score", "polyp", "--out", "o"],
                 ["report", "polyp", "--out", "o"]):
        args = parser.parse_args([*argv, "--data", "D", "--runs", "R"])
        assert str(args.data) == "D" and str(args.runs) == "R"
    assert paths.scores_dir("R", "pe") == Path("R/pe/scores") and paths.report_dir("R", "pe") == Path("R/pe/report")



def test_fraction_share_orders_every_run_folder_label():
    from medft.paths import fraction_share

    labels = ["", "0.5", "25", "0.01", "1patient"]
    assert [fraction_share(f) for f in labels] == [1.0, 0.5, 0.25, 0.01, 0.0]


def test_runs_of_one_patient_are_discovered_after_the_full_set(tmp_path):
    """A cimt run folder of the one-patient set is scored like any other reduced set (listed last)."""
    from medft.evaluate.io import discover_runs

    for name in ("ft-conv1-1patient", "scratch", "ft-conv1"):
        (tmp_path / name / "cimt_maps").mkdir(parents=True)
    assert [r.name for r in discover_runs(tmp_path, "cimt")] == ["scratch", "ft-conv1", "ft-conv1-1patient"]


@pytest.mark.parametrize("variant,fraction,seed,name", [
    ("scratch", "1", None, "scratch"), ("scratch", "1", 2016, "scratch"),
    ("scratch", "1", 2017, "scratch-seed2017"), ("ft-conv1", "0.25", 3, "ft-conv1-0.25-seed3"),
    ("scratch-xavier", "1", 0, "scratch-xavier-seed0"), ("ft-conv1", "1patient", 7, "ft-conv1-1patient-seed7")])
def test_a_run_folder_names_its_training_seed_unless_it_is_the_default(variant, fraction, seed, name):
    d = paths.run_dir("runs", "polyp", variant, fraction, seed)
    assert d.name == name
    assert paths.parse_run_folder(name) == (variant, "" if fraction == "1" else fraction,
                                            2016 if seed is None else seed)
    assert paths.parse_run_name(name) == (variant, "" if fraction == "1" else fraction)
    assert paths.run_group(name) == paths.run_dir("", "polyp", variant, fraction).name


def test_training_seeds_take_a_count_or_a_list():
    from medft.solver import training_seeds

    assert training_seeds("3") == (2016, 2017, 2018)
    assert training_seeds("1,2,3") == (1, 2, 3)
    assert training_seeds("5,") == (5,)
    for bad in ("0", "-1", "a", "1,1", "1,-2", ","):
        with pytest.raises(ValueError, match="--seeds"):
            training_seeds(bad)
    with pytest.raises(MedftError, match="seed"):
        paths.run_dir("runs", "polyp", "scratch", "1", -3)


def test_seed_run_folders_are_scored_under_their_configuration(tmp_path):
    from medft.evaluate.io import discover_runs

    for name in ("scratch", "scratch-seed2017", "ft-conv1-0.25-seed2017"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "predictions.csv").write_text("case,unit,lesion,label,score\n")
    found = {r.name: (r.config, r.fraction) for r in discover_runs(tmp_path, "polyp")}
    assert found == {"scratch": ("scratch", ""), "scratch-seed2017": ("scratch", ""),
                     "ft-conv1-0.25-seed2017": ("ft-conv1", "0.25")}


def test_snapshot_names_parse_as_caffe_writes_them():
    # Caffe's Solver::SnapshotFilename: snapshot_prefix + "_iter_" + iter + ".caffemodel" / ".solverstate"
    assert paths.parse_snapshot("runs/polyp/scratch/snapshots/scratch_iter_480.caffemodel") == (480, ".caffemodel")
    assert paths.parse_snapshot("/my runs/ft-conv1_iter_0.solverstate") == (0, ".solverstate")
    for other in ("best.caffemodel", "scratch_iter_.caffemodel", "scratch_iter_8.caffemodel.pending", "x_iter_8.h5"):
        assert paths.parse_snapshot(other) is None
    model, state = paths.snapshot_files(paths.snapshot_prefix("runs/pe/ft-fc8", "ft-fc8"), 96)
    assert (str(model), str(state)) == ("runs/pe/ft-fc8/snapshots/ft-fc8_iter_96.caffemodel",
                                        "runs/pe/ft-fc8/snapshots/ft-fc8_iter_96.solverstate")


def test_environment_variables_are_read_with_their_errors(tmp_path, monkeypatch):
    for name in ("MEDFT_CACHE", "MEDFT_BVLC_ALEXNET", "MEDFT_FAULT", "MEDFT_NOTES", "MEDFT_SUPERVISED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert paths.cache_root() == tmp_path / "home" / ".cache" / "medft"
    assert paths.bvlc_path() == tmp_path / "home" / ".cache" / "medft" / "weights" / "bvlc_alexnet.caffemodel"
    assert paths.fault_point({"prep:before-record"}) is None and paths.notes_file() is None
    assert not paths.supervised()
    monkeypatch.setenv("MEDFT_CACHE", str(tmp_path / "c"))
    assert paths.standin_path() == tmp_path / "c" / "weights" / "medft_standin_alexnet.caffemodel"
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("MEDFT_CACHE", str(tmp_path / "file"))
    with pytest.raises(MedftError, match=r"^MEDFT_CACHE=.*file: not a folder$"):
        paths.cache_root()
    monkeypatch.setenv("MEDFT_BVLC_ALEXNET", str(tmp_path))
    with pytest.raises(MedftError, match=r"^MEDFT_BVLC_ALEXNET=.*: not a file$"):
        paths.bvlc_path()
    monkeypatch.setenv("MEDFT_FAULT", "prep:before-recrod")
    with pytest.raises(MedftError, match="no such fault point; valid: prep:before-record, train:after-log"):
        paths.fault_point({"train:after-log", "prep:before-record"})
    monkeypatch.setenv("MEDFT_FAULT", "train:after-log")
    assert paths.fault_point({"train:after-log"}) == "train:after-log"
    monkeypatch.setenv("MEDFT_NOTES", str(tmp_path / "notes.json"))
    monkeypatch.setenv("MEDFT_SUPERVISED", "1")
    assert paths.notes_file() == tmp_path / "notes.json" and paths.supervised()


def test_caffe_build_and_cuda_library_variables(tmp_path, monkeypatch):
    for name in ("MEDFT_CAFFE_ROOT", "MEDFT_CAFFE_GPU_ROOT", "MEDFT_CUDA_LIBS"):
        monkeypatch.delenv(name, raising=False)
    assert paths.caffe_root_override() is None and paths.caffe_root_override(gpu=True) is None
    assert paths.cuda_libs() == []
    monkeypatch.setenv("MEDFT_CAFFE_GPU_ROOT", str(tmp_path / "gpu-build"))
    assert paths.caffe_root_override(gpu=True) == tmp_path / "gpu-build" and paths.caffe_root_override() is None
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("MEDFT_CAFFE_ROOT", str(tmp_path / "file"))
    with pytest.raises(MedftError, match=r"^MEDFT_CAFFE_ROOT=.*file: not a folder$"):
        paths.caffe_root_override()
    monkeypatch.setenv("MEDFT_CUDA_LIBS", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    assert paths.cuda_libs() == [tmp_path / "a", tmp_path / "b"]
