"""Resuming an interrupted run: what must match, the snapshot to go on from, and pruning older ones."""

from __future__ import annotations

from pathlib import Path

from medft import paths
from medft.errors import MedftError
from medft.prep.dataset import Dataset
from medft.solver import iters_per_epoch
from medft.train.options import TrainOptions
from medft.util.atomic import write_text_atomic

#: what must match for a run to resume: a different data set, batch or epoch length would mix two runs
RESUME_KEYS = ("fingerprint", "n_train", "n_val", "train_batch", "stepsize")


def resume_facts(opts: TrainOptions, ds: Dataset) -> dict:
    """What must match for a run to resume (:data:`RESUME_KEYS`): data fingerprint and sizes, the
    training batch and the epoch length it gives (the solver's stepsize)."""
    batch = min(opts.train_batch, ds.n_train)
    return {"fingerprint": ds.fingerprint, "n_train": ds.n_train, "n_val": ds.n_val, "train_batch": batch,
            "stepsize": iters_per_epoch(ds.n_train, batch)}


def check_resumable(record: dict, ds: Dataset, opts: TrainOptions, out: Path) -> None:
    """Refuse to resume an interrupted run whose data set, batch or epoch length differ from now."""
    now = resume_facts(opts, ds)
    was = record.get("resume", {})
    diff = [f"{k} {was.get(k)!r} -> {now[k]!r}" for k in RESUME_KEYS if k in was and was[k] != now[k]]
    if diff:
        raise MedftError(f"{out} holds an interrupted run of other data or settings ({'; '.join(diff)}); "
                         "--force starts it over")


def latest_state(out: Path, logged: set[int] | None = None) -> tuple[Path, int] | None:
    """The newest ``*.solverstate`` in ``out/snapshots`` and its iteration, if any.

    With ``logged`` (iterations in log.csv) only those count: a snapshot is logged after Caffe
    finished writing it, so a run killed mid-write never resumes from a truncated file.
    """
    best = None
    for p in (out / paths.SNAPSHOTS).glob(paths.snapshot_glob(paths.SOLVERSTATE)):
        found = paths.parse_snapshot(p.name)
        if found is None or (logged is not None and found[0] not in logged):
            continue
        if best is None or found[0] > best[1]:
            best = (p, found[0])
    return best


def prepare_resume(state: Path) -> None:
    """Check a snapshot pair before Caffe reads it (a damaged file aborts Caffe) and point the
    solverstate at the caffemodel beside it, so a run folder that was moved still resumes."""
    from google.protobuf.message import DecodeError

    from medft.engines.transfer import check_covers
    from medft.schema import pb, read_net

    model = state.with_suffix(paths.CAFFEMODEL)
    try:
        msg = pb.SolverState.FromString(state.read_bytes())
        read_net(model)
        check_covers(model, state.parent.parent / paths.DEPLOY_NET)
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
    for p in (out / paths.SNAPSHOTS).glob(paths.snapshot_glob()):
        found = paths.parse_snapshot(p.name)
        if found is not None and found[0] < keep_iteration:
            p.unlink()
