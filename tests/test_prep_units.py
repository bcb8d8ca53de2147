"""Hand-checkable cases for the building blocks of medft prep (geometry, splits, writer, mean)."""

from __future__ import annotations

import numpy as np
import pytest
from medft.apps import check_fraction, patch_share, set_size, split_sizes
from medft.datum_lmdb import LmdbWriter, read_lmdb, shuffled_keys
from medft.errors import MedftError
from medft.paths import dataset_dir
from medft.prep import augment, cimt, frames, pe, polyp, splits, stratify, toboggan
from medft.prep.common import rng_for
from medft.prep.mean import MeanAccumulator, channel_means


def test_eight_orientations_are_the_dihedral_group():
    p = np.arange(12).reshape(3, 4)
    outs = [augment.orient(p, o) for o in range(8)]
    assert len({o.tobytes() + bytes(o.shape) for o in outs}) == 8
    assert np.array_equal(outs[1], np.rot90(p))
    assert np.array_equal(outs[4], p[:, ::-1])
    assert np.array_equal(outs[6], p[::-1, :])  # mirror then 180 degrees = vertical flip


def test_crop_square_identity_and_centre():
    img = np.arange(227 * 227, dtype=np.float32).reshape(227, 227)
    assert np.allclose(augment.crop_square(img, 113, 113, 227), img)
    xs = np.tile(np.arange(400, dtype=np.float32), (300, 1))  # value = column
    p = augment.crop_square(xs, 150, 200, 100)
    assert p.shape == (227, 227)
    assert abs(p[113, 113] - 200) < 0.3  # centre pixel samples the centre
    assert abs(p[0, 0] - (200 - 50 + 50 / 227)) < 1e-3  # first pixel centre half a step inside the window


def test_polyp_candidate_has_3_scales_5_translations_8_orientations():
    c = polyp.Candidate("v1", "f1", "c1", (10, 20, 30, 60), "0.5")  # 20 wide, 40 high
    specs = polyp.candidate_specs(c, 1, "v1/f1/p1")
    assert len(specs) == polyp.PATCHES_PER_CANDIDATE == 120
    cy, cx = polyp.box_center(c.box)
    assert (cy, cx) == (39.5, 19.5)
    sides = sorted({s.geom[2] for s in specs})
    assert sides == [40.0, 48.0, 60.0]  # 1.0, 1.2, 1.5 x the longer side
    for s in specs:
        y, x, side, _ = s.geom
        d = (round((x - cx) / side, 6), round((y - cy) / side, 6))
        assert d in {(0, 0), (-0.1, 0), (0.1, 0), (0, -0.1), (0, 0.1)}
    assert len({(s.geom, s.aug) for s in specs}) == 120


def test_polyp_box_clipping():
    assert polyp.clip_box((-5, 2, 10, 8), 20, 30) == ((0, 2, 10, 8), True)
    assert polyp.clip_box((40, 2, 50, 8), 20, 30)[0][2] <= 30


def test_pe_candidate_sizes_shifts_rotations():
    axis = np.array([0.0, 1.0, 0.0])
    specs = pe.candidate_specs("p1", 0, np.array([10.0, 10.0, 10.0]), (0.5, 0.5, 1.0), axis, 1, "p1/pe1", 3.0)
    assert len(specs) == pe.PATCHES_PER_CANDIDATE == 54
    assert sorted({s.geom[4] for s in specs}) == [10.0, 15.0, 20.0]
    c_mm = np.array([5.0, 5.0, 10.0])
    shifts = sorted({round(float((np.asarray(s.geom[0]) - c_mm) @ axis) / s.geom[4], 6) for s in specs})
    assert shifts == [-0.2, 0.0, 0.2]  # along the vessel axis only, up to 20% of the size
    for s in specs:
        assert np.allclose(np.cross(np.asarray(s.geom[0]) - c_mm, axis), 0)
    assert sorted({round(np.rad2deg(s.geom[5])) for s in specs}) == [0, 30, 60, 90, 120, 150]


