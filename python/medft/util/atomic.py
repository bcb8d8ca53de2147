"""Writes that are all or nothing: a finished temporary folder takes its final name in one rename.

Standard library only (the Caffe build, which runs before anything is installed, uses it too).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def replace_path(tmp: Path, final: Path) -> None:
    """Move finished ``tmp`` to ``final``, replacing what was there only once ``tmp`` is complete
    (the old one is renamed aside first, then removed), so ``final`` is never half written."""
    tmp, final = Path(tmp), Path(final)
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()
