"""Public data sets written in their published layouts, from medft's synthetic data whose truth is
known: the fixtures of the import tests and of the import-to-report study test.

Layouts (sources in docs/public-datasets.md): Kvasir-SEG ``images/``, ``masks/`` (JPEG) and
``kavsir_bboxes.json``; CAD-PE ``images/<nnn>.nrrd`` and ``rs/<nnnn>RefStd.nrrd``; FUMPE
``CT_scans/PAT<nnn>/*.dcm`` and ``GroundTruth/PAT<nnn>.mat`` (variable ``Mask``, rows x columns x
slices, slice s = the s-th file by name); CUBS ``IMAGES/<id>.tiff``,
``SEGMENTATIONS/Manual-A1/<id>-LI.txt`` (an x line and a y line, MATLAB 1-based) and
``CF/<id>_CF.txt``; labelled frames ``<class>/<video>/<frame>.jpg``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import nibabel as nib
import numpy as np
from medft.cli import main
from medft.prep.common import rng_for
from medft.prep.synthetic.colon import polyp_frame
from medft.prep.synthetic.ultrasound import cimt_roi
from PIL import Image

# -- polyp ------------------------------------------------------------------------------------------------


def frames(n: int, h: int = 128, w: int = 160, seed: int = 0):
    """``n`` (RGB uint8 frame, bool polyp mask) pairs, every frame with one polyp."""
    rng = rng_for(seed, "import-fixture")
    return [(np.clip(np.rint(img), 0, 255).astype(np.uint8), m) for img, m in
            (polyp_frame(rng, h, w, True) for _ in range(n))]


def kvasir_name(i: int) -> str:
    return f"cju{i:02d}qkwl35piu0993l0dewei2"


def write_kvasir(root: Path, n: int = 6) -> list[tuple[np.ndarray, np.ndarray]]:
    """Kvasir-SEG: images/<id>.jpg, masks/<id>.jpg (JPEG: grey levels near edges), kavsir_bboxes.json."""
    data = frames(n)
    boxes = {}
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i, (img, m) in enumerate(data):
        name = kvasir_name(i)
        Image.fromarray(img).save(root / "images" / f"{name}.jpg", quality=90)
        Image.fromarray((m * 255).astype(np.uint8)).convert("RGB").save(root / "masks" / f"{name}.jpg", quality=75)
        ys, xs = np.nonzero(m)
        boxes[name] = {"height": img.shape[0], "width": img.shape[1],
                       "bbox": [{"label": "polyp", "xmin": int(xs.min()), "ymin": int(ys.min()),
                                 "xmax": int(xs.max()), "ymax": int(ys.max())}]}
    (root / "kavsir_bboxes.json").write_text(json.dumps(boxes))
    return data


# -- pe ---------------------------------------------------------------------------------------------------

SPACING = (0.75, 0.75, 1.0)
#: a rotated, axis-permuted LPS grid: array axis 0 runs along -y, axis 1 along x (both 0.75 mm), axis 2 along z
DIRECTIONS = np.array([[0.0, -0.75, 0.0], [0.75, 0.0, 0.0], [0.0, 0.0, 1.0]])
ORIGIN = np.array([10.0, -20.0, 30.0])
SLOPE, INTERCEPT = 0.5, -1024.0


def synth_pe(root: Path) -> Path:
    """medft's synthetic CT input (6 volumes with PE labels, 0.75 x 0.75 x 1 mm) under ``root``."""
    assert main(["synth", "pe", "--out", str(root)]) == 0
    return root / "pe"


def volumes(synth: Path):
    """(name, HU volume, PE labels) of each synthetic volume, in name order."""
    for p in sorted((synth / "volumes").glob("*.nii.gz")):
        name = p.name[: -len(".nii.gz")]
        yield name, np.asarray(nib.load(p).dataobj), np.asarray(nib.load(synth / "pe_masks" / p.name).dataobj)


def cadpe_ref(k: int) -> str:
    """CAD-PE's reference standard of scan ``k`` (1-based): four digits, e.g. 0001RefStd.nrrd."""
    return f"{k:04d}RefStd.nrrd"


def write_cadpe(root: Path, synth: Path) -> None:
    """CAD-PE: images/<nnn>.nrrd (int16 HU) and rs/<nnnn>RefStd.nrrd (clot numbers), both with the
    non-identity DIRECTIONS and ORIGIN."""
    import nrrd

    (root / "images").mkdir(parents=True)
    (root / "rs").mkdir()
    hdr = {"space": "left-posterior-superior", "space directions": DIRECTIONS, "space origin": ORIGIN,
           "kinds": ["domain"] * 3, "encoding": "gzip"}
    for k, (_, vol, mask) in enumerate(volumes(synth), 1):
        nrrd.write(str(root / "images" / f"{k:03d}.nrrd"), np.rint(vol).astype(np.int16), hdr)
        nrrd.write(str(root / "rs" / cadpe_ref(k)), mask.astype(np.uint8), hdr)


