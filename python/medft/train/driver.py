"""The training loop of one run: start or resume, one epoch at a time, record the run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from medft import checks, paths
from medft.apps import OVR, classes_of, get_app
from medft.copy_check import verify_snapshot
from medft.engines import make_engine
from medft.engines.base import Engine, StepStats
from medft.prep.dataset import Dataset, check_labels, read_dataset
from medft.schedule import get_config
from medft.train.best import check_best, commit_best, improves, settle_best, stage_best
from medft.train.logcsv import read_log, write_log
from medft.train.lr import step_lr
from medft.train.nets import write_run_files
from medft.train.options import TrainOptions, check_weights
from medft.train.resume import check_resumable, latest_state, prepare_resume, prune_snapshots
from medft.train.run import clear_run, done_record, read_record, start_record
from medft.train.validation import validation_auc
from medft.util import faults
from medft.util.atomic import write_text_atomic
from medft.util.lock import dataset_lock, folder_lock
from medft.util.progress import duration


def train(opts: TrainOptions, engine: Engine | None = None, log=print) -> dict:
    """Train (or resume, or skip when done) one run; return its run.json record."""
    get_app(opts.app)
    get_config(opts.config)
    opts.check()
    out = paths.run_dir(opts.runs, opts.app, opts.variant, opts.fraction, opts.seed)
    weights = check_weights(opts)
    ds = read_dataset(opts.data)
    num_classes = len(classes_of(get_app(opts.app), ds.record))
    check_labels(ds, num_classes)
    with folder_lock(out, "train"), dataset_lock(ds.root, "train"):
        settle_best(out)
        record = read_record(out)
        if record.get("status") == "done" and not opts.force:
            check_best(out)
            log(f"medft train: {out} is done (best val AUC {record['best']['val_auc']:.4f}); --force redoes it")
            return record
        checks.check_training_inputs(ds, num_classes, weights)
        if opts.force:
            clear_run(out)
        elif record.get("status") == "running":
            check_resumable(record, ds, opts, out)
        solver_path, stepsize = write_run_files(opts, ds, out)
        write_text_atomic(out / paths.RUN_RECORD, json.dumps(start_record(opts, ds), indent=2) + "\n")
        engine = engine or make_engine(opts.engine, opts.gpu)
        try:
            return _train_loop(opts, engine, ds, out, solver_path, stepsize, weights, log)
        except checks.Diverged:
            checks.abandon(engine)  # a NaN may have corrupted Caffe's memory: do not free it
            engine = None
            raise
        finally:
            if engine is not None:
                engine.close()


def _start_or_resume(opts: TrainOptions, engine: Engine, out: Path, solver_path: Path, stepsize: int,
                     weights: Path | None, log) -> tuple[int, list[dict], dict | None]:
    """Start the solver from ``weights`` or resume the newest logged snapshot; (iteration reached,
    log rows up to it, the weight-copy report)."""
    rows = read_log(out / paths.LOG)
    resume = latest_state(out, {int(r["iteration"]) for r in rows})
    if resume:
        prepare_resume(resume[0])
        checks.check_snapshot(resume[0])
        it = engine.start(solver_path, resume=resume[0], gpu=opts.gpu, snapshot_every=stepsize)
        record = out / paths.WEIGHTS_RECORD
        report = json.loads(record.read_text()) if record.is_file() else None
        log(f"medft train: resuming {out} from iteration {it} ({resume[0].name})")
        return it, [r for r in rows if int(r["iteration"]) <= it], report
    it = engine.start(solver_path, weights=weights, gpu=opts.gpu, snapshot_every=stepsize)
    report = engine.weights_report
    if report is not None:
        write_text_atomic(out / paths.WEIGHTS_RECORD, json.dumps(report, indent=2) + "\n")
        log("medft train: " + report["summary"])
    return it, [], report


def _one_epoch(opts: TrainOptions, engine: Engine, ds: Dataset, out: Path, epoch: int, stepsize: int,
               best: dict | None) -> tuple[dict, bool, StepStats]:
    """Train epoch ``epoch`` (1-based), snapshot, score validation; stage the model if it is the new
    best. (log row, whether it is the new best, the engine's stats)."""
    t0 = time.time()
    checks.check_space(out / paths.SNAPSHOTS, checks.snapshot_bytes(out / paths.SNAPSHOTS, opts.weights))
    stats = engine.train_until(epoch * stepsize, on_iter=checks.watch_loss(epoch, out))
    checks.check_loss(stats.losses, epoch, (epoch - 1) * stepsize, out)
    model, _state = engine.snapshot()
    verify_snapshot(out, model, opts.config)  # the pretrained layers were loaded; frozen ones kept
    probs, labels = engine.predict_lmdb(ds.val_lmdb, ds.mean_bgr, opts.test_batch, deploy=out / paths.DEPLOY_NET)
    auc = validation_auc(probs, labels, one_vs_rest=get_app(opts.app).evaluation == OVR)
    row = {"epoch": epoch, "iteration": stats.iteration,
           "loss": f"{float(np.mean(stats.losses)) if stats.losses else float('nan'):.6f}",
           "lr": f"{step_lr(stats.iteration - stepsize, stepsize):.8g}", "val_auc": f"{auc:.6f}",
           "images_per_s": f"{stats.images_per_s:.2f}", "seconds": f"{time.time() - t0:.2f}"}
    better = improves(row, best)
    if better:
        stage_best(out, model, row)  # the model is safe before the log names it
        faults.point("train:after-best-record")
    return row, better, stats


def _train_loop(opts: TrainOptions, engine: Engine, ds: Dataset, out: Path, solver_path: Path, stepsize: int,
                weights: Path | None, log) -> dict:
    """Start or resume, then train epoch by epoch until patience or the epoch limit; record the run."""
    t_start = time.time()
    it, rows, report = _start_or_resume(opts, engine, out, solver_path, stepsize, weights, log)
    epoch = it // stepsize
    best = max(rows, key=lambda r: float(r["val_auc"]), default=None)
    if best is not None:
        check_best(out)  # the selected weights survived the interruption
    since_best = 0 if best is None else epoch - int(best["epoch"])
    log(f"medft train: {opts.app}/{opts.variant} ({get_config(opts.config).paper_name}), {ds.n_train} train / "
        f"{ds.n_val} val patches, {stepsize} iterations per epoch, up to {opts.max_epochs} epochs, patience "
        f"{opts.patience}, engine {opts.engine}, {'GPU ' + str(opts.gpu) if opts.gpu is not None else 'CPU'}")
    while epoch < opts.max_epochs and since_best < opts.patience:
        t0 = time.time()
        epoch += 1
        row, better, stats = _one_epoch(opts, engine, ds, out, epoch, stepsize, best)
        best, since_best = (row, 0) if better else (best, since_best + 1)
        rows.append(row)
        write_log(out / paths.LOG, rows)
        faults.point("train:after-log")
        if better:
            commit_best(out)
        prune_snapshots(out, keep_iteration=stats.iteration)
        remaining = min(opts.max_epochs - epoch, opts.patience - since_best)
        log(f"epoch {epoch:3d}/{opts.max_epochs}  iter {stats.iteration:6d}  loss {row['loss']}  "
            f"lr {row['lr']}  val AUC {float(row['val_auc']):.4f}  best {float(best['val_auc']):.4f} "
            f"(epoch {best['epoch']})  {stats.images_per_s:.1f} img/s  "
            f"ETA <= {duration(remaining * (time.time() - t0))}")
    record = done_record(opts, ds, stepsize, weights, report, best, epoch,
                     "patience" if since_best >= opts.patience else "max_epochs", time.time() - t_start)
    write_text_atomic(out / paths.RUN_RECORD, json.dumps(record, indent=2) + "\n")
    log(f"medft train: done, best val AUC {float(best['val_auc']):.4f} at epoch {best['epoch']} "
        f"-> {out / paths.BEST_MODEL}")
    return record
