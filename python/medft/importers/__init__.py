"""``medft import``: public data sets and folders written as an application's input layout.

``IMPORTERS`` maps a data-set name to its module ``medft.importers.<module>``, imported only when
used. Each module exposes ``APP`` (the application whose layout it writes), ``DESCRIPTION``,
``LAYOUT`` and ``run(source, out, *, force=False, progress=True) -> dict`` (the import record).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from medft.errors import unknown_name

IMPORTERS: dict[str, str] = {
    "medmnist": "medmnist",
    "folder": "folder",
}


def get_importer(name: str) -> ModuleType:
    """The importer module of ``name``; a one-line error lists the valid names otherwise."""
    if name not in IMPORTERS:
        raise unknown_name("data set", name, tuple(IMPORTERS))
    return importlib.import_module(f"medft.importers.{IMPORTERS[name]}")
