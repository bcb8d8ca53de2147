"""Writes that are all or nothing: a finished temporary file or folder takes its final name in one rename,
so a reader (or a run killed half-way) never sees half a file.

Standard library only at import (the Caffe build, which runs before anything is installed, uses it too).
"""

from __future__ import annotations

import os
import shutil
import tempfile
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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str | bytes) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode() if isinstance(text, str) else text)
        os.chmod(tmp, 0o666 & ~_umask())  # what open() would have given, not mkstemp's 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_npz_atomic(path: str | Path, **arrays) -> None:
    """``np.savez_compressed`` of ``arrays`` to ``path``, written atomically."""
    import io

    import numpy as np

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_text_atomic(path, buf.getvalue())


def write_npy_atomic(path: str | Path, array) -> None:
    """``np.save`` of ``array`` to ``path``, written atomically."""
    import io

    import numpy as np

    buf = io.BytesIO()
    np.save(buf, array)
    write_text_atomic(path, buf.getvalue())
