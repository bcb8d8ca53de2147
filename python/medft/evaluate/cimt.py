"""CIMT interface segmentation from the 3-class CNN (paper section VI-D, Figs. 8 and 9).

Pipeline for one test ROI (shapes: ROI H x W, one y per column everywhere):

1. :func:`dense_predict`: the CNN is applied at every ROI pixel to the 227 x 227 patch
   centred on it, giving two confidence maps (H, W): P(lumen-intima) and
   P(media-adventitia).  *Borders*: patches are cut from the whole frame when it is given
   (``box``), so the context is real image wherever it exists; where a patch leaves the
   image it is filled by mirror reflection (``numpy.pad(mode="reflect")``).  Gray is
   repeated to 3 channels (section VI-D); any mean subtraction or scaling belongs to
   ``predict_fn``.
2. :func:`column_max_boundary`: the row of maximum response in every column (the centre
   of the band when several rows tie), a step-like 1-pixel boundary (Fig. 8c).
3. :func:`snake_1d`: an open active contour (Kass et al. 1988) initialised at that boundary
   and attracted by the (Gaussian-smoothed) confidence map, moving vertically only, so it
   keeps exactly one y per column (Fig. 8d).  Free (natural) boundary conditions at both
   ends make it an open snake.
4. :func:`roi_errors`: per-interface error = mean absolute vertical distance to the expert
   polyline over the columns the expert annotated; intima-media thickness = mean vertical
   distance between the two interfaces; its error = |thickness - expert thickness|.
   Pixels, and millimetres when the row spacing is known.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import linalg, ndimage

from medft.errors import MedftError

PATCH = 227
#: class indices of the 3-class net (``apps.APPS["cimt"].class_names``)
LI, MA = 1, 2
#: default snake parameters of :func:`snake_1d` (also the ``medft score`` defaults)
SNAKE = {"alpha": 0.1, "beta": 5.0}


def dense_predict(image: np.ndarray, predict_fn: Callable[[np.ndarray], np.ndarray], *,
                  box: tuple[int, int, int, int] | None = None, patch: int = PATCH,
                  batch: int = 128, classes: tuple[int, int] = (LI, MA),
                  patch_fn: Callable[[np.ndarray, int, int], np.ndarray] | None = None,
                  stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Confidence maps of the ROI ``box = (row0, col0, height, width)`` of a gray ``image``.

    ``predict_fn`` takes a batch (N, 3, patch, patch) and returns (N, n_classes) class
    probabilities.  ``box`` defaults to the whole image.  Returns ``(p_li, p_ma)``, each
    (height, width): the probabilities of ``classes`` at every ROI pixel.

    ``patch_fn(image, y, x)`` builds the 3 x patch x patch input of one pixel; medft's
    pipeline passes the training-patch function of `medft prep cimt` so that test patches
    equal training patches.  Without it, the raw ``patch``-sized window centred on the pixel
    is used (mirror-padded at the borders).  With ``stride`` > 1 the net runs on every
    stride-th row and column (and the last ones) and the maps are bilinearly interpolated.
    """
    img = np.asarray(image, np.float32)
    if img.ndim != 2:
        raise MedftError(f"dense_predict needs a 2-D gray image, got shape {img.shape}")
    if stride < 1:
        raise MedftError(f"stride must be >= 1, got {stride}")
    r0, c0, h, w = box if box is not None else (0, 0, *img.shape)
    if r0 < 0 or c0 < 0 or r0 + h > img.shape[0] or c0 + w > img.shape[1] or h <= 0 or w <= 0:
        raise MedftError(f"ROI box {box} is outside the image of shape {img.shape}")
    if patch_fn is None:
        half = patch // 2
        if max(img.shape) <= half:
            raise MedftError(f"image {img.shape} too small to mirror-pad for {patch}-pixel patches")
        windows = sliding_window_view(np.pad(img, half, mode="reflect"), (patch, patch))  # no copy

        def patches(ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
            gray = windows[ys, xs]
            return np.ascontiguousarray(np.broadcast_to(gray[:, None], (gray.shape[0], 3, patch, patch)))
    else:
        def patches(ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
            return np.stack([patch_fn(img, int(y), int(x)) for y, x in zip(ys, xs)])

    ys, xs = _grid(h, stride), _grid(w, stride)
    rows, cols = np.meshgrid(r0 + ys, c0 + xs, indexing="ij")
    rows, cols = rows.ravel(), cols.ravel()
    out = np.empty((rows.size, 2), np.float32)
    for i in range(0, rows.size, batch):
        x = patches(rows[i:i + batch], cols[i:i + batch])
        p = np.asarray(predict_fn(x))
        if p.ndim != 2 or p.shape[0] != x.shape[0] or p.shape[1] <= max(classes):
            raise MedftError(f"predict_fn returned shape {p.shape} for a batch of {x.shape[0]}; "
                             f"expected ({x.shape[0]}, >= {max(classes) + 1})")
        out[i:i + batch] = p[:, classes]
    if not np.isfinite(out).all():
        raise MedftError("predict_fn returned non-finite probabilities")
    maps = out.reshape(len(ys), len(xs), 2)
    if stride > 1:
        yy, xx = np.meshgrid(np.interp(np.arange(h), ys, np.arange(len(ys))),
                             np.interp(np.arange(w), xs, np.arange(len(xs))), indexing="ij")
        maps = np.stack([ndimage.map_coordinates(maps[..., c], [yy, xx], order=1, mode="nearest")
                         for c in range(2)], axis=-1)
    return maps[..., 0], maps[..., 1]


def _grid(n: int, stride: int) -> np.ndarray:
    """0, stride, 2 stride, ... and always the last index n - 1."""
    g = np.arange(0, n, stride)
    return g if g[-1] == n - 1 else np.append(g, n - 1)


def column_max_boundary(prob: np.ndarray) -> np.ndarray:
    """Row (float) of the maximum of every column of ``prob`` (H, W): shape (W,).

    Where several rows share a column's maximum (a saturated map is 1.0 over a band), the
    boundary is the centre of the longest contiguous run of maximal rows, ``(first + last)
    / 2`` (possibly a half row), the first such run when several are equally long.  Taking
    the first maximal row instead would bias a saturated band towards row 0 by half its
    width before the snake starts.
    """
    prob = np.asarray(prob, float)
    if prob.ndim != 2:
        raise MedftError(f"confidence map must be 2-D, got shape {prob.shape}")
    at_max = prob == prob.max(axis=0)
    run = np.zeros(at_max.shape, np.int64)  # run[i, j]: length of the maximal run ending at row i
    run[0] = at_max[0]
    for i in range(1, at_max.shape[0]):
        run[i] = (run[i - 1] + 1) * at_max[i]
    last = np.argmax(run, axis=0)  # end row of the first longest run
    length = run[last, np.arange(run.shape[1])]
    return last - (length - 1) / 2.0


def _snake_matrix(n: int, alpha: float, beta: float) -> np.ndarray:
    """Internal-energy matrix ``alpha D1'D1 + beta D2'D2`` of an open snake of n points."""
    d1 = np.diff(np.eye(n), axis=0)
    d2 = np.diff(np.eye(n), 2, axis=0)
    return alpha * d1.T @ d1 + beta * d2.T @ d2


def snake_1d(prob: np.ndarray, init_y: np.ndarray, *, alpha: float = SNAKE["alpha"],
             beta: float = SNAKE["beta"],
             tau: float = 1.0, sigma: float = 2.0, max_move: float = 1.0, n_iter: int = 300,
             tol: float = 1e-3) -> np.ndarray:
    """Open snake with one y per column, attracted to the ridge of ``prob`` (H, W).

    Minimises ``sum_j alpha/2 (y_j+1 - y_j)^2 + beta/2 (y_j+1 - 2 y_j + y_j-1)^2 - P(y_j, j)``
    with P the map smoothed by a Gaussian of ``sigma`` px and scaled to max 1, by
    semi-implicit steps ``(I + tau A) y' = y + tau dP/dy(y)`` (each move clipped to
    ``max_move`` px), from ``init_y`` (W,) until the largest move is below ``tol`` or
    after ``n_iter`` steps.  Returns y of shape (W,), within [0, H - 1].
    """
    prob = np.asarray(prob, float)
    y = np.asarray(init_y, float).copy()
    h, w = prob.shape
    if y.shape != (w,):
        raise MedftError(f"snake start has shape {y.shape}; the map has {w} columns")
    scale = max(float(ndimage.gaussian_filter(prob, sigma).max()), 1e-12)
    dy = ndimage.gaussian_filter(prob, sigma, order=(1, 0)) / scale  # dP/dy of the scaled map
    cols = np.arange(w, dtype=float)
    factor = linalg.cho_factor(np.eye(w) + tau * _snake_matrix(w, alpha, beta))
    for _ in range(n_iter):
        force = ndimage.map_coordinates(dy, [y, cols], order=1, mode="nearest")
        new = linalg.cho_solve(factor, y + tau * force)
        new = np.clip(y + np.clip(new - y, -max_move, max_move), 0, h - 1)
        moved = np.max(np.abs(new - y))
        y = new
        if moved < tol:
            break
    return y


def trace_interfaces(p_li: np.ndarray, p_ma: np.ndarray, **snake_kw) -> dict[str, np.ndarray]:
    """Column-max boundaries and snakes of both interfaces; each value has shape (W,).

    Keys: ``li_colmax``, ``ma_colmax``, ``li``, ``ma`` (the snakes)."""
    if np.shape(p_li) != np.shape(p_ma):
        raise MedftError(f"confidence maps differ in shape: {np.shape(p_li)} vs {np.shape(p_ma)}")
    out = {"li_colmax": column_max_boundary(p_li), "ma_colmax": column_max_boundary(p_ma)}
    out["li"] = snake_1d(p_li, out["li_colmax"], **snake_kw)
    out["ma"] = snake_1d(p_ma, out["ma_colmax"], **snake_kw)
    return out


def boundary_error(pred_y: np.ndarray, gt_y: np.ndarray) -> float:
    """Mean absolute vertical distance (px) between ``pred_y`` and ``gt_y`` (W,) over the
    columns where ``gt_y`` is finite (the expert annotated)."""
    pred_y, gt_y = np.asarray(pred_y, float), np.asarray(gt_y, float)
    if pred_y.shape != gt_y.shape:
        raise MedftError(f"boundary has {pred_y.size} columns, expert polyline {gt_y.size}")
    ok = np.isfinite(gt_y)
    if not ok.any():
        raise MedftError("expert polyline has no annotated column")
    return float(np.mean(np.abs(pred_y[ok] - gt_y[ok])))


def thickness(li_y: np.ndarray, ma_y: np.ndarray) -> float:
    """Intima-media thickness (px): mean of ``ma_y - li_y`` (W,) over columns where both are finite."""
    d = np.asarray(ma_y, float) - np.asarray(li_y, float)
    ok = np.isfinite(d)
    if not ok.any():
        raise MedftError("the two interfaces share no annotated column")
    return float(np.mean(d[ok]))


#: the per-ROI measurements of :func:`roi_errors`, in output order
ERROR_FIELDS = ("li_error", "ma_error", "imt", "imt_expert", "imt_error")


def roi_errors(li_y, ma_y, gt_li, gt_ma, spacing_mm: float | None = None) -> dict[str, float]:
    """Errors of one ROI: ``li_error``, ``ma_error``, ``imt``, ``imt_expert``, ``imt_error``
    in px, and the same keys suffixed ``_mm`` (NaN without ``spacing_mm``, the row spacing
    in mm per pixel).  Thickness is measured over the columns both experts' lines cover."""
    gt_li, gt_ma = np.asarray(gt_li, float), np.asarray(gt_ma, float)
    both = np.isfinite(gt_li) & np.isfinite(gt_ma)
    imt = thickness(np.where(both, li_y, np.nan), np.where(both, ma_y, np.nan))
    imt_gt = thickness(gt_li, gt_ma)
    px = {"li_error": boundary_error(li_y, gt_li), "ma_error": boundary_error(ma_y, gt_ma),
          "imt": imt, "imt_expert": imt_gt, "imt_error": abs(imt - imt_gt)}
    scale = float(spacing_mm) if spacing_mm is not None else float("nan")
    return {**px, **{f"{k}_mm": v * scale for k, v in px.items()}}