def write_series(folder: Path, vol: np.ndarray, rng: np.random.Generator) -> list[int]:
    """``vol`` (i = column, j = row, k = slice; HU) as DICOM slices made from pydicom's real CT_small.dcm:
    stored = (HU - intercept) / slope, InstanceNumber = slice + 1, file names in shuffled order
    (slice k is file IM<names[k]>.dcm); returns ``names``."""
    import pydicom
    from pydicom.data import get_testdata_file

    tmpl = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    folder.mkdir(parents=True)
    names = rng.permutation(vol.shape[2])
    for k in range(vol.shape[2]):
        ds = copy.deepcopy(tmpl)
        stored = np.rint((vol[:, :, k].T - INTERCEPT) / SLOPE).astype(np.int16)
        ds.Rows, ds.Columns = stored.shape
        ds.PixelRepresentation = 1
        ds.PixelData = stored.tobytes()
        ds.RescaleSlope, ds.RescaleIntercept = SLOPE, INTERCEPT
        ds.PixelSpacing = [SPACING[1], SPACING[0]]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-50.0, -60.0, 100.0 + k * SPACING[2]]
        ds.InstanceNumber = k + 1
        ds.SeriesInstanceUID = "1.2.3.4." + folder.name[-3:].lstrip("0")
        ds.save_as(folder / f"IM{names[k]:04d}.dcm")
    return [int(x) for x in names]


def write_fumpe(root: Path, synth: Path, n: int = 6) -> None:
    """FUMPE: CT_scans/PAT<nnn>/*.dcm and GroundTruth/PAT<nnn>.mat with variable 'Mask' (rows x columns
    x slices), its slice s the mask of the s-th file by name (not the s-th by position)."""
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    (root / "GroundTruth").mkdir(parents=True)
    for k, (_, vol, mask) in enumerate(volumes(synth)):
        if k >= n:
            break
        names = write_series(root / "CT_scans" / f"PAT{k + 1:03d}", vol, rng)
        raw = np.zeros((vol.shape[1], vol.shape[0], vol.shape[2]), np.uint8)
        for z, rank in enumerate(names):
            raw[:, :, rank] = (mask[:, :, z] > 0).T
        savemat(root / "GroundTruth" / f"PAT{k + 1:03d}.mat", {"Mask": raw})


# -- cimt -------------------------------------------------------------------------------------------------

PAD = (70, 40)  # rows above, columns left of the ROI inside the whole frame


def write_trace(path: Path, xs: np.ndarray, ys: np.ndarray) -> None:
    """A CUBS trace: an x line and a y line, MATLAB 1-based pixel coordinates, right to left as traced."""
    np.savetxt(path, np.vstack([xs[::-1], ys[::-1]]) + 1.0, fmt="%.4f")


def write_cubs(root: Path, patients: int = 4, rows: int = 80, cols: int = 64) -> dict:
    """IMAGES/<id>.tiff (a synthetic ROI inside a larger frame), Manual-A1 traces of every 3rd column
    with a gap of 16 columns, CF/<id>_CF.txt; returns (ROI, LI y, MA y, traced columns) per image id,
    in ROI coordinates."""
    import tifffile

    for d in ("IMAGES", "SEGMENTATIONS/Manual-A1", "CF"):
        (root / d).mkdir(parents=True, exist_ok=True)
    truth = {}
    left = np.arange(0, cols * 5 // 16, 3)
    xs = np.unique(np.r_[left, np.arange(left[-1] + 16, cols, 3), cols - 1])
    for p in range(patients):
        for side in ("L", "R"):
            name = f"clin_{p + 1:04d}_{side}"
            img, li, ma = cimt_roi(rng_for(0, "cubs", name), rows, cols)
            frame = np.full((rows + 2 * PAD[0], cols + 2 * PAD[1]), 30, np.uint8)
            frame[PAD[0]:PAD[0] + rows, PAD[1]:PAD[1] + cols] = np.rint(img).astype(np.uint8)
            tifffile.imwrite(root / "IMAGES" / f"{name}.tiff", frame)
            for tag, y in (("LI", li), ("MA", ma)):
                write_trace(root / "SEGMENTATIONS" / "Manual-A1" / f"{name}-{tag}.txt", xs + PAD[1],
                            np.interp(xs, np.arange(cols), y) + PAD[0])
            (root / "CF" / f"{name}_CF.txt").write_text("0.0625\n")
            truth[name] = (img, li, ma, xs)
    return truth


# -- frames -----------------------------------------------------------------------------------------------


def write_labelled_frames(root: Path, names: tuple[str, str], videos: int = 10, extra_first: bool = True,
                          loose: bool = True, size: tuple[int, int] = (60, 80)) -> None:
    """<class>/vid<v>/<f>.jpg random frames (the first video of a class has two), and with ``loose`` one
    frame 'loose one.jpg' directly in each class folder."""
    rng = np.random.default_rng(0)
    for cls in names:
        for v in range(videos):
            d = root / cls / f"vid{v}"
            d.mkdir(parents=True)
            for f in range(1 + (extra_first and v == 0)):
                Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(d / f"{f}.jpg")
        if loose:
            Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(root / cls / "loose one.jpg")
