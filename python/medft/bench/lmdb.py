"""LMDB writing: medft's writer vs Caffe's convert_imageset, patches/s."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from medft import paths
from medft.bench.common import Log, row, run_caffe_tool


# -- 1. LMDB writing -----------------------------------------------------------------------------------
def bench_lmdb(n: int, work: Path, log: Log = print) -> dict:
    """Patches/s writing the same ``n`` 3x227x227 patches: medft's writer vs ``convert_imageset``.

    The patches come from a tiny synthetic polyp dataset. medft writes them from memory (as
    ``medft prep`` does); ``convert_imageset`` from PNG files, its only input, so its time
    includes PNG decoding. Both LMDBs are read back and compared record by record.
    """
    from PIL import Image

    from medft.datum_lmdb import LmdbWriter, read_lmdb
    from medft.prep.tiny import tiny_build

    log(f"  source patches: tiny synthetic polyp dataset -> {n} patches")
    built = tiny_build("polyp", work / "lmdb_src", max_patches=10**6, max_test_patches=max(n, 250), force=True)
    recs = [(arr, label) for _, arr, label in read_lmdb(Path(built["dir"]) / paths.TEST_LMDB)]
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
    run_caffe_tool(["convert_imageset", "-backend", "lmdb", f"{png}/", str(listing), str(ref_path)], "convert_imageset")
    ref_s = time.perf_counter() - t
    same = all(a.shape == b.shape and np.array_equal(a, b) and la == lb
               for (_, a, la), (_, b, lb) in zip(read_lmdb(ours_path), read_lmdb(ref_path), strict=True))
    res = {"patches": n, "medft_seconds": ours_s, "convert_imageset_seconds": ref_s,
           "medft_patches_per_s": n / ours_s, "convert_imageset_patches_per_s": n / ref_s,
           "same_records": bool(same)}
    res["rows"] = [row(f"LMDB write, {n} patches 3x227x227", res["medft_patches_per_s"],
                        res["convert_imageset_patches_per_s"], "patches/s", "LmdbWriter, from memory",
                        "convert_imageset, from PNG", True)]
    return res
