"""Where a result came from: facts every stage writes into its JSON record."""

from __future__ import annotations

import platform
import subprocess
import time
from pathlib import Path


def git_commit() -> str | None:
    """The commit of this checkout of medft, or None outside a git checkout."""
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                           cwd=Path(__file__).resolve().parent)
        return r.stdout.strip() or None if r.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def stamp() -> dict[str, str | None]:
    """``medft_version``, ``python``, ``git_commit`` and ``created``: the block every record carries."""
    from medft import __version__

    return {"medft_version": __version__, "python": platform.python_version(), "git_commit": git_commit(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
