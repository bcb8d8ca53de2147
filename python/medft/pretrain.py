"""``medft pretrain``: the offline stand-in for the ImageNet AlexNet. It is NOT ImageNet.

The paper fine-tunes BVLC's AlexNet, trained 360,000 iterations on 1.2 million ImageNet
photographs. Without a network that model cannot be had, so this module makes a *stand-in*
with the same architecture and layer names (conv1 .. fc7, fc8): AlexNet trained from scratch
with real Caffe SGD on a synthetic, natural-image-like source task for a bounded budget.

Source task: :mod:`medft.source_task` (10 classes of formula-driven patterns); this module
trains on it.

Solver: BVLC's reference AlexNet solver (``models/bvlc_alexnet/solver.prototxt``: SGD, momentum
0.9, weight_decay 0.0005) with a small batch (default 16, not 256) and BVLC's base_lr 0.01 scaled
to it by the square-root rule (0.0025), so the default budget takes minutes on a 2-core CPU. BVLC's
step policy (gamma 0.1 every 100,000 iterations) is never reached by a short budget (the default
``schedule`` "bvlc"), so SGD ends at its full rate and the weights it stops at depend on the last
few steps, and on the CPU's floating-point rounding through them. ``schedule`` "poly" starts at
twice that rate and lowers it linearly to 0 at the last iteration (Caffe's poly policy, power 1:
the same mean rate), so that training settles; a stand-in's sidecar without a schedule is "bvlc".

Two changes make a few hundred iterations enough (BVLC's Gaussian start needs thousands to
leave chance; measured: held-out accuracy 0.12 after 150 iterations). Training normalises
every conv/fc6/fc7 output (Caffe BatchNorm and a learned shift) and scales the mean-subtracted
pixels by :data:`INPUT_SCALE`, with Xavier fillers and conv1 starting from a formula-driven bank
(:func:`medft.source_task.conv1_bank`); before saving, both are folded into the weights
(:func:`fold_for_deploy`), so the saved model is the plain AlexNet of Table I on raw pixels minus
the mean, computing exactly what the normalised net computed (tested in real Caffe). Its sidecar
records the held-out accuracy of the saved model on fresh source-task images.

The caffemodel is saved atomically with a JSON sidecar (``kind: "standin"``, the budget, seed,
final loss, training and held-out accuracy, time). Whatever uses it says "NOT ImageNet"
(:func:`medft.caffemodel.describe`); features from a few minutes of synthetic patterns are far
weaker than ImageNet's, so results fine-tuned from it are not the paper's.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from collections import deque
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from medft import paths
from medft.alexnet import INPUT_SIZE, source_task_net
from medft.caffemodel import STANDIN, describe, read_sidecar, sha1_of, sidecar_path
from medft.errors import MedftError
from medft.paths import standin_path
from medft.provenance import stamp
from medft.schedule import INIT_NAMES
from medft.schema import array_to_blob, blob_to_array, pb
from medft.solver import RANDOM_SEED
from medft.source_task import CLASSES, conv1_bank, render, source_images, write_source_lmdb
from medft.util.atomic import write_text_atomic
from medft.util.progress import duration
from medft.util.prototxt import to_text

__all__ = ["CLASSES", "PretrainOptions", "render", "source_images", "write_source_lmdb", "solver_param",
           "source_task_deploy", "existing",
           "pretrain", "describe"]

#: BVLC AlexNet reference solver values (models/bvlc_alexnet/solver.prototxt).
BASE_LR, MOMENTUM, WEIGHT_DECAY, GAMMA, STEPSIZE = 0.01, 0.9, 0.0005, 0.1, 100_000
BVLC_BATCH = 256


def scaled_lr(batch: int) -> float:
    """BVLC's learning rate for a batch of ``batch`` instead of 256, by the square-root rule
    (Krizhevsky 2014, "One weird trick for parallelizing convolutional neural networks")."""
    return BASE_LR * math.sqrt(batch / BVLC_BATCH)

#: Pretraining multiplies the mean-subtracted pixels by this (their standard deviation is about 64
#: levels), so He initialisation starts at unit-scale activations; the saved conv1 weights are
#: multiplied by it (:func:`fold_for_deploy`), so the stand-in takes raw pixels minus the mean like
#: every net of the study and computes exactly what it computed in training.
INPUT_SCALE = 1 / 64


@dataclass(frozen=True)
class PretrainOptions:
    """The budget and seed of a stand-in (defaults: about 6 minutes on 2 CPU cores)."""

    iterations: int = 250
    batch: int = 16
    images: int = 2000  # source-task training images, cycled by the Data layer
    heldout: int = 100  # fresh images for the held-out accuracy in the sidecar
    seed: int = RANDOM_SEED
    conv1: str = "bank"  # first layer's start: "bank" (medft.source_task.conv1_bank) or "filler"
    init: str = "xavier"  # weight fillers of the other layers (and of conv1 with "filler")
    schedule: str = "bvlc"  # learning rate: "bvlc" (BVLC's step policy) or "poly" (2x the rate, linear to 0)

    def check(self) -> None:
        if self.schedule not in SCHEDULES:
            raise MedftError(f"pretrain: schedule {self.schedule!r} is not one of {', '.join(SCHEDULES)}")
        if self.conv1 not in CONV1_STARTS:
            raise MedftError(f"pretrain: conv1 start {self.conv1!r} is not one of {', '.join(CONV1_STARTS)}")
        if self.init not in INIT_NAMES:
            raise MedftError(f"pretrain: init {self.init!r} is not one of {', '.join(INIT_NAMES)}")
        for name, value in asdict(self).items():
            if name not in ("seed", "conv1", "init", "schedule") and value < (0 if name == "heldout" else 1):
                raise MedftError(f"pretrain: {name} must be positive, got {value}")


#: the stand-in's learning-rate schedules (:func:`solver_param`)
SCHEDULES = ("bvlc", "poly")
#: "poly" starts at this multiple of :func:`scaled_lr` and falls linearly to 0 (mean rate: the same)
POLY_START = 2.0

#: how the stand-in's conv1 starts: formula-driven filters, or the net's weight filler
CONV1_STARTS = ("bank", "filler")
#: L2 norm of each conv1 bank filter at the start: He initialisation's expected norm, sqrt(2)
BANK_NORM = math.sqrt(2)


def conv1_start_model(path: Path) -> Path:
    """A caffemodel holding only conv1 (:func:`medft.source_task.conv1_bank`, zero bias): Caffe copies
    it by layer name over the fillers of the rest."""
    from medft.schema import write_net_binary

    net = pb.NetParameter(name="medft-conv1-bank")
    layer = net.layer.add(name="conv1", type="Convolution")
    bank = conv1_bank(norm=BANK_NORM)
    layer.blobs.add().CopyFrom(array_to_blob(bank))
    layer.blobs.add().CopyFrom(array_to_blob(np.zeros(bank.shape[0], np.float32)))
    write_net_binary(path, net)
    return path


def fold_batch_norm(net: pb.NetParameter) -> None:
    """Remove ``net``'s BatchNorm and Bias layers, folded into the weights before them (in place):
    with the running mean m, variance v (Caffe's sums over its scale factor), eps and the learned
    shift s, W' = W / sqrt(v + eps) and b' = (b - m) / sqrt(v + eps) + s, per output channel. At
    inference the result computes exactly what the normalised net computes with its statistics."""
    layers = {layer.name: layer for layer in net.layer}
    for layer in net.layer:
        if layer.type != "BatchNorm":
            continue
        target = layers[layer.bottom[0]]
        mean_sum, var_sum, factor = (blob_to_array(b) for b in layer.blobs)
        f = float(factor.ravel()[0])
        if f <= 0:
            raise MedftError(f"{layer.name}: no running statistics to fold (scale factor {f})")
        inv = 1.0 / np.sqrt(var_sum / f + layer.batch_norm_param.eps)
        shift = blob_to_array(layers[f"{target.name}_shift"].blobs[0])
        w, b = (blob_to_array(x).astype(np.float64) for x in target.blobs)
        target.blobs[0].CopyFrom(array_to_blob(w * inv.reshape(-1, *[1] * (w.ndim - 1))))
        target.blobs[1].CopyFrom(array_to_blob((b - mean_sum / f) * inv + shift))
    for i in reversed(range(len(net.layer))):
        if net.layer[i].type in ("BatchNorm", "Bias"):
            del net.layer[i]


def scale_input(net: pb.NetParameter, scale: float) -> None:
    """Multiply ``net``'s conv1 weights by ``scale`` (in place): conv1 of ``scale`` x pixels with
    weights W equals conv1 of the pixels with weights ``scale`` x W."""
    conv1 = [layer for layer in net.layer if layer.name == "conv1" and layer.blobs]
    if len(conv1) != 1:
        raise MedftError(f"expected one conv1 layer with weights, found {len(conv1)}")
    conv1[0].blobs[0].CopyFrom(array_to_blob(blob_to_array(conv1[0].blobs[0]) * scale))


#: (layer, the layer that reads it): outputs scaled by OUTPUT_SCALE, the reader's weights by its
#: inverse -- exact, as ReLU, max pooling and dropout commute with a positive factor
RESCALED = (("conv5", "fc6"), ("fc6", "fc7"), ("fc7", "fc8"))
#: normalised training leaves every unit at unit scale; a tenth keeps the first fine-tuning steps
#: (a fresh fc8 at the study's learning rate 0.01 over 4096 such units) from overshooting
OUTPUT_SCALE = 0.1


def rescale_outputs(net: pb.NetParameter, factor: float = OUTPUT_SCALE) -> None:
    """Make ``net`` (in place) compute the same function with the outputs of the :data:`RESCALED`
    layers multiplied by ``factor`` (their weights and bias) and their readers' weights divided by it."""
    layers = {layer.name: layer for layer in net.layer if layer.blobs}
    for name, reader in RESCALED:
        for blob in layers[name].blobs:
            blob.CopyFrom(array_to_blob(blob_to_array(blob) * factor))
        weights = layers[reader].blobs[0]
        weights.CopyFrom(array_to_blob(blob_to_array(weights) / factor))


def fold_for_deploy(model: Path, scale: float = 1.0) -> None:
    """Rewrite a trained stand-in (atomically) so it takes raw pixels minus the mean in the plain
    AlexNet of the study: batch normalisation folded (:func:`fold_batch_norm`), input scale folded
    into conv1 (:func:`scale_input`), the top layers' outputs brought down (:func:`rescale_outputs`)."""
    from medft.schema import read_net, write_net_binary

    net = read_net(model)
    fold_batch_norm(net)
    scale_input(net, scale)
    rescale_outputs(net)
    write_net_binary(model, net)


# --- nets and solver ----------------------------------------------------------------------------

def solver_param(net_path: str, iterations: int, seed: int, batch: int = BVLC_BATCH,
                 schedule: str = "bvlc") -> pb.SolverParameter:
    """BVLC's reference AlexNet solver for ``iterations`` iterations of ``batch`` images (learning
    rate :func:`scaled_lr`; no snapshots: we save ourselves); ``schedule`` "poly": from
    :data:`POLY_START` times that rate linearly to 0 at the last iteration."""
    s = pb.SolverParameter(
        net=net_path, type="SGD", base_lr=scaled_lr(batch), lr_policy="step", gamma=GAMMA, stepsize=STEPSIZE,
        momentum=MOMENTUM, weight_decay=WEIGHT_DECAY, max_iter=iterations, display=0, snapshot=0,
        snapshot_prefix=str(Path(net_path).with_name("snapshot")), solver_mode=pb.SolverParameter.CPU,
        random_seed=seed,
    )
    if schedule == "poly":
        s.base_lr, s.lr_policy, s.power = POLY_START * scaled_lr(batch), "poly", 1.0
        s.ClearField("gamma")
        s.ClearField("stepsize")
    return s


def source_task_deploy(num_classes: int = len(CLASSES), batch: int = 10, batch_norm: bool = False) -> pb.NetParameter:
    """The source-task AlexNet for inference: Input N x 3 x 227 x 227, ImageNet layer names, ``prob``;
    ``batch_norm``: the normalised net as trained (before :func:`fold_for_deploy`)."""
    train = source_task_net(num_classes, "unused", 1, batch_norm=batch_norm)
    net = pb.NetParameter(name=f"{train.name}-deploy")
    inp = net.layer.add(name="data", type="Input", top=["data"])
    inp.input_param.shape.add(dim=[batch, 3, INPUT_SIZE, INPUT_SIZE])
    for layer in train.layer:
        if layer.type not in ("Data", "SoftmaxWithLoss"):
            net.layer.add().CopyFrom(layer)
    net.layer.add(name="prob", type="Softmax", bottom=["fc8"], top=["prob"])
    return net


def _heldout_accuracy(engine, work: Path, weights: Path, opts: PretrainOptions, mean: tuple) -> float | None:
    """Accuracy of the saved weights (TEST phase) on ``opts.heldout`` fresh source-task images."""
    if not opts.heldout:
        return None
    batch = min(opts.heldout, 25)
    path = work / paths.DEPLOY_NET
    write_text_atomic(path, to_text(source_task_deploy(batch=batch)))
    predictor = engine.predictor(path, weights, mean, batch)
    images, labels = zip(*[(img, lab) for img, lab in islice(source_images(opts.heldout, opts.seed, split=1),
                                                              opts.heldout)], strict=True)
    prob = predictor(np.stack(images))
    return round(int((prob.argmax(axis=1) == np.asarray(labels)).sum()) / opts.heldout, 4)


# --- training -----------------------------------------------------------------------------------


def recorded_budget(meta: dict) -> dict:
    """A sidecar's budget, with the schedule of stand-ins saved before it was recorded ("bvlc")."""
    budget = meta.get("budget")
    return {"schedule": "bvlc", **budget} if isinstance(budget, dict) else {}


def existing(out: Path, opts: PretrainOptions) -> bool:
    """True if ``out`` is a finished stand-in of exactly this budget and seed (so it is reused).

    A stand-in of another budget, or a file at ``out`` that is not a medft stand-in, raises
    :class:`MedftError` asking for ``--force`` rather than being replaced silently.
    """
    if not out.is_file():
        return False
    meta = read_sidecar(out)
    if not meta or meta.get("kind") != STANDIN or meta.get("sha1") != sha1_of(out):
        raise MedftError(f"{out} exists but is not a finished medft stand-in (no matching sidecar "
                         f"{sidecar_path(out).name}); pass --force to replace it")
    if recorded_budget(meta) != asdict(opts):
        raise MedftError(f"{out} is a stand-in of another budget ({meta.get('budget')}); pass --force "
                         f"to retrain it with {asdict(opts)}")
    return True


def pretrain(opts: PretrainOptions | None = None, out: str | Path | None = None, force: bool = False,
             log=print, engine: str = "pycaffe", gpu: int | None = None, refresh: bool = False) -> Path:
    """Train the stand-in AlexNet on the synthetic source task; save it and its sidecar; return its path.

    ``out`` defaults to :func:`medft.paths.standin_path`. An existing stand-in of the same budget
    is reused unless ``force``; ``refresh`` retrains a medft stand-in of another budget or recipe
    (what `make standin` asks, so a cache from an older recipe is replaced).
    Progress lines (iteration, loss, accuracy, images/s, ETA) go to ``log``.
    The LMDB and nets live in a temporary folder beside ``out``, removed at the end. ``engine`` and
    ``gpu`` choose how Caffe runs (:func:`medft.engines.make_engine`).
    """
    from medft.engines import make_engine
    from medft.engines.env import caffe_version

    opts = opts or PretrainOptions()
    opts.check()
    out = Path(out) if out is not None else standin_path()
    if refresh and not force and out.is_file() and (read_sidecar(out) or {}).get("kind") == STANDIN \
            and recorded_budget(read_sidecar(out)) != asdict(opts):
        log(f"pretrain: {out} is a stand-in of another recipe ({read_sidecar(out).get('budget')}); retraining it")
        force = True
    if not force and existing(out, opts):
        log(f"pretrain: reusing {out}: {describe(out)} (--force to retrain)")
        return out
    caffe = make_engine(engine, gpu)  # the solver's random_seed seeds Caffe's random stream
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".medft-pretrain-", dir=out.parent))
    t0 = time.monotonic()
    try:
        log(f"pretrain: STAND-IN, NOT ImageNet: {len(CLASSES)} synthetic classes, {opts.images} images, "
            f"{opts.iterations} iterations x batch {opts.batch}, seed {opts.seed}")
        lmdb_path = work / "source_lmdb"
        mean = write_source_lmdb(lmdb_path, opts.images, opts.seed)
        log(f"pretrain: wrote {opts.images} source-task images in {time.monotonic() - t0:.1f}s; "
            f"mean BGR {mean}")
        net_path, solver_path = work / "train.prototxt", work / paths.SOLVER
        net = source_task_net(len(CLASSES), str(lmdb_path), opts.batch, mean, opts.init, INPUT_SCALE, batch_norm=True)
        net.layer.add(name="accuracy", type="Accuracy", bottom=["fc8", "label"], top=["accuracy"])
        write_text_atomic(net_path, to_text(net))
        write_text_atomic(solver_path, to_text(
            solver_param(str(net_path), opts.iterations, opts.seed, opts.batch, opts.schedule)))
        start = conv1_start_model(work / "conv1_bank.caffemodel") if opts.conv1 == "bank" else None
        stats = _train(caffe, solver_path, work / "model.caffemodel", opts, log, weights=start)
        fold_for_deploy(work / "model.caffemodel", INPUT_SCALE)
        heldout = _heldout_accuracy(caffe, work, work / "model.caffemodel", opts, mean)
        seconds = round(time.monotonic() - t0, 1)
        meta = {
            "kind": STANDIN,
            "warning": "STAND-IN, NOT ImageNet: AlexNet trained briefly on formula-driven patterns by medft "
                       "pretrain; results fine-tuned from it are not the paper's",
            "source_task": {"classes": list(CLASSES), "size": INPUT_SIZE, "mean_bgr": list(mean),
                            "generator": "medft.source_task.render"},
            "conv1_start": (f"medft.source_task.conv1_bank (Gabor and colour-opponent filters), norm {BANK_NORM:.3f}"
                            if opts.conv1 == "bank" else f"{opts.init} filler"),
            "input_scale": {"training": INPUT_SCALE, "saved": "folded into conv1's weights: raw pixels minus mean"},
            "budget": asdict(opts),
            "solver": {"type": "SGD", "momentum": MOMENTUM, "weight_decay": WEIGHT_DECAY,
                       **({"base_lr": POLY_START * scaled_lr(opts.batch), "lr_policy": "poly", "power": 1.0}
                          if opts.schedule == "poly" else
                          {"base_lr": scaled_lr(opts.batch), "lr_policy": "step", "gamma": GAMMA,
                           "stepsize": STEPSIZE}),
                       "reference": "BVLC models/bvlc_alexnet/solver.prototxt, batch reduced, "
                                    "learning rate by the square-root rule"},
            **stats,
            "heldout_accuracy": heldout,
            "seconds": seconds,
            "caffe_version": caffe_version(gpu is not None),
            "engine": engine, "device": "CPU" if gpu is None else f"GPU {gpu}",
            **stamp(),
            "sha1": sha1_of(work / "model.caffemodel"),
        }
        # sidecar first: a model without its sidecar is never taken for a finished stand-in
        write_text_atomic(sidecar_path(out), json.dumps(meta, indent=2) + "\n")
        os.replace(work / "model.caffemodel", out)
    finally:
        caffe.close()
        shutil.rmtree(work, ignore_errors=True)
    log(f"pretrain: saved {out} in {duration(time.monotonic() - t0)}: final loss {meta['final_loss']:.3f}, "
        f"train acc {meta['train_accuracy']:.2f}, held-out acc {heldout}; {describe(out)}")
    return out


