"""What the benchmarks measure and how big: names, sizes, the --quick sizes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from medft.errors import unknown_name

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



def quick_options(opts: BenchOptions | None = None) -> BenchOptions:
    """:data:`QUICK`, keeping any field of ``opts`` that differs from the full defaults."""
    full = BenchOptions()
    if opts is None:
        return QUICK
    changed = {k: v for k, v in asdict(opts).items() if v != getattr(full, k)}
    return replace(QUICK, **{k: tuple(v) if isinstance(v, list) else v for k, v in changed.items()})
