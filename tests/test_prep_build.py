"""End to end: tiny synthetic inputs -> dataset folders that honour the output contract."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from medft.apps import APP_NAMES, get_app
from medft.cli import main as cli_main
from medft.commands import prep as prep_cmd
from medft.datum_lmdb import lmdb_fingerprint, read_lmdb
from medft.errors import MedftError
from medft.prep.manifest import COLUMNS, read_manifest
from medft.prep.mean import read_mean_binaryproto
from medft.prep.tiny import tiny_build

SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("prep")
    return root, {app: tiny_build(app, root) for app in APP_NAMES}


@pytest.mark.parametrize("app", APP_NAMES)
def test_contract_files_and_manifests_match_lmdbs(built, app):
    _, records = built
    rec = records[app]
    d = Path(rec["dir"])
    for name in ("splits.json", "prep.json", "mean.binaryproto", "mean.json"):
        assert (d / name).is_file(), name
    for split in SPLITS:
        rows = read_manifest(d / f"{split}_manifest.csv")
        recs = list(read_lmdb(d / f"{split}_lmdb"))
        assert [r["key"] for r in rows] == [k for k, _, _ in recs]
        assert [int(r["label"]) for r in rows] == [lab for _, _, lab in recs]
        assert all(a.shape == (3, 227, 227) and a.dtype == np.uint8 for _, a, _ in recs)
        assert rec["records"][split] == len(recs) == sum(rec["counts"][split].values())
        assert lmdb_fingerprint(d / f"{split}_lmdb")[1] == rec["fingerprint"][split]
        assert set(rows[0]) == set(COLUMNS)
    on_disk = json.loads((d / "prep.json").read_text())
    assert on_disk["counts"] == rec["counts"] and on_disk["seed"] == 0


@pytest.mark.parametrize("app", APP_NAMES)
def test_training_set_is_stratified_and_splits_disjoint_by_case(built, app):
    _, records = built
    rec = records[app]
    counts = rec["counts"]
    assert len(set(counts["train"].values())) == 1 and min(counts["train"].values()) > 0
    assert len(set(counts["val"].values())) == 1 and min(counts["val"].values()) > 0
    assert all(v > 0 for v in counts["test"].values())
    d = Path(rec["dir"])
    cases = {s: {r["case"] for r in read_manifest(d / f"{s}_manifest.csv")} for s in SPLITS}
    assert not cases["train"] & cases["val"] and not cases["train"] & cases["test"]
    assert not cases["val"] & cases["test"]
    sj = json.loads((d / "splits.json").read_text())
    assert set(sj["test"]) >= cases["test"] and not set(sj["train_pool"]) & set(sj["test"])


@pytest.mark.parametrize("app", APP_NAMES)
def test_mean_matches_the_train_lmdb(built, app):
    d = Path(built[1][app]["dir"])
    arrs = np.stack([a for _, a, _ in read_lmdb(d / "train_lmdb")]).astype(np.float64)
    mean = read_mean_binaryproto(d / "mean.binaryproto")
    assert mean.shape == (3, 227, 227)
    assert np.allclose(mean, arrs.mean(axis=0), atol=1e-4)
    info = json.loads((d / "mean.json").read_text())
    assert np.allclose(info["mean_value"], arrs.mean(axis=(0, 2, 3)), atol=1e-4)


def test_augmentation_counts_in_the_test_manifest(built):
    root, records = built
    per_unit = {"polyp": 120, "pe": 54, "frames": 4}
    for app, n in per_unit.items():
        rows = read_manifest(Path(records[app]["dir"]) / "test_manifest.csv")
        units = {}
        for r in rows:
            units.setdefault(r["unit"], []).append(r["aug"])
        assert all(len(v) == n and len(set(v)) == n for v in units.values()), app


def test_test_views_keep_the_first_views_of_every_candidate(tmp_path):
    """--test-views 3: every test candidate of the full plan keeps exactly its first 3 views (scale
    1, unshifted, the first three orientations); frames refuses the option."""
    from medft.prep.augment import ORIENTATIONS

    every = tiny_build("polyp", tmp_path / "all", max_test_patches=None)
    rec = tiny_build("polyp", tmp_path / "three", max_test_patches=None, test_views=3)
    views: dict[str, dict[str, set[str]]] = {}
    for name, r in (("all", every), ("three", rec)):
        for row in read_manifest(Path(r["dir"]) / "test_manifest.csv"):
            views.setdefault(name, {}).setdefault(row["unit"], set()).add(row["aug"])
    expected = {f"scale=1;dx=+0;dy=+0;orient={o}" for o in ORIENTATIONS[:3]}
    assert set(views["three"]) == set(views["all"])
    assert all(v == expected for v in views["three"].values()), (expected, next(iter(views["three"].values())))
    with pytest.raises(MedftError, match="detection applications"):
        tiny_build("frames", tmp_path / "f", test_views=3)


def test_detection_apps_list_every_lesion(built):
    for app in ("polyp", "pe"):
        d = Path(built[1][app]["dir"])
        with open(d / "lesions.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert rows and set(rows[0]) == {"case", "frame_or_slice", "lesion", "subset", "candidates"}
        hit = {r["lesion"] for s in SPLITS for r in read_manifest(d / f"{s}_manifest.csv") if r["lesion"]}
        assert hit <= {r["lesion"] for r in rows}
        assert {r["subset"] for r in rows} == {"train", "test"}


def test_cimt_writes_test_rois_with_polylines(built):
    d = Path(built[1]["cimt"]["dir"])
    files = sorted((d / "test_rois").glob("*.npz"))
    sj = json.loads((d / "splits.json").read_text())
    assert files and {f.name.split("__")[0] for f in files} == set(sj["test"])
    z = np.load(files[0])
    assert z["image"].dtype == np.uint8 and z["lumen_intima_y"].shape == (z["image"].shape[1],)
    assert (z["lumen_intima_y"] < z["media_adventitia_y"]).all()


def test_reduced_sets(built):
    root, records = built
    half = tiny_build("polyp", root, fraction="0.5")
    full_pool = json.loads((Path(records["polyp"]["dir"]) / "splits.json").read_text())
    sj = json.loads((Path(half["dir"]) / "splits.json").read_text())
    assert half["dir"].endswith("polyp-f0.5")
    assert len(sj["train"]) + len(sj["val"]) == round(0.5 * len(full_pool["train_pool"]))
    assert sj["test"] == full_pool["test"]  # the test set never shrinks
    assert records["polyp"]["caps"] == {"train": 38, "val": 10}  # 48 patches split 80/20
    assert half["caps"] == {"train": 19, "val": 5}  # half of them: 24 split 80/20
    assert sum(half["records"][s] for s in ("train", "val")) <= 24
    one = tiny_build("cimt", root, fraction="1patient")
    sj = json.loads((Path(one["dir"]) / "splits.json").read_text())
    assert len(set(sj["train"]) | set(sj["val"])) == 1 and sj["val_level"] == "frame_or_slice"


def test_same_seed_same_data_and_force(built):
    root, records = built
    again = tiny_build("cimt", root, force=True)
    assert again["fingerprint"] == records["cimt"]["fingerprint"]
    other = tiny_build("cimt", root, force=True, seed=1)
    assert other["fingerprint"]["train"] != records["cimt"]["fingerprint"]["train"]


def main(argv: list[str]) -> int:
    """``medft <argv>`` for the prep stage only (other stages' imports stay out of this test)."""
    assert argv[0] == "prep"
    p = argparse.ArgumentParser(prog="medft prep", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    prep_cmd.add_arguments(p)
    try:
        return prep_cmd.run(p.parse_args(argv[1:]))
    except MedftError as e:
        print(f"medft prep: error: {e}", file=sys.stderr)
        return 2


def test_help_states_every_default():
    """Every prep flag that takes a value shows its default once in `medft prep --help` (off switches and
    the conditionally required --input and --out have none)."""
    from medft.cli import HelpFormatter

    p = argparse.ArgumentParser(prog="medft prep", formatter_class=HelpFormatter)
    prep_cmd.add_arguments(p)
    fmt = p._get_formatter()
    flags = [a for a in p._actions if a.option_strings and a.dest not in ("help", "input", "out") and a.nargs != 0]
    shown = {a.dest: fmt._expand_help(a) for a in flags}
    assert len(shown) > 10
    assert all(s.count("(default:") == 1 for s in shown.values()), shown


def test_cli_synth_verify_and_prep(tmp_path, capsys):
    assert cli_main(["synth", "cimt", "--out", str(tmp_path / "in"), "--cases", "4", "--per-case", "1"]) == 0
    assert main(["prep", "cimt", "--input", str(tmp_path / "in" / "cimt"), "--verify"]) == 0
    assert "OK" in capsys.readouterr().out
    argv = [
        "prep",
        "cimt",
        "--input",
        str(tmp_path / "in" / "cimt"),
        "--out",
        str(tmp_path / "out"),
        "--max-patches",
        "12",
        "--max-test-patches",
        "30",
        "--no-progress",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "lumen-intima" in out and "train" in out
    assert main(argv) == 2  # exists: refused without --force
    assert "--force" in capsys.readouterr().err
    assert main(["prep", "ct", "--input", "x", "--out", "y"]) == 2
    assert "valid: polyp, pe, frames, cimt" in capsys.readouterr().err
    assert get_app("cimt").num_classes == 3
