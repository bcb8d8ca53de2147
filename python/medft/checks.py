"""Checks of what Caffe is about to read or write, made before it does: Caffe answers a NaN weight,
a label outside the net's classes, a damaged LMDB record or a full disk by aborting the whole
process, so each is refused here in one line naming the file, the cause and the fix.

* :func:`check_caffemodel`: every weight of a ``.caffemodel`` finite and below :data:`WEIGHT_LIMIT`;
* :func:`check_lmdb`: every record a Datum of the net's input shape with a label in ``0..C-1``,
  read in a child process (a damaged page can crash the reader) and remembered per data set;
* :func:`check_space`: free disk space for one epoch's snapshot pair and the best-model copy;
* :func:`check_loss`: an epoch whose loss is not finite or has exploded is a diverged run.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import shutil
import signal
import sys
from pathlib import Path

import numpy as np

from medft import guard, paths
from medft.errors import MedftError

#: no trained or initialised CNN weight comes near this; a larger one overflows float32 activations
WEIGHT_LIMIT = 1e4

#: SoftmaxWithLoss clips the true class's probability at FLT_MIN, so a patch's loss is at most
#: -ln(FLT_MIN) = 87.3; an epoch mean above this puts < e^-25 on the true class: the weights exploded
DIVERGED_LOSS = 25.0

#: bytes of one AlexNet caffemodel (about 61 million float32 weights): the estimate before any snapshot
ALEXNET_MODEL_BYTES = 61_000_000 * 4


# -- weights ------------------------------------------------------------------------------------

def check_caffemodel(path: str | Path, what: str = "weights") -> None:
    """Refuse a ``.caffemodel`` holding a NaN, an infinity or a weight beyond :data:`WEIGHT_LIMIT`."""
    from medft.schema import blob_values, read_net

    path = Path(path)
    guard.note("weights", path)
    net = read_net(path)
    for layer in list(net.layer) + list(net.layers):
        for i, blob in enumerate(layer.blobs):
            v = blob_values(blob)
            finite = np.isfinite(v)
            if not finite.all():
                raise MedftError(f"{path}: {what} of layer {layer.name!r} (blob {i}) hold {int((~finite).sum())} "
                                 "NaN or infinite value(s); use other weights (`medft train --force` starts a "
                                 "run from its --weights again)")
            big = float(np.abs(v).max()) if v.size else 0.0
            if big > WEIGHT_LIMIT:
                raise MedftError(f"{path}: {what} of layer {layer.name!r} (blob {i}) reach {big:.3g} (more than "
                                 f"{WEIGHT_LIMIT:g}: exploded); use other weights (`medft train --force` starts a "
                                 "run from its --weights again)")


def check_snapshot(state: str | Path) -> None:
    """A snapshot pair to resume from: its weights (:func:`check_caffemodel`) and the solver's
    momentum history in the ``.solverstate`` finite."""
    from medft.schema import blob_values, pb

    state = Path(state)
    check_caffemodel(state.with_suffix(paths.CAFFEMODEL), "the weights of the snapshot to resume from")
    msg = pb.SolverState.FromString(state.read_bytes())
    for i, blob in enumerate(msg.history):
        if not np.isfinite(blob_values(blob)).all():
            raise MedftError(f"{state}: the solver's history (blob {i}) holds NaN or infinite values: the snapshot "
                             "was written by a diverged run; `medft train --force` starts the run over")


# -- data ---------------------------------------------------------------------------------------

def _scan(path: str, num_classes: int, shape: tuple[int, int, int], progress: bool, conn) -> None:
    """Child process: decode every record; send ("ok", count) or ("error", message)."""
    import lmdb
    from tqdm import tqdm

    from medft.datum_lmdb import decode_record

    try:
        env = lmdb.open(path, readonly=True, lock=False, subdir=True)
        try:
            n = int(env.stat()["entries"])
            with env.begin() as txn:
                bar = tqdm(txn.cursor(), total=n, desc=f"checking {Path(path).name}", unit="record",
                           disable=not progress or n < 5000, file=sys.stderr, mininterval=0.5)
                count = 0
                for k, v in bar:
                    arr, label = decode_record(Path(path), k, v)
                    key = k.decode(errors="replace")
                    if arr.shape != shape:
                        raise MedftError(f"{path}: record {key!r} is {arr.shape}, the net reads {shape}; "
                                         "run `medft prep --force`")
                    if not 0 <= label < num_classes:
                        raise MedftError(f"{path}: record {key!r} has label {label}, not a class of this "
                                         f"{num_classes}-class net (0..{num_classes - 1}); run `medft prep --force`")
                    count += 1
        finally:
            env.close()
        conn.send(("ok", count))
    except (MedftError, lmdb.Error) as e:
        conn.send(("error", str(e) if isinstance(e, MedftError) else f"{path}: unreadable LMDB ({e}); "
                   "run `medft prep --force`"))


def _identity(path: Path) -> list:
    st = (Path(path) / paths.LMDB_DATA).stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _cache_key(path: Path, num_classes: int, shape: tuple[int, ...], fingerprint) -> str:
    return json.dumps([Path(path).name, _identity(path), num_classes, list(shape), fingerprint])


def check_lmdb(path: str | Path, num_classes: int, shape: tuple[int, int, int] = (3, 227, 227),
               fingerprint=None, progress: bool = True) -> None:
    """Every record of the LMDB at ``path`` must decode to a ``shape`` Datum with a label in
    ``0..num_classes-1``. Read in a child process, so a damaged page that crashes the reader is
    reported too; a pass is remembered in the data set's :data:`medft.paths.CHECKED_LMDBS` (by the data set's
    fingerprint and the LMDB file's size, time and inode), so it runs once per data set."""
    path = Path(path)
    guard.note("data", path)
    cache = path.parent / paths.CHECKED_LMDBS
    key = _cache_key(path, num_classes, shape, fingerprint)
    try:
        done = set(json.loads(cache.read_text()))
    except (OSError, ValueError, TypeError):
        done = set()
    if key in done:
        return
    ctx = multiprocessing.get_context("fork")
    here, there = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_scan, args=(str(path), num_classes, tuple(shape), progress, there), daemon=True)
    child.start()
    there.close()
    try:
        result = here.recv()
    except EOFError:
        result = None
    child.join()
    if result is None:
        sig = -child.exitcode if child.exitcode and child.exitcode < 0 else None
        why = f"killed by {signal.Signals(sig).name}" if sig else f"exit {child.exitcode}"
        raise MedftError(f"{path}: damaged LMDB (reading it crashed the reader: {why}); run `medft prep --force`")
    if result[0] == "error":
        raise MedftError(result[1])
    from medft.util.atomic import write_text_atomic

    try:
        write_text_atomic(cache, json.dumps(sorted(done | {key}), indent=1) + "\n")
    except OSError:
        pass  # a read-only data set is checked again next time