def tube(shape=(40, 40, 40), direction=(0, 1, 0), radius=4.0, defect=True):
    """HU volume: bright tube through the centre along ``direction``, a dark defect in its middle."""
    g = np.stack(np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij"), -1)
    c = (np.asarray(shape) - 1) / 2
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    rel = g - c
    along = rel @ d
    dist = np.linalg.norm(rel - along[..., None] * d, axis=-1)
    vol = np.full(shape, -850.0)
    vol[dist <= radius] = 320.0
    if defect:
        vol[(dist <= 2.0) & (np.abs(along) <= 3)] = 40.0
    return vol.astype(np.float32)


@pytest.mark.parametrize("direction", [(0, 1, 0), (1, 1, 0), (1, 0, 1)])
def test_vessel_axis_from_structure_tensor(direction):
    vol = tube(direction=direction, defect=False)
    _, closed = toboggan.vessel_masks(vol, (1.0, 1.0, 1.0))
    a = toboggan.vessel_axis(closed.astype(np.float32), (1.0, 1.0, 1.0), np.array([19.5, 19.5, 19.5]))
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    assert abs(a @ d) > 0.97


def test_toboggan_finds_the_filling_defect_only():
    cands = toboggan.toboggan_candidates(tube(), (1.0, 1.0, 1.0))
    assert cands, "the dark defect inside the tube must be a candidate"
    centre = np.array([19.5, 19.5, 19.5])
    assert min(np.linalg.norm(np.asarray(c.center_vox) - centre) for c in cands) < 2.0
    assert not toboggan.toboggan_candidates(tube(defect=False), (1.0, 1.0, 1.0))


def test_slide_reaches_the_minimum():
    v = np.array([[[5.0, 4.0, 3.0, 2.0, 1.0, 9.0]]])
    sink = toboggan.slide(v, np.ones_like(v, bool))
    assert set(sink[:5]) == {4}  # everything slides down to the 1.0 voxel


def test_pe_planes_show_the_defect():
    vol = tube()
    geom = (tuple(np.array([19.5, 19.5, 19.5])), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), 20.0, 0.0)
    img = pe.render_planes(vol, (1.0, 1.0, 1.0), geom)
    assert img.shape == (3, 227, 227) and img.dtype == np.uint8
    assert np.array_equal(img[1], img[2])  # third channel repeats the longitudinal plane
    lo, hi = pe.WINDOW_HU
    clot = round((40 - lo) * 255 / (hi - lo))
    assert abs(int(img[0, 113, 113]) - clot) <= 2 and abs(int(img[1, 113, 113]) - clot) <= 2
    # the longitudinal plane runs along the vessel: 6 mm from the centre along the axis is blood
    blood = round((320 - lo) * 255 / (hi - lo))
    assert img[1, 113 + 68, 113] == blood and img[0, 113 + 68, 113] == 0  # across it: lung


def test_frames_crops_inside_the_frame():
    o = frames.crop_origins(200, np.random.default_rng(1))
    assert o.shape == (200, 2)
    assert o[:, 0].min() >= 0 and o[:, 0].max() <= 350 - 227
    assert o[:, 1].min() >= 0 and o[:, 1].max() <= 500 - 227


def test_cimt_patch_centres_on_the_polylines_and_background_far():
    w = 40
    roi = cimt.Roi("p1", "r1", (50, w), np.full(w, 20.3), np.linspace(30, 34, w))
    specs = cimt.roi_specs(roi, 8, np.random.default_rng(0), band=3)
    by = {k: [s.geom for s in specs if s.label == k] for k in (0, 1, 2)}
    assert all(len(v) == 7 * w for v in by.values())  # rows -3..+3 of each interface, every column
    assert sorted(by[1]) == sorted((y, x, y == 20) for x in range(w) for y in range(17, 24))
    assert all(abs(y - roi.ma[x]) <= 3.5 and c == (y == round(roi.ma[x])) for y, x, c in by[2])
    assert all(abs(y - roi.li[x]) > 8 and abs(y - roi.ma[x]) > 8 for y, x, _ in by[0])
    assert sum(c for _, _, c in by[0]) == w  # the test split's background: one ROI width
    assert len({s.unit for s in specs}) == len(specs)  # no pixel in two classes
    test = cimt.split_filter(None, "test", specs)
    assert sorted((s.label, s.geom[0]) for s in test if s.label == 1) == [(1, 20)] * w
    assert cimt.split_filter(None, "train", specs) == specs


def test_cimt_bands_never_cross_a_near_interface():
    w = 10
    roi = cimt.Roi("p1", "r1", (30, w), np.full(w, 10.0), np.full(w, 14.0))  # 4 rows apart
    specs = cimt.roi_specs(roi, 8, np.random.default_rng(0), band=3)
    li = {(s.geom[0], s.geom[1]) for s in specs if s.label == 1}
    ma = {(s.geom[0], s.geom[1]) for s in specs if s.label == 2}
    assert {y for y, _ in li} == {7, 8, 9, 10, 11} and {y for y, _ in ma} == {13, 14, 15, 16, 17}  # row 12: tie
    with pytest.raises(MedftError, match="must exceed the interface band"):
        cimt.check_margins(3, 3)
    rows = np.tile(np.arange(50, dtype=np.float32)[:, None] * 4, (1, w))  # value = 4 x row
    p = cimt.patch(rows, 25, 10)
    assert p.shape == (3, 227, 227) and np.array_equal(p[0], p[2])
    assert abs(int(p[0, 113, 113]) - 100) <= 1  # the centre pixel is row 25


def test_stratify_keeps_minority_whole_and_caps():
    labels = [0] * 10 + [1] * 3
    idx = stratify.stratify(labels, 2, np.random.default_rng(0))
    assert sorted(idx[np.asarray(labels)[idx] == 1]) == [10, 11, 12]
    assert np.bincount(np.asarray(labels)[idx]).tolist() == [3, 3]
    capped = stratify.stratify(labels, 2, np.random.default_rng(0), max_total=4)
    assert np.bincount(np.asarray(labels)[capped]).tolist() == [2, 2]
    three = stratify.stratify([0] * 5 + [1] * 2 + [2] * 4, 3, np.random.default_rng(0))
    assert np.bincount(np.asarray([0] * 5 + [1] * 2 + [2] * 4)[three]).tolist() == [2, 2, 2]


