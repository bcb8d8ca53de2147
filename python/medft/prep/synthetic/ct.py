"""CT pulmonary angiography: volumes with a contrast-filled vessel tree, emboli and mimics (pe).

Each volume is lung parenchyma with a branching pulmonary artery tree whose calibre tapers from
branch to branch, filled with contrast (its HU drawn per volume, as bolus timing varies), smoothed
like a reconstruction kernel and overlaid with noise of a per-volume level.  A few *sites* on
vessels of at least :data:`SITE_MIN_RADIUS_MM` each hold one finding:

* an embolus (labelled 1..k): a sharp-margined filling defect inside the lumen with contrast
  around it, central, eccentric (touching one wall) or occlusive (filling the lumen with convex
  ends);
* or a mimic (unlabelled): an ill-defined mixing artefact of unopacified blood, a lymph node
  lodged in the crotch of a side branch (outside the lumen), partial-volume soft tissue in such
  a crotch, or a beam-hardening streak (a dark band with a bright band beside it).

The tree's own forks add more unlabelled candidates (partial volume where branches part), so
sites lie just before a fork as often as not, emboli and mimics alike.  The mask labels each clot
with a one-voxel margin, the partial-volume edge a reader would include.

Emboli and mimics draw their tissue HU, width (fraction of the lumen) and length from the same
ranges, and every site draws its context from the same distributions whatever it holds: vessel
calibre, a fork, a side branch, soft tissue beside the vessel.  Every tobogganing candidate
thus sits on a contrast-filled vessel with blood, soft tissue and lung around it, and the local
configuration (a defect inside the lumen, surrounded by contrast, with sharp margins) is what
tells an embolus from a mimic.  Candidates off the sites' centres (the walls at forks) still
show a little more vessel edge than emboli do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from medft.prep.common import rng_for
from medft.prep.synthetic.io import SynthSize, smooth_noise, write_nifti, write_split

#: lung parenchyma (HU) and the SD of its smooth texture (HU)
LUNG_HU = -850.0
LUNG_TEXTURE_HU = 40.0
#: contrast-filled blood (HU), drawn per volume: bolus timing varies between scans
BLOOD_HU = (250.0, 400.0)
#: SD of the white noise (HU), drawn per volume (dose, patient size)
NOISE_HU = (8.0, 20.0)
#: reconstruction blur (voxels, Gaussian sigma)
BLUR_VOX = 0.7
#: the tissue of every finding, embolus or mimic (HU): acute clot, unopacified blood, lymph node
DEFECT_HU = (10.0, 100.0)
#: width of every finding as a fraction of the lumen radius, and its half length along the vessel (mm)
DEFECT_WIDTH = (0.45, 0.8)
DEFECT_HALF_LENGTH_MM = (1.2, 2.8)
#: the tree: root radius (mm), child / parent radius, segment length (mm, shrinking 0.85x a level),
#: branching angle (rad), levels below the root
ROOT_RADIUS_MM = (3.5, 4.8)
BRANCH_RATIO = (0.72, 0.86)
SEGMENT_MM = (14.0, 20.0)
BRANCH_ANGLE = (0.45, 0.8)
TREE_DEPTH = 2
#: sites lie on vessels at least this wide (mm), this far apart (mm) and from the border (mm)
SITE_MIN_RADIUS_MM = 2.4
SITE_SPACING_MM = 11.0
SITE_BORDER_MM = 6.0
#: chance that a site (embolus or mimic) lies just before a fork of the tree, where the vessel divides
P_AT_FORK = 0.5
#: context of every site, embolus or mimic: chance of a side branch leaving just beside it, and
#: chance of soft tissue (a node, not touching) lying beside the vessel
P_SIDE_BRANCH = 0.4
P_BESIDE_NODE = 0.4
#: side branch: radius as a fraction of the vessel's, angle to it (rad), length (mm)
SIDE_RADIUS = (0.55, 0.8)
SIDE_ANGLE = (0.5, 0.8)
SIDE_LENGTH_MM = (8.0, 12.0)
#: the crotch tissue reaches this far beyond both walls (mm)
CROTCH_GAP_MM = 1.5
#: half length of an occlusive clot as a fraction of :data:`DEFECT_HALF_LENGTH_MM`: tobogganing's
#: closing bridges only short complete cut-offs, longer ones are no candidates at all
OCCLUSIVE_LENGTH = 0.7
EMBOLI = ("central", "eccentric", "occlusive")
#: how often each embolus kind occurs (eccentric, mural clot is the most common)
EMBOLUS_P = (0.3, 0.45, 0.25)
MIMICS = ("mixing", "node", "bifurcation", "streak")
#: how often each mimic kind occurs (half inside the lumen like most emboli, half at its wall)
MIMIC_P = (0.3, 0.2, 0.2, 0.3)
#: mimics that sit in the crotch of a side branch leaving at the site
CROTCH_MIMICS = ("node", "bifurcation")

Segment = tuple[np.ndarray, np.ndarray, float]


@dataclass(frozen=True)
class Site:
    """Where a finding goes: centre (mm), unit vessel axis, lumen radius (mm), a unit vector across."""

    centre: np.ndarray
    axis: np.ndarray
    radius: float
    across: np.ndarray


def segment_distance(pts: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distance to segment ab, position along it in 0..1) for points ``pts`` (N x 3, mm)."""
    ab = b - a
    t = np.clip(((pts - a) @ ab) / (ab @ ab), 0, 1)
    return np.linalg.norm(pts - (a + t[:, None] * ab), axis=1), t


