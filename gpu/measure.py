"""Measure medft on a GPU: the GPU tests, ``medft bench --gpu``, PyTorch's AlexNet, and one polyp cell.

Run by ``gpu/measure.sh`` (one command on the GPU machine); every result goes under ``--out``:

* ``facts.json``: card, driver, CUDA and cuDNN versions (``medft doctor``), the command line;
* ``gpu-tests.log`` / ``gpu-tests.xml``: ``pytest tests/test_gpu.py``;
* ``bench/``: ``medft bench --gpu N`` (train through the driver beside ``caffe train``, ``caffe time``,
  PyTorch's AlexNet of the same shapes and batch);
* ``cell/``: one polyp cell end to end (synth, prep of >= 20,000 training patches, train, predict,
  score) with its logs;
* ``summary.json`` and ``summary.md``: the numbers docs/gpu.md quotes and the goals they are held to.

Each step is timed and may fail on its own; the summary says which did.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


#: wall-clock end of the whole measurement (``--budget``); steps that would run past it are cut short
DEADLINE = float("inf")


def step(name: str, argv: list[str], out: Path, timeout: int, record: dict, env: dict | None = None) -> bool:
    """Run ``argv`` with its output in ``out/<name>.log``; record rc and seconds; True if it passed.

    The step gets ``timeout`` seconds or what is left of the budget, whichever is less; with under
    10 seconds left it is recorded as skipped (rc None)."""
    log = out / f"{name}.log"
    left = DEADLINE - time.time()
    if left < 10:
        record[name] = {"rc": None, "seconds": 0, "log": "", "command": shlex.join(argv), "skipped": "budget spent"}
        print(f"== {name}: skipped, the budget is spent", flush=True)
        return False
    timeout = int(min(timeout, left))
    print(f"== {name} (at most {timeout} s): {shlex.join(argv)}", flush=True)
    t0 = time.time()
    with open(log, "w") as f:
        f.write(f"$ {shlex.join(argv)}\n")
        f.flush()
        try:
            rc = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, timeout=timeout, cwd=ROOT,
                                env=None if env is None else {**os.environ, **env}).returncode
        except subprocess.TimeoutExpired:
            rc = 124
    record[name] = {"rc": rc, "seconds": round(time.time() - t0, 1), "log": log.name, "command": shlex.join(argv)}
    print(f"   rc {rc} in {record[name]['seconds']} s", flush=True)
    return rc == 0


def medft(*args: str) -> list[str]:
    return [sys.executable, "-m", "medft", *args]


def has(module: str) -> bool:
    r = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True)
    return r.returncode == 0


def summarise(out: Path, gpu: int, steps: dict, facts: dict) -> dict:
    """The numbers the speed goals are judged on, from what the steps wrote."""
    s: dict = {"card": facts.get("gpu", {}).get("name"), "facts": facts, "steps": steps}
    bench_json = out / "bench" / "bench.json"
    if bench_json.is_file():
        b = json.loads(bench_json.read_text())["results"]
        for key, r in b.items():
            if key.startswith("train:") and "error" not in r:
                s.setdefault("train", {})[r["config"]] = {
                    "driver_images_per_s": r["medft_images_per_s"], "engine": r.get("engine"), "batch": r["batch"],
                    "caffe_train_images_per_s": r["caffe_train_images_per_s"]}
            if key.startswith("time:") and "error" not in r:
                t = r["caffe_time_ms_per_batch"]
                s.setdefault("caffe_time", {})[r["config"]] = {
                    "forward_backward_images_per_s": 1000 * r["batch"] / t["forward_backward_ms"],
                    "forward_images_per_s": 1000 * r["batch"] / t["forward_ms"], "batch": r["batch"]}
            if key == "torch" and "error" not in r:
                s["torch"] = {k: r[k] for k in ("torch", "train_images_per_s", "forward_images_per_s", "batch")}
    for variant in ("tf32", "workspace"):
        path = out / f"bench-{variant}" / "bench.json"
        if not path.is_file():
            continue
        results = json.loads(path.read_text())["results"]
        r = results.get("time:scratch", {})
        if "error" not in r and "caffe_time_ms_per_batch" in r:
            t = r["caffe_time_ms_per_batch"]
            s[f"caffe_time_{variant}"] = {"scratch": {
                "forward_backward_images_per_s": 1000 * r["batch"] / t["forward_backward_ms"],
                "forward_images_per_s": 1000 * r["batch"] / t["forward_ms"], "batch": r["batch"]}}
        r = results.get("train:scratch", {})
        if "error" not in r and "medft_images_per_s" in r:
            s[f"train_{variant}"] = {"scratch": {"driver_images_per_s": r["medft_images_per_s"], "batch": r["batch"]}}
    goals = {}
    for cfg, t in s.get("train", {}).items():
        ct = s.get("caffe_time", {}).get(cfg)
        if ct:
            goals[f"driver within 5% of caffe time forward-backward ({cfg})"] = (
                t["driver_images_per_s"] >= 0.95 * ct["forward_backward_images_per_s"])
    if "torch" in s and "scratch" in s.get("train", {}):
        goals["at least half of PyTorch fp32 training (scratch)"] = (
            s["train"]["scratch"]["driver_images_per_s"] >= 0.5 * s["torch"]["train_images_per_s"])
    cell_log = next(iter(sorted((out / "cell" / "runs" / "polyp").glob("*/log.csv"))), out / "none")
    if cell_log.is_file():
        import csv

        rows = list(csv.DictReader(open(cell_log)))
        run = json.loads((cell_log.parent / "run.json").read_text()) if (cell_log.parent / "run.json").is_file() else {}
        n_train = run.get("data", {}).get("n_train")
        rates = [float(r["images_per_s"]) for r in rows]
        s["cell"] = {"epochs": len(rows), "n_train": n_train, "images_per_s": rates,
                     "epoch_seconds": [float(r["seconds"]) for r in rows],
                     "best_val_auc": run.get("best", {}).get("val_auc")}
        if rates:
            s["cell"]["seconds_per_100000_patch_epoch"] = 100_000 / max(rates)
            goals["a 100,000-patch epoch in under a minute"] = 100_000 / max(rates) < 60
    s["goals"] = goals
    return s


def markdown(s: dict) -> str:
    f = s["facts"]
    g = f.get("gpu", {})
    lines = ["# medft on a GPU", "",
             f"Card: {g.get('name')} (compute capability {g.get('compute_capability')}, {g.get('memory_gib')} GiB); "
             f"driver CUDA {g.get('cuda_driver')}, runtime {g.get('cuda_runtime')}, cuDNN {g.get('cudnn')}; "
             f"host {f.get('platform')}, Python {f.get('python')}.", "",
             f"Command: `{f.get('command')}`", "", "| step | rc | seconds |", "|---|--:|--:|"]
    lines += [f"| {k}{' (must fail)' if v.get('must_fail') else ''} | {v['rc']} | {v['seconds']} |"
              for k, v in s["steps"].items()]
    lines += ["", "| measurement | images/s |", "|---|--:|"]
    for cfg, t in s.get("train", {}).items():
        lines.append(f"| training through the driver ({t['engine']} engine), {cfg}, batch {t['batch']} | "
                     f"{t['driver_images_per_s']:,.0f} |")
        lines.append(f"| caffe train, {cfg}, batch {t['batch']} | {t['caffe_train_images_per_s']:,.0f} |")
    for cfg, t in s.get("caffe_time", {}).items():
        b = t["batch"]
        lines.append(f"| caffe time forward-backward, {cfg}, batch {b} | {t['forward_backward_images_per_s']:,.0f} |")
        lines.append(f"| caffe time forward, {cfg}, batch {b} | {t['forward_images_per_s']:,.0f} |")
    for variant, what in (("tf32", "TF32 convolutions"), ("workspace", "1 GB cuDNN workspace")):
        for cfg, t in s.get(f"caffe_time_{variant}", {}).items():
            b = t["batch"]
            lines.append(f"| caffe time forward-backward, {what}, {cfg}, batch {b} | "
                         f"{t['forward_backward_images_per_s']:,.0f} |")
            lines.append(f"| caffe time forward, {what}, {cfg}, batch {b} | {t['forward_images_per_s']:,.0f} |")
        for cfg, t in s.get(f"train_{variant}", {}).items():
            lines.append(f"| training through the driver, {what}, {cfg}, batch {t['batch']} | "
                         f"{t['driver_images_per_s']:,.0f} |")
    if "torch" in s:
        t = s["torch"]
        name = f"PyTorch {t['torch']} AlexNet"
        lines.append(f"| {name} training (fp32), batch {t['batch']} | {t['train_images_per_s']:,.0f} |")
        lines.append(f"| {name} forward (fp32), batch {t['batch']} | {t['forward_images_per_s']:,.0f} |")
    if "cell" in s:
        c = s["cell"]
        lines += ["", f"Polyp cell: {c['n_train']} training patches, {c['epochs']} epochs, "
                      f"best validation AUC {c['best_val_auc']}, epoch seconds {c['epoch_seconds']}."]
    lines += ["", "| goal | met |", "|---|---|"] + [f"| {k} | {'yes' if v else 'NO'} |" for k, v in s["goals"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="gpu/out", help="folder for every result (default gpu/out)")
    ap.add_argument("--gpu", type=int, default=0, help="the GPU (default 0)")
    ap.add_argument("--batch", type=int, default=256, help="AlexNet batch of the timings (BVLC: 256)")
    ap.add_argument("--train-patches", type=int, default=25_000, help="training patches of the polyp cell")
    ap.add_argument("--max-epochs", type=int, default=3, help="epochs of the polyp cell")
    ap.add_argument("--train-iters", type=int, default=60, help="SGD iterations per training benchmark")
    ap.add_argument("--budget", type=float, default=0, help="seconds for everything (0: no limit)")
    ap.add_argument("--skip", default="", help="comma-separated steps to skip: tests, bench, cell")
    args = ap.parse_args(argv)
    global DEADLINE
    if args.budget:
        DEADLINE = time.time() + args.budget
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    steps: dict = {}
    sys.path.insert(0, str(ROOT / "python"))
    from medft.engines.doctor import report

    facts = {"command": shlex.join([sys.executable, *sys.argv]), "platform": platform.platform(),
             "python": platform.python_version(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             **report(args.gpu)}
    facts["gpu"] = facts.pop("gpu")
    smi = subprocess.run(["nvidia-smi"], capture_output=True, text=True) if has_smi() else None
    (out / "nvidia-smi.txt").write_text(smi.stdout if smi else "nvidia-smi not found\n")
    (out / "facts.json").write_text(json.dumps(facts, indent=2) + "\n")
    print(json.dumps(facts["gpu"], indent=2), flush=True)
    pycaffe = subprocess.run([sys.executable, "-c", "from medft.engines.env import import_caffe; "
                              "import_caffe(gpu=True)"], capture_output=True, cwd=ROOT).returncode == 0
    engine = "pycaffe" if pycaffe else "cli"
    real_cell = "cell" not in skip and all(has(m) for m in ("scipy", "PIL", "skimage"))
    cell = out / "cell"
    raw, data, runs = cell / "raw", cell / "data", cell / "runs"
    data_ready: list[bool] = []
    if "bench" not in skip:
        only = "train,time,torch" if has("torch") else "train,time"
        step("bench", medft("bench", "--gpu", str(args.gpu), "--engine", engine, "--only", only, "--batch",
                            str(args.batch), "--configs", "scratch,ft-fc8", "--train-iters", str(args.train_iters),
                            "--time-iters", "10", "--out", str(out / "bench")), out, 600, steps)
        # cuDNN's TF32 (MEDFT_CUDNN_TF32=1) beside the default FP32: what the faster math would give
        step("bench-tf32", medft("bench", "--gpu", str(args.gpu), "--engine", engine, "--only", "time", "--batch",
                                 str(args.batch), "--configs", "scratch", "--time-iters", "10",
                                 "--out", str(out / "bench-tf32")), out, 120, steps, env={"MEDFT_CUDNN_TF32": "1"})
        # a 1 GB cuDNN workspace beside Caffe's 8 MB: whether the limit holds Caffe back on this card
        step("bench-workspace", medft(
            "bench", "--gpu", str(args.gpu), "--engine", engine, "--only", "train,time", "--batch", str(args.batch),
            "--configs", "scratch", "--train-iters", str(args.train_iters), "--time-iters", "10",
            "--out", str(out / "bench-workspace")), out, 180, steps, env={"MEDFT_CUDNN_WORKSPACE_MB": "1024"})
    if real_cell:  # synth and prep need only the CPU: they run beside the GPU tests, after the timings
        cell.mkdir(exist_ok=True)

        def make_data() -> None:
            ok = step("cell-synth", medft("synth", "polyp", "--out", str(raw), "--cases", "16", "--per-case", "20"),
                      out, 300, steps)
            data_ready.append(ok and step("cell-prep", medft(
                "prep", "polyp", "--input", str(raw / "polyp"), "--out", str(data), "--max-patches",
                str(args.train_patches), "--max-test-patches", "10000", "--no-progress"), out, 900, steps))

        maker = threading.Thread(target=make_data)
        maker.start()
    if "tests" not in skip:
        step("gpu-tests", [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "tests/test_gpu.py",
                           f"--junitxml={out / 'gpu-tests.xml'}"], out, 420, steps)
        # the one-iteration comparison with the GPU's update scaled by 1.01: a wrong update it must catch
        step("sgd-wrong-update", [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider",
                                  "tests/test_gpu.py", "-k", "one_sgd"], out, 240, steps,
             env={"MEDFT_TEST_GPU_UPDATE_SCALE": "1.01"})
        steps["sgd-wrong-update"]["must_fail"] = True  # pytest's rc 1: the test failed, as it should
    if "cell" not in skip and not real_cell:
        speed_cell(out, args, engine, steps)
    elif real_cell:
        ok = step("cell-pretrain", medft("pretrain", "--gpu", str(args.gpu), "--engine", engine,
                                         "--out", str(cell / "standin.caffemodel")), out, 300, steps)
        maker.join()
        ok = ok and all(data_ready) and step("cell-train", medft(
            "train", "polyp", "ft-conv1", "--data", str(data), "--runs", str(runs), "--weights",
            str(cell / "standin.caffemodel"), "--gpu", str(args.gpu), "--engine", engine, "--max-epochs",
            str(args.max_epochs)), out, 900, steps)
        ok = ok and step("cell-predict", medft("predict", "polyp", "ft-conv1", "--data", str(data), "--runs",
                                               str(runs), "--gpu", str(args.gpu), "--engine", engine), out, 600, steps)
        ok and step("cell-score", medft("score", "polyp", "--runs", str(runs), "--data", str(data),
                                        "--out", str(cell / "scores"), "--force"), out, 300, steps)
        drop_bulk(runs, data, raw, cell / "standin.caffemodel")
    summary = summarise(out, args.gpu, steps, facts)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "summary.md").write_text(markdown(summary))
    print(markdown(summary), flush=True)
    return 0 if all(v["rc"] == (1 if v.get("must_fail") else 0) for v in steps.values()) else 1


def speed_cell(out: Path, args: argparse.Namespace, engine: str, steps: dict) -> None:
    """Without scipy, Pillow and scikit-image (synth and prep need them) the cell trains through
    the driver on a numpy-made set of ``--train-patches`` random 227x227 patches (a brighter
    centre marks the positives): epoch time and rate at scale, not the study's data."""
    import numpy as np

    sys.path.insert(0, str(ROOT / "python"))
    from medft.datum_lmdb import LmdbWriter

    data = out / "cell" / "data" / "polyp"
    data.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t0 = time.time()
    for split, n in (("train", args.train_patches), ("val", args.train_patches // 4)):
        with LmdbWriter(data / f"{split}_lmdb", force=True, map_size=1 << 34) as w:
            for i in range(n):
                img = rng.integers(0, 200, size=(3, 227, 227), dtype=np.uint8)
                if i % 2:
                    img[:, 80:150, 80:150] += 50
                w.put(f"{i:08d}", img, i % 2)
    (data / "prep.json").write_text(json.dumps({"mean_value": [112.0, 112.0, 112.0], "fingerprint": "speed-set"}))
    steps["cell-speed-set"] = {"rc": 0, "seconds": round(time.time() - t0, 1), "log": "",
                               "command": f"numpy speed set of {args.train_patches} + {args.train_patches // 4}"}
    step("cell-train", medft("train", "polyp", "scratch", "--data", str(data.parent), "--runs",
                             str(out / "cell" / "runs"), "--gpu", str(args.gpu), "--engine", engine,
                             "--max-epochs", str(args.max_epochs)), out, 900, steps)
    drop_bulk(out / "cell" / "runs", data)


def drop_bulk(runs: Path, *more: Path) -> None:
    """Remove the gigabytes only the run needed (``more``: data folders, models; the runs' snapshots
    and caffemodels), so that only logs and results come back from the GPU machine."""
    for path in [*more, *runs.glob("polyp/*/snapshots"), *runs.glob("polyp/*/*.caffemodel")]:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def has_smi() -> bool:
    return shutil.which("nvidia-smi") is not None


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
