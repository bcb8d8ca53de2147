"""One place per name: every file and folder name of the data, run, score, report and cache trees is
spelled in ``medft/paths.py`` alone, every ``MEDFT_*`` variable is read there (the Caffe build's own
aside), and ``paths.py`` imports nothing from ``medft.prep``.

The scan reads the package's sources with :mod:`ast`: a string literal (docstrings aside) that equals
one of the names, or holds it as a path component (``"runs/x/run.json"``), is reported with its file
and line; so are Caffe's snapshot token ``_iter_`` and a name assembled from a split (``f"{s}_lmdb"``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import medft
from medft import paths

PACKAGE = Path(medft.__file__).parent

#: the names, typed from the folder trees of docs/layout.md and paths.py's docstring (not read from
#: paths.py, so a name paths.py lost is noticed by test_every_name_is_built_by_paths)
NAMES = (
    # a prepared data set
    "prep.json", "splits.json", "mean.json", "mean.binaryproto", "lesions.csv", "cases.csv", "test_rois",
    "train_lmdb", "val_lmdb", "test_lmdb", "train_manifest.csv", "val_manifest.csv", "test_manifest.csv",
    "data.mdb", ".checked.json", ".data.lock", ".medft-output", "import.json",
    # a run folder
    "run.json", "log.csv", "best.caffemodel", "best.json", "weights.json", "train_val.prototxt",
    "deploy.prototxt", "solver.prototxt", "solver_cli.prototxt", "caffe_train.log", "predictions.csv",
    "test_probs.npy", "test_patches.csv", "cimt_maps",
    # scores and report
    "summary.json", "curve.csv", "band.csv", "roi_errors.csv", "report.md", "seeds.csv",
    "operating_points.csv", "roi_summary.csv", "fig_a", "fig_b", "fig10_convergence",
    # the cache
    "bvlc_alexnet.caffemodel", "medft_standin_alexnet.caffemodel",
)
#: fragments that build a name outside paths.py: Caffe's snapshot token, a split's LMDB or manifest
FRAGMENTS = (paths.SNAPSHOT_ITER,)
SUFFIXES = ("_lmdb", "_manifest.csv")

#: where names and MEDFT_ variables may be spelled: paths.py itself; the Caffe build, which reads
#: its own variables before the package is installed
ALLOWED_NAMES = ("paths.py",)
ALLOWED_ENV = ("paths.py", "engines/build")


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants of a module, its classes and functions."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def _name_problem(text: str, in_fstring: bool) -> str | None:
    for part in text.split("/"):
        if part in NAMES:
            return f"the name {part!r}"
        if in_fstring and part in SUFFIXES:
            return f"a name built with {part!r}"
    hit = next((f for f in FRAGMENTS if f in text), None)
    return f"the snapshot token {hit!r}" if hit else None


def stray_names(source: str, filename: str, names: bool = True, env: bool = True) -> list[str]:
    """``<file>:<line>: ...`` for every data/run file name (``names``) and ``MEDFT_*`` variable
    (``env``) spelled in ``source``."""
    tree = ast.parse(source, filename)
    docs = _docstrings(tree)
    in_fstring = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in docs:
            continue
        text = node.value
        if "://" in text:  # an address elsewhere (BVLC's download URL), not a name medft gives a file
            continue
        if env and text.startswith("MEDFT_") and text[6:].replace("_", "").isalnum() and text.isupper():
            found.append(f"{filename}:{node.lineno}: the environment variable {text} (read it in paths.py)")
        elif names and (why := _name_problem(text, id(node) in in_fstring)):
            found.append(f"{filename}:{node.lineno}: {why} (use medft.paths)")
    return sorted(found, key=lambda f: int(f.split(":")[1]))


def _sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), path.read_text()


def test_every_name_is_built_by_paths():
    built = {v for k, v in vars(paths).items() if k.isupper() and isinstance(v, str)}
    built |= {f(s) for s in paths.SPLITS for f in (paths.lmdb_name, paths.manifest_name)}
    built |= {f"{t}.csv" for t in (paths.SEEDS_TABLE, paths.OPERATING_POINTS_TABLE, paths.ROI_SUMMARY_TABLE)}
    assert sorted(set(NAMES) - built) == []


def test_file_names_and_medft_variables_are_spelled_only_in_paths():
    found = []
    for rel, text in _sources():
        found += stray_names(text, rel, names=not rel.startswith(ALLOWED_NAMES),
                             env=not rel.startswith(ALLOWED_ENV))
    assert found == [], "\n".join(found)


def test_the_scan_reports_a_stray_name_and_a_variable_with_file_and_line():
    source = '''"""Writes prep.json (a docstring may name it)."""
import os
from pathlib import Path


def f(out, split):
    """And so may this one: report.md."""
    model = Path(out) / "snapshots" / f"scratch_iter_{8}.caffemodel"
    lmdb = Path(out) / f"{split}_lmdb"
    cache = os.environ.get("MEDFT_CACHE")
    return Path(out) / "prep.json", Path(out, "runs/polyp/scratch/run.json"), model, lmdb, cache
'''
    assert stray_names(source, "synthetic.py") == [
        "synthetic.py:8: the snapshot token '_iter_' (use medft.paths)",
        "synthetic.py:9: a name built with '_lmdb' (use medft.paths)",
        "synthetic.py:10: the environment variable MEDFT_CACHE (read it in paths.py)",
        "synthetic.py:11: the name 'prep.json' (use medft.paths)",
        "synthetic.py:11: the name 'run.json' (use medft.paths)",
    ]
    clean = 'from medft import paths\n\n\ndef f(out):\n    return out / paths.PREP_RECORD, "a run.json-like word"\n'
    assert stray_names(clean, "clean.py") == []


def test_paths_imports_nothing_from_prep():
    tree = ast.parse((PACKAGE / "paths.py").read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert imported and not [m for m in imported if m == "medft.prep" or m.startswith("medft.prep.")]
    imported_names = [a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "medft"
                      for a in n.names]
    assert "prep" not in imported_names


def test_solver_and_paths_do_not_import_prep_at_all():
    """Importing paths and solver (the low modules) loads no module of medft.prep."""
    import subprocess
    import sys

    code = "import sys, medft.paths, medft.solver; print([m for m in sys.modules if m.startswith('medft.prep')])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
