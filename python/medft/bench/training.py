"""Training images/s: the driver's engine vs caffe train on the same solver."""

from __future__ import annotations

import time
from pathlib import Path

from medft import paths
from medft.bench.common import Log, random_lmdb, row, run_caffe_tool, train_val, write_text
from medft.errors import MedftError


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
    lmdb = random_lmdb(d / paths.TRAIN_LMDB, 2 * batch, seed)
    net = train_val(d, app, config, lmdb, batch)
    sp = solver(SolverOptions(n_train=2 * batch, n_val=batch, train_batch=batch, test_batch=batch,
                              net=str(net), snapshot_prefix=str(d / "snap"), random_seed=seed))
    del sp.test_iter[:]
    sp.ClearField("test_interval")
    sp.display, sp.max_iter, sp.snapshot, sp.snapshot_after_train = 1, iters, 0, False
    solver_path = write_text(d / paths.SOLVER, sp)
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
    out = run_caffe_tool(["caffe", "train", f"--solver={solver_path}", *([f"--gpu={gpu}"] if gpu is not None else [])],
                    "caffe train", gpu)
    ref_wall = time.perf_counter() - t0
    ref_rate, ref_s = train_rate(out, batch, 1, iters - 1)
    res = {"config": config, "batch": batch, "iterations": iters, "timed_iterations": iters - 2,
           "engine": engine, "device": where,
           "medft_images_per_s": ours_rate, "caffe_train_images_per_s": ref_rate,
           "medft_wall_seconds": ours_wall, "caffe_train_wall_seconds": ref_wall, "caffe_train_timed_seconds": ref_s}
    res["rows"] = [row(f"train {config}, batch {batch}, {where}", ours_rate, ref_rate, "images/s",
                        f"driver: {engine} engine train_until", "caffe.bin train (log timestamps)", True)]
    return res
