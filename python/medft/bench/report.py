"""Running a selection of benchmarks, and writing what they measured: the machine, the table,
bench.json/.md/.csv."""

from __future__ import annotations

import json
import math
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from medft import __version__
from medft.bench.cimt import bench_cimt
from medft.bench.common import Log
from medft.bench.forward import (
    bench_time,
    blas_info,
)
from medft.bench.froc import bench_froc
from medft.bench.lmdb import bench_lmdb
from medft.bench.options import BENCHMARKS, DEFAULT_BENCHMARKS, ROW_COLUMNS, BenchOptions
from medft.bench.torch_alexnet import bench_torch
from medft.bench.training import bench_train
from medft.errors import MedftError, unknown_name
from medft.util.csvtext import csv_text


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
                     lambda c=c: bench_time(c, o.batch, o.time_iters, root, seed=o.seed, log=log, gpu=o.gpu,
                                            engine=o.engine)))
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
    """bench.csv: the table's rows, floats with 6 significant digits."""
    return csv_text(({k: ("" if r[k] is None else (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]))
                      for k in ROW_COLUMNS} for r in rows), ROW_COLUMNS)


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
