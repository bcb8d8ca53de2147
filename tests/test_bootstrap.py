"""The vectorised case bootstrap equals recomputing the FROC on explicitly resampled cases."""

import numpy as np
import pytest
from medft.evaluate import bootstrap as bs
from medft.evaluate.froc import Detections, froc_bootstrap, sensitivity_at_fp_score
from medft.evaluate.roc import roc_bootstrap, sensitivity_at_fpr_score


def random_detections(rng, n_cases=8):
    cases, lesions, lesion_case, cand = [f"c{i}" for i in range(n_cases)], [], [], []
    for c in cases:
        for j in range(rng.integers(0, 3)):
            lesions.append(f"L{j}")
            lesion_case.append(c)
            cand += [(c, f"L{j}", rng.random() + 0.3) for _ in range(rng.integers(0, 3))]
        cand += [(c, "", rng.random()) for _ in range(rng.integers(0, 6))]
    n_img = rng.integers(1, 5, n_cases)
    return cases, lesions, lesion_case, cand, n_img


def explicit_resample(rng_data, counts):
    """Materialise a bootstrap replicate: case i copied counts[i] times under new names."""
    cases, lesions, lesion_case, cand, n_img = rng_data
    new_cases, new_les, new_lcase, new_cand, new_img = [], [], [], [], []
    for i, c in enumerate(cases):
        for k in range(counts[i]):
            name = f"{c}#{k}"
            new_cases.append(name)
            new_img.append(n_img[i])
            new_les += [lk for lk, lc in zip(lesions, lesion_case) if lc == c]
            new_lcase += [name for lc in lesion_case if lc == c]
            new_cand += [(name, le, s) for cc, le, s in cand if cc == c]
    return Detections.from_ids([x[0] for x in new_cand], [x[1] for x in new_cand], [x[2] for x in new_cand],
                               new_lcase, new_les, new_cases, new_img)


def test_resample_weights_seeded():
    w = bs.resample_weights(5, n_boot=50, seed=1)
    assert w.shape == (50, 5) and (w.sum(axis=1) == 5).all()
    np.testing.assert_array_equal(w, bs.resample_weights(5, n_boot=50, seed=1))
    assert not np.array_equal(w, bs.resample_weights(5, n_boot=50, seed=2))


@pytest.mark.parametrize("seed", range(4))
def test_weighted_bootstrap_equals_explicit_resampling(seed):
    rng = np.random.default_rng(seed)
    data = random_detections(rng)
    cases, lesions, lesion_case, cand, n_img = data
    det = Detections.from_ids([x[0] for x in cand], [x[1] for x in cand], [x[2] for x in cand],
                              lesion_case, lesions, cases, n_img)
    fp = [0.0, 0.3, 0.7, 1.5]
    w = bs.resample_weights(len(cases), n_boot=6, seed=seed)
    got = froc_bootstrap(det, fp, weights=w)
    for b in range(w.shape[0]):
        rep = explicit_resample(data, w[b])
        if rep.n_lesions == 0:
            assert np.isnan(got[b]).all()
            continue
        np.testing.assert_allclose(got[b], sensitivity_at_fp_score(rep, fp))


def test_roc_bootstrap_by_unit_matches_explicit():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 30)
    s = rng.normal(size=30) + y
    w = bs.resample_weights(30, n_boot=5, seed=0)
    got = roc_bootstrap(y, s, [0.1, 0.3], weights=w)
    for b in range(5):
        idx = np.repeat(np.arange(30), w[b])
        np.testing.assert_allclose(got[b], sensitivity_at_fpr_score(y[idx], s[idx], [0.1, 0.3]))


def test_value_at_step_convention_and_nan_rows():
    x = np.array([[0, 0, 0.5, 1.0], [np.nan] * 4])
    y = np.array([[0, 0.5, 0.5, 1.0], [0, 0.2, 0.4, 0.6]])
    out = bs.value_at(x, y, [0, 0.25, 0.5, 2])
    np.testing.assert_allclose(out[0], [0.5, 0.5, 0.5, 1.0])
    assert np.isnan(out[1]).all()


def test_paired_p_value_and_percentiles():
    d = np.r_[np.ones(99), -1.0][:, None]  # 1 of 100 replicates at or below 0
    assert bs.paired_p_value(d)[0] == pytest.approx(2 * 2 / 101)
    assert bs.paired_p_value(np.zeros((10, 1)))[0] == 1.0
    lo, hi = bs.percentile_ci(np.arange(101.0)[:, None])
    np.testing.assert_allclose([lo[0], hi[0]], [2.5, 97.5])


def test_chunking_does_not_change_results(monkeypatch):
    rng = np.random.default_rng(5)
    data = random_detections(rng, n_cases=12)
    cases, lesions, lesion_case, cand, n_img = data
    det = Detections.from_ids([x[0] for x in cand], [x[1] for x in cand], [x[2] for x in cand],
                              lesion_case, lesions, cases, n_img)
    full = froc_bootstrap(det, [0.2, 1.0], n_boot=40, seed=0)
    monkeypatch.setattr(bs, "_CHUNK_CELLS", 1)
    np.testing.assert_array_equal(froc_bootstrap(det, [0.2, 1.0], n_boot=40, seed=0), full)
