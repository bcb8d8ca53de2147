"""A folder of your own images -> the classify input layout, checked, its images linked or copied.

Accepted: the classify layout itself (``images/<class>/<image>`` or ``labels.csv`` with
``image,label[,case]``, optional ``split.csv``), or a bare folder of class folders
(``<DIR>/<class>/<image>``, the common "one folder per class" form). The whole input is checked
with the rules of ``medft prep classify --verify`` (every image decoded) before anything is
written. Images are hard-linked where ``--out`` is on the same file system (no second copy, and
unaffected by later renames of the source) and copied otherwise; ``labels.csv`` and ``split.csv``
are copied.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

from tqdm import tqdm

from medft.errors import MedftError
from medft.importers._output import file_facts, staged, write_record
from medft.prep import classify

APP = "classify"
DESCRIPTION = "a folder of your own images: images/<class>/<image>, labels.csv, or <DIR>/<class>/<image>"
LAYOUT = "images/<class>/<image> or labels.csv (image,label[,case]) with the images; split.csv copied if given"


def _place(src: Path, dst: Path) -> str:
    """Hard-link ``src`` at ``dst``, or copy it where a link cannot be made; which was done."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
        return "linked"
    except OSError:
        shutil.copy2(src, dst)
        return "copied"


def run(source: Path, out: Path, *, force: bool = False, progress: bool = True) -> dict:
    """Check ``source`` and write it in the classify layout to ``out``; the import record."""
    source, out = Path(source), Path(out)
    if not source.is_dir():
        raise MedftError(f"{source}: not a folder")
    bare = not (source / classify.CSV).is_file() and not (source / classify.FOLDERS).is_dir()
    if bare:  # <DIR>/<class>/<image>: read as if DIR were images/
        view = out.with_name(f".{out.name}.view-{os.getpid()}")
        shutil.rmtree(view, ignore_errors=True)
        view.mkdir(parents=True)
        try:
            os.symlink(source.resolve(), view / classify.FOLDERS)
            lines = classify.verify(view)
            ds = classify.load(view)
        finally:
            shutil.rmtree(view, ignore_errors=True)
    else:
        lines = classify.verify(source)
        ds = classify.load(source)
    how: dict[str, int] = {}
    digest = hashlib.sha256()
    with staged(out, force, source) as tmp:
        for image in tqdm(sorted(ds.images), desc=f"medft import {source.name}", unit="image",
                          disable=not progress, file=sys.stderr, mininterval=0.5):
            src = source / (Path(image).relative_to(classify.FOLDERS) if bare else Path(image))
            digest.update(f"{image}\0{file_facts(src)['sha256']}\n".encode())
            done = _place(src, tmp / image)
            how[done] = how.get(done, 0) + 1
        copied = []
        for name in (classify.CSV, "split.csv"):
            if (source / name).is_file():
                shutil.copy2(source / name, tmp / name)
                copied.append(source / name)
        record = {
            "source": str(source.resolve()), "dataset": source.name, "importer": "folder", "app": APP,
            "input_files": [file_facts(p) for p in copied],
            "images": len(ds.images),
            "images_sha256": digest.hexdigest(),  # of every image's path and SHA-256, in path order
            "classes": list(ds.class_names),
            "counts": ds.stats["per_class"], "cases": ds.stats["cases"], "cases_given": ds.cases_given,
            "checked": lines,
            "decisions": [
                f"form: {'labels.csv' if (source / classify.CSV).is_file() else 'one folder per class'}",
                "images hard-linked where the file system allows, else copied: " +
                ", ".join(f"{n} {k}" for k, n in sorted(how.items())),
                ("cases from labels.csv's case column" if ds.cases_given
                 else "no case column: each image is its own case"),
            ],
        }
        write_record(tmp, record)
    record["out"] = str(out)
    return record
