#!/usr/bin/env python3
"""Mutation check of medft's tests: each known bug, injected into a copy of the package, must make
the tests that guard it fail.

Usage (from the repository root, with medft's environment active)::

    python eval/mutation_check.py                 # every statistics mutation (fast tests, no Caffe)
    python eval/mutation_check.py --group seeds   # the training-seed mutations (real Caffe, ~3 min)
    python eval/mutation_check.py --list          # names only
    python eval/mutation_check.py snake-stiffness-x12

Groups: ``stats`` (the statistics' fast tests) and ``seeds`` (the bit-identity tests of the stand-in
and of one cell, which must notice a seed that no longer reaches Caffe).

For every mutation the package ``python/medft`` is copied to a temporary folder, the listed
source edits are applied there (each original text must occur exactly once, so a refactor
that moves the code makes the check fail loudly rather than test nothing), and the fast
tests below run against the copy (``PYTHONPATH`` puts it first).  The unmutated copy must
pass first.  Exit status 0 when the baseline passes and every mutation is caught.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: group -> (the tests it runs, their pytest marker expression)
GROUPS: dict[str, tuple[list[str], str]] = {
    "stats": (["tests/test_froc.py", "tests/test_roc.py", "tests/test_bootstrap.py", "tests/test_compare.py",
               "tests/test_cimt_eval.py"], "not slow and not caffe and not gpu"),
    "seeds": (["tests/test_pretrain.py::test_the_standin_is_bit_identical_when_trained_again_with_its_seed",
               "tests/test_train.py::test_one_cell_is_bit_identical_when_trained_again_with_its_seed"],
              "not gpu"),
}

#: name -> (what the bug is, [(file under python/medft, original text, mutated text), ...])
MUTATIONS: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "binormal-variance-halved": ("the variance of (a, b) of the binormal fit halved", [
        ("evaluate/froc_binormal.py", "hess_inv[:2, :2], n_pos=", "hess_inv[:2, :2] / 2, n_pos="),
        ("evaluate/froc_binormal.py", "cov=_sandwich(infl), n_clusters", "cov=_sandwich(infl) / 2, n_clusters"),
        ("evaluate/froc_binormal.py", "cov=cov[:2, :2], nu=nu", "cov=cov[:2, :2] / 2, nu=nu"),
    ]),
    "binormal-froc-variance-halved": ("the case-level variance of (a, b) of the FROC fit alone halved", [
        ("evaluate/froc_binormal.py", "cov=cov[:2, :2], nu=nu", "cov=cov[:2, :2] / 2, nu=nu"),
    ]),
    "permutation-no-tie-breaking": ("the permutation p without its random tie-breaking (mid-p)", [
        ("evaluate/bootstrap.py", "permutation_p_value(perm, observed, rng.random(np.size(x_at)))",
         "permutation_p_value(perm, observed)"),
    ]),
    "snake-stiffness-x12": ("the snake's rigidity (beta term) 12 times too large", [
        ("evaluate/cimt.py", "alpha * d1.T @ d1 + beta * d2.T @ d2", "alpha * d1.T @ d1 + 12 * beta * d2.T @ d2"),
    ]),
    "binormal-5-bins": ("the binormal fit's scores grouped into 5 categories instead of 20", [
        ("evaluate/froc_binormal.py", "N_BINS = 20", "N_BINS = 5"),
    ]),
    "clustered-auc-no-cross-term": ("Obuchowski's clustered variance without its S11 term", [
        ("evaluate/roc.py", "(s11 + s11.T) / (m * n)", "0 * s11"),
    ]),
}

#: the ``seeds`` group: Caffe draws its own seed (random_seed -1) instead of the study's
SEED_MUTATIONS: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "cell-seed-dropped": ("a cell's solver without the training seed (Caffe seeds itself)", [
        ("solver.py", "s.random_seed = o.random_seed", "s.random_seed = -1"),
    ]),
    "standin-seed-dropped": ("the stand-in's solver without its seed (Caffe seeds itself)", [
        ("pretrain.py", "random_seed=seed,", "random_seed=-1,"),
    ]),
}


def _copy_with(edits: list[tuple[str, str, str]], dest: Path) -> None:
    pkg = dest / "medft"
    shutil.copytree(ROOT / "python" / "medft", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    for rel, old, new in edits:
        path = pkg / rel
        text = path.read_text()
        n = text.count(old)
        if n != 1:
            raise SystemExit(f"{path.relative_to(dest)}: expected the text {old!r} once, found it {n} times; "
                             "update the mutation to the current source")
        path.write_text(text.replace(old, new))


def _run_tests(pythonpath: Path, group: str) -> tuple[int, float, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(pythonpath), str(ROOT)]),
           "PYTHONDONTWRITEBYTECODE": "1"}
    check = subprocess.run([sys.executable, "-c", "import medft; print(medft.__file__)"], env=env,
                           capture_output=True, text=True, check=True)
    if not check.stdout.strip().startswith(str(pythonpath)):
        raise SystemExit(f"the tests would import medft from {check.stdout.strip()}, not the mutated copy")
    tests, markers = GROUPS[group]
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m", markers,
                           *tests], cwd=ROOT, env=env, capture_output=True, text=True)
    tail = [ln for ln in proc.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))]
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr.strip()[-200:]
    return proc.returncode, time.monotonic() - t0, "; ".join(tail[:2]) or summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="mutations to run (default: all of the group)")
    ap.add_argument("--group", choices=sorted(GROUPS), default="stats",
                    help="stats: the statistics' fast tests; seeds: the bit-identity tests, with real Caffe")
    ap.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = ap.parse_args(argv)
    mutations = SEED_MUTATIONS if args.group == "seeds" else MUTATIONS
    if args.list:
        for name, (what, _) in mutations.items():
            print(f"{name}: {what}")
        return 0
    unknown = [n for n in args.names if n not in mutations]
    if unknown:
        raise SystemExit(f"unknown mutation {unknown[0]!r} in group {args.group}; known: {', '.join(mutations)}")
    ok = True
    with tempfile.TemporaryDirectory(prefix="medft-mutation-") as tmp:
        base = Path(tmp) / "baseline"
        _copy_with([], base)
        rc, secs, msg = _run_tests(base, args.group)
        print(f"baseline (no mutation): {'pass' if rc == 0 else 'FAIL'} in {secs:.0f} s ({msg})", flush=True)
        if rc != 0:
            return 2
        for name in args.names or mutations:
            what, edits = mutations[name]
            dest = Path(tmp) / name
            _copy_with(edits, dest)
            rc, secs, msg = _run_tests(dest, args.group)
            caught = rc != 0
            ok &= caught
            print(f"{name} ({what}): {'caught' if caught else 'NOT CAUGHT'} in {secs:.0f} s ({msg})", flush=True)
    print("every mutation is caught" if ok else "some mutation went unnoticed: the tests need strengthening")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
