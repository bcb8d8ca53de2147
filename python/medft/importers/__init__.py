"""``medft import``: public data sets, MedMNIST files and your own folders into medft's input layout.

Each importer is a module of this package exposing ``APP`` (the application it feeds),
``DESCRIPTION`` (one line: data set, layout, what it gives), ``LAYOUT`` (the expected layout, shown
when a source does not match) and ``run(source, out, *, force=False, progress=True) -> dict``
(writes the input folder ``out`` atomically and returns its import record). Modules are imported
only when used. Layouts, licences and decisions: docs/public-datasets.md, docs/your-own-data.md.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from medft.errors import unknown_name

#: data set name -> module of this package
IMPORTERS: dict[str, str] = {
    "kvasir-seg": "kvasir",
    "cvc-clinicdb": "clinicdb",
    "pranet-test": "pranet",
    "cad-pe": "cadpe",
    "fumpe": "fumpe",
    "cubs": "cubs",
    "labelled-frames": "labelled_frames",
    "medmnist": "medmnist",
    "folder": "folder",
}


def importer(name: str) -> ModuleType:
    """The importer module of data set ``name``; a one-line error lists the valid names otherwise."""
    if name not in IMPORTERS:
        raise unknown_name("data set", name, tuple(IMPORTERS))
    return importlib.import_module(f"{__name__}.{IMPORTERS[name]}")
