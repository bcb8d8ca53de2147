"""PE data sets in their published layouts: CAD-PE (NRRD with non-identity space directions) and
FUMPE (DICOM series with rescale slope/intercept, files not in slice order; MATLAB masks), made
from medft's synthetic CT volumes whose HU, spacing and PE labels are known, imported and prepared.
A real CT slice from pydicom's test files goes through the same DICOM reader."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from medft.cli import main
from medft.errors import MedftError

from tests.public_layouts import DIRECTIONS, SLOPE, SPACING, cadpe_ref, synth_pe, volumes, write_cadpe, write_fumpe


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return synth_pe(tmp_path_factory.mktemp("synth"))


def test_cadpe_geometry_and_prep(tmp_path, synth):
    src = tmp_path / "CAD-PE"
    write_cadpe(src, synth)
    out = tmp_path / "cadpe"
    assert main(["import", "cad-pe", str(src), "--out", str(out), "--no-progress"]) == 0
    rec = json.loads((out / "import.json").read_text())
    assert rec["counts"]["patients"] == 6 and len(rec["files"]) == 12
    for k, (_, vol, mask) in enumerate(volumes(synth)):
        img = nib.load(out / "volumes" / f"{k + 1:03d}.nii.gz")
        assert np.array_equal(np.asarray(img.dataobj), np.rint(vol))  # HU as stored
        # hand-computed RAS affine: LPS x, y negated; column j = direction of array axis j
        expect = np.array([[0, -0.75, 0, -10], [0.75, 0, 0, 20], [0, 0, 1, 30], [0, 0, 0, 1.0]])
        np.testing.assert_allclose(img.affine, expect, atol=1e-5)
        np.testing.assert_allclose(img.header.get_zooms(), SPACING, atol=1e-6)
        m = np.asarray(nib.load(out / "pe_masks" / f"{k + 1:03d}.nii.gz").dataobj)
        assert np.array_equal(m, mask)
    assert main(["prep", "pe", "--input", str(out), "--out", str(tmp_path / "lmdb"), "--max-patches", "300",
                 "--max-test-patches", "200"]) == 0


def test_cadpe_mask_mismatch(tmp_path, synth, capsys):
    import nrrd

    src = tmp_path / "CAD-PE"
    write_cadpe(src, synth)
    bad = src / "rs" / cadpe_ref(2)
    nrrd.write(str(bad), np.zeros((5, 5, 5), np.uint8), {"space directions": DIRECTIONS, "space": "LPS"})
    assert main(["import", "cad-pe", str(src), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert str(bad) in capsys.readouterr().err
    bad.unlink()
    assert main(["import", "cad-pe", str(src), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert "missing mask 0002RefStd.nrrd" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_fumpe_hu_order_and_prep(tmp_path, synth):
    src = tmp_path / "FUMPE"
    write_fumpe(src, synth)
    out = tmp_path / "fumpe"
    assert main(["import", "fumpe", str(src), "--out", str(out), "--no-progress"]) == 0
    rec = json.loads((out / "import.json").read_text())
    assert rec["mask_variables"] == ["Mask"]
    for k, (_, vol, mask) in enumerate(volumes(synth)):
        img = nib.load(out / "volumes" / f"PAT{k + 1:03d}.nii.gz")
        got = np.asarray(img.dataobj)
        assert np.abs(got - vol).max() <= SLOPE / 2 + 1e-3  # HU back from slope/intercept, slices in order
        np.testing.assert_allclose(img.header.get_zooms(), SPACING, atol=1e-5)
        np.testing.assert_allclose(img.affine[:3, 3], [50.0, 60.0, 100.0])  # LPS origin in RAS
        m = np.asarray(nib.load(out / "pe_masks" / f"PAT{k + 1:03d}.nii.gz").dataobj)
        assert np.array_equal(m > 0, mask > 0)
    assert main(["prep", "pe", "--input", str(out), "--verify"]) == 0


def test_fumpe_missing_slice_and_bad_mask(tmp_path, synth, capsys):
    src = tmp_path / "FUMPE"
    write_fumpe(src, synth, n=1)
    files = sorted((src / "CT_scans" / "PAT001").glob("*.dcm"))
    import pydicom

    by_inst = {pydicom.dcmread(f, stop_before_pixels=True).InstanceNumber: f for f in files}
    by_inst[10].unlink()
    assert main(["import", "fumpe", str(src), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "1 missing slice" in err and err.strip().count("\n") == 0
    assert not (tmp_path / "o").exists()


def test_real_ct_slice(tmp_path):
    """pydicom's CT_small.dcm (a real scanner's 128 x 128 CT slice, slope 1, intercept -1024)
    through the series reader: HU equal to the Pixel Data element's little-endian int16 words plus
    the intercept (read here without pydicom's pixel decoder), in the (column, row) axis order."""
    import shutil

    from medft.importers._volume import read_dicom_series
    from pydicom.data import get_testdata_file

    shutil.copy(get_testdata_file("CT_small.dcm"), tmp_path / "a.dcm")
    vol, order, inst = read_dicom_series(tmp_path)
    assert vol.data.shape == (128, 128, 1) and order == [tmp_path / "a.dcm"]
    np.testing.assert_allclose(vol.spacing, (0.661468, 0.661468, 5.0), rtol=1e-6)
    import pydicom

    raw = pydicom.dcmread(tmp_path / "a.dcm").PixelData  # the element's bytes, not the decoded array
    expect = np.frombuffer(raw, "<i2").reshape(128, 128).astype(np.float32) - 1024.0
    np.testing.assert_array_equal(vol.data[..., 0], expect.T)
    assert -1000 < vol.data.min() < -700 and vol.data.max() > 0  # lung and tissue, in HU
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.dcm").write_bytes(b"not dicom")
    with pytest.raises(MedftError, match="x.dcm: unreadable DICOM"):
        read_dicom_series(tmp_path / "b")
