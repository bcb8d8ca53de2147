"""Time medft beside its references, each pair measured in the same run (``make bench``).

Benchmarks (--only): lmdb, medft's LMDB writer vs Caffe's convert_imageset (patches/s); train, the
training driver (--engine, pycaffe by default) vs caffe.bin train on the same solver and LMDB, for each --configs
entry (images/s); time, AlexNet forward and forward-backward through pycaffe vs `caffe time`, with the
BLAS named (ms/image); froc, the bootstrap FROC (1,000 case resamples) vs a per-resample loop (s);
cimt, dense CIMT prediction with the real deploy net vs `caffe time` of that net on the same patches,
and with a stand-in predictor (ms per ROI pixel, extrapolated to --report-roi); torch (only when
asked), PyTorch's AlexNet of the same shapes and batch (images/s). Writes
<out>/bench.json (everything, with the machine), bench.md and bench.csv (the table) and prints the
table. --gpu N runs every Caffe benchmark on that GPU with the GPU build (make caffe-gpu). The
defaults take about 3 minutes on 2 cores, --quick about 1 minute.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from medft.bench import BENCHMARKS, DEFAULT_BENCHMARKS, QUICK, BenchOptions
from medft.commands._engine import add_engine_arguments
from medft.commands._types import positive_int

HELP = "time the LMDB writer, training, AlexNet, bootstrap FROC and dense CIMT beside Caffe's own tools"

_FULL = BenchOptions()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="bench", help="folder for bench.json, bench.md and bench.csv")
    p.add_argument("--quick", action="store_true",
                   help="about 1 minute: the --quick sizes below for every size not given explicitly")
    p.add_argument("--only", default=",".join(DEFAULT_BENCHMARKS), metavar="NAMES",
                   help=f"comma-separated benchmarks to run, from: {', '.join(BENCHMARKS)} (torch: PyTorch's "
                        "AlexNet of the same shapes and batch, where PyTorch is installed)")
    p.add_argument("--lmdb-patches", type=positive_int, default=_FULL.lmdb_patches,
                   help=f"patches written by each LMDB writer (--quick: {QUICK.lmdb_patches})")
    p.add_argument("--batch", type=positive_int, default=_FULL.batch,
                   help=f"batch of the training and `caffe time` benchmarks (--quick: {QUICK.batch})")
    p.add_argument("--train-iters", type=positive_int, default=_FULL.train_iters,
                   help=f"SGD iterations per engine and configuration, 2 of them warm-up "
                        f"(--quick: {QUICK.train_iters})")
    p.add_argument("--time-iters", type=positive_int, default=_FULL.time_iters,
                   help=f"`caffe time --iterations` and pycaffe repeats (--quick: {QUICK.time_iters})")
    p.add_argument("--configs", default=",".join(_FULL.configs),
                   help="Table II configurations for the train and time benchmarks")
    p.add_argument("--n-boot", type=positive_int, default=_FULL.n_boot, help="bootstrap resamples")
    p.add_argument("--naive-boot", type=positive_int, default=_FULL.naive_boot,
                   help="resamples timed with the per-resample loop (extrapolated to --n-boot if fewer)")
    p.add_argument("--roi", type=positive_int, nargs=2, default=_FULL.roi, metavar=("H", "W"),
                   help=f"CIMT ROI predicted with the real deploy net (--quick: {QUICK.roi[0]} {QUICK.roi[1]})")
    p.add_argument("--stand-in-roi", type=positive_int, nargs=2, default=_FULL.stand_in_roi, metavar=("H", "W"),
                   help=f"CIMT ROI predicted with the stand-in predictor "
                        f"(--quick: {QUICK.stand_in_roi[0]} {QUICK.stand_in_roi[1]})")
    p.add_argument("--report-roi", type=positive_int, nargs=2, default=_FULL.report_roi, metavar=("H", "W"),
                   help="ROI size the per-pixel CIMT times are extrapolated to")
    p.add_argument("--dense-batch", type=positive_int, default=_FULL.dense_batch,
                   help=f"patches per forward in dense CIMT prediction (--quick: {QUICK.dense_batch})")
    p.add_argument("--work", default=None, help="scratch folder, kept afterwards (None: a temporary one, deleted)")
    add_engine_arguments(p)


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    """The :class:`BenchOptions` of parsed arguments (``--quick`` applied to sizes left at their defaults)."""
    from medft.bench import quick_options
    from medft.errors import unknown_name
    from medft.schedule import CONFIG_NAMES

    configs = tuple(c.strip() for c in args.configs.split(",") if c.strip())
    for c in configs:
        if c not in CONFIG_NAMES:
            raise unknown_name("configuration", c, CONFIG_NAMES)
    opts = BenchOptions(lmdb_patches=args.lmdb_patches, batch=args.batch, train_iters=args.train_iters,
                        time_iters=args.time_iters, configs=configs, n_boot=args.n_boot,
                        naive_boot=args.naive_boot, roi=tuple(args.roi), stand_in_roi=tuple(args.stand_in_roi),
                        report_roi=tuple(args.report_roi), dense_batch=args.dense_batch, gpu=args.gpu,
                        engine=args.engine)
    return quick_options(opts) if args.quick else opts


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from medft.bench import machine_line, markdown_table, parse_only, run_benchmarks, write_results

    only = parse_only(args.only)
    opts = options_from_args(args)
    print(f"medft bench: {', '.join(only)}; " + ", ".join(f"{k}={v}" for k, v in asdict(opts).items()), flush=True)

    def log(msg: str) -> None:
        print(msg, flush=True)

    result = run_benchmarks(opts, only, work=Path(args.work) if args.work else None, log=log)
    paths = write_results(result, args.out)
    print(f"\nMachine: {machine_line(result['machine'])}\n")
    print(markdown_table(result["rows"]), end="")
    print(f"\nmedft bench: {result['seconds']:.0f} s; wrote {paths['json']}, {paths['md']}, {paths['csv']}")
    for key in result["failed"]:
        print(f"medft bench: {key} failed: {result['results'][key]['error'].splitlines()[0]}")
    return 1 if result["failed"] else 0
