"""Small types and helpers shared by the applications' builders: patch specs, input-rule errors, ids,
seeded streams (per-application facts such as the reduced sets are in :mod:`medft.apps`)."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medft.errors import MedftError

#: side of every patch written (Table I input)
PATCH = 227


@dataclass(slots=True)
class Spec:
    """One patch to render: where it comes from (manifest columns) and its geometry.

    ``geom`` is application-specific (e.g. box centre, side and orientation for polyps) and is
    only read by that application's renderer; ``aug`` is its human-readable form.
    """

    case: str
    frame: str  # frame id, slice index or ROI id
    unit: str  # what test-time aggregation averages over (candidate / frame / pixel)
    lesion: str  # polyp or PE id a candidate hits, "" otherwise
    label: int
    aug: str
    geom: tuple = field(default=())
    score: str = ""  # candidate generator score (handcrafted baseline), "" if none


def bad_input(path: str | Path, rule: str, problem: str) -> MedftError:
    """Error naming the file, the format rule of data_prep/README.md broken, and the problem."""
    return MedftError(f"{path}: {problem} (input rule {rule}, see data_prep/README.md)")


#: rule common-1: ids (video, frame, patient, ROI, case) are file-name stems of these characters
_ID = re.compile(r"[A-Za-z0-9_-]+")


def check_id(path: str | Path, kind: str, text: str) -> str:
    """``text`` if it is an id by rule common-1 (ASCII letters, digits, ``-``, ``_``), else an error
    naming the file: a ``/``, ``..``, space or non-ASCII letter would name another file or none."""
    if not _ID.fullmatch(text):
        raise bad_input(path, "common-1", f"{kind} id {text!r} may hold only letters, digits, '-' and '_'")
    return text


def rng_for(seed: int, *names: str) -> np.random.Generator:
    """An independent generator for one purpose (``names``) of a run seeded with ``seed``.

    Streams are keyed by name, so adding draws to one purpose never shifts another's.
    """
    return np.random.default_rng([seed, *(zlib.crc32(n.encode()) for n in names)])
