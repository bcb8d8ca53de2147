"""run.json of a run folder: the record while training and when done; clearing a run for --force."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

from medft import paths
from medft.engines.env import caffe_version
from medft.errors import MedftError
from medft.prep.dataset import Dataset
from medft.provenance import stamp
from medft.schedule import get_config
from medft.train.best import PENDING_MODEL, PENDING_RECORD
from medft.train.options import TrainOptions
from medft.train.resume import resume_facts


def start_record(opts: TrainOptions, ds: Dataset) -> dict:
    """run.json while training: enough to refuse resuming a different run in the same folder."""
    return {"status": "running", "app": opts.app, "config": opts.config, "variant": opts.variant,
            "resume": resume_facts(opts, ds), "options": {k: v for k, v in asdict(opts).items() if k != "force"}}


def read_record(out: Path) -> dict:
    """run.json of a run folder ({} if there is none); a file that is not JSON is named."""
    path = out / paths.RUN_RECORD
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MedftError(f"{path}: not a medft run record ({e}); --force starts the run over") from None
    if not isinstance(record, dict):
        raise MedftError(f"{path}: not a medft run record; --force starts the run over")
    return record


def clear_run(out: Path) -> None:
    """Remove what medft train wrote in ``out`` (nothing else), keeping the folder and its lock."""
    for name in (paths.SNAPSHOTS, paths.CIMT_MAPS):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in (paths.LOG, paths.RUN_RECORD, paths.BEST_MODEL, paths.BEST_RECORD, PENDING_MODEL, PENDING_RECORD,
                 paths.WEIGHTS_RECORD, paths.TRAIN_VAL_NET, paths.DEPLOY_NET, paths.SOLVER, paths.SOLVER_CLI,
                 paths.CAFFE_LOG, paths.PREDICTIONS, paths.TEST_PROBS, paths.TEST_PATCHES):
        (out / name).unlink(missing_ok=True)


def done_record(opts: TrainOptions, ds: Dataset, stepsize: int, weights: Path | None, report: dict | None,
            best: dict, epochs: int, stopped_by: str, seconds: float) -> dict:
    """run.json of a finished run: what was selected, from what data and weights, on what build and device."""
    cfg = get_config(opts.config)
    return {
        "status": "done", "app": opts.app, "config": opts.config, "variant": opts.variant,
        "paper_name": cfg.paper_name, "fraction": opts.fraction, "stopped_by": stopped_by,
        "pretrained": _describe(weights) or "none: trained from scratch",
        "best": {k: (float(v) if k in ("val_auc", "loss", "lr") else int(v) if k in ("epoch", "iteration") else v)
                 for k, v in best.items()},
        "epochs": epochs, "iterations_per_epoch": stepsize,
        "resume": resume_facts(opts, ds),
        "options": {k: v for k, v in asdict(opts).items() if k != "force"},
        "data": {"folder": str(ds.root), "n_train": ds.n_train, "n_val": ds.n_val,
                 "mean_bgr": list(ds.mean_bgr), "fingerprint": ds.fingerprint},
        "weights": {"path": str(weights) if weights else None, "description": _describe(weights),
                    "copy": report},
        "versions": {**stamp(), "caffe": caffe_version(opts.gpu is not None)},
        "caffe_build": _caffe_build(opts.gpu is not None),
        "device": _device_record(opts.gpu),
        "seconds": round(seconds, 1),
        "argv": sys.argv,
    }


def _describe(weights: Path | None) -> str | None:
    """'BVLC AlexNet (ImageNet ...)' or 'medft stand-in ... NOT ImageNet' (or None for scratch)."""
    if weights is None:
        return None
    from medft.caffemodel import describe

    return describe(weights)


def _caffe_build(gpu: bool) -> dict | None:
    """Which Caffe build trained the run (CPU or GPU), its cache key and folder."""
    try:
        from medft.engines.env import build_info, caffe_root

        info = build_info(gpu)
        return {"mode": info.get("mode"), "key": info.get("key"), "path": str(caffe_root(gpu)),
                **({"cudnn": info.get("cudnn"), "cuda_archs": info.get("cuda_archs")} if gpu else {})}
    except MedftError:
        return None


def _device_record(gpu: int | None) -> dict:
    """``{"device": "CPU"}`` or the GPU's name, compute capability and CUDA/cuDNN versions."""
    if gpu is None:
        return {"device": "CPU"}
    from medft.engines.device import gpu_facts

    return {"device": f"GPU {gpu}", **gpu_facts(gpu)}
