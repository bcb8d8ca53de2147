"""FUMPE (Masoudi et al., Sci. Data 2018): 35 CTPA DICOM series with PE masks in MATLAB files."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from scipy import ndimage

from medft.errors import MedftError
from medft.importers import _base, _volume

APP = "pe"
DATASET = "fumpe"
DESCRIPTION = ("FUMPE: CT_scans/PAT<nnn>/*.dcm, GroundTruth/PAT<nnn>.mat (Mask); 35 CTPA series -> pe "
               "(HU from rescale slope/intercept, slices ordered by position, mask slices by file name)")
#: the mask variable of the published GroundTruth/PAT<nnn>.mat files
MASK_VARIABLE = "Mask"
LAYOUT = "FUMPE/CT_scans/PAT001/<slices>.dcm and FUMPE/GroundTruth/PAT001.mat (one 3-D mask rows x columns x slices)"


def read_mask(path: Path) -> tuple[np.ndarray, str]:
    """(the one 3-D array of a MATLAB file, its variable name)."""
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path))
    except NotImplementedError:
        raise MedftError(f"{path}: MATLAB v7.3 (HDF5) file; save it with -v7 to import") from None
    except Exception as e:
        raise MedftError(f"{path}: unreadable MATLAB file ({type(e).__name__}: {e})") from None
    arrays = {k: v for k, v in mat.items() if not k.startswith("__") and isinstance(v, np.ndarray) and v.ndim == 3}
    if len(arrays) > 1 and MASK_VARIABLE in arrays:
        arrays = {MASK_VARIABLE: arrays[MASK_VARIABLE]}
    if len(arrays) != 1:
        names = ", ".join(f"{k} {np.shape(v)}" for k, v in mat.items() if not k.startswith("__")) or "none"
        raise MedftError(f"{path}: expected one 3-D mask variable, found {names}")
    name, arr = next(iter(arrays.items()))
    return np.asarray(arr), name


def name_order(paths: list[Path]) -> list[int]:
    """Indices into ``paths`` (slices in position order) sorted by file name, the digits in a
    name compared as numbers (IM2 before IM10)."""
    def key(i: int) -> list:
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", paths[i].name)]

    return sorted(range(len(paths)), key=key)


def run(source: Path, out: Path, *, force: bool = False, progress: bool = True) -> dict:
    source = Path(source)
    scans = _base.require(source / "CT_scans", DATASET, LAYOUT)
    gts = _base.require(source / "GroundTruth", DATASET, LAYOUT)
    patients = sorted(p for p in scans.iterdir() if p.is_dir())
    if not patients:
        raise _base.layout_error(scans / "PAT001", DATASET, LAYOUT)
    ids = _base.unique_ids([p.name for p in patients], scans)
    files, n_pe, geometry, variables, reversed_ = [], 0, {}, set(), 0
    with _base.staging(out, force, source) as tmp:
        for pdir in _base.progress(patients, "series", progress):
            mpath = gts / f"{pdir.name}.mat"
            if not mpath.is_file():
                raise MedftError(f"{mpath}: missing mask of series {pdir}")
            vol, order, _ = _volume.read_dicom_series(pdir)
            raw, var = read_mask(mpath)
            variables.add(var)
            rows, cols, n = vol.data.shape[1], vol.data.shape[0], vol.data.shape[2]
            if raw.shape != (rows, cols, n):
                raise MedftError(f"{mpath}: mask {var} of shape {raw.shape} but the series {pdir.name} is "
                                 f"{rows} x {cols} x {n} (rows x columns x slices)")
            # mask slice s belongs to the s-th DICOM file in file-name order, whatever its position
            by_name = name_order(order)
            reversed_ += bool(n > 1 and by_name[0] > by_name[-1])
            mask = np.zeros(vol.data.shape, np.int16)
            for s, pos_index in enumerate(by_name):
                mask[:, :, pos_index] = (raw[:, :, s] > 0).T
            labels, k = ndimage.label(mask > 0, structure=np.ones((3, 3, 3)))
            n_pe += k
            _volume.write_nifti(tmp / "volumes" / f"{ids[pdir.name]}.nii.gz", vol, np.float32)
            _volume.write_nifti(tmp / "pe_masks" / f"{ids[pdir.name]}.nii.gz",
                                _volume.Volume(labels, vol.affine), np.int16)
            geometry[ids[pdir.name]] = {"shape": list(vol.data.shape), "spacing_mm": vol.spacing,
                                        "affine_ras": vol.affine.round(6).tolist(), "mask_variable": var}
            files += [_base.file_entry(p, source) for p in order] + [_base.file_entry(mpath, source)]
        decisions = [
            "one case per patient folder PAT<nnn>",
            "HU = stored value x RescaleSlope + RescaleIntercept, slice by slice",
            "slice order from ImagePositionPatient along the slice normal (row x column direction), "
            "not file names; missing slices, unequal gaps, mixed pixel spacing or orientation refused",
            "array axes (column, row, slice); spacing (PixelSpacing column, row, slice gap); "
            "orientation and origin in the NIfTI affine (LPS converted to RAS)",
            "mask: the MATLAB file's 3-D variable ('Mask' where there are several; rows x columns x "
            "slices); its slice s belongs to the s-th DICOM file in file-name order (numbers in names "
            "compared as numbers), moved to that file's position; counts.name_order_against_position "
            "series run file names against slice position",
            "the masks are binary: each 26-connected component is one PE (pe-2 numbering)",
        ]
        return _base.write_record(tmp, dataset=DATASET, app=APP, source=source, files=files,
                                  counts={"patients": len(patients), "pe_components": n_pe,
                                          "name_order_against_position": reversed_}, decisions=decisions,
                                  extra={"geometry": geometry, "mask_variables": sorted(variables)})