def unit_across(rng: np.random.Generator, axis: np.ndarray) -> np.ndarray:
    """A random unit vector perpendicular to ``axis``."""
    v = rng.normal(0, 1, 3)
    v -= (v @ axis) * axis
    return v / (np.linalg.norm(v) + 1e-12)


def turned(axis: np.ndarray, across: np.ndarray, angle: float) -> np.ndarray:
    """``axis`` turned by ``angle`` (rad) towards ``across``."""
    return np.cos(angle) * axis + np.sin(angle) * across


def vessel_tree(rng: np.random.Generator, extent: np.ndarray) -> list[Segment]:
    """Segments (start mm, end mm, radius mm) of a binary tree entering near the volume's centre top,
    each child thinner than its parent (calibre varies along the tree and between volumes)."""
    segs: list[Segment] = []
    start = np.array([extent[0] / 2, extent[1] / 2, extent[2] * 0.95]) + np.r_[rng.uniform(-4, 4, 2), 0.0]
    stack = [(start, np.array([0.0, 0.0, -1.0]), rng.uniform(*ROOT_RADIUS_MM), 0)]
    while stack:
        p, d, r, depth = stack.pop()
        q = np.clip(p + d * rng.uniform(*SEGMENT_MM) * 0.85**depth, 3, extent - 3)
        segs.append((p, q, r))
        if depth < TREE_DEPTH:
            across = unit_across(rng, d)
            for sgn in (-1, 1):
                nd = turned(d, sgn * across, rng.uniform(*BRANCH_ANGLE))
                stack.append((q, nd / np.linalg.norm(nd), r * rng.uniform(*BRANCH_RATIO), depth + 1))
    return segs


def pick_sites(rng: np.random.Generator, segs: list[Segment], extent: np.ndarray, n: int) -> list[Site]:
    """Up to ``n`` sites on wide enough segments (some just before a fork), apart from each other
    and from the border."""
    wide = [s for s in segs if s[2] >= SITE_MIN_RADIUS_MM and np.linalg.norm(s[1] - s[0]) > 6]
    forks = [s for s in wide if any(np.array_equal(s[1], o[0]) for o in segs)]
    sites: list[Site] = []
    for _ in range(200 * n):
        if len(sites) == n or not wide:
            break
        at_fork = forks and rng.random() < P_AT_FORK
        pool = forks if at_fork else wide
        a, b, r = pool[rng.integers(len(pool))]
        c = a + (rng.uniform(0.8, 0.9) if at_fork else rng.uniform(0.3, 0.7)) * (b - a)
        if np.any(c < SITE_BORDER_MM) or np.any(c > extent - SITE_BORDER_MM):
            continue
        if any(np.linalg.norm(c - s.centre) < SITE_SPACING_MM for s in sites):
            continue
        axis = (b - a) / np.linalg.norm(b - a)
        sites.append(Site(c, axis, r, unit_across(rng, axis)))
    return sites


def findings(
    rng: np.random.Generator, segs: list[Segment], extent: np.ndarray, n_emboli: int, n_mimics: int
) -> list[tuple[Site, str]]:
    """(site, kind) of every finding: the kinds of :data:`EMBOLI` and :data:`MIMICS` in random order,
    so emboli and mimics share the distribution of sites."""
    sites = pick_sites(rng, segs, extent, n_emboli + n_mimics)
    kinds = [str(k) for k in rng.choice(EMBOLI, n_emboli, p=EMBOLUS_P)]
    kinds += [str(k) for k in rng.choice(MIMICS, n_mimics, p=MIMIC_P)]
    return list(zip(sites, [kinds[i] for i in rng.permutation(len(kinds))]))


