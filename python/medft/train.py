"""Train one cell of the study the way the paper did: SGD epoch by epoch, keep the best val AUC.

Section VI: "we divided the training set into a smaller training set with 80% of the training
data and a validation set with the remaining 20% ... and then computed area under the curve on
the validation set. The training process was terminated when the highest accuracy on the
validation set was observed." medft trains epoch by epoch, scores the validation LMDB after
each, keeps the snapshot with the highest AUC and stops after ``patience`` epochs without
improvement or at ``max_epochs``.

A run folder ``runs/<app>/<variant>[-<fraction>][-seed<seed>]/`` (:func:`medft.paths.run_dir`) holds::

    solver.prototxt train_val.prototxt deploy.prototxt   the exact files Caffe ran
    log.csv            epoch, iteration, loss, lr, val_auc, images_per_s, seconds
    snapshots/         Caffe's per-epoch .caffemodel/.solverstate (resume point)
    best.caffemodel    the snapshot with the highest validation AUC
    weights.json       which layers were copied from the pretrained model (verified), which initialised
    run.json           arguments, seeds, versions, timings, data fingerprint, status
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from medft import __version__, checks, paths
from medft.alexnet import NetOptions, deploy_net, train_val_net
from medft.apps import OVR, classes_of, get_app
from medft.copy_check import verify_snapshot
from medft.engines import make_engine
from medft.engines.base import Engine, StepStats, lmdb_size
from medft.engines.env import caffe_version
from medft.errors import MedftError
from medft.provenance import stamp
from medft.schedule import BASE_LR, GAMMA, get_config, variant_name
from medft.schema import write_text_atomic
from medft.solver import MAX_EPOCHS, RANDOM_SEED, SolverOptions, iters_per_epoch, solver
from medft.util import faults
from medft.util.lock import dataset_lock, folder_lock
from medft.util.progress import duration
from medft.util.prototxt import to_text

PATIENCE = 5  # epochs without a better validation AUC before stopping (the paper gives none)
LOG_COLUMNS = ("epoch", "iteration", "loss", "lr", "val_auc", "images_per_s", "seconds")


@dataclass
class TrainOptions:
    """Everything that defines one training run (saved in run.json)."""

    app: str
    config: str
    data: str  # prepared dataset folder (medft prep output for this app and fraction)
    runs: str = "runs"
    init: str = "gaussian"
    fraction: str = "1"
    weights: str | None = None  # pretrained caffemodel for ft-* configurations
    engine: str = "pycaffe"
    gpu: int | None = None
    train_batch: int = 256
    test_batch: int = 50
    max_epochs: int = MAX_EPOCHS
    patience: int = PATIENCE
    seed: int = RANDOM_SEED
    force: bool = False

    @property
    def variant(self) -> str:
        return variant_name(self.config, self.init)

    def check(self) -> None:
        """Refuse values Caffe would abort on, or that would train nothing, before anything is written."""
        for name in ("train_batch", "test_batch", "max_epochs", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise MedftError(f"--{name.replace('_', '-').replace('train-', '')} must be a whole number "
                                 f">= 1, got {value!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise MedftError(f"--seed must be a whole number >= 0, got {self.seed!r}")


def run_dir(runs: str | Path, app: str, variant: str, fraction: str = "1", seed: int | None = None) -> Path:
    """The run folder (:func:`medft.paths.run_dir`; the seed named when it is not the default)."""
    return paths.run_dir(runs, app, variant, fraction, seed)


def step_lr(iteration: int, stepsize: int) -> float:
    """Caffe's "step" policy: base_lr * gamma^floor(iter / stepsize) (equation 2 per epoch)."""
    return BASE_LR * GAMMA ** (iteration // stepsize)


def binary_scores(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(0/1 labels, positive score) for AUC. For CIMT's 3 classes the two interface classes
    are merged into one positive class (score = p1 + p2), as the paper's discussion does."""
    if probs.ndim != 2 or probs.shape[0] != labels.shape[0]:
        raise MedftError(f"probabilities {probs.shape} do not match labels {labels.shape}")
    return (labels > 0).astype(int), 1.0 - probs[:, 0]


def validation_auc(probs: np.ndarray, labels: np.ndarray, one_vs_rest: bool = False) -> float:
    """Validation AUC for model selection: of :func:`binary_scores`, or with ``one_vs_rest`` (an
    application scored per class) the macro one-vs-rest AUC over the net's classes."""
    from medft.evaluate.roc import roc_auc_score

    if one_vs_rest:
        from medft.evaluate.multiclass import macro_auc

        return macro_auc(labels, probs)
    y, s = binary_scores(probs, labels)
    return float(roc_auc_score(y, s))


@dataclass
class Dataset:
    """The parts of a `medft prep` output folder that training reads."""

    root: Path
    train_lmdb: Path
    val_lmdb: Path
    n_train: int
    n_val: int
    mean_bgr: tuple[float, ...]
    fingerprint: str | None
    record: dict = field(default_factory=dict)  # prep.json ({} where there is none)


def check_labels(ds: Dataset, num_classes: int) -> None:
    """Every label of the train/val manifests must be a class of the net (0 .. C-1): Caffe's
    SoftmaxWithLoss would abort the process on one that is not."""
    for name in ("train", "val"):
        path = ds.root / f"{name}_manifest.csv"
        if not path.is_file():
            raise MedftError(f"{path}: missing (medft prep writes one beside each LMDB)")
        with open(path, newline="") as f:
            for i, row in enumerate(csv.DictReader(f), start=2):
                label = row.get("label", "")
                if not label.lstrip("-").isdigit() or not 0 <= int(label) < num_classes:
                    raise MedftError(f"{path}: row {i}: label {label!r} is not a class of this "
                                     f"{num_classes}-class net (0..{num_classes - 1})")


def read_dataset(folder: str | Path) -> Dataset:
    root = Path(folder)
    if not root.is_dir():
        raise MedftError(f"{root}: no prepared dataset here; run `medft prep` first")
    prep_json = root / "prep.json"
    record = json.loads(prep_json.read_text()) if prep_json.is_file() else {}
    mean_json = root / "mean.json"
    if "mean_value" in record:
        mean = tuple(float(v) for v in record["mean_value"])
    elif mean_json.is_file():
        mean = tuple(float(v) for v in json.loads(mean_json.read_text())["mean_value"])
    else:
        raise MedftError(f"{root}: no mean.json or prep.json with mean_value")
    if len(mean) != 3 or not all(math.isfinite(v) for v in mean):
        raise MedftError(f"{root}: mean_value must be 3 finite numbers, got {mean}")
    train, val = root / "train_lmdb", root / "val_lmdb"
    return Dataset(root, train, val, lmdb_size(train), lmdb_size(val), mean, record.get("fingerprint"), record)


def write_run_files(opts: TrainOptions, ds: Dataset, out: Path) -> tuple[Path, int]:
    """Write the exact solver and nets of this run into ``out``; return (solver path, stepsize)."""
    net_opts = NetOptions(train_source=str(ds.train_lmdb.resolve()), val_source=str(ds.val_lmdb.resolve()),
                          train_batch=min(opts.train_batch, ds.n_train),
                          test_batch=min(opts.test_batch, ds.n_val), mean_bgr=ds.mean_bgr,
                          deploy_batch=opts.test_batch,
                          num_classes=len(classes_of(get_app(opts.app), ds.record)))
    tv = out / "train_val.prototxt"
    header = f"# medft {__version__} run {opts.app}/{opts.variant}: written by medft train\n"
    write_text_atomic(tv, header + to_text(train_val_net(opts.app, opts.config, opts.init, net_opts)))
    write_text_atomic(out / "deploy.prototxt", header + to_text(deploy_net(opts.app, opts.config, opts.init, net_opts)))
    sp = solver(SolverOptions(n_train=ds.n_train, n_val=ds.n_val, train_batch=net_opts.train_batch,
                              test_batch=net_opts.test_batch, net=str(tv.resolve()),
                              snapshot_prefix=str((out / "snapshots" / opts.variant).resolve()),
                              mode="GPU" if opts.gpu is not None else "CPU",
                              max_epochs=opts.max_epochs, random_seed=opts.seed))
    sp.test_interval = 0  # medft scores validation itself (AUC), Caffe's test loop is not needed
    sp.ClearField("test_iter")
    sp.snapshot = 0  # medft snapshots at each epoch end
    sp.snapshot_after_train = False
    (out / "snapshots").mkdir(parents=True, exist_ok=True)
    path = out / "solver.prototxt"
    write_text_atomic(path, header + f"# stepsize = ceil({ds.n_train} / {net_opts.train_batch}) = one epoch\n"
                      + to_text(sp))
    return path, sp.stepsize


def latest_state(out: Path, logged: set[int] | None = None) -> tuple[Path, int] | None:
    """The newest ``*.solverstate`` in ``out/snapshots`` and its iteration, if any.

    With ``logged`` (iterations in log.csv) only those count: a snapshot is logged after Caffe
    finished writing it, so a run killed mid-write never resumes from a truncated file.
    """
    best = None
    for p in (out / "snapshots").glob("*_iter_*.solverstate"):
        m = re.search(r"_iter_(\d+)\.solverstate$", p.name)
        if not m or (logged is not None and int(m.group(1)) not in logged):
            continue
        if best is None or int(m.group(1)) > best[1]:
            best = (p, int(m.group(1)))
    return best


def prepare_resume(state: Path) -> None:
    """Check a snapshot pair before Caffe reads it (a damaged file aborts Caffe) and point the
    solverstate at the caffemodel beside it, so a run folder that was moved still resumes."""
    from google.protobuf.message import DecodeError

    from medft.schema import pb, read_net
    from medft.transfer import check_covers

    model = state.with_suffix(".caffemodel")
    try:
        msg = pb.SolverState.FromString(state.read_bytes())
        read_net(model)
        check_covers(model, state.parent.parent / "deploy.prototxt")
    except (DecodeError, OSError, ValueError, MedftError) as e:
        raise MedftError(f"{state.parent}: the snapshot to resume from is damaged ({type(e).__name__}: {e}); "
                         "`medft train --force` starts the run over") from None
    if not model.is_file() or msg.iter <= 0:
        raise MedftError(f"{state}: no caffemodel beside it, or no iteration; `medft train --force` starts over")
    if msg.learned_net != str(model.resolve()):
        msg.learned_net = str(model.resolve())
        write_text_atomic(state, msg.SerializeToString())


def prune_snapshots(out: Path, keep_iteration: int) -> None:
    """Delete snapshots older than ``keep_iteration`` (an AlexNet snapshot pair is ~480 MB);
    the newest pair is the resume point and ``best.caffemodel`` keeps the selected weights."""
    for p in (out / "snapshots").glob("*_iter_*.*"):
        m = re.search(r"_iter_(\d+)\.(caffemodel|solverstate)$", p.name)
        if m and int(m.group(1)) < keep_iteration:
            p.unlink()


def read_log(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_log(path: Path, rows: list[dict]) -> None:
    from medft.prep.manifest import write_rows_csv

    write_rows_csv(path, rows, LOG_COLUMNS)


def _check_weights(opts: TrainOptions) -> Path | None:
    cfg = get_config(opts.config)
    if not cfg.pretrained:
        if opts.weights:
            raise MedftError("scratch trains from random weights; do not pass --weights")
        return None
    if not opts.weights:
        raise MedftError(f"{opts.config} fine-tunes a pre-trained AlexNet: pass --weights "
                         "(`make weights` for BVLC AlexNet, or `medft pretrain` for the offline stand-in)")
    path = Path(opts.weights)
    if not path.is_file():
        raise MedftError(f"{path}: pretrained weights not found")
    return path


def train(opts: TrainOptions, engine: Engine | None = None, log=print) -> dict:
    """Train (or resume, or skip when done) one run; return its run.json record."""
    get_app(opts.app)
    get_config(opts.config)
    opts.check()
    out = run_dir(opts.runs, opts.app, opts.variant, opts.fraction, opts.seed)
    weights = _check_weights(opts)
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
            _clear_run(out)
        elif record.get("status") == "running":
            check_resumable(record, ds, opts, out)
        solver_path, stepsize = write_run_files(opts, ds, out)
        write_text_atomic(out / paths.RUN_RECORD, json.dumps(_start_record(opts, ds), indent=2) + "\n")
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


#: what must match for a run to resume: a different data set, batch or epoch length would mix two runs
RESUME_KEYS = ("fingerprint", "n_train", "n_val", "train_batch", "stepsize")


def resume_facts(opts: TrainOptions, ds: Dataset) -> dict:
    """What must match for a run to resume (:data:`RESUME_KEYS`): data fingerprint and sizes, the
    training batch and the epoch length it gives (the solver's stepsize)."""
    batch = min(opts.train_batch, ds.n_train)
    return {"fingerprint": ds.fingerprint, "n_train": ds.n_train, "n_val": ds.n_val, "train_batch": batch,
            "stepsize": iters_per_epoch(ds.n_train, batch)}


def _start_record(opts: TrainOptions, ds: Dataset) -> dict:
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


def check_resumable(record: dict, ds: Dataset, opts: TrainOptions, out: Path) -> None:
    """Refuse to resume an interrupted run whose data set, batch or epoch length differ from now."""
    now = resume_facts(opts, ds)
    was = record.get("resume", {})
    diff = [f"{k} {was.get(k)!r} -> {now[k]!r}" for k in RESUME_KEYS if k in was and was[k] != now[k]]
    if diff:
        raise MedftError(f"{out} holds an interrupted run of other data or settings ({'; '.join(diff)}); "
                         "--force starts it over")


def _clear_run(out: Path) -> None:
    """Remove what medft train wrote in ``out`` (nothing else), keeping the folder and its lock."""
    for name in ("snapshots",):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in (paths.LOG, paths.RUN_RECORD, paths.BEST_MODEL, BEST_RECORD, _PENDING_MODEL, _PENDING_RECORD,
                 "weights.json", "train_val.prototxt",
                 "deploy.prototxt", "solver.prototxt", "solver_cli.prototxt", "caffe_train.log",
                 paths.PREDICTIONS, "test_probs.npy", "test_patches.csv"):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "cimt_maps", ignore_errors=True)


BEST_RECORD = "best.json"


_PENDING_MODEL, _PENDING_RECORD = ".best.caffemodel.pending", ".best.json.pending"


def stage_best(out: Path, model: Path, row: dict) -> None:
    """First half of selecting a new best epoch, before its log.csv row: the snapshot copied (and
    flushed) and its record written under pending names. :func:`commit_best` finishes after the row."""
    from medft.weights import sha1_of

    _copy_durably(model, out / _PENDING_MODEL)
    faults.point("train:after-best-model")
    write_text_atomic(out / _PENDING_RECORD, json.dumps({
        "epoch": int(row["epoch"]), "iteration": int(row["iteration"]), "val_auc": float(row["val_auc"]),
        "sha1": sha1_of(out / _PENDING_MODEL)}, indent=2) + "\n")


def commit_best(out: Path) -> None:
    """Second half: the pending model and record become best.caffemodel and best.json."""
    os.replace(out / _PENDING_MODEL, out / paths.BEST_MODEL)
    os.replace(out / _PENDING_RECORD, out / BEST_RECORD)


def settle_best(out: Path) -> None:
    """Finish or undo a best-model selection a kill interrupted: roll forward if log.csv names the
    pending epoch as the best, else drop the pending files (the previous best stays)."""
    pending = out / _PENDING_RECORD
    if not (out / _PENDING_MODEL).exists():
        pending.unlink(missing_ok=True)
        return
    rows = read_log(out / paths.LOG)
    best = max(rows, key=lambda r: float(r["val_auc"]), default=None)
    meta = json.loads(pending.read_text()) if pending.is_file() else {}
    if best is not None and meta and int(meta.get("epoch", -1)) == int(best["epoch"]):
        commit_best(out)
    else:
        (out / _PENDING_MODEL).unlink(missing_ok=True)
        pending.unlink(missing_ok=True)


def improves(row: dict, best: dict | None) -> bool:
    """Whether an epoch's log row beats the best so far, compared as log.csv holds them (6 decimals):
    a tie is no improvement, so the first epoch of the highest logged AUC stays the selected one,
    the row that every later reading of log.csv (``max`` over its rows) selects."""
    return best is None or float(row["val_auc"]) > float(best["val_auc"])


def check_best(out: Path) -> None:
    """best.caffemodel must be the snapshot that log.csv selects (best.json's SHA-1); refuse otherwise."""
    from medft.weights import sha1_of

    best, meta_path = out / paths.BEST_MODEL, out / BEST_RECORD
    rows = read_log(out / paths.LOG)
    if not rows:
        raise MedftError(f"{out}: no log.csv rows: the run never finished an epoch; --force starts it over")
    want = max(rows, key=lambda r: float(r["val_auc"]))
    if not best.is_file() or not meta_path.is_file():
        raise MedftError(f"{best}: missing although log.csv selects epoch {want['epoch']}; "
                         "`medft train --force` retrains the run")
    meta = json.loads(meta_path.read_text())
    if int(meta.get("epoch", -1)) != int(want["epoch"]) or meta.get("sha1") != sha1_of(best):
        raise MedftError(f"{best}: not the weights of epoch {want['epoch']} that log.csv selects (stale or "
                         "damaged); `medft train --force` retrains the run")


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
        report = json.loads((out / "weights.json").read_text()) if (out / "weights.json").is_file() else None
        log(f"medft train: resuming {out} from iteration {it} ({resume[0].name})")
        return it, [r for r in rows if int(r["iteration"]) <= it], report
    it = engine.start(solver_path, weights=weights, gpu=opts.gpu, snapshot_every=stepsize)
    report = engine.weights_report
    if report is not None:
        write_text_atomic(out / "weights.json", json.dumps(report, indent=2) + "\n")
        log("medft train: " + report["summary"])
    return it, [], report


def _one_epoch(opts: TrainOptions, engine: Engine, ds: Dataset, out: Path, epoch: int, stepsize: int,
               best: dict | None) -> tuple[dict, bool, StepStats]:
    """Train epoch ``epoch`` (1-based), snapshot, score validation; stage the model if it is the new
    best. (log row, whether it is the new best, the engine's stats)."""
    t0 = time.time()
    checks.check_space(out / "snapshots", checks.snapshot_bytes(out / "snapshots", opts.weights))
    stats = engine.train_until(epoch * stepsize, on_iter=checks.watch_loss(epoch, out))
    checks.check_loss(stats.losses, epoch, (epoch - 1) * stepsize, out)
    model, _state = engine.snapshot()
    verify_snapshot(out, model, opts.config)  # the pretrained layers were loaded; frozen ones kept
    probs, labels = engine.predict_lmdb(ds.val_lmdb, ds.mean_bgr, opts.test_batch, deploy=out / "deploy.prototxt")
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
    record = _record(opts, ds, stepsize, weights, report, best, epoch,
                     "patience" if since_best >= opts.patience else "max_epochs", time.time() - t_start)
    write_text_atomic(out / paths.RUN_RECORD, json.dumps(record, indent=2) + "\n")
    log(f"medft train: done, best val AUC {float(best['val_auc']):.4f} at epoch {best['epoch']} "
        f"-> {out / paths.BEST_MODEL}")
    return record


def _record(opts: TrainOptions, ds: Dataset, stepsize: int, weights: Path | None, report: dict | None,
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
    from medft.weights import describe

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


def _copy_durably(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` atomically, flushed to disk before it takes ``dst``'s name."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, dst)
