"""CIMT: dense prediction, column-max boundaries, open snakes and the errors."""

import numpy as np
import pytest
from medft.errors import MedftError
from medft.evaluate import cimt, io

from tests.synthetic_scores import synthetic_roi


def centre_predictor(calls):
    """A fake 3-class net: P(li) = centre pixel / 255, P(ma) = mean of the patch / 255."""
    def predict(batch):
        calls.append(batch.shape)
        assert batch.dtype == np.float32 and batch.shape[1] == 3
        np.testing.assert_array_equal(batch[:, 0], batch[:, 2])  # gray repeated to 3 channels
        c = batch.shape[2] // 2
        li = batch[:, 0, c, c] / 255
        ma = batch[:, 0].mean(axis=(1, 2)) / 255
        return np.stack([1 - li, li, ma], axis=1)
    return predict


def test_dense_predict_every_pixel_with_mirror_borders():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (12, 15)).astype(float)
    calls = []
    p_li, p_ma = cimt.dense_predict(img, centre_predictor(calls), patch=5, batch=7)
    assert p_li.shape == p_ma.shape == (12, 15)
    np.testing.assert_allclose(p_li, img / 255, rtol=1e-6)
    padded = np.pad(img, 2, mode="reflect")
    assert p_ma[0, 0] == pytest.approx(padded[:5, :5].mean() / 255, rel=1e-5)
    assert sum(c[0] for c in calls) == 12 * 15 and max(c[0] for c in calls) == 7


def test_dense_predict_box_uses_frame_context():
    img = np.arange(20 * 20, dtype=float).reshape(20, 20) % 256
    p_li, p_ma = cimt.dense_predict(img, centre_predictor([]), box=(5, 6, 4, 3), patch=5)
    np.testing.assert_allclose(p_li, img[5:9, 6:9] / 255, rtol=1e-6)
    assert p_ma[0, 0] == pytest.approx(img[3:8, 4:9].mean() / 255, rel=1e-5)


def test_dense_predict_errors():
    img = np.zeros((10, 10))
    with pytest.raises(MedftError, match="outside the image"):
        cimt.dense_predict(img, centre_predictor([]), box=(5, 5, 10, 2), patch=5)
    with pytest.raises(MedftError, match="returned shape"):
        cimt.dense_predict(img, lambda b: np.zeros((b.shape[0], 2)), patch=5)


def test_column_max_and_snake_closer_to_truth_one_y_per_column():
    rng = np.random.default_rng(3)
    better = 0
    for _ in range(4):
        _, p_li, p_ma, li, ma = synthetic_roi(rng, noise=0.6)
        tr = cimt.trace_interfaces(p_li, p_ma)
        for k, truth in (("li", li), ("ma", ma)):
            assert tr[k].shape == (p_li.shape[1],)
            e_col = cimt.boundary_error(tr[f"{k}_colmax"], truth)
            e_snake = cimt.boundary_error(tr[k], truth)
            better += e_snake < e_col
    assert better == 8


def test_column_max_hand():
    p = np.array([[0.1, 0.9, 0.2], [0.8, 0.1, 0.3], [0.0, 0.0, 0.5]])
    np.testing.assert_array_equal(cimt.column_max_boundary(p), [1, 0, 2])


def test_column_max_takes_centre_of_tied_band():
    p = np.zeros((10, 5))
    p[2:7, 0] = 1.0          # saturated band, rows 2-6: centre 4
    p[3:5, 1] = 1.0          # band of two rows: centre 3.5
    p[0, 2] = p[5:8, 2] = 1  # an isolated row and a longer run: the longer run's centre, 6
    p[1, 3] = p[6, 3] = 1    # two runs of one row: the first
    p[:, 4] = 0.5            # a flat column: its middle
    np.testing.assert_array_equal(cimt.column_max_boundary(p), [4, 3.5, 6, 1, 4.5])


def test_column_max_unbiased_on_saturated_ridge():
    """A ridge saturating at 1 over +-3 rows around a known curve: the boundary is the curve."""
    rows, cols = np.mgrid[0:60, 0:40]
    truth = 30 + np.round(5 * np.sin(cols[0] / 6))
    p = np.clip(1.6 * np.exp(-((rows - truth) / 4.0) ** 2), 0, 1)  # >= 1 within |row - truth| <= 2.7
    assert (p == 1).sum(axis=0).min() >= 5
    np.testing.assert_array_equal(cimt.column_max_boundary(p), truth)


