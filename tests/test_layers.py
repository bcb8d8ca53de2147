"""Imports run downward only, through the layers of the package (docs/layout.md, "Layers").

Each module of ``python/medft`` belongs to one layer; a module may import its own layer and the
layers below, never one above (a function-level import counts as much as a top-level one). Read
with :mod:`ast`, so nothing is imported to check it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "medft"

#: bottom to top; a module's layer is that of its longest listed prefix (``medft`` alone: the package's
#: ``__init__``)
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("facts and formats", ("medft", "medft.errors", "medft.apps", "medft.paths", "medft.util", "medft.provenance",
                           "medft.schema", "medft.proto", "medft.alexnet", "medft.schedule", "medft.solver",
                           "medft.generate", "medft.shapes", "medft.caffemodel", "medft.datum_lmdb")),
    ("engines", ("medft.engines", "medft.guard")),
    ("data and evaluation", ("medft.prep", "medft.evaluate", "medft.importers")),
    ("training", ("medft.train", "medft.predict", "medft.pretrain", "medft.source_task", "medft.weights",
                  "medft.checks", "medft.copy_check")),
    ("orchestration", ("medft.chain", "medft.demo", "medft.grid", "medft.bench")),
    ("commands", ("medft.commands", "medft.cli", "medft.__main__")),
)

#: (importing module, imported module) pairs tolerated, each with its reason (none today)
ALLOWED: frozenset[tuple[str, str]] = frozenset()


def layer_of(module: str) -> int | None:
    """Index in :data:`LAYERS` of ``module`` (None: in no layer)."""
    best: tuple[int, int] | None = None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or "." in p and module.startswith(p + ".")) and (best is None or len(p) > best[1]):
                best = (i, len(p))
    return None if best is None else best[0]


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def is_module(name: str, root: Path) -> bool:
    """Whether ``name`` (``medft.x.y``) is a module or package under ``root``."""
    rel = Path(*name.split(".")[1:]) if "." in name else Path()
    return (root / rel).with_suffix(".py").is_file() or (root / rel / "__init__.py").is_file()


def imported_modules(path: Path, module: str, root: Path) -> set[str]:
    """The ``medft`` modules ``path`` imports anywhere in its text (``from a import b``: ``a.b`` if
    that is a module, else ``a``)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*up, *([base] if base else [])])
            for a in node.names:
                found.add(f"{base}.{a.name}" if is_module(f"{base}.{a.name}", root) else base)
    return {m for m in found if m == root.name or m.startswith(root.name + ".")}


def layering_errors(root: Path, allowed: frozenset[tuple[str, str]] = frozenset()) -> list[str]:
    """One line per module in no layer and per import that runs upward."""
    errors = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        mine = layer_of(module)
        if mine is None:
            errors.append(f"{module}: in no layer of tests/test_layers.py LAYERS; give it one")
            continue
        for target in sorted(imported_modules(path, module, root)):
            theirs = layer_of(target)
            if theirs is not None and theirs > mine and (module, target) not in allowed:
                errors.append(f"{module} ({LAYERS[mine][0]}) imports {target} ({LAYERS[theirs][0]}), a layer above it")
    return errors


def test_imports_run_downward_only():
    errors = layering_errors(PACKAGE, ALLOWED)
    assert not errors, "\n".join(errors)


def test_every_allowance_is_still_needed():
    """An allowance whose import is gone is removed from :data:`ALLOWED`."""
    used = set()
    for path in PACKAGE.rglob("*.py"):
        module = module_name(path, PACKAGE)
        used |= {(module, t) for t in imported_modules(path, module, PACKAGE)}
    assert not ALLOWED - used, f"no longer imported, remove from ALLOWED: {sorted(ALLOWED - used)}"


def test_an_upward_import_is_named(tmp_path):
    """The check finds an engine that imports training code (at function level, relatively too)
    and a module in no layer, naming both modules."""
    root = tmp_path / "medft"
    (root / "engines").mkdir(parents=True)
    (root / "train").mkdir()
    for init in (root, root / "engines", root / "train"):
        (init / "__init__.py").write_text("")
    (root / "errors.py").write_text("")
    (root / "train" / "options.py").write_text("from medft.errors import MedftError\n")
    (root / "engines" / "cli.py").write_text("def f():\n    from medft.train import options\n")
    (root / "engines" / "pycaffe.py").write_text("from ..train.options import X\n")
    (root / "stray.py").write_text("import medft.errors\n")
    assert layering_errors(root) == [
        "medft.engines.cli (engines) imports medft.train.options (training), a layer above it",
        "medft.engines.pycaffe (engines) imports medft.train.options (training), a layer above it",
        "medft.stray: in no layer of tests/test_layers.py LAYERS; give it one",
    ]
