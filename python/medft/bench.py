"""``medft bench`` (``make bench``): medft's own timings, each beside its reference from the same run.

* ``lmdb``: medft's :class:`~medft.prep.lmdb_writer.LmdbWriter` (in-memory uint8 Datums) vs Caffe's
  ``convert_imageset`` (the same patches as PNG files), patches/s.
* ``train``: the driver's engine (pycaffe by default) stepping a solver vs ``caffe.bin train``
  on the same solver and LMDB (same batch, same iterations), images/s, per configuration.
* ``time``: AlexNet ``net.forward()``/``net.backward()`` through pycaffe vs ``caffe.bin time`` ("Average
  Forward pass", "Average Forward-Backward") on the same train_val net, ms/image, with the BLAS named.
* ``froc``: :func:`~medft.evaluate.froc.froc_bootstrap` (vectorised, 1,000 case resamples) vs the
  textbook loop that rebuilds each resampled candidate set and recomputes its FROC, seconds.
* ``cimt``: :func:`~medft.evaluate.cimt.dense_predict` with the real deploy net vs ``caffe.bin time``
  forward of that net at the same batch on the same patches (the net alone), ms per ROI pixel; and
  dense_predict with a stand-in predictor (medft's patch extraction and batching alone).

Every benchmark is a function returning a dict (its numbers and its table ``rows``);
:func:`run_benchmarks` runs a selection, :func:`write_results` writes ``bench.json``,
``bench.md`` and ``bench.csv``. Nets carry random weights: only their speed is measured.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from google.protobuf import text_format

from medft import __version__
from medft.errors import MedftError, unknown_name

Log = Callable[[str], None]

#: benchmark names, in the order they run
BENCHMARKS: tuple[str, ...] = ("lmdb", "train", "time", "froc", "cimt", "torch")
#: what runs without --only (``torch`` needs PyTorch, which medft does not install)
DEFAULT_BENCHMARKS: tuple[str, ...] = ("lmdb", "train", "time", "froc", "cimt")
ROW_COLUMNS = ("benchmark", "medft", "reference", "unit", "medft_speed", "medft_is", "reference_is")


@dataclass(frozen=True)
class BenchOptions:
    """Sizes of every benchmark (defaults: ``medft bench``, about 3 min on 2 cores; :data:`QUICK`: ~1 min)."""

    lmdb_patches: int = 1000
    batch: int = 32  # training and `caffe time` batch
    train_iters: int = 6  # per engine and configuration; the first 2 are warm-up
    time_iters: int = 3  # `caffe time --iterations` and the pycaffe repeats
    configs: tuple[str, ...] = ("scratch", "ft-fc8")
    n_boot: int = 1000
    naive_boot: int = 1000  # resamples timed with the textbook loop (extrapolated to n_boot if fewer)
    froc_candidates: int = 10_000
    froc_cases: int = 200
    roi: tuple[int, int] = (8, 16)  # ROI measured with the real deploy net
    stand_in_roi: tuple[int, int] = (40, 120)  # ROI measured with the stand-in predictor
    report_roi: tuple[int, int] = (40, 120)  # ROI size the per-pixel times are extrapolated to
    dense_batch: int = 128  # dense_predict's batch
    seed: int = 0
    gpu: int | None = None  # Caffe on this GPU (the GPU build) instead of the CPU
    engine: str = "pycaffe"  # the driver's engine in the train benchmark


#: the ``--quick`` sizes (about 1 min on 2 cores)
QUICK = BenchOptions(lmdb_patches=200, batch=8, train_iters=4, time_iters=2,
                     roi=(4, 8), stand_in_roi=(20, 60), dense_batch=32)


def parse_only(text: str | None) -> tuple[str, ...]:
    """``"lmdb,time"`` -> ``("lmdb", "time")`` in run order; None or "" -> the defaults; unknown names raise."""
    if not text:
        return DEFAULT_BENCHMARKS
    names = [n.strip() for n in text.split(",") if n.strip()]
    for n in names:
        if n not in BENCHMARKS:
            raise unknown_name("benchmark", n, BENCHMARKS)
    return tuple(b for b in BENCHMARKS if b in names)


# -- helpers ------------------------------------------------------------------------------------------
def _row(benchmark: str, medft: float, reference: float | None, unit: str, medft_is: str, reference_is: str,
         higher_is_better: bool) -> dict:
    """One table row; ``medft_speed`` > 1 means medft is faster than the reference."""
    speed = None
    if reference is not None and medft > 0 and reference > 0:
        speed = medft / reference if higher_is_better else reference / medft
    return {"benchmark": benchmark, "medft": medft, "reference": reference, "unit": unit, "medft_speed": speed,
            "medft_is": medft_is, "reference_is": reference_is}


def _run_tool(argv: list[str], what: str, gpu: int | None = None) -> str:
    """Run a Caffe tool (``argv[0]`` its name) of the build for ``gpu``; its combined output."""
    from medft.engines.cli import run_tool

    return run_tool(argv[0], argv[1:], gpu_build=gpu is not None, what=what)


def _write_text(path: Path, message) -> Path:
    path.write_text(text_format.MessageToString(message, float_format=".7g"))
    return path


def _random_lmdb(path: Path, n: int, seed: int, classes: int = 2) -> Path:
    """``n`` random uint8 3 x 227 x 227 Datums, labels 0..classes-1 in turn (timing data)."""
    from medft.prep.lmdb_writer import LmdbWriter

    rng = np.random.default_rng(seed)
    with LmdbWriter(path, force=True) as w:
        for i in range(n):
            w.put(f"{i:08d}", rng.integers(0, 256, size=(3, 227, 227), dtype=np.uint8), i % classes)
    return path


def _train_val(work: Path, app: str, config: str, source: Path, batch: int) -> Path:
    """A train_val prototxt reading ``source`` at ``batch`` (the TEST layer is never built here)."""
    from medft.alexnet import NetOptions, train_val_net

    net = train_val_net(app, config, options=NetOptions(train_source=str(source), val_source=str(source),
                                                         train_batch=batch, test_batch=batch))
    return _write_text(work / f"train_val_{config}.prototxt", net)


# -- 1. LMDB writing -----------------------------------------------------------------------------------
def bench_lmdb(n: int, work: Path, log: Log = print) -> dict:
    """Patches/s writing the same ``n`` 3x227x227 patches: medft's writer vs ``convert_imageset``.

    The patches come from a tiny synthetic polyp dataset. medft writes them from memory (as
    ``medft prep`` does); ``convert_imageset`` from PNG files, its only input, so its time
    includes PNG decoding. Both LMDBs are read back and compared record by record.
    """
    from PIL import Image

    from medft.prep.lmdb_writer import LmdbWriter, read_lmdb
    from medft.prep.testing import tiny_build

    log(f"  source patches: tiny synthetic polyp dataset -> {n} patches")
    built = tiny_build("polyp", work / "lmdb_src", max_patches=10**6, max_test_patches=max(n, 250), force=True)
    recs = [(arr, label) for _, arr, label in read_lmdb(Path(built["dir"]) / "test_lmdb")]
    recs = (recs * (n // max(1, len(recs)) + 1))[:n]
    ours_path = work / "bench_medft_lmdb"
    t = time.perf_counter()
    with LmdbWriter(ours_path, force=True) as w:
        for i, (arr, label) in enumerate(recs):
            w.put(f"{i:08d}", arr, label)
    ours_s = time.perf_counter() - t
    png = work / "bench_png"
    png.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (arr, label) in enumerate(recs):
        Image.fromarray(np.ascontiguousarray(arr[::-1].transpose(1, 2, 0))).save(png / f"{i:08d}.png")  # RGB file
        lines.append(f"{i:08d}.png {label}\n")
    listing = work / "bench_list.txt"
    listing.write_text("".join(lines))
    ref_path = work / "bench_caffe_lmdb"
    shutil.rmtree(ref_path, ignore_errors=True)
    t = time.perf_counter()
    _run_tool(["convert_imageset", "-backend", "lmdb", f"{png}/", str(listing), str(ref_path)], "convert_imageset")
    ref_s = time.perf_counter() - t
    same = all(a.shape == b.shape and np.array_equal(a, b) and la == lb
               for (_, a, la), (_, b, lb) in zip(read_lmdb(ours_path), read_lmdb(ref_path), strict=True))
    res = {"patches": n, "medft_seconds": ours_s, "convert_imageset_seconds": ref_s,
           "medft_patches_per_s": n / ours_s, "convert_imageset_patches_per_s": n / ref_s,
           "same_records": bool(same)}
    res["rows"] = [_row(f"LMDB write, {n} patches 3x227x227", res["medft_patches_per_s"],
                        res["convert_imageset_patches_per_s"], "patches/s", "LmdbWriter, from memory",
                        "convert_imageset, from PNG", True)]
    return res


# -- 2. training images/s ------------------------------------------------------------------------------
def bench_train(config: str, batch: int, iters: int, work: Path, app: str = "polyp", seed: int = 0,
                log: Log = print, engine: str = "pycaffe", gpu: int | None = None) -> dict:
    """Training images/s on one solver: the driver's engine (``engine`` on ``gpu``) vs ``caffe.bin train``.

    Both run ``iters`` SGD iterations of batch ``batch`` from random weights on the same random
    LMDB and the same solver (display 1, no test net, no snapshot). Iterations 0 and 1 are warm-up:
    both rates cover ``iters - 2`` iterations (for ``caffe train``, between the timestamps of its
    ``Iteration 1, loss`` and ``Iteration <iters - 1>, loss`` lines).
    """
    from medft.engines import make_engine
    from medft.engines.caffe_log import train_rate
    from medft.solver import SolverOptions, solver

    if iters < 3:
        raise MedftError(f"training benchmark needs at least 3 iterations, got {iters}")
    d = work / f"train_{config}"
    d.mkdir(parents=True, exist_ok=True)
    lmdb = _random_lmdb(d / "train_lmdb", 2 * batch, seed)
    net = _train_val(d, app, config, lmdb, batch)
    sp = solver(SolverOptions(n_train=2 * batch, n_val=batch, train_batch=batch, test_batch=batch,
                              net=str(net), snapshot_prefix=str(d / "snap"), random_seed=seed))
    del sp.test_iter[:]
    sp.ClearField("test_interval")
    sp.display, sp.max_iter, sp.snapshot, sp.snapshot_after_train = 1, iters, 0, False
    solver_path = _write_text(d / "solver.prototxt", sp)
    where = "CPU" if gpu is None else f"GPU {gpu}"

    log(f"  {config}: medft driver ({engine} engine, {where}), {iters} iterations of {batch}")
    t0 = time.perf_counter()
    eng = make_engine(engine, gpu)
    try:
        if engine == "pycaffe":
            eng.start(solver_path, gpu=gpu)
            eng.train_until(2)  # warm-up: iterations 0 and 1
            stats = eng.train_until(iters)
            ours_rate = stats.images_per_s
        else:  # one `caffe train` process driven by the engine: its own log times the same iterations
            eng.start(solver_path, gpu=gpu, snapshot_every=iters)
            eng.train_until(iters)
            ours_rate = train_rate(eng.log_path.read_text(), batch, 1, iters - 1)[0]
    finally:
        eng.close()
        del eng
    ours_wall = time.perf_counter() - t0
    log(f"  {config}: caffe.bin train, same solver, {where}")
    t0 = time.perf_counter()
    out = _run_tool(["caffe", "train", f"--solver={solver_path}", *([f"--gpu={gpu}"] if gpu is not None else [])],
                    "caffe train", gpu)
    ref_wall = time.perf_counter() - t0
    ref_rate, ref_s = train_rate(out, batch, 1, iters - 1)
    res = {"config": config, "batch": batch, "iterations": iters, "timed_iterations": iters - 2,
           "engine": engine, "device": where,
           "medft_images_per_s": ours_rate, "caffe_train_images_per_s": ref_rate,
           "medft_wall_seconds": ours_wall, "caffe_train_wall_seconds": ref_wall, "caffe_train_timed_seconds": ref_s}
    res["rows"] = [_row(f"train {config}, batch {batch}, {where}", ours_rate, ref_rate, "images/s",
                        f"driver: {engine} engine train_until", "caffe.bin train (log timestamps)", True)]
    return res


# -- 3. AlexNet forward / forward-backward ----------------------------------------------------------
def caffe_time(model: Path, iterations: int, phase: str = "TRAIN", gpu: int | None = None) -> dict[str, float]:
    """Run ``caffe.bin time --model=model --iterations=N --phase=P [--gpu=N]``; its averages in ms per batch.

    Feed it real data (a Data layer): an Input layer's blob stays all zeros, and the same AlexNet
    forward measured 15-20% faster on zeros than on image patches here (2 cores, OpenBLAS).
    """
    from medft.engines.caffe_log import parse_caffe_time

    gpu_arg = [f"--gpu={gpu}"] if gpu is not None else []
    return parse_caffe_time(_run_tool(["caffe", "time", f"--model={model}", f"--iterations={iterations}",
                                       f"--phase={phase}", *gpu_arg], "caffe time", gpu))


def blas_info(gpu: bool = False) -> dict:
    """The BLAS Caffe was built with and the threads it uses."""
    from medft.engines.env import build_info

    threads = os.environ.get("OPENBLAS_NUM_THREADS")
    return {"blas": build_info(gpu)["blas"], "cpu_count": os.cpu_count(),
            "blas_threads": int(threads) if threads and threads.isdigit() else os.cpu_count(),
            "blas_threads_from": "OPENBLAS_NUM_THREADS" if threads else "OpenBLAS default = os.cpu_count()"}


def bench_time(config: str, batch: int, iters: int, work: Path, app: str = "polyp", seed: int = 0,
               log: Log = print, gpu: int | None = None) -> dict:
    """AlexNet ms/image, forward and forward-backward, of one train_val net (TRAIN phase, random weights):
    pycaffe ``net.forward()``/``net.backward()`` vs ``caffe time`` on the same prototxt and batch."""
    from medft.engines.pycaffe import time_net

    d = work / f"time_{config}"
    d.mkdir(parents=True, exist_ok=True)
    net_path = _train_val(d, app, config, _random_lmdb(d / "lmdb", batch, seed), batch)
    log(f"  {config}: caffe time --iterations={iters}, batch {batch}")
    ref = caffe_time(net_path, iters, gpu=gpu)
    log(f"  {config}: pycaffe net.forward()/net.backward(), {iters} repeats")
    ours = time_net(net_path, iters, gpu)
    res = {"config": config, "batch": batch, "iterations": iters, **blas_info(gpu is not None),
           "device": "CPU" if gpu is None else f"GPU {gpu}",
           "pycaffe_ms_per_batch": ours, "caffe_time_ms_per_batch": ref,
           "pycaffe_forward_ms_per_image": ours["forward_ms"] / batch,
           "caffe_time_forward_ms_per_image": ref["forward_ms"] / batch,
           "pycaffe_forward_backward_ms_per_image": ours["forward_backward_ms"] / batch,
           "caffe_time_forward_backward_ms_per_image": ref["forward_backward_ms"] / batch}
    blas = (f"{res['blas'].split(' (')[0]}, {res['blas_threads']} threads" if gpu is None
            else f"GPU {gpu}, cuDNN")
    res["rows"] = [
        _row(f"AlexNet forward, {config}, batch {batch} [{blas}]", res["pycaffe_forward_ms_per_image"],
             res["caffe_time_forward_ms_per_image"], "ms/image", "pycaffe net.forward()",
             "caffe time: Average Forward pass", False),
        _row(f"AlexNet forward-backward, {config}, batch {batch} [{blas}]",
             res["pycaffe_forward_backward_ms_per_image"], res["caffe_time_forward_backward_ms_per_image"],
             "ms/image", "pycaffe net.forward()+net.backward()", "caffe time: Average Forward-Backward", False),
    ]
    return res


# -- 4. bootstrap FROC -------------------------------------------------------------------------------
def synthetic_detections(n_cand: int = 10_000, n_cases: int = 200, seed: int = 0):
    """A random :class:`~medft.evaluate.froc.Detections`: ``n_cand`` candidates in ``n_cases`` cases with
    2 lesions each, ~10% of candidates on a lesion of their case, positives scored higher."""
    from medft.evaluate.froc import Detections

    rng = np.random.default_rng(seed)
    case = rng.integers(0, n_cases, n_cand)
    n_les = n_cases * 2
    hit = np.where(rng.random(n_cand) < 0.1, rng.integers(0, n_les, n_cand), -1)
    lesion_case = np.arange(n_les) % n_cases
    hit = np.where(hit >= 0, np.where(lesion_case[np.maximum(hit, 0)] == case, hit, -1), -1)
    return Detections(rng.random(n_cand) + (hit >= 0), hit, case, lesion_case,
                      np.full(n_cases, 50.0), tuple(range(n_cases)))


def naive_froc_bootstrap(det, fp_rates, weights: np.ndarray) -> np.ndarray:
    """The textbook case bootstrap, one resample at a time: build the resampled candidate and lesion
    lists (a case drawn k times contributes k copies) and recompute the FROC. Shape (B, F), equal to
    :func:`~medft.evaluate.froc.froc_bootstrap` with the same ``weights`` (B, C)."""
    from medft.evaluate.froc import Detections, sensitivity_at_fp_score

    n_cases = len(det.case_ids)
    cand_of = [np.flatnonzero(det.case == c) for c in range(n_cases)]
    les_of = [np.flatnonzero(det.lesion_case == c) for c in range(n_cases)]
    rank = np.zeros(det.n_lesions, np.int64)  # position of a lesion within its case's lesion list
    for ls in les_of:
        rank[ls] = np.arange(ls.size)
    out = []
    for counts in np.asarray(weights):
        copies = np.repeat(np.arange(n_cases), counts)
        cand = np.concatenate([cand_of[c] for c in copies])
        n_c = np.array([cand_of[c].size for c in copies])
        n_l = np.array([les_of[c].size for c in copies])
        new_case = np.repeat(np.arange(copies.size), n_c)
        base = np.repeat(np.r_[0, np.cumsum(n_l)[:-1]], n_c)
        hit = det.hit[cand]
        new_hit = np.where(hit >= 0, base + rank[np.maximum(hit, 0)], -1)
        rep = Detections(det.score[cand], new_hit, new_case, np.repeat(np.arange(copies.size), n_l),
                         det.n_images[copies], tuple(range(copies.size)))
        out.append(sensitivity_at_fp_score(rep, fp_rates))
    return np.vstack(out)


def bench_froc(n_cand: int = 10_000, n_cases: int = 200, n_boot: int = 1000, naive_boot: int = 1000,
               seed: int = 0, log: Log = print) -> dict:
    """Seconds for a case-level bootstrap FROC (``n_boot`` resamples, 41-point FP grid 0..0.2/image):
    :func:`~medft.evaluate.froc.froc_bootstrap` vs :func:`naive_froc_bootstrap` timed on the first
    ``naive_boot`` resamples and extrapolated to ``n_boot``; both must give the same sensitivities."""
    from medft.evaluate import bootstrap as bs
    from medft.evaluate.froc import froc_bootstrap

    det = synthetic_detections(n_cand, n_cases, seed)
    fp = np.linspace(0, 0.2, 41)
    weights = bs.resample_weights(n_cases, n_boot, seed)
    log(f"  froc_bootstrap: {n_boot} resamples x {n_cand} candidates x {n_cases} cases")
    t = time.perf_counter()
    fast = froc_bootstrap(det, fp, weights=weights)
    ours = time.perf_counter() - t
    k = max(1, min(naive_boot, n_boot))
    log(f"  per-resample loop: {k} resamples" + (f" (extrapolated to {n_boot})" if k < n_boot else ""))
    t = time.perf_counter()
    slow = naive_froc_bootstrap(det, fp, weights[:k])
    ref_k = time.perf_counter() - t
    ref = ref_k * n_boot / k
    res = {"candidates": n_cand, "cases": n_cases, "n_boot": n_boot, "fp_points": fp.size,
           "medft_seconds": ours, "naive_seconds_measured": ref_k, "naive_resamples_measured": k,
           "naive_seconds_extrapolated": ref,
           "same_sensitivities": bool(np.allclose(fast[:k], slow, equal_nan=True))}
    res["rows"] = [_row(f"bootstrap FROC, {n_boot} resamples, {n_cand} candidates, {n_cases} cases", ours, ref,
                        "s", "froc_bootstrap (vectorised)",
                        "per-resample loop" + (f" ({k} timed, x{n_boot / k:g})" if k < n_boot else ""), False)]
    return res


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
    from medft.engines import make_engine
    from medft.engines.cli import feature_net
    from medft.engines.pycaffe import save_initial_weights
    from medft.prep.lmdb_writer import LmdbWriter

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
    deploy = _write_text(d / "deploy.prototxt",
                         deploy_net("cimt", "scratch", options=NetOptions(deploy_batch=net_batch)))
    model = save_initial_weights(deploy, d / "random.caffemodel", gpu)
    patches = first_dense_batch(h, w, net_batch, seed)
    with LmdbWriter(d / "roi_lmdb", force=True) as wr:
        for i, x in enumerate(patches):
            wr.put(f"{i:08d}", x, 0)
    timed = _write_text(d / "deploy_data.prototxt", feature_net(deploy, d / "roi_lmdb", mean, net_batch))
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
        _row(f"dense CIMT, real deploy net, {h}x{w} ROI, batch {net_batch} "
             f"(= {res['real_seconds_per_report_roi']:.0f} s per {rh}x{rw} ROI)", real_px, ref_px,
             "ms/ROI pixel", "dense_predict + Predictor (pycaffe)", "caffe time: same net and patches, forward", False),
        _row(f"dense CIMT, stand-in predictor, {stand_in_roi[0]}x{stand_in_roi[1]} ROI "
             f"(= {res['stand_in_seconds_per_report_roi']:.1f} s per {rh}x{rw} ROI)", stand_px, None,
             "ms/ROI pixel", "dense_predict + stand-in (patch extraction, batching)", "-", False),
    ]
    return res


# -- 6. the same AlexNet in PyTorch ----------------------------------------------------------------
def torch_alexnet(num_classes: int = 2):
    """BVLC AlexNet as PyTorch layers: the shapes of Table I (96-256-384-384-256 with groups 2 and
    LRN, ceil-mode pooling, fc 4096-4096), what a user would write instead of Caffe."""
    from torch import nn

    def lrn():
        return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)  # Caffe's ACROSS_CHANNELS

    def pool():
        return nn.MaxPool2d(3, 2, ceil_mode=True)

    relu = nn.ReLU
    return nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4), relu(), lrn(), pool(),
        nn.Conv2d(96, 256, 5, padding=2, groups=2), relu(), lrn(), pool(),
        nn.Conv2d(256, 384, 3, padding=1), relu(),
        nn.Conv2d(384, 384, 3, padding=1, groups=2), relu(),
        nn.Conv2d(384, 256, 3, padding=1, groups=2), relu(), pool(),
        nn.Flatten(), nn.Linear(256 * 6 * 6, 4096), relu(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), relu(), nn.Dropout(0.5), nn.Linear(4096, num_classes))


def bench_torch(batch: int, iters: int, gpu: int | None = None, seed: int = 0, log: Log = print) -> dict:
    """PyTorch AlexNet (:func:`torch_alexnet`), fp32 (TF32 off, as Caffe's SGEMM), cuDNN autotuning on:
    training images/s (SGD momentum 0.9, weight decay 5e-4) and forward images/s, after 2 warm-up
    iterations, synchronised. The row compares it with nothing: read it beside the train/time rows."""
    try:
        import torch
    except ImportError as e:
        raise MedftError("the torch benchmark needs PyTorch (pip install torch)") from e
    torch.manual_seed(seed)
    dev = torch.device("cpu" if gpu is None else f"cuda:{gpu}")
    if gpu is not None:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    model = torch_alexnet().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 3, 227, 227, device=dev) * 50
    y = torch.randint(0, 2, (batch,), device=dev)
    loss_fn = torch.nn.CrossEntropyLoss()

    def sync() -> None:
        if gpu is not None:
            torch.cuda.synchronize(dev)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    log(f"  PyTorch {torch.__version__} AlexNet on {dev}, batch {batch}, {iters} iterations")
    model.train()
    for _ in range(2):
        step()
    sync()
    t = time.perf_counter()
    for _ in range(iters):
        step()
    sync()
    train_s = time.perf_counter() - t
    model.eval()
    with torch.no_grad():
        for _ in range(2):
            model(x)
        sync()
        t = time.perf_counter()
        for _ in range(iters):
            model(x)
        sync()
    fwd_s = time.perf_counter() - t
    res = {"torch": torch.__version__, "device": str(dev), "batch": batch, "iterations": iters,
           "tf32": False, "train_images_per_s": batch * iters / train_s,
           "forward_images_per_s": batch * iters / fwd_s,
           "gpu_name": torch.cuda.get_device_name(dev) if gpu is not None else None}
    res["rows"] = [
        _row(f"PyTorch AlexNet training, batch {batch}, {dev}", res["train_images_per_s"], None, "images/s",
             "torch SGD step (fp32, no TF32)", "-", True),
        _row(f"PyTorch AlexNet forward, batch {batch}, {dev}", res["forward_images_per_s"], None, "images/s",
             "torch eval forward (fp32)", "-", True),
    ]
    return res


# -- running and writing ----------------------------------------------------------------------------
def machine_info(gpu: int | None = None) -> dict:
    """What the numbers were measured on: CPU, cores, BLAS and threads, Caffe build, versions, the GPU."""
    info: dict = {"platform": platform.platform(), "python": platform.python_version(), "numpy": np.__version__,
                  "medft": __version__, "cpu_count": os.cpu_count()}
    try:
        model = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                 if ln.startswith("model name")]
        info["cpu"] = model[0] if model else platform.processor()
    except OSError:
        info["cpu"] = platform.processor()
    try:
        from medft.engines.env import build_info

        b = build_info(gpu is not None)
        info["caffe"] = {k: b.get(k) for k in ("upstream", "sdist", "mode", "blas", "key", "cudnn", "cuda_archs")
                         if k in b}
        info.update({k: v for k, v in blas_info(gpu is not None).items() if k != "cpu_count"})
    except MedftError as e:
        info["caffe"] = {"error": str(e)}
    if gpu is not None:
        from medft.engines.device import gpu_facts

        info["gpu"] = gpu_facts(gpu)
    return info


def run_benchmarks(opts: BenchOptions, only: tuple[str, ...] = DEFAULT_BENCHMARKS, work: Path | None = None,
                   log: Log = print) -> dict:
    """Run the ``only`` benchmarks with ``opts``; a dict with ``options``, ``machine``, ``results``
    (per benchmark: its dict, or ``{"error": ...}`` if it failed), ``rows`` and ``seconds``."""
    for n in only:
        if n not in BENCHMARKS:
            raise unknown_name("benchmark", n, BENCHMARKS)
    t_all = time.perf_counter()
    load_start = _load_average()
    tmp = tempfile.TemporaryDirectory(prefix="medft-bench-") if work is None else None
    root = Path(tmp.name) if tmp else Path(work)
    root.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[str, str, Callable[[], dict]]] = []
    o = opts
    if "lmdb" in only:
        jobs.append(("lmdb", "LMDB writing vs convert_imageset", lambda: bench_lmdb(o.lmdb_patches, root, log)))
    for c in o.configs if "train" in only else ():
        jobs.append((f"train:{c}", f"training images/s, {c}, vs caffe train",
                     lambda c=c: bench_train(c, o.batch, o.train_iters, root, seed=o.seed, log=log,
                                             engine=o.engine, gpu=o.gpu)))
    for c in o.configs if "time" in only else ():
        jobs.append((f"time:{c}", f"AlexNet forward/backward, {c}, vs caffe time",
                     lambda c=c: bench_time(c, o.batch, o.time_iters, root, seed=o.seed, log=log, gpu=o.gpu)))
    if "froc" in only:
        jobs.append(("froc", "bootstrap FROC vs per-resample loop",
                     lambda: bench_froc(o.froc_candidates, o.froc_cases, o.n_boot, o.naive_boot, o.seed, log)))
    if "cimt" in only:
        jobs.append(("cimt", "dense CIMT prediction vs caffe time",
                     lambda: bench_cimt(o.roi, o.stand_in_roi, o.report_roi, o.dense_batch, root,
                                        iters=o.time_iters, seed=o.seed, log=log, gpu=o.gpu)))
    if "torch" in only:
        jobs.append(("torch", "PyTorch AlexNet (same shapes and batch)",
                     lambda: bench_torch(o.batch, max(3, o.time_iters), o.gpu, o.seed, log)))
    results: dict[str, dict] = {}
    try:
        for i, (key, title, fn) in enumerate(jobs, 1):
            log(f"medft bench: [{i}/{len(jobs)}] {title}")
            t = time.perf_counter()
            try:
                results[key] = fn()
            except Exception as e:  # one failed benchmark must not lose the others
                results[key] = {"error": f"{type(e).__name__}: {e}"}
                log(f"medft bench: {key} FAILED: {e}")
            results[key]["benchmark_seconds"] = time.perf_counter() - t
            log(f"medft bench: [{i}/{len(jobs)}] done in {results[key]['benchmark_seconds']:.1f} s")
    finally:
        if tmp is not None:
            tmp.cleanup()
    rows = [r for res in results.values() for r in res.get("rows", [])]
    return {"created": datetime.now(UTC).isoformat(timespec="seconds"), "options": asdict(opts),
            "only": list(only), "machine": machine_info(o.gpu), "results": results, "rows": rows,
            "failed": [k for k, v in results.items() if "error" in v], "seconds": time.perf_counter() - t_all,
            "load_average": {"start": load_start, "end": _load_average()}}


def _load_average() -> float | None:
    """The 1-minute load average (other work on the CPU makes every timing slower and noisier)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _fmt(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"


def markdown_table(rows: list[dict]) -> str:
    """The rows as a Markdown table (``medft speed`` > 1: medft faster than its reference)."""
    head = ["benchmark", "medft", "reference", "unit", "medft speed", "medft is", "reference is"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---", "--:", "--:", "---", "--:", "---", "---"]) + "|"]
    for r in rows:
        speed = "-" if r["medft_speed"] is None else f"{r['medft_speed']:.2f}x"
        lines.append(f"| {r['benchmark']} | {_fmt(r['medft'])} | {_fmt(r['reference'])} | {r['unit']} | {speed} | "
                     f"{r['medft_is']} | {r['reference_is']} |")
    return "\n".join(lines) + "\n"


def csv_table(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(ROW_COLUMNS), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r[k] is None else (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]))
                    for k in ROW_COLUMNS})
    return buf.getvalue()