def test_errors_px_mm_and_thickness_by_hand():
    li, ma = np.array([10.0, 11, 12, 13]), np.array([20.0, 20, 22, 25])
    gt_li, gt_ma = np.array([np.nan, 12, 12, 12]), np.array([21.0, 21, 21, 21])
    e = cimt.roi_errors(li, ma, gt_li, gt_ma, spacing_mm=0.1)
    assert e["li_error"] == pytest.approx((1 + 0 + 1) / 3)   # NaN column skipped
    assert e["ma_error"] == pytest.approx((1 + 1 + 1 + 4) / 4)
    assert e["imt"] == pytest.approx((9 + 10 + 12) / 3)       # over columns both experts cover
    assert e["imt_expert"] == pytest.approx(9.0)
    assert e["imt_error"] == pytest.approx(31 / 3 - 9)
    assert e["li_error_mm"] == pytest.approx(e["li_error"] * 0.1)
    assert np.isnan(cimt.roi_errors(li, ma, gt_li, gt_ma)["ma_error_mm"])


def test_boundary_error_rejects_bad_input():
    with pytest.raises(MedftError, match="no annotated column"):
        cimt.boundary_error(np.zeros(3), np.full(3, np.nan))
    with pytest.raises(MedftError, match="3 columns, expert polyline 4"):
        cimt.boundary_error(np.zeros(3), np.zeros(4))


def test_read_cimt_roi_checks(tmp_path):
    good = dict(p_li=np.zeros((5, 4)), p_ma=np.zeros((5, 4)), gt_li=np.zeros(4), gt_ma=np.zeros(4),
                spacing_mm=np.float64(0.05))
    np.savez(tmp_path / "ok.npz", **good)
    roi = io.read_cimt_roi(tmp_path / "ok.npz")
    assert roi.roi == "ok" and roi.spacing_mm == 0.05
    np.savez(tmp_path / "nomaps.npz", gt_li=np.zeros(4), gt_ma=np.zeros(4))
    with pytest.raises(MedftError, match="nomaps.npz: needs confidence maps"):
        io.read_cimt_roi(tmp_path / "nomaps.npz")
    np.savez(tmp_path / "nan.npz", **{**good, "p_li": np.full((5, 4), np.nan)})
    with pytest.raises(MedftError, match="p_li has non-finite"):
        io.read_cimt_roi(tmp_path / "nan.npz")
    np.savez(tmp_path / "shape.npz", **{**good, "p_ma": np.zeros((5, 3))})
    with pytest.raises(MedftError, match=r"p_ma has shape \(5, 3\)"):
        io.read_cimt_roi(tmp_path / "shape.npz")


def hand_snake_matrix(n: int, alpha: float, beta: float) -> np.ndarray:
    """The open snake's internal-energy Hessian built term by term from
    sum_j alpha/2 (y_j+1 - y_j)^2 + beta/2 (y_j+1 - 2 y_j + y_j-1)^2."""
    m = np.zeros((n, n))
    for j in range(n - 1):
        d = np.zeros(n)
        d[j], d[j + 1] = -1, 1
        m += alpha * np.outer(d, d)
    for j in range(n - 2):
        d = np.zeros(n)
        d[j], d[j + 1], d[j + 2] = 1, -2, 1
        m += beta * np.outer(d, d)
    return m


def test_snake_stops_where_the_documented_energy_is_stationary():
    """A ridge with a 10-row step: the converged snake (default alpha, beta) satisfies the
    Euler-Lagrange equation of its documented energy, A y = dP/dy(y), with A written out by
    hand and dP/dy the y-derivative of the sigma=2 Gaussian-smoothed map scaled to max 1,
    interpolated bilinearly.  A stiffer or looser snake leaves a residual of order 0.1."""
    from scipy import ndimage
    h, w = 60, 80
    ridge = 25 + 10 * (np.arange(w) >= 40)
    prob = np.exp(-((np.arange(h)[:, None] - ridge[None, :]) ** 2) / 8.0)
    y = cimt.snake_1d(prob, ridge.astype(float), tol=1e-7, n_iter=20000)
    dy = ndimage.gaussian_filter(prob, 2.0, order=(1, 0)) / ndimage.gaussian_filter(prob, 2.0).max()
    force = ndimage.map_coordinates(dy, [y, np.arange(w, dtype=float)], order=1, mode="nearest")
    a = hand_snake_matrix(w, cimt.SNAKE["alpha"], cimt.SNAKE["beta"])
    assert np.abs(a @ y - force).max() < 1e-4
    assert np.abs(y[:30] - 25).max() < 0.5 and np.abs(y[50:] - 35).max() < 0.5  # the step is smoothed only near it
    assert (cimt.SNAKE["alpha"], cimt.SNAKE["beta"]) == (0.1, 5.0)  # the defaults eval/README.md documents
