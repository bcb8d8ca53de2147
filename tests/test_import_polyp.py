"""Polyp data sets in their published layouts (Kvasir-SEG, CVC-ClinicDB, PraNet test sets):
written here with their quirks (JPEG masks with ringing, TIFF, spaces in folder names), imported,
checked against what was written, and prepared by `medft prep polyp`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from medft.cli import main
from PIL import Image

from tests.public_layouts import frames, kvasir_name, write_kvasir

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "python")}


def test_kvasir_import_then_prep(tmp_path):
    src = tmp_path / "Kvasir-SEG"
    data = write_kvasir(src)
    out = tmp_path / "in" / "kvasir"
    assert main(["import", "kvasir-seg", str(src), "--out", str(out), "--no-progress"]) == 0
    rec = json.loads((out / "import.json").read_text())
    assert rec["counts"]["frames"] == 6 and rec["counts"]["videos"] == 6 and rec["counts"]["polyps"] == 6
    assert rec["counts"]["mask_pixels_not_0_or_255"] > 0  # the JPEG noise was there and is counted
    assert len(rec["files"]) == 13 and all(len(f["sha256"]) == 64 for f in rec["files"])
    import hashlib

    f0 = rec["files"][0]
    assert hashlib.sha256((src / f0["path"]).read_bytes()).hexdigest() == f0["sha256"]
    # masks: binary, and the polyp they hold is the one written (JPEG noise does not move it)
    for i, (img, m) in enumerate(data):
        name = kvasir_name(i)
        got = np.asarray(Image.open(out / "videos" / name / "masks" / f"{name}.png"))
        assert set(np.unique(got)) <= {0, 255}
        assert ((got > 0) != m).mean() < 0.01
        frame = np.asarray(Image.open(out / "videos" / name / "frames" / f"{name}.png"))
        assert np.abs(frame.astype(int) - img).mean() < 6  # the JPEG frame's pixels, not altered further
    assert (out / "source_boxes.csv").read_text().count("\n") == 7
    assert 0 < rec["candidates"]["sensitivity"] <= 1
    prepped = tmp_path / "lmdb"
    assert main(["prep", "polyp", "--input", str(out), "--out", str(prepped), "--max-patches", "400",
                 "--max-test-patches", "240"]) == 0
    assert json.loads((prepped / "polyp" / "prep.json").read_text())["records"]["test"] > 0


def test_clinicdb_tiff_and_sequences(tmp_path):
    """CVC-ClinicDB: Original/<n>.tif, 'Ground Truth'/<n>.tif; frame numbers map to the 29 sequences."""
    import tifffile

    src = tmp_path / "CVC-ClinicDB"
    (src / "Original").mkdir(parents=True)
    (src / "Ground Truth").mkdir()
    numbers = [1, 25, 26, 51, 68, 612]  # sequences 1, 1, 2, 3, 4, 29
    for n, (img, m) in zip(numbers, frames(len(numbers), 144, 192, seed=1), strict=True):
        tifffile.imwrite(src / "Original" / f"{n}.tif", img, photometric="rgb")
        tifffile.imwrite(src / "Ground Truth" / f"{n}.tif", (m * 255).astype(np.uint8))
    out = tmp_path / "clinic"
    assert main(["import", "cvc-clinicdb", str(src), "--out", str(out), "--no-progress"]) == 0
    videos = sorted(p.name for p in (out / "videos").iterdir())
    assert videos == ["seq01", "seq02", "seq03", "seq04", "seq29"]
    assert sorted(p.stem for p in (out / "videos" / "seq01" / "frames").glob("*.png")) == ["1", "25"]
    assert main(["prep", "polyp", "--input", str(out), "--verify"]) == 0
    # the mirrors' CVC-ClinicDB/TIF/{Original, Ground Truth}: the same import
    (src / "TIF").mkdir()
    for d in ("Original", "Ground Truth"):
        (src / d).rename(src / "TIF" / d)
    assert main(["import", "cvc-clinicdb", str(src), "--out", str(tmp_path / "mirror"), "--no-progress"]) == 0
    assert sorted(p.name for p in (tmp_path / "mirror" / "videos").iterdir()) == videos


def test_pranet_sets(tmp_path):
    src = tmp_path / "TestDataset"
    for k, s in enumerate(("CVC-ColonDB", "ETIS-LaribPolypDB")):
        (src / s / "images").mkdir(parents=True)
        (src / s / "masks").mkdir()
        for i, (img, m) in enumerate(frames(2, seed=10 + k)):
            Image.fromarray(img).save(src / s / "images" / f"{i + 1}.png")
            Image.fromarray((m * 255).astype(np.uint8)).save(src / s / "masks" / f"{i + 1}.png")
    out = tmp_path / "pranet"
    assert main(["import", "pranet-test", str(src), "--out", str(out), "--no-progress"]) == 0
    assert sorted(p.name for p in (out / "videos").iterdir()) == ["CVC-ColonDB-1", "CVC-ColonDB-2",
                                                                  "ETIS-LaribPolypDB-1", "ETIS-LaribPolypDB-2"]
    assert main(["prep", "polyp", "--input", str(out), "--verify"]) == 0


def test_wrong_layout_and_bad_masks(tmp_path, capsys):
    src = tmp_path / "Kvasir-SEG"
    write_kvasir(src, 2)
    out = tmp_path / "out"
    import shutil

    shutil.rmtree(src / "masks")
    assert main(["import", "kvasir-seg", str(src), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(src / "masks") in err and "images/<id>.jpg" in err
    write_kvasir(src, 2)
    one = sorted((src / "masks").glob("*.jpg"))[0]
    Image.open(one).resize((50, 40)).save(one)  # a mask of another size
    assert main(["import", "kvasir-seg", str(src), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert str(one) in err and "mask of size 50x40" in err
    one.unlink()
    assert main(["import", "kvasir-seg", str(src), "--out", str(out), "--no-progress"]) == 2
    assert "missing mask" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".out.tmp-*"))  # nothing left behind


def test_existing_out_needs_force(tmp_path, capsys):
    src = tmp_path / "Kvasir-SEG"
    write_kvasir(src, 2)
    out = tmp_path / "out"
    out.mkdir()
    assert main(["import", "kvasir-seg", str(src), "--out", str(out), "--no-progress"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["import", "kvasir-seg", str(src), "--out", str(out), "--no-progress", "--force"]) == 2  # not ours
    out.rmdir()
    assert main(["import", "kvasir-seg", str(src), "--out", str(out), "--no-progress"]) == 0
    assert main(["import", "kvasir-seg", str(src), "--out", str(out), "--no-progress", "--force"]) == 0


def test_interrupted_import_leaves_nothing(tmp_path):
    """SIGINT while frames are being converted: no --out, no temporary folder."""
    src = tmp_path / "Kvasir-SEG"
    write_kvasir(src, 40)
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-m", "medft", "import", "kvasir-seg", str(src), "--out", str(out),
                          "--no-progress"], env=ENV, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not list(tmp_path.glob(".out.tmp-*/videos/*")) and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    assert p.poll() is None, "import finished before it could be interrupted"
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and "interrupted" in err
    assert not out.exists() and not list(tmp_path.glob(".out*"))


@pytest.mark.parametrize("n", [1])
def test_help_lists_every_dataset(n, capsys):
    from medft.importers import IMPORTERS

    with pytest.raises(SystemExit):
        main(["import", "--help"])
    text = capsys.readouterr().out
    assert all(name in text for name in ("kvasir-seg", "cvc-clinicdb", "pranet-test", "cad-pe", "fumpe", "cubs",
                                         "labelled-frames"))
    assert set(IMPORTERS) <= set(text.split())
