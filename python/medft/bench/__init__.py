"""``medft bench`` (``make bench``): medft's own timings, each beside its reference from the same run.

* ``lmdb``: medft's :class:`~medft.datum_lmdb.LmdbWriter` (in-memory uint8 Datums) vs Caffe's
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

from medft.bench.cimt import bench_cimt, first_dense_batch, stand_in_predictor, time_dense
from medft.bench.forward import bench_time, blas_info, caffe_time
from medft.bench.froc import bench_froc, naive_froc_bootstrap, synthetic_detections
from medft.bench.lmdb import bench_lmdb
from medft.bench.options import (
    BENCHMARKS,
    DEFAULT_BENCHMARKS,
    QUICK,
    ROW_COLUMNS,
    BenchOptions,
    parse_only,
    quick_options,
)
from medft.bench.report import (
    csv_table,
    machine_info,
    machine_line,
    markdown_table,
    report_markdown,
    run_benchmarks,
    write_results,
)
from medft.bench.torch_alexnet import bench_torch, torch_alexnet
from medft.bench.training import bench_train

__all__ = ["BENCHMARKS", "DEFAULT_BENCHMARKS", "QUICK", "ROW_COLUMNS", "BenchOptions", "bench_cimt", "bench_froc",
           "bench_lmdb", "bench_time", "bench_torch", "bench_train", "blas_info", "caffe_time", "csv_table",
           "first_dense_batch", "machine_info", "machine_line", "markdown_table", "naive_froc_bootstrap",
           "parse_only", "quick_options", "report_markdown", "run_benchmarks", "stand_in_predictor",
           "synthetic_detections", "time_dense", "torch_alexnet", "write_results"]