# -- disk ---------------------------------------------------------------------------------------

def snapshot_bytes(snapshots: Path, weights: Path | None = None) -> int:
    """Bytes one epoch writes: the newest snapshot pair there plus the best-model copy, else an
    estimate from ``weights`` or an AlexNet's size."""
    pairs = sorted(Path(snapshots).glob(paths.snapshot_glob(paths.CAFFEMODEL)), key=lambda p: p.stat().st_mtime)
    if pairs:
        model = pairs[-1]
        state = model.with_suffix(paths.SOLVERSTATE)
        return 2 * model.stat().st_size + (state.stat().st_size if state.is_file() else model.stat().st_size)
    model = Path(weights).stat().st_size if weights and Path(weights).is_file() else ALEXNET_MODEL_BYTES
    return 3 * model


def check_space(folder: str | Path, need: int) -> None:
    """Refuse to start an epoch whose snapshot would not fit on ``folder``'s disk."""
    folder = Path(folder)
    guard.note("snapshots", folder)
    free = shutil.disk_usage(folder).free
    if free < need:
        raise MedftError(f"{folder}: {free / 1e6:.0f} MB free, an epoch's snapshot and best model need about "
                         f"{need / 1e6:.0f} MB; free space on that disk or train with --runs elsewhere "
                         "(the run resumes from its last snapshot)")


# -- divergence ---------------------------------------------------------------------------------

class Diverged(MedftError):
    """The loss of a run became non-finite or exploded."""


#: in-process engines abandoned after a divergence: a NaN in Caffe's max pooling leaves an argmax of
#: -1 that its backward pass writes through, so freeing the solver may abort; they are never freed
ABANDONED: list = []


def abandon(engine) -> None:
    """After a divergence: stop an engine's child processes, but never free an in-process solver."""
    if getattr(engine, "proc", None) is not None or not hasattr(engine, "solver"):
        engine.close()
    else:
        ABANDONED.append(engine)


def watch_loss(epoch: int, out: Path):
    """``on_iter`` for an engine: stop at the first non-finite loss, before another SGD step uses it."""

    def on_iter(iteration: int, loss: float, outputs: dict) -> None:
        if not math.isfinite(loss):
            raise Diverged(f"{out}: training diverged in epoch {epoch} (loss {loss} at iteration {iteration}); "
                           "the epoch's snapshot is not kept and the run stops at its last good epoch: check the "
                           "data and --weights, or `medft train --force` to start over")

    return on_iter


def check_loss(losses: list[float], epoch: int, first_iteration: int, out: Path) -> None:
    """Refuse an epoch whose loss is not finite or whose mean passed :data:`DIVERGED_LOSS`: the
    run diverged, and its snapshot would replace good weights with exploded ones."""
    bad = next((i for i, v in enumerate(losses) if not math.isfinite(v)), None)
    mean = float(np.mean(losses)) if losses else float("nan")
    if bad is None and (not losses or mean <= DIVERGED_LOSS):
        return
    what = (f"loss {losses[bad]} at iteration {first_iteration + bad + 1}" if bad is not None
            else f"mean loss {mean:.4g} > {DIVERGED_LOSS:g}")
    raise Diverged(f"{out}: training diverged in epoch {epoch} ({what}); the epoch's snapshot is not kept and "
                     "the run stops at its last good epoch: check the data and --weights, or `medft train "
                     "--force` to start over")


def remove_snapshot(model: Path) -> None:
    """Delete a snapshot pair that must never be resumed from (written by a diverged epoch)."""
    for p in (model, model.with_suffix(paths.SOLVERSTATE)):
        p.unlink(missing_ok=True)



def check_training_inputs(ds, num_classes: int, weights: Path | None) -> None:
    """What `medft train` hands Caffe: the pretrained weights and every train and validation record."""
    if weights is not None:
        check_caffemodel(weights, "pretrained weights")
    fingerprint = ds.fingerprint.get("data") if isinstance(ds.fingerprint, dict) else ds.fingerprint
    for lmdb_path in (ds.train_lmdb, ds.val_lmdb):
        check_lmdb(lmdb_path, num_classes, fingerprint=fingerprint)
    guard.note("data", ds.root)  # Caffe reads both from here on