def _train(engine, solver_path: Path, model: Path, opts: PretrainOptions, log, weights: Path | None = None) -> dict:
    """Run ``opts.iterations`` SGD steps with progress lines; save the net to ``model``."""
    window = max(1, min(20, opts.iterations // 5))
    losses: deque[float] = deque(maxlen=window)
    hits: deque[float] = deque(maxlen=window)
    t0 = time.monotonic()
    last = [t0]

    def progress(it: int, loss: float, outputs: dict[str, float]) -> None:
        if not math.isfinite(loss):
            raise MedftError(f"pretrain: loss became {loss} at iteration {it}; nothing saved")
        losses.append(loss)
        hits.append(outputs.get("accuracy", float("nan")))
        now = time.monotonic()
        if it == 1 or it == opts.iterations or now - last[0] >= 10:
            last[0] = now
            rate = it * opts.batch / max(now - t0, 1e-9)
            log(f"pretrain: iter {it}/{opts.iterations}  loss {loss:.3f} (mean of last {len(losses)}: "
                f"{np.mean(losses):.3f})  train acc {np.mean(hits):.2f}  {rate:.1f} img/s  "
                f"ETA {duration((opts.iterations - it) * opts.batch / rate)}")

    engine.start(solver_path, weights=weights, snapshot_every=opts.iterations)
    engine.train_until(opts.iterations, on_iter=progress)
    if not losses or not math.isfinite(losses[-1]):
        raise MedftError("pretrain: training reported no finite loss; nothing saved")
    snap, state = engine.snapshot()
    os.replace(snap, model)
    state.unlink(missing_ok=True)
    return {"final_loss": round(float(np.mean(losses)), 4), "train_accuracy": round(float(np.mean(hits)), 4),
            "train_window_iterations": len(losses), "train_seconds": round(time.monotonic() - t0, 1)}
