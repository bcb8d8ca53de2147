"""Facts and small types shared by the four applications: patch specs, fractions, paths."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medft.apps import APPS, get_app
from medft.errors import MedftError

#: side of every patch written (Table I input)
PATCH = 227

#: a single patient is a count of cases, not a share: its set is bounded by what its ROIs give
ONE_PATIENT = "1patient"

#: "we divided the training set into a smaller training set with 80% of the training data and a
#: validation set with the remaining 20%" (section VI): the stratified set is train + validation
VAL_FRACTION = 0.2

#: reduced training sets of Figs. 2(b), 4(b), 6(b) and section VI-D, per application
#: reduced training sets per application (polyp and pe by case, frames by frame, cimt: one patient)
FRACTIONS: dict[str, tuple[str, ...]] = {a.name: a.fractions for a in APPS.values()}


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


def check_fraction(app: str, fraction: str) -> str:
    """``fraction`` normalised, or a one-line error listing the fractions valid for ``app``."""
    get_app(app)
    valid = FRACTIONS[app]
    norm = fraction.strip()
    if norm in ("1.0", "full"):
        norm = "1"
    if norm not in valid:
        raise MedftError(f"fraction {fraction!r} is not one of {app}'s reduced sets; valid: {', '.join(valid)}")
    return norm


def fraction_share(fraction: str) -> float:
    """Share of the full stratified set's size that a reduced set may hold (1 for a single patient)."""
    return 1.0 if fraction == ONE_PATIENT else float(fraction)


def set_size(app: str, fraction: str = "1", full: int | None = None) -> int:
    """Patches (train + validation) of ``app``'s stratified set at ``fraction``.

    ``full`` is the full set's size, the paper's (:attr:`medft.apps.App.paper_train_patches`) by
    default; a reduced set gets its share, so fewer cases also mean fewer patches.
    """
    total = get_app(app).paper_train_patches if full is None else full
    return round(total * fraction_share(check_fraction(app, fraction)))


def split_sizes(total: int, val_fraction: float = VAL_FRACTION) -> tuple[int, int]:
    """(train, validation) patches of a stratified set of ``total``, divided as section VI says."""
    n_val = round(total * val_fraction)
    return total - n_val, n_val


def dataset_dir(out: str | Path, app: str, fraction: str = "1") -> Path:
    """The data-set folder (:func:`medft.paths.dataset_dir`)."""
    from medft.paths import dataset_dir as build

    return build(out, app, fraction)


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
