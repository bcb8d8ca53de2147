"""AlexNet forward and forward-backward: pycaffe vs caffe time, ms/image."""

from __future__ import annotations

import os
from pathlib import Path

from medft.bench.common import Log, random_lmdb, row, run_caffe_tool, train_val


# -- 3. AlexNet forward / forward-backward ----------------------------------------------------------
def caffe_time(model: Path, iterations: int, phase: str = "TRAIN", gpu: int | None = None) -> dict[str, float]:
    """Run ``caffe.bin time --model=model --iterations=N --phase=P [--gpu=N]``; its averages in ms per batch.

    Feed it real data (a Data layer): an Input layer's blob stays all zeros, and the same AlexNet
    forward measured 15-20% faster on zeros than on image patches here (2 cores, OpenBLAS).
    """
    from medft.engines.caffe_log import parse_caffe_time

    gpu_arg = [f"--gpu={gpu}"] if gpu is not None else []
    return parse_caffe_time(run_caffe_tool(["caffe", "time", f"--model={model}", f"--iterations={iterations}",
                                       f"--phase={phase}", *gpu_arg], "caffe time", gpu))


def blas_info(gpu: bool = False) -> dict:
    """The BLAS Caffe was built with and the threads it uses."""
    from medft.engines.env import build_info

    threads = os.environ.get("OPENBLAS_NUM_THREADS")
    return {"blas": build_info(gpu)["blas"], "cpu_count": os.cpu_count(),
            "blas_threads": int(threads) if threads and threads.isdigit() else os.cpu_count(),
            "blas_threads_from": "OPENBLAS_NUM_THREADS" if threads else "OpenBLAS default = os.cpu_count()"}


def bench_time(config: str, batch: int, iters: int, work: Path, app: str = "polyp", seed: int = 0,
               log: Log = print, gpu: int | None = None, engine: str = "pycaffe") -> dict:
    """AlexNet ms/image, forward and forward-backward, of one train_val net (TRAIN phase, random weights):
    pycaffe ``net.forward()``/``net.backward()`` vs ``caffe time`` on the same prototxt and batch.

    With an engine other than pycaffe (the driver then runs Caffe's own tools) only ``caffe time``
    is measured: its rows carry it as the reference, with no pycaffe figure beside it."""
    d = work / f"time_{config}"
    d.mkdir(parents=True, exist_ok=True)
    net_path = train_val(d, app, config, random_lmdb(d / "lmdb", batch, seed), batch)
    log(f"  {config}: caffe time --iterations={iters}, batch {batch}")
    ref = caffe_time(net_path, iters, gpu=gpu)
    ours = None
    if engine == "pycaffe":
        from medft.engines.pycaffe import time_net

        log(f"  {config}: pycaffe net.forward()/net.backward(), {iters} repeats")
        ours = time_net(net_path, iters, gpu)
    res = {"config": config, "batch": batch, "iterations": iters, **blas_info(gpu is not None),
           "device": "CPU" if gpu is None else f"GPU {gpu}",
           "pycaffe_ms_per_batch": ours, "caffe_time_ms_per_batch": ref,
           "caffe_time_forward_ms_per_image": ref["forward_ms"] / batch,
           "caffe_time_forward_backward_ms_per_image": ref["forward_backward_ms"] / batch}
    if ours is not None:
        res["pycaffe_forward_ms_per_image"] = ours["forward_ms"] / batch
        res["pycaffe_forward_backward_ms_per_image"] = ours["forward_backward_ms"] / batch
    blas = (f"{res['blas'].split(' (')[0]}, {res['blas_threads']} threads" if gpu is None
            else f"GPU {gpu}, cuDNN")
    res["rows"] = [
        row(f"AlexNet forward, {config}, batch {batch} [{blas}]", res.get("pycaffe_forward_ms_per_image"),
             res["caffe_time_forward_ms_per_image"], "ms/image", "pycaffe net.forward()" if ours else "-",
             "caffe time: Average Forward pass", False),
        row(f"AlexNet forward-backward, {config}, batch {batch} [{blas}]",
             res.get("pycaffe_forward_backward_ms_per_image"), res["caffe_time_forward_backward_ms_per_image"],
             "ms/image", "pycaffe net.forward()+net.backward()" if ours else "-",
             "caffe time: Average Forward-Backward", False),
    ]
    return res
