"""CUBS (whole B-mode frames as TIFF, traces with gaps, calibration files) and labelled frame
folders, imported against known truth and prepared; a real ultrasound image (pydicom's
examples_rgb_color.dcm, from a scanner) goes through the CUBS reader."""

from __future__ import annotations

import json

import numpy as np
import pytest
from medft.cli import main
from PIL import Image

from tests.public_layouts import PAD, write_cubs, write_labelled_frames


def test_cubs_roi_traces_calibration_and_prep(tmp_path):
    src = tmp_path / "CUBS"
    truth = write_cubs(src)
    out = tmp_path / "cubs"
    assert main(["import", "cubs", str(src), "--out", str(out), "--no-progress"]) == 0
    rec = json.loads((out / "import.json").read_text())
    assert rec["counts"] == {"images": 8, "patients": 4, "colour_images_mixed": 0}
    for name, (img, li, ma, xs) in truth.items():
        patient = name[:-2]
        crop = rec["crops"][f"{patient}/{name}"]
        assert crop["x0"] == PAD[1] and crop["x1"] == PAD[1] + 64 and crop["largest_gap_px"] == 16
        roi = np.asarray(Image.open(out / "rois" / patient / f"{name}.png"))
        assert roi.shape[1] == 64
        y0 = crop["y0"]
        frame = np.full((80 + 2 * PAD[0], 64), 30, np.uint8)
        frame[PAD[0]:PAD[0] + 80] = np.rint(img).astype(np.uint8)
        li_pts, ma_pts = np.interp(xs, np.arange(64), li), np.interp(xs, np.arange(64), ma)
        assert y0 == int(np.floor(li_pts.min() + PAD[0])) - 24
        assert crop["y1"] == int(np.ceil(ma_pts.max() + PAD[0])) + 25
        np.testing.assert_array_equal(roi, frame[y0:crop["y1"]])
        rows = np.loadtxt(out / "rois" / patient / f"{name}.csv", delimiter=",", skiprows=1)
        assert np.array_equal(rows[:, 0], np.arange(64))
        # hand check: at traced columns the y is the written point, in ROI rows
        np.testing.assert_allclose(rows[xs, 1] + y0 - PAD[0], np.interp(xs, np.arange(64), li), atol=1e-3)
        np.testing.assert_allclose(rows[xs, 2] + y0 - PAD[0], np.interp(xs, np.arange(64), ma), atol=1e-3)
    assert "0.0625" in (out / "calibration.csv").read_text()
    data = tmp_path / "lmdb"
    assert main(["prep", "cimt", "--input", str(out), "--out", str(data), "--max-patches", "600"]) == 0
    z = np.load(sorted((data / "cimt" / "test_rois").glob("*.npz"))[0])
    assert float(z["spacing_mm"]) == 0.0625


def test_cubs_bad_traces(tmp_path, capsys):
    src = tmp_path / "CUBS"
    write_cubs(src, 1)
    t = src / "SEGMENTATIONS" / "Manual-A1" / "clin_0001_L-MA.txt"
    t.write_text("10 20\n500 30\n40 25\n")  # x y pairs, 1-based: (500, 30) is outside
    assert main(["import", "cubs", str(src), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert str(t) in err and "outside the 144x220 image" in err
    t.unlink()
    assert main(["import", "cubs", str(src), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert f"{t}: missing trace" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_real_ultrasound_image_through_cubs(tmp_path):
    """pydicom's examples_rgb_color.dcm (a real ultrasound frame, RGB 320 x 240) saved as a CUBS TIFF:
    the reader mixes its colour overlay to gray with the documented weights."""
    import pydicom
    import tifffile
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("examples_rgb_color.dcm"))
    assert ds.Modality == "US"
    rgb = ds.pixel_array
    src = tmp_path / "CUBS"
    for d in ("IMAGES", "SEGMENTATIONS/Manual-A1", "CF"):
        (src / d).mkdir(parents=True)
    tifffile.imwrite(src / "IMAGES" / "us_0001_L.tiff", rgb, photometric="rgb")
    np.savetxt(src / "SEGMENTATIONS" / "Manual-A1" / "us_0001_L-LI.txt", [[60, 120], [150, 118], [260, 124]])
    np.savetxt(src / "SEGMENTATIONS" / "Manual-A1" / "us_0001_L-MA.txt", [[60, 130], [150, 129], [260, 133]])
    (src / "CF" / "us_0001_L_CF.txt").write_text("0.1")
    out = tmp_path / "out"
    assert main(["import", "cubs", str(src), "--out", str(out), "--no-progress"]) == 0
    roi = np.asarray(Image.open(out / "rois" / "us_0001" / "us_0001_L.png"))
    rec = json.loads((out / "import.json").read_text())
    c = rec["crops"]["us_0001/us_0001_L"]
    expect = np.rint(rgb[c["y0"]:c["y1"], c["x0"]:c["x1"]].astype(float) @ [0.299, 0.587, 0.114])
    assert np.array_equal(roi, expect.astype(np.uint8)) and roi.shape == (133 + 24 + 1 - (118 - 24), 201)


@pytest.mark.parametrize("names", [("informative", "non-informative"), ("bbps-2-3", "bbps-0-1")])
def test_labelled_frames(tmp_path, names):
    src = tmp_path / "frames"
    write_labelled_frames(src, names)
    out = tmp_path / "out"
    assert main(["import", "labelled-frames", str(src), "--out", str(out), "--no-progress"]) == 0
    rows = (out / "labels.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 12 and f"{names[0]}-vid0,0,1" in rows and f"{names[1]}-loose_one,loose_one,0" in rows
    data = tmp_path / "lmdb"
    assert main(["prep", "frames", "--input", str(out), "--out", str(data), "--crops", "1"]) == 0


def test_labelled_frames_wrong_classes(tmp_path, capsys):
    (tmp_path / "src" / "polyps").mkdir(parents=True)
    (tmp_path / "src" / "informative").mkdir()
    assert main(["import", "labelled-frames", str(tmp_path / "src"), "--out", str(tmp_path / "o")]) == 2
    assert "class folders ['informative', 'polyps']" in capsys.readouterr().err


def test_cubs_trace_layouts_agree(tmp_path, capsys):
    """The LIMA-Profiles folder name and 'x y' pair lines give the same per-column traces as the
    SEGMENTATIONS folder's x line and y line; a 2 x 2 file (either reading possible) is refused."""
    src = tmp_path / "CUBS"
    write_cubs(src, 1)
    assert main(["import", "cubs", str(src), "--out", str(tmp_path / "a"), "--no-progress"]) == 0
    (src / "SEGMENTATIONS").rename(src / "LIMA-Profiles")
    li = src / "LIMA-Profiles" / "Manual-A1" / "clin_0001_L-LI.txt"
    np.savetxt(li, np.loadtxt(li).T)  # the same points, one 'x y' pair per line
    assert main(["import", "cubs", str(src), "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    for name in ("clin_0001_L.csv", "clin_0001_R.csv", "clin_0001_L.png"):
        assert (tmp_path / "a" / "rois" / "clin_0001" / name).read_bytes() == \
            (tmp_path / "b" / "rois" / "clin_0001" / name).read_bytes()
    assert "LIMA-Profiles/Manual-A1" in (tmp_path / "b" / "import.json").read_text()
    li.write_text("41 81\n90 85\n")
    assert main(["import", "cubs", str(src), "--out", str(tmp_path / "c"), "--no-progress"]) == 2
    assert f"{li}: 2 x 2 numbers" in capsys.readouterr().err
