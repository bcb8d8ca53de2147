"""``make bench``: patches/s of medft's LMDB writer beside Caffe's ``convert_imageset``, same patches.

    .venv/bin/python data_prep/bench.py [--n 1000] [--work DIR]

Both write the same N 3x227x227 patches (taken from a tiny synthetic polyp dataset) into a fresh
LMDB: medft from memory (as ``medft prep`` does), ``convert_imageset`` from PNG files (its only
input).  Needs Caffe (``make caffe``) for the second number.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from medft.prep.lmdb_writer import LmdbWriter, read_lmdb
from medft.prep.testing import tiny_build
from PIL import Image


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="patches to write (default: 1000)")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        d = Path(tiny_build("polyp", work, max_patches=10**6, max_test_patches=args.n, force=True)["dir"])
        recs = list(read_lmdb(d / "test_lmdb"))
        recs = (recs * (args.n // max(1, len(recs)) + 1))[: args.n]
        t = time.perf_counter()
        with LmdbWriter(work / "bench_medft_lmdb", force=True) as w:
            for i, (_, arr, label) in enumerate(recs):
                w.put(f"{i:08d}", arr, label)
        ours = args.n / (time.perf_counter() - t)
        result = {"patches": args.n, "medft_writer_patches_per_s": round(ours, 1)}
        png = work / "bench_png"
        png.mkdir(exist_ok=True)
        lines = []
        for i, (_, arr, label) in enumerate(recs):
            Image.fromarray(arr[::-1].transpose(1, 2, 0)).save(png / f"{i:08d}.png")  # RGB file -> BGR in OpenCV
            lines.append(f"{i:08d}.png {label}\n")
        (work / "bench_list.txt").write_text("".join(lines))
        try:
            from medft.caffe_env import caffe_tool

            exe = caffe_tool("convert_imageset")
            out = work / "bench_caffe_lmdb"
            subprocess.run(["rm", "-rf", str(out)], check=True)
            t = time.perf_counter()
            subprocess.run(
                [str(exe), "-backend", "lmdb", f"{png}/", str(work / "bench_list.txt"), str(out)],
                check=True,
                capture_output=True,
            )
            result["caffe_convert_imageset_patches_per_s"] = round(args.n / (time.perf_counter() - t), 1)
        except Exception as e:  # report what we have without Caffe
            result["caffe_convert_imageset_patches_per_s"] = None
            result["caffe_error"] = str(e)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