def test_cap_by_unit_keeps_whole_units_of_every_class():
    units = ["a"] * 4 + ["b"] * 4 + ["c"] * 4 + ["d"] * 4
    labels = [0] * 12 + [1] * 4
    idx = stratify.cap_by_unit(units, labels, 8, np.random.default_rng(0))
    kept = [units[i] for i in idx]
    assert len(idx) == 8 and "d" in kept
    assert all(kept.count(u) == 4 for u in set(kept))


def test_split_groups_disjoint_and_covering():
    groups = [f"c{i}" for i in range(10)]
    classes = {g: {0, 1} for g in groups}
    rest, held = splits.split_groups(groups, classes, 0.2, 2, np.random.default_rng(0))
    assert len(held) == 2 and not set(rest) & set(held) and set(rest) | set(held) == set(groups)
    assert len(splits.keep_fraction(groups, 0.25, np.random.default_rng(0))) == 2  # round(2.5) = 2


def test_split_groups_retries_until_both_parts_have_every_class():
    classes = {"a": {0}, "b": {0}, "c": {0}, "d": {0, 1}, "e": {1}}
    for seed in range(5):
        rest, held = splits.split_groups(list(classes), classes, 0.4, 2, np.random.default_rng(seed))
        assert not splits.missing_classes(rest, classes, 2) and not splits.missing_classes(held, classes, 2)


def test_fractions_and_dataset_dirs():
    assert check_fraction("frames", "0.01") == "0.01"
    assert dataset_dir("o", "cimt", "1patient").name == "cimt-f1patient"
    assert dataset_dir("o", "polyp").name == "polyp"
    with pytest.raises(MedftError, match="valid: 1, 0.5, 0.25"):
        check_fraction("pe", "0.1")
    with pytest.raises(MedftError, match="unknown application"):
        dataset_dir("o", "ct")


def test_reduced_sets_hold_their_share_of_the_patches():
    assert [set_size("polyp", f) for f in ("1", "0.5", "0.25")] == [100_000, 50_000, 25_000]
    assert [set_size("frames", f) for f in ("1", "0.1", "0.05", "0.01")] == [40_000, 4_000, 2_000, 400]
    assert set_size("pe", "0.25") == 20_250 and set_size("cimt", "1patient") == 200_000
    assert set_size("polyp", "0.5", full=48) == 24
    assert split_sizes(100_000) == (80_000, 20_000) and split_sizes(24) == (19, 5)
    with pytest.raises(MedftError, match="valid: 1, 1patient"):
        set_size("cimt", "0.5")
    # a single patient's set is bounded by its ROIs, not by a share of the patch budget
    assert patch_share("1patient") == 1.0 and patch_share("0.05") == 0.05


def test_rng_streams_are_independent_and_seeded():
    a = rng_for(3, "x").integers(0, 1 << 30, 4)
    assert np.array_equal(a, rng_for(3, "x").integers(0, 1 << 30, 4))
    assert not np.array_equal(a, rng_for(3, "y").integers(0, 1 << 30, 4))
    keys = shuffled_keys(50, np.random.default_rng(0))
    assert sorted(keys) == [f"{i:08d}" for i in range(50)] and keys != sorted(keys)


def test_lmdb_writer_roundtrip_growth_and_atomicity(tmp_path):
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, (3, 20, 20), dtype=np.uint8) for _ in range(40)]
    keys = shuffled_keys(40, rng)
    with LmdbWriter(tmp_path / "db", map_size=1 << 14, batch=7) as w:  # far too small: must grow
        for k, im in zip(keys, imgs):
            w.put(k, im, int(k) % 3)
    back = list(read_lmdb(tmp_path / "db"))
    assert [k for k, _, _ in back] == sorted(keys)
    for k, arr, label in back:
        assert np.array_equal(arr, imgs[keys.index(k)]) and label == int(k) % 3
    with pytest.raises(MedftError, match="--force"):
        LmdbWriter(tmp_path / "db")
    with pytest.raises(RuntimeError), LmdbWriter(tmp_path / "db2") as w:
        w.put("00000000", imgs[0], 0)
        raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db"]


def test_mean_accumulator_by_hand():
    m = MeanAccumulator()
    m.add(np.zeros((3, 2, 2), np.uint8))
    m.add(np.stack([np.full((2, 2), v, np.uint8) for v in (10, 20, 255)]))
    img = m.mean_image()
    assert img.dtype == np.float32 and np.allclose(img[:, 0, 0], [5, 10, 127.5])
    assert channel_means(img) == [5.0, 10.0, 127.5]
    with pytest.raises(MedftError):
        MeanAccumulator().mean_image()


def test_every_application_module_provides_the_prep_interface():
    from medft.apps import APP_NAMES
    from medft.prep.build import app_module

    for app in APP_NAMES:
        mod = app_module(app)
        for name in ("load", "verify", "cases", "plan", "reduce", "renderer"):
            assert callable(getattr(mod, name)), (app, name)
