"""Dense CIMT prediction: per ROI pixel, beside caffe time of the same net."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from medft import paths
from medft.bench.common import Log, row, write_text
from medft.bench.forward import caffe_time


# -- 5. dense CIMT prediction ---------------------------------------------------------------------
def stand_in_predictor(x: np.ndarray) -> np.ndarray:
    """A near-free 3-class "net" (a reduction of each patch): times dense_predict's own work."""
    m = x[:, 0, ::16, ::16].mean(axis=(1, 2)) / 255
    return np.stack([1 - m, m / 2, m / 2], axis=1)


def _gray_frame(h: int, w: int, seed: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A random 8-bit gray frame with a 60-pixel margin around an h x w ROI, and the ROI box."""
    img = np.random.default_rng(seed).integers(0, 256, (h + 120, w + 120)).astype(np.float32)
    return img, (60, 60, h, w)


def time_dense(predict: Callable[[np.ndarray], np.ndarray], h: int, w: int, batch: int, seed: int = 0,
               repeats: int = 1) -> float:
    """Mean seconds of :func:`~medft.evaluate.cimt.dense_predict` over an h x w ROI (``repeats`` runs)."""
    from medft.evaluate.cimt import dense_predict

    img, box = _gray_frame(h, w, seed)
    t = time.perf_counter()
    for _ in range(repeats):
        dense_predict(img, predict, box=box, batch=batch, patch_fn=_training_patch)
    return (time.perf_counter() - t) / repeats


def _training_patch(img: np.ndarray, y: int, x: int) -> np.ndarray:
    """The patch `medft predict` feeds the net for a CIMT pixel (as `medft prep cimt` trained it)."""
    from medft.prep.cimt import patch

    return patch(img, y, x)


def first_dense_batch(h: int, w: int, n: int, seed: int = 0) -> np.ndarray:
    """The first ``n`` patches (uint8 n x 3 x 227 x 227) that dense_predict feeds the net for the ROI."""
    from medft.evaluate.cimt import dense_predict

    img, box = _gray_frame(h, w, seed)
    got: list[np.ndarray] = []

    def keep(x: np.ndarray) -> np.ndarray:
        if not got:
            got.append(x.astype(np.uint8))
        return np.zeros((x.shape[0], 3), np.float32)

    dense_predict(img, keep, box=box, batch=n, patch_fn=_training_patch)
    return got[0]


def bench_cimt(roi: tuple[int, int], stand_in_roi: tuple[int, int], report_roi: tuple[int, int], batch: int,
               work: Path, iters: int = 1, seed: int = 0, log: Log = print, gpu: int | None = None) -> dict:
    """Dense CIMT prediction per ROI pixel (227x227 patch per pixel) and per ``report_roi``.

    medft: dense_predict with the real cimt deploy net (the engine's predictor,
    random weights) over ``roi``, after one warm-up batch, mean of ``iters`` runs; reference:
    ``caffe time --iterations=iters`` forward of the same net at the same batch on the same patches
    (the deploy net fed by a Data layer reading them, as the cli engine predicts): the net alone.
    A second row times dense_predict with :func:`stand_in_predictor` over ``stand_in_roi``:
    medft's patch extraction and batching alone.
    """
    from medft.alexnet import NetOptions, deploy_net
    from medft.datum_lmdb import LmdbWriter
    from medft.engines import make_engine
    from medft.engines.cli import feature_net
    from medft.engines.pycaffe import save_initial_weights

    mean = (128.0, 128.0, 128.0)

    h, w = roi
    rh, rw = report_roi
    per_roi = rh * rw
    log(f"  stand-in predictor: {stand_in_roi[0]}x{stand_in_roi[1]} ROI")
    t_stand = time_dense(stand_in_predictor, *stand_in_roi, batch=batch, seed=seed)
    stand_px = 1000 * t_stand / (stand_in_roi[0] * stand_in_roi[1])

    d = work / "cimt"
    d.mkdir(parents=True, exist_ok=True)
    net_batch = min(batch, h * w)
    deploy = write_text(d / paths.DEPLOY_NET,
                         deploy_net("cimt", "scratch", options=NetOptions(deploy_batch=net_batch)))
    model = save_initial_weights(deploy, d / "random.caffemodel", gpu)
    patches = first_dense_batch(h, w, net_batch, seed)
    with LmdbWriter(d / "roi_lmdb", force=True) as wr:
        for i, x in enumerate(patches):
            wr.put(f"{i:08d}", x, 0)
    timed = write_text(d / "deploy_data.prototxt", feature_net(deploy, d / "roi_lmdb", mean, net_batch))
    log(f"  caffe time --phase=TEST --iterations={iters}: cimt deploy net, batch {net_batch}, the ROI's patches")
    ref = caffe_time(timed, iters, phase="TEST", gpu=gpu)
    ref_px = ref["forward_ms"] / net_batch
    log(f"  dense_predict + engine predictor: {h}x{w} ROI = {h * w} patches, batch {net_batch}, {iters} runs")
    eng = make_engine("pycaffe", gpu)
    predict = eng.predictor(deploy, model, mean, net_batch)
    predict(patches)  # warm-up at the batch size
    t_real = time_dense(predict, h, w, batch=batch, seed=seed, repeats=iters)
    del predict
    eng.close()
    real_px = 1000 * t_real / (h * w)
    res = {"roi": [h, w], "batch": batch, "net_batch": net_batch, "report_roi": [rh, rw],
           "real_seconds": t_real, "real_ms_per_pixel": real_px, "caffe_time_forward_ms_per_image": ref_px,
           "real_seconds_per_report_roi": real_px * per_roi / 1000,
           "caffe_time_seconds_per_report_roi": ref_px * per_roi / 1000,
           "stand_in_roi": list(stand_in_roi), "stand_in_seconds": t_stand, "stand_in_ms_per_pixel": stand_px,
           "stand_in_seconds_per_report_roi": stand_px * per_roi / 1000}
    res["rows"] = [
        row(f"dense CIMT, real deploy net, {h}x{w} ROI, batch {net_batch} "
             f"(= {res['real_seconds_per_report_roi']:.0f} s per {rh}x{rw} ROI)", real_px, ref_px,
             "ms/ROI pixel", "dense_predict + Predictor (pycaffe)", "caffe time: same net and patches, forward", False),
        row(f"dense CIMT, stand-in predictor, {stand_in_roi[0]}x{stand_in_roi[1]} ROI "
             f"(= {res['stand_in_seconds_per_report_roi']:.1f} s per {rh}x{rw} ROI)", stand_px, None,
             "ms/ROI pixel", "dense_predict + stand-in (patch extraction, batching)", "-", False),
    ]
    return res