def local_coords(grid: np.ndarray, site: Site) -> tuple[np.ndarray, np.ndarray]:
    """(position along the vessel from the site centre mm, offset across it N x 3 mm) of every voxel."""
    rel = grid - site.centre
    s = rel @ site.axis
    return s, rel - s[:, None] * site.axis


def tube(grid: np.ndarray, a: np.ndarray, b: np.ndarray, r: float) -> np.ndarray:
    """Voxels within ``r`` mm of segment ab (distances only inside its bounding box, for speed)."""
    box = np.all((grid >= np.minimum(a, b) - r) & (grid <= np.maximum(a, b) + r), axis=1)
    out = np.zeros(len(grid), bool)
    out[box] = segment_distance(grid[box], a, b)[0] <= r
    return out


def side_branch(
    rng: np.random.Generator, grid: np.ndarray, site: Site, at_site: bool = False
) -> tuple[np.ndarray, Segment]:
    """(lumen mask, segment) of a thinner branch leaving the vessel: its crotch at the site when
    ``at_site``, else leaving a few mm beside the site."""
    angle, rb = rng.uniform(*SIDE_ANGLE), site.radius * rng.uniform(*SIDE_RADIUS)
    d = turned(site.axis, site.across, angle)
    if at_site:  # the outer walls part where the axes are r + rb apart
        start = site.centre - site.axis * (site.radius + rb) / np.tan(angle)
    else:
        start = site.centre + site.axis * rng.uniform(2.5, 4.0) * rng.choice([-1, 1])
    seg = (start, start + d * rng.uniform(*SIDE_LENGTH_MM), rb)
    return tube(grid, *seg), seg


def beside_node(rng: np.random.Generator, grid: np.ndarray, site: Site) -> np.ndarray:
    """Soft tissue (a node) lying beside the vessel, a little apart from its wall."""
    rad = rng.uniform(1.5, 3.5)
    c = site.centre + unit_across(rng, site.axis) * (site.radius + rad + rng.uniform(1.5, 3.0))
    c += site.axis * rng.uniform(-3, 3)
    return np.linalg.norm(grid - c, axis=1) <= rad


def embolus(kind: str, rng: np.random.Generator, grid: np.ndarray, site: Site, lumen: np.ndarray) -> np.ndarray:
    """Mask of a sharp-margined clot inside the lumen: central, eccentric (on one wall) or occlusive."""
    s, off = local_coords(grid, site)
    half = rng.uniform(*DEFECT_HALF_LENGTH_MM) * (OCCLUSIVE_LENGTH if kind == "occlusive" else 1.0)
    if kind == "occlusive":  # fills the lumen; its ends bulge into the contrast (convex meniscus)
        return lumen & ((s / half) ** 2 + (np.linalg.norm(off, axis=1) / (1.4 * site.radius)) ** 2 <= 1)
    width = rng.uniform(*DEFECT_WIDTH) * site.radius
    shift = 0.0 if kind == "central" else site.radius - width * rng.uniform(0.9, 1.1)
    rho = np.linalg.norm(off - shift * site.across, axis=1)
    return lumen & ((s / half) ** 2 + (rho / width) ** 2 <= 1)


def mixing_weight(rng: np.random.Generator, grid: np.ndarray, site: Site) -> np.ndarray:
    """0..1 share of unopacified blood of an ill-defined mixing artefact (Gaussian, no margin)."""
    s, off = local_coords(grid, site)
    width = rng.uniform(*DEFECT_WIDTH) * site.radius
    half = rng.uniform(*DEFECT_HALF_LENGTH_MM)
    rho = np.linalg.norm(off - rng.uniform(0, 0.5) * site.radius * site.across, axis=1)
    return np.exp(-0.5 * (s / half) ** 2 - 0.5 * (rho / width) ** 2)


def crotch_node(rng: np.random.Generator, grid: np.ndarray, site: Site, seg: Segment) -> np.ndarray:
    """Mask of a lymph node lodged in the crotch of a branch whose walls part at the site, touching
    both walls from outside."""
    rad = rng.uniform(*DEFECT_WIDTH) * site.radius
    angle = np.arccos(np.clip((seg[1] - seg[0]) @ site.axis / np.linalg.norm(seg[1] - seg[0]), -1, 1))
    c = site.centre + site.axis * rad / np.tan(angle / 2) + site.across * (site.radius + rad)
    return np.linalg.norm(grid - c, axis=1) <= rad


