"""One process at a time in a run folder: an advisory lock that names its holder."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from medft.errors import MedftError

LOCK_NAME = ".lock"


@contextmanager
def folder_lock(folder: Path, what: str) -> Iterator[None]:
    """Hold ``folder/.lock`` while the block runs; refuse, naming the holder's PID, if another
    process holds it. The lock dies with its process, so a killed run never blocks a rerun."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise MedftError(f"{folder} is in use by another medft process (PID {holder}); "
                             f"wait for it to finish before you {what} here") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def _holders(fd: int) -> str:
    """The live processes a lock file names (``<pid> <what>`` lines), e.g. 'medft train (PID 12)'."""
    names = []
    size = os.fstat(fd).st_size
    for line in os.pread(fd, 4096, max(0, size - 4096)).decode(errors="replace").splitlines():
        pid, _, what = line.partition(" ")
        if pid.isdigit():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                continue
            except PermissionError:
                pass
            names.append(f"medft {what or '?'} (PID {pid})")
    return ", ".join(dict.fromkeys(names)) or "another medft process"


@contextmanager
def dataset_lock(folder: Path, what: str, exclusive: bool = False) -> Iterator[None]:
    """Hold the data set ``folder``'s lock (:data:`medft.paths.DATA_LOCK`) while the block runs:
    shared for readers (``train``, ``predict``), exclusive for ``prep`` replacing it. A conflicting
    holder is refused at once, naming it. A folder where no lock file can be made (read only) is
    read without one; the lock dies with its process."""
    from medft.paths import DATA_LOCK

    path = Path(folder) / DATA_LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holders(fd)
            if exclusive:
                raise MedftError(f"{folder} is in use by {holder}; wait for it to finish before "
                                 f"`medft {what}` replaces the data set") from None
            raise MedftError(f"{folder} is being written by {holder}; wait for it to finish before "
                             f"`medft {what}` reads it") from None
        if exclusive:
            os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {what}\n".encode())
        yield
    finally:
        os.close(fd)
