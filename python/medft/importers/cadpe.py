"""CAD-PE (González et al., 2020): 91 CTPA scans as NRRD with per-clot reference standards."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medft.errors import MedftError
from medft.importers import _base, _volume

APP = "pe"
DATASET = "cad-pe"
DESCRIPTION = ("CAD-PE: images/<nnn>.nrrd, rs/<nnnn>RefStd.nrrd (clots numbered 1..k); 91 CTPA scans -> pe "
               "(HU, spacing and orientation from the NRRD header)")
LAYOUT = ("CAD-PE/images/001.nrrd and CAD-PE/rs/0001RefStd.nrrd (numbers matched without leading zeros; "
          "or both in one folder)")
SUFFIX = "RefStd.nrrd"


def pairs(source: Path) -> list[tuple[str, Path, Path]]:
    """(patient, scan, reference standard) for every scan under ``source``."""
    if not source.is_dir():
        raise _base.layout_error(source, DATASET, LAYOUT)
    refs = {p.name[: -len(SUFFIX)]: p for p in source.rglob(f"*{SUFFIX}")}
    scans = {p.name[: -len(".nrrd")]: p for p in source.rglob("*.nrrd") if not p.name.endswith(SUFFIX)}
    if not scans:
        where = source / "images" if (source / "images").is_dir() else source
        raise _base.layout_error(where / "<n>.nrrd", DATASET, LAYOUT)
    out = []
    for n, scan in sorted(scans.items()):
        ref = refs.get(n) or next((r for k, r in refs.items() if k.lstrip("0") == n.lstrip("0")), None)
        if ref is None:
            name = f"{int(n):04d}{SUFFIX}" if n.isdigit() else f"{n}{SUFFIX}"
            raise MedftError(f"{scan}: missing mask {name} (expected under {source / 'rs'})")
        out.append((n, scan, ref))
    orphans = set(refs.values()) - {r for _, _, r in out}
    if orphans:
        raise MedftError(f"{sorted(orphans)[0]}: reference standard without a scan <n>.nrrd")
    return out


def run(source: Path, out: Path, *, force: bool = False, progress: bool = True) -> dict:
    source = Path(source)
    items = pairs(source)
    ids = _base.unique_ids([n for n, _, _ in items], source)
    files, clots, geometry = [], 0, {}
    with _base.staging(out, force, source) as tmp:
        for n, scan, ref in _base.progress(items, "scans", progress):
            vol = _volume.read_nrrd(scan)
            mask = _volume.read_nrrd(ref)
            if mask.data.shape != vol.data.shape:
                raise MedftError(f"{ref}: mask of shape {mask.data.shape} but the scan {scan.name} is {vol.data.shape}")
            if not np.allclose(mask.affine, vol.affine, atol=1e-3):
                raise MedftError(f"{ref}: space directions/origin differ from the scan {scan.name}'s")
            m = np.asarray(mask.data)
            if (m < 0).any() or (m != np.rint(m)).any():
                raise MedftError(f"{ref}: labels must be integers >= 0 (clot numbers)")
            clots += len(np.unique(m[m > 0]))
            _volume.write_nifti(tmp / "volumes" / f"{ids[n]}.nii.gz", vol, np.int16 if np.issubdtype(
                vol.data.dtype, np.integer) and vol.data.min() >= -32768 and vol.data.max() <= 32767 else np.float32)
            _volume.write_nifti(tmp / "pe_masks" / f"{ids[n]}.nii.gz", _volume.Volume(m, vol.affine), np.int16)
            geometry[ids[n]] = {"shape": list(vol.data.shape), "spacing_mm": vol.spacing,
                                "affine_ras": vol.affine.round(6).tolist()}
            files += [_base.file_entry(scan, source), _base.file_entry(ref, source)]
        decisions = [
            "one case per scan (patient = scan number)",
            "voxel values kept as stored (CAD-PE stores HU); arrays keep the NRRD axis order",
            "spacing = length of each 'space directions' vector; orientation and origin kept in the "
            "NIfTI affine (LPS converted to RAS); non-identity directions are preserved, not resampled",
            "reference standard labels kept: each clot its own number (pe-2); a clot is one PE",
            "no candidates here: `medft prep pe` finds them by tobogganing",
        ]
        return _base.write_record(tmp, dataset=DATASET, app=APP, source=source, files=files,
                                  counts={"patients": len(items), "clots": clots}, decisions=decisions,
                                  extra={"geometry": geometry})
