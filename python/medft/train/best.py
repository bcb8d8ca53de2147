"""The best-model commit: best.caffemodel and best.json name the epoch that log.csv selects.

A new best epoch is staged under pending names before its log.csv row and committed after it, so a
kill at any moment leaves either the previous best or the new one, never a mix; ``medft predict``
checks the same before it scores.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from medft import paths
from medft.errors import MedftError
from medft.train.logcsv import read_log
from medft.util import faults
from medft.util.atomic import write_text_atomic

#: a new best model and its record before log.csv names its epoch
PENDING_MODEL, PENDING_RECORD = f".{paths.BEST_MODEL}.pending", f".{paths.BEST_RECORD}.pending"


def stage_best(out: Path, model: Path, row: dict) -> None:
    """First half of selecting a new best epoch, before its log.csv row: the snapshot copied (and
    flushed) and its record written under pending names. :func:`commit_best` finishes after the row."""
    from medft.caffemodel import sha1_of

    _copy_durably(model, out / PENDING_MODEL)
    faults.point("train:after-best-model")
    write_text_atomic(out / PENDING_RECORD, json.dumps({
        "epoch": int(row["epoch"]), "iteration": int(row["iteration"]), "val_auc": float(row["val_auc"]),
        "sha1": sha1_of(out / PENDING_MODEL)}, indent=2) + "\n")


def commit_best(out: Path) -> None:
    """Second half: the pending model and record become best.caffemodel and best.json."""
    os.replace(out / PENDING_MODEL, out / paths.BEST_MODEL)
    os.replace(out / PENDING_RECORD, out / paths.BEST_RECORD)


def settle_best(out: Path) -> None:
    """Finish or undo a best-model selection a kill interrupted: roll forward if log.csv names the
    pending epoch as the best, else drop the pending files (the previous best stays)."""
    pending = out / PENDING_RECORD
    if not (out / PENDING_MODEL).exists():
        pending.unlink(missing_ok=True)
        return
    rows = read_log(out / paths.LOG)
    best = max(rows, key=lambda r: float(r["val_auc"]), default=None)
    meta = json.loads(pending.read_text()) if pending.is_file() else {}
    if best is not None and meta and int(meta.get("epoch", -1)) == int(best["epoch"]):
        commit_best(out)
    else:
        (out / PENDING_MODEL).unlink(missing_ok=True)
        pending.unlink(missing_ok=True)


def improves(row: dict, best: dict | None) -> bool:
    """Whether an epoch's log row beats the best so far, compared as log.csv holds them (6 decimals):
    a tie is no improvement, so the first epoch of the highest logged AUC stays the selected one,
    the row that every later reading of log.csv (``max`` over its rows) selects."""
    return best is None or float(row["val_auc"]) > float(best["val_auc"])


def check_best(out: Path) -> None:
    """best.caffemodel must be the snapshot that log.csv selects (best.json's SHA-1); refuse otherwise."""
    from medft.caffemodel import sha1_of

    best, meta_path = out / paths.BEST_MODEL, out / paths.BEST_RECORD
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


def _copy_durably(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` atomically, flushed to disk before it takes ``dst``'s name."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, dst)
