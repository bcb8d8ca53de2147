"""Every kind of bad input gets an error naming the file (or id) and leaves no output behind."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from medft.errors import MedftError
from medft.prep.build import PrepConfig, build
from medft.prep.tiny import tiny_input, tiny_options
from medft.prep.verify import verify_input
from PIL import Image


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    return {app: tiny_input(app, root / "pristine") for app in ("polyp", "pe", "frames", "cimt")}


@pytest.fixture
def copy(inputs, tmp_path):
    def make(app: str) -> Path:
        dst = tmp_path / "in" / app
        shutil.copytree(inputs[app], dst)
        return dst

    return make


def edit_csv(path: Path, fn) -> None:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0])
    rows = fn(rows)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows(rows)


def set_cells(path: Path, row: int, **values: str) -> None:
    """Overwrite cells of data row ``row`` (0-based) of a CSV."""
    edit_csv(path, lambda rows: rows[:row] + [dict(rows[row], **values)] + rows[row + 1 :])


def fails(app: str, root: Path, tmp_path: Path, match: str) -> None:
    """Prep must raise a MedftError matching ``match`` and leave nothing under the output root."""
    out = tmp_path / "out"
    cfg = PrepConfig(
        app=app,
        input=str(root),
        out=str(out),
        max_patches=24,
        max_test_patches=120,
        progress=False,
        options=tiny_options(app),
    )
    with pytest.raises(MedftError, match=match):
        build(cfg)
    assert not out.exists() or not any(out.iterdir()), list(out.rglob("*"))


def test_missing_frame(copy, tmp_path):
    root = copy("polyp")
    (root / "videos" / "v001" / "frames" / "f0001.png").unlink()
    fails("polyp", root, tmp_path, r"v001/frames/f0001\.png: missing file \(input rule polyp-2")


def test_mask_and_frame_sizes_differ(copy, tmp_path):
    root = copy("polyp")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "videos" / "v002" / "masks" / "f0001.png")
    fails("polyp", root, tmp_path, r"v002/masks/f0001\.png: mask size \(10, 10\) differs")


def test_candidate_box_outside_the_image(copy, tmp_path):
    root = copy("polyp")
    set_cells(root / "candidates.csv", 0, x0="1000", x1="1010")
    fails("polyp", root, tmp_path, r"candidates\.csv: row 1: candidate v001/f0001/c1 box .* outside")


def test_unreadable_image(copy, tmp_path):
    root = copy("cimt")
    (root / "rois" / "p001" / "roi1.png").write_bytes(b"not a png")
    fails("cimt", root, tmp_path, r"p001/roi1\.png: unreadable image")


def nifti(path: Path, vol: np.ndarray, zooms=None) -> None:
    img = nib.Nifti1Image(vol, np.eye(4))
    if zooms:
        img.header.set_zooms(zooms)
        img.header.set_xyzt_units("mm")
    nib.save(img, str(path))


def test_nan_voxels(copy, tmp_path):
    root = copy("pe")
    p = root / "volumes" / "p001.nii.gz"
    vol = np.asarray(nib.load(str(p)).dataobj, dtype=np.float32)
    vol[3, 4, 5] = np.nan
    nifti(p, vol, (0.75, 0.75, 1.0))
    fails("pe", root, tmp_path, r"p001\.nii\.gz: 1 NaN or non-finite voxel")


def test_missing_voxel_spacing(copy, tmp_path):
    root = copy("pe")
    p = root / "volumes" / "p002.nii.gz"
    nifti(p, np.asarray(nib.load(str(p)).dataobj))
    fails("pe", root, tmp_path, r"p002\.nii\.gz: missing voxel spacing")


def test_missing_pe_mask(copy, tmp_path):
    root = copy("pe")
    (root / "pe_masks" / "p003.nii.gz").unlink()
    fails("pe", root, tmp_path, r"pe_masks/p003\.nii\.gz: missing file")


def test_label_out_of_range(copy, tmp_path):
    root = copy("frames")
    set_cells(root / "labels.csv", 2, label="2")
    fails("frames", root, tmp_path, r"labels\.csv: row 3: label '2' out of range; valid: 0\.\.1")


def test_empty_class_after_splitting(copy, tmp_path):
    root = copy("frames")
    edit_csv(root / "labels.csv", lambda rows: [dict(r, label="1") for r in rows])
    fails("frames", root, tmp_path, r"split 'test' has no non-informative patch")


def test_duplicate_case_across_splits(copy, tmp_path):
    root = copy("cimt")
    edit_csv(root / "split.csv", lambda rows: rows + [{"case": rows[0]["case"], "subset": "test"}])
    fails("cimt", root, tmp_path, r"split\.csv: row 6: case 'p001' listed twice")


def test_interface_polyline_rules(copy, tmp_path):
    root = copy("cimt")
    set_cells(root / "rois" / "p002" / "roi1.csv", 4, lumen_intima_y="50")
    fails("cimt", root, tmp_path, r"p002/roi1\.csv: row 5: lumen-intima y 50 must be above")
    edit_csv(root / "rois" / "p002" / "roi1.csv", lambda rows: rows[:-1])
    fails("cimt", root, tmp_path, r"roi1\.csv: 63 rows but the ROI is 64 columns wide")


def test_verify_names_the_rule(copy):
    root = copy("polyp")
    Image.fromarray(np.full((128, 160), 7, np.uint8)).save(root / "videos" / "v001" / "masks" / "f0002.png")
    with pytest.raises(MedftError, match=r"f0002\.png: mask values must be 0 and 255 .*rule polyp-3"):
        verify_input("polyp", root)
    with pytest.raises(MedftError, match="common-1"):
        verify_input("cimt", root / "nowhere")


# -- ids (rule common-1), gray images, --verify = prep's checks ------------------------------------------
@pytest.mark.parametrize("app, edit, bad", [
    ("polyp", lambda r: set_cells(r / "candidates.csv", 0, video="v002/../v001"), "v002/../v001"),
    ("polyp", lambda r: set_cells(r / "candidates.csv", 0, frame="f 0001"), "f 0001"),
    ("frames", lambda r: set_cells(r / "labels.csv", 0, frame="f0001 "), None),  # stripped: still valid
    ("frames", lambda r: set_cells(r / "labels.csv", 1, video="v\u00f6001"), "v\u00f6001"),
    ("cimt", lambda r: (r / "rois" / "p002").rename(r / "rois" / "p 002"), "p 002"),
    ("pe", lambda r: [(r / d / "p003.nii.gz").rename(r / d / "p\u00e903.nii.gz") for d in ("volumes", "pe_masks")],
     "p\u00e903"),
])
def test_ids_outside_common_1_are_refused(copy, tmp_path, app, edit, bad):
    root = copy(app)
    edit(root)
    if bad is None:
        verify_input(app, root)
        return
    with pytest.raises(MedftError, match=r"common-1"):
        verify_input(app, root)
    fails(app, root, tmp_path, re.escape(f"id {bad!r} may hold only letters, digits"))


def test_a_colour_image_is_not_taken_as_gray(copy, tmp_path):
    root = copy("cimt")
    path = root / "rois" / "p002" / "roi1.png"
    gray = np.asarray(Image.open(path).convert("L"))
    rgb = np.repeat(gray[..., None], 3, axis=2)
    Image.fromarray(rgb).save(path)  # gray stored as RGB (all channels equal) is gray
    verify_input("cimt", root)
    rgb[..., 2] = 255 - rgb[..., 2]  # red and green equal, blue not: a colour image
    Image.fromarray(rgb).save(path)
    fails("cimt", root, tmp_path, r"roi1\.png: expected a single-channel \(gray\) image")


def test_verify_refuses_what_prep_refuses(inputs, copy, capsys):
    """A set whose test split would lack a class passes the per-file rules; --verify plans it as prep does."""
    from medft.cli import main

    assert main(["prep", "frames", "--input", str(inputs["frames"]), "--verify"]) == 0
    assert "every class in every split" in capsys.readouterr().out
    root = copy("frames")
    edit_csv(root / "labels.csv", lambda rows: [dict(r, label="1") for r in rows])
    assert main(["prep", "frames", "--input", str(root), "--verify"]) == 2
    assert "no non-informative patch" in capsys.readouterr().err