def crotch(grid: np.ndarray, site: Site, seg: Segment, lumen: np.ndarray) -> np.ndarray:
    """Mask of partial-volume soft tissue in the crotch between the vessel and a branch whose walls
    part at the site (:func:`side_branch` with ``at_site``)."""
    s, off = local_coords(grid, site)
    d_side = segment_distance(grid, seg[0], seg[1])[0]
    gap = CROTCH_GAP_MM
    near = (np.linalg.norm(off, axis=1) <= site.radius + gap) & (d_side <= seg[2] + gap)
    return near & (np.abs(s) <= 3.0) & (off @ site.across > 0) & ~lumen


def streak(rng: np.random.Generator, grid: np.ndarray, site: Site) -> np.ndarray:
    """Signed 0..1 profile of a beam-hardening streak across the vessel: a dark band (+1), a
    brighter band beside it (negative), fading within a few mm of the site."""
    n = turned(site.axis, site.across, rng.uniform(0, 0.5))
    rel = grid - site.centre
    x = rel @ n
    sigma = rng.uniform(*DEFECT_HALF_LENGTH_MM) / 2
    side = rng.choice([-1, 1])
    band = np.exp(-0.5 * (x / sigma) ** 2) - 0.5 * np.exp(-0.5 * ((x - side * 3 * sigma) / sigma) ** 2)
    return band * np.exp(-0.5 * (np.linalg.norm(rel - x[:, None] * n, axis=1) / 6.0) ** 2)


def annotation(clot: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """A reader's mask of a clot: its voxels and the partial-volume margin one voxel around them
    (where tobogganing's clusters of the clot's blurred edge end)."""
    return ndimage.binary_dilation(clot.reshape(shape)).ravel()


def ct_volume(
    rng: np.random.Generator,
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    n_emboli: int = 2,
    n_mimics: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """(HU volume int16, PE label volume uint8): a vessel tree with emboli (labels 1..k) and mimics."""
    sp = np.asarray(spacing)
    extent = np.asarray(shape) * sp
    grid = np.stack(np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, sp)], indexing="ij"), -1).reshape(-1, 3)
    blood = rng.uniform(*BLOOD_HU)
    hu = LUNG_HU + LUNG_TEXTURE_HU * smooth_noise(rng, shape, 2.0).ravel()
    segs = vessel_tree(rng, extent)
    found = findings(rng, segs, extent, n_emboli, n_mimics)
    lumen = np.zeros(len(grid), bool)
    for seg in segs:
        lumen |= tube(grid, *seg)
    branches = {}
    for i, (site, kind) in enumerate(found):
        if kind in CROTCH_MIMICS or rng.random() < P_SIDE_BRANCH:
            mask, branches[i] = side_branch(rng, grid, site, at_site=kind in CROTCH_MIMICS)
            lumen |= mask
        if rng.random() < P_BESIDE_NODE:
            hu[beside_node(rng, grid, site)] = rng.uniform(*DEFECT_HU)
    hu[lumen] = blood
    labels = np.zeros(len(grid), np.uint8)
    for i, (site, kind) in enumerate(found):
        tissue = rng.uniform(*DEFECT_HU)
        if kind in EMBOLI:
            clot = embolus(kind, rng, grid, site, lumen)
            hu[clot] = tissue
            labels[annotation(clot, shape)] = labels.max() + 1
        elif kind == "mixing":
            w = mixing_weight(rng, grid, site) * lumen
            hu -= w * (blood - tissue)
        elif kind == "node":
            hu[crotch_node(rng, grid, site, branches[i])] = tissue
        elif kind == "bifurcation":
            hu[crotch(grid, site, branches[i], lumen)] = tissue
        else:
            hu -= streak(rng, grid, site) * (blood - tissue)
    noise = rng.uniform(*NOISE_HU)
    hu = ndimage.gaussian_filter(hu.reshape(shape), BLUR_VOX) + rng.normal(0, noise, shape)
    return np.rint(hu).astype(np.int16), labels.reshape(shape)


def synth_pe(
    root: Path,
    size: SynthSize,
    shape: tuple[int, int, int] = (64, 64, 48),
    spacing: tuple[float, float, float] = (0.75, 0.75, 1.0),
) -> None:
    """``size.cases`` patients, each a volume with ``size.per_case`` emboli and as many mimics."""
    patients = [f"p{i + 1:03d}" for i in range(size.cases)]
    for p in patients:
        rng = rng_for(size.seed, "synth-pe", p)
        hu, labels = ct_volume(rng, shape, spacing, n_emboli=size.per_case, n_mimics=size.per_case)
        write_nifti(root / "volumes" / f"{p}.nii.gz", hu, spacing)
        write_nifti(root / "pe_masks" / f"{p}.nii.gz", labels, spacing)
    write_split(root, patients)