def machine_line(m: dict) -> str:
    """One line naming the CPU, cores, Caffe build and BLAS of :func:`machine_info`."""
    caffe = m.get("caffe", {})
    blas = f"{m.get('blas', '?')}, {m.get('blas_threads', '?')} threads ({m.get('blas_threads_from', '?')})"
    return (f"{m.get('cpu', '?')}, {m.get('cpu_count')} cores; {caffe.get('upstream', 'Caffe ?')} "
            f"({caffe.get('sdist', '?')}, {caffe.get('mode', '?')}); BLAS: {blas}")


def report_markdown(result: dict) -> str:
    """``bench.md``: what was measured on which machine, the table, and any failures."""
    lines = ["# medft bench", "",
             f"{result['created']}, medft {result['machine']['medft']}, {result['seconds']:.0f} s in all.", "",
             f"Machine: {machine_line(result['machine'])}.", "",
             "Each row is measured with its reference in the same run; medft speed > 1 means medft is faster. "
             "Nets have random weights (speed only); the training and timing LMDBs hold random patches. "
             f"1-minute load average {result['load_average']['start']} at the start, "
             f"{result['load_average']['end']} at the end ({result['machine']['cpu_count']} cores): "
             "other work on the CPU makes the timings noisy.", "",
             markdown_table(result["rows"])]
    for key, res in result["results"].items():
        if "error" in res:
            lines += [f"- **{key} failed**: {res['error'].splitlines()[0]}"]
    checks = [(k, c, v) for k, r in result["results"].items() for c, v in r.items() if c.startswith("same_")]
    for k, c, v in checks:
        lines.append(f"- {k}: {c.replace('_', ' ')}: {'yes' if v else 'NO'}")
    return "\n".join(lines).rstrip() + "\n"


def write_results(result: dict, out: str | Path) -> dict[str, Path]:
    """Write ``bench.json`` (everything), ``bench.md`` and ``bench.csv`` (the table) into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "bench.json", "md": out / "bench.md", "csv": out / "bench.csv"}
    paths["json"].write_text(json.dumps(result, indent=2, default=str) + "\n")
    paths["md"].write_text(report_markdown(result))
    paths["csv"].write_text(csv_table(result["rows"]))
    return paths


def quick_options(opts: BenchOptions | None = None) -> BenchOptions:
    """:data:`QUICK`, keeping any field of ``opts`` that differs from the full defaults."""
    full = BenchOptions()
    if opts is None:
        return QUICK
    changed = {k: v for k, v in asdict(opts).items() if v != getattr(full, k)}
    return replace(QUICK, **{k: tuple(v) if isinstance(v, list) else v for k, v in changed.items()})


__all__ = ["BENCHMARKS", "DEFAULT_BENCHMARKS", "QUICK", "BenchOptions", "bench_cimt", "bench_froc", "bench_lmdb",
           "bench_time", "bench_torch", "bench_train", "machine_info", "machine_line", "markdown_table",
           "naive_froc_bootstrap", "run_benchmarks", "torch_alexnet", "write_results"]
