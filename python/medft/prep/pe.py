"""Pulmonary embolism detection (section VI-B): tobogganing candidates -> vessel-aligned patches.

Input (data_prep/README.md, "pe"): ``volumes/<patient>.nii.gz`` (CT in HU, voxel spacing in
the header) and ``pe_masks/<patient>.nii.gz`` (0 = no PE, k = voxel of PE number k).
Each candidate gives 3 sizes (10, 15, 20 mm) x 3 shifts along the vessel (-20%, 0, +20% of the
size) x 6 rotations of the planes about the vessel axis (0, 30, ..., 150 degrees: the original
and "5 more variations") = 54 patches; channels = (cross-section, longitudinal, longitudinal).
Stratification keeps every positive patch, so the paper's 434 training true positives give
2 x 434 x 54 = 46,872 patches, fewer than its stated 81,000 (the default cap, binding only with
more positives; data_prep/README.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from medft.prep.augment import (
    channels_to_datum,
    perpendicular_frame,
    rotate_about,
    sample_plane,
    window_to_uint8,
)
from medft.prep.common import Spec, bad_input, check_id
from medft.prep.io import read_volume
from medft.prep.splits import keep_fraction, lesion_row
from medft.prep.toboggan import toboggan_candidates, vessel_axis, vessel_masks

CHANNELS = "cross-section,longitudinal,longitudinal"
SIZES_MM: tuple[float, ...] = (10.0, 15.0, 20.0)
SHIFTS: tuple[float, ...] = (-0.2, 0.0, 0.2)  # x size, along the vessel axis
ROTATIONS_DEG: tuple[float, ...] = (0.0, 30.0, 60.0, 90.0, 120.0, 150.0)
#: display window (HU) mapped to 0..255: level 100, width 700, a usual CTPA window
WINDOW_HU = (-250.0, 450.0)
PATCHES_PER_CANDIDATE = len(SIZES_MM) * len(SHIFTS) * len(ROTATIONS_DEG)


@dataclass
class PeData:
    root: Path
    patients: list[str]
    stats: dict = field(default_factory=dict)

    def volume_path(self, patient: str) -> Path:
        return self.root / "volumes" / f"{patient}.nii.gz"

    def mask_path(self, patient: str) -> Path:
        return self.root / "pe_masks" / f"{patient}.nii.gz"


def load(root: Path) -> PeData:
    """List the patients; every volume must have a mask (contents are checked when read)."""
    root = Path(root)
    if not (root / "volumes").is_dir():
        raise bad_input(root / "volumes", "pe-1", "missing folder")
    patients = sorted(p.name[: -len(".nii.gz")] for p in (root / "volumes").glob("*.nii.gz"))
    if not patients:
        raise bad_input(root / "volumes", "pe-1", "no <patient>.nii.gz volumes")
    for p in patients:
        check_id(root / "volumes" / f"{p}.nii.gz", "patient", p)
        if not (root / "pe_masks" / f"{p}.nii.gz").is_file():
            raise bad_input(root / "pe_masks" / f"{p}.nii.gz", "pe-2", "missing file (every volume needs a mask)")
    return PeData(root, patients, {"volumes": len(patients)})


def cases(ds: PeData) -> list[str]:
    return ds.patients


def case_images(ds: PeData) -> tuple[str, dict[str, int]]:
    """False positives are counted per volume: (column name, one CT volume per patient)."""
    return "n_volumes", {p: 1 for p in ds.patients}


def read_case(ds: PeData, patient: str) -> tuple[np.ndarray, tuple[float, float, float], np.ndarray]:
    """(HU volume, spacing mm, integer PE label volume), checked against each other."""
    vol, spacing = read_volume(ds.volume_path(patient), "pe-1")
    mpath = ds.mask_path(patient)
    mask, _ = read_volume(mpath, "pe-2", dtype=np.float64)
    if mask.shape != vol.shape:
        raise bad_input(mpath, "pe-2", f"mask shape {mask.shape} differs from volume {vol.shape}")
    if (mask < 0).any() or (mask != np.rint(mask)).any():
        raise bad_input(mpath, "pe-2", "labels must be integers >= 0 (0 = no PE, k = PE number k)")
    return vol, spacing, mask.astype(np.int32)


def candidate_specs(
    patient: str,
    cid: int,
    center_vox: np.ndarray,
    spacing,
    axis: np.ndarray,
    label: int,
    lesion: str,
    score: float,
) -> list[Spec]:
    """The 3 x 3 x 6 = 54 vessel-aligned patch specs of one candidate."""
    a, u, v = perpendicular_frame(axis)
    c_mm = np.asarray(center_vox) * np.asarray(spacing)
    out = []
    for size in SIZES_MM:
        for shift in SHIFTS:
            for deg in ROTATIONS_DEG:
                out.append(
                    Spec(
                        case=patient,
                        frame=str(int(round(center_vox[2]))),
                        unit=f"{patient}/c{cid}",
                        lesion=lesion,
                        label=label,
                        aug=f"size={size:g}mm;shift={shift:+g};rot={deg:g}",
                        geom=(
                            tuple(c_mm + shift * size * a),
                            tuple(a),
                            tuple(u),
                            tuple(v),
                            size,
                            np.deg2rad(deg),
                        ),
                        score=f"{score:.3f}",
                    )
                )
    return out


def case_specs(patient: str, vol: np.ndarray, spacing, mask: np.ndarray) -> tuple[list[Spec], dict]:
    """Tobogganing candidates of one volume, labelled by the PE at their centroid voxel."""
    cands = toboggan_candidates(vol, spacing)
    smooth = ndimage.gaussian_filter(vol.astype(np.float32), sigma=0.6 / np.asarray(spacing))
    vessel = ndimage.gaussian_filter(vessel_masks(smooth, spacing)[1].astype(np.float32), 1.0)
    specs = []
    hit = set()
    for c in cands:
        center = np.asarray(c.center_vox)
        pe_id = int(mask[tuple(np.clip(np.rint(center).astype(int), 0, np.array(mask.shape) - 1))])
        hit.add(pe_id)
        specs.extend(
            candidate_specs(
                patient,
                c.index,
                center,
                spacing,
                vessel_axis(vessel, spacing, center),
                int(pe_id > 0),
                f"{patient}/pe{pe_id}" if pe_id else "",
                c.score,
            )
        )
    pes = set(np.unique(mask).tolist()) - {0}
    return specs, {"candidates": len(cands), "pes": len(pes), "pes_missed": len(pes - hit)}


def plan(ds: PeData, seed: int = 0) -> list[Spec]:
    del seed  # deterministic: no random draws
    specs = []
    totals = {"candidates": 0, "pes": 0, "pes_missed": 0}
    for p in ds.patients:
        vol, spacing, mask = read_case(ds, p)
        s, st = case_specs(p, vol, spacing, mask)
        specs.extend(s)
        totals = {k: totals[k] + st[k] for k in totals}
    ds.stats.update(totals)
    return specs


def reduce(specs: list[Spec], fraction: str, rng: np.random.Generator) -> list[Spec]:
    """Keep a seeded ``fraction`` of the training PEs (with all their candidates) and the same
    fraction of the negative candidates ("reduced ... at the PE-level")."""
    f = float(fraction)
    keep_pe = set(keep_fraction([s.lesion for s in specs if s.lesion], f, rng))
    keep_neg = set(keep_fraction([s.unit for s in specs if not s.lesion], f, rng))
    return [s for s in specs if (s.lesion in keep_pe if s.lesion else s.unit in keep_neg)]


def render_planes(vol: np.ndarray, spacing, geom: tuple) -> np.ndarray:
    """3 x 227 x 227 uint8: cross-sectional plane, longitudinal plane, longitudinal plane again."""
    center, a, u, v, size, theta = geom
    a, u, v = np.asarray(a), np.asarray(u), np.asarray(v)
    ur, vr = rotate_about(a, u, v, theta)
    cross = sample_plane(vol, spacing, np.asarray(center), vr, ur, size)
    longi = sample_plane(vol, spacing, np.asarray(center), a, ur, size)
    c8, l8 = window_to_uint8(cross, *WINDOW_HU), window_to_uint8(longi, *WINDOW_HU)
    return channels_to_datum(c8, l8, l8)


def renderer(ds: PeData) -> Callable[[Spec], np.ndarray]:
    cache: dict = {"case": None}

    def render(s: Spec) -> np.ndarray:
        if cache["case"] != s.case:
            vol, spacing = read_volume(ds.volume_path(s.case), "pe-1")
            cache.update(case=s.case, vol=vol, spacing=spacing)
        return render_planes(cache["vol"], cache["spacing"], s.geom)

    return render


def lesions(ds: PeData, split_record: dict) -> list[dict[str, str]]:
    """Every PE of every patient (slice = its centroid's index on the last array axis)."""
    rows = []
    for p in ds.patients:
        mask, _ = read_volume(ds.mask_path(p), "pe-2", dtype=np.float64)
        ids = [int(k) for k in np.unique(mask) if k > 0]
        cents = ndimage.center_of_mass(np.ones_like(mask), mask, ids) if ids else []
        for k, c in zip(ids, cents):
            rows.append(lesion_row(p, str(int(round(c[2]))), f"{p}/pe{k}", split_record))
    return rows


def verify(root: Path) -> list[str]:
    ds = load(root)
    n_pe = 0
    for p in ds.patients:
        _, _, mask = read_case(ds, p)
        n_pe += len(np.unique(mask)) - 1
    return [f"{len(ds.patients)} volumes with spacing and masks, {n_pe} PEs"]
