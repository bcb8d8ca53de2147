"""Every kind of bad input gets an error naming the file (or id) and leaves no output behind."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from medft.errors import MedftError
from medft.prep.build import PrepConfig, build
from medft.prep.tiny import TINY_OPTIONS, tiny_input
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
        options=TINY_OPTIONS.get(app, {}),
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
