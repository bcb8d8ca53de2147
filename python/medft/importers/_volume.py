"""CT volumes from NRRD (pynrrd) and DICOM series (pydicom) into the pe input layout (NIfTI, HU).

Voxel arrays keep the source's axes (i, j, k); the NIfTI affine carries spacing and orientation
(RAS, converted from the sources' LPS), so no geometry is lost; `medft prep pe` reads the spacing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medft.errors import MedftError

#: LPS (DICOM, most NRRD) -> RAS (NIfTI): x and y change sign
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
#: relative tolerance on equal slice gaps and equal in-plane geometry
GAP_TOL = 0.01


@dataclass
class Volume:
    """A 3-D array in (i, j, k) order and its 4 x 4 voxel-to-RAS (mm) affine."""

    data: np.ndarray
    affine: np.ndarray

    @property
    def spacing(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]


def write_nifti(path: Path, vol: Volume, dtype) -> None:
    import nibabel as nib

    img = nib.Nifti1Image(np.asarray(vol.data, dtype=dtype), vol.affine)
    img.header.set_xyzt_units("mm")
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))


def read_nrrd(path: Path) -> Volume:
    """A NRRD volume: spacing and orientation from ``space directions`` and ``space origin``."""
    import nrrd

    try:
        data, hdr = nrrd.read(str(path))
    except Exception as e:
        raise MedftError(f"{path}: unreadable NRRD ({type(e).__name__}: {e})") from None
    if data.ndim != 3:
        raise MedftError(f"{path}: expected a 3-D volume, got shape {data.shape}")
    dirs = hdr.get("space directions")
    if dirs is None:
        spacings = hdr.get("spacings")
        if spacings is None:
            raise MedftError(f"{path}: no 'space directions' or 'spacings' field (voxel spacing unknown)")
        dirs = np.diag(np.asarray(spacings, dtype=float))
    dirs = np.asarray(dirs, dtype=float)
    if dirs.shape != (3, 3) or not np.isfinite(dirs).all() or abs(np.linalg.det(dirs)) < 1e-12:
        raise MedftError(f"{path}: 'space directions' {dirs.tolist()} is not three independent 3-D vectors")
    origin = np.asarray(hdr.get("space origin", np.zeros(3)), dtype=float)
    space = str(hdr.get("space", "left-posterior-superior")).lower()
    flip = {"left-posterior-superior": LPS_TO_RAS, "lps": LPS_TO_RAS,
            "right-anterior-superior": np.eye(3), "ras": np.eye(3)}.get(space)
    if flip is None:
        raise MedftError(f"{path}: space {space!r} not supported (LPS or RAS)")
    aff = np.eye(4)
    aff[:3, :3] = flip @ dirs.T  # pynrrd: row i is the direction (and step) of array axis i
    aff[:3, 3] = flip @ origin
    return Volume(data, aff)


def read_dicom_series(folder: Path) -> tuple[Volume, list[Path], list[int]]:
    """(HU volume, files in slice order, each slice's InstanceNumber) of the one series in ``folder``.

    HU = stored value x RescaleSlope + RescaleIntercept per slice. Slices are ordered by their
    position along the slice normal (ImagePositionPatient . (row x column direction)), never by
    file name; a missing slice (a gap of about twice the others), unequal gaps, two series, or
    slices of different size, pixel spacing or orientation are refused, naming the file."""
    import pydicom

    paths = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    slices = []
    for p in paths:
        try:
            ds = pydicom.dcmread(str(p))
        except Exception as e:
            if p.suffix.lower() == ".dcm":
                raise MedftError(f"{p}: unreadable DICOM ({type(e).__name__}: {e})") from None
            continue  # not DICOM (e.g. a README or DICOMDIR listing)
        if "PixelData" not in ds:
            continue
        slices.append((p, ds))
    if not slices:
        raise MedftError(f"{folder}: no DICOM slices")
    first_p, first = slices[0]
    for p, ds in slices:
        for tag in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
            if tag not in ds:
                raise MedftError(f"{p}: no {tag}; slice order and spacing cannot be known")
        if ds.get("SeriesInstanceUID") != first.get("SeriesInstanceUID"):
            raise MedftError(f"{p}: series {ds.get('SeriesInstanceUID')} differs from {first_p.name}'s "
                             f"{first.get('SeriesInstanceUID')}; one series per patient folder")
        for tag in ("Rows", "Columns"):
            if ds.get(tag) != first.get(tag):
                raise MedftError(f"{p}: {tag} {ds.get(tag)} differs from {first_p.name}'s {first.get(tag)}")
        if not np.allclose([float(v) for v in ds.PixelSpacing], [float(v) for v in first.PixelSpacing], rtol=GAP_TOL):
            raise MedftError(f"{p}: PixelSpacing {list(ds.PixelSpacing)} differs from {first_p.name}'s "
                             f"{list(first.PixelSpacing)} (mixed spacing)")
        if not np.allclose([float(v) for v in ds.ImageOrientationPatient],
                           [float(v) for v in first.ImageOrientationPatient], atol=1e-4):
            raise MedftError(f"{p}: ImageOrientationPatient differs from {first_p.name}'s (mixed orientation)")
    iop = np.array([float(v) for v in first.ImageOrientationPatient])
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)
    pos = np.array([np.dot([float(v) for v in ds.ImagePositionPatient], normal) for _, ds in slices])
    order = np.argsort(pos, kind="stable")
    slices = [slices[i] for i in order]
    pos = pos[order]
    if len(slices) > 1:
        gaps = np.diff(pos)
        dup = np.flatnonzero(gaps < 1e-6)
        if dup.size:
            raise MedftError(f"{slices[dup[0] + 1][0]}: same position as {slices[dup[0]][0].name} "
                             f"({pos[dup[0]]:.3f} mm along the normal)")
        gap = float(np.median(gaps))
        bad = np.flatnonzero(np.abs(gaps - gap) > GAP_TOL * gap + 1e-4)
        if bad.size:
            i = bad[0]
            what = (f"about {round(gaps[i] / gap) - 1} missing slice(s)" if gaps[i] > 1.5 * gap
                    else "mixed slice spacing")
            raise MedftError(f"{slices[i + 1][0]}: {what}: gap {gaps[i]:.3f} mm after {slices[i][0].name}, "
                             f"the series' gap is {gap:.3f} mm")
    else:
        gap = float(first.get("SliceThickness", 0) or 0)
        if gap <= 0:
            raise MedftError(f"{first_p}: one slice without SliceThickness: slice spacing unknown")
    hu = []
    for p, ds in slices:
        try:
            px = ds.pixel_array.astype(np.float32)
        except Exception as e:
            raise MedftError(f"{p}: pixel data not decodable ({type(e).__name__}: {e})") from None
        hu.append(px * float(ds.get("RescaleSlope", 1) or 1) + float(ds.get("RescaleIntercept", 0) or 0))
    data = np.stack([s.T for s in hu], axis=2)  # (rows, cols) -> (i = column, j = row, k = slice)
    ps = [float(v) for v in first.PixelSpacing]  # row spacing (between rows), column spacing
    aff = np.eye(4)
    aff[:3, 0] = row_dir * ps[1]
    aff[:3, 1] = col_dir * ps[0]
    aff[:3, 2] = normal * gap
    aff[:3, 3] = [float(v) for v in slices[0][1].ImagePositionPatient]
    aff[:3, :] = LPS_TO_RAS @ aff[:3, :]
    inst = [int(ds.get("InstanceNumber", -1) or -1) for _, ds in slices]
    return Volume(data, aff), [p for p, _ in slices], inst
