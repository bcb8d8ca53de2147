"""Predict every test patch with a run's best snapshot and aggregate to the unit the paper scores.

Per patch: the deploy net's class probabilities, aligned with the test manifest by LMDB key
(``test_patches.csv``, and ``test_probs.npy`` N x C in key order). Per unit: the mean
positive-class probability over the unit's patches (``predictions.csv``, the scoring input of
eval/README.md): a polyp or PE candidate's augmented patches, a frame's random crops.
CIMT is scored per pixel by the dense stage of :mod:`medft.evaluate.cimt`, which uses the
batched predictor :func:`deploy_predictor` from here.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import lmdb
import numpy as np

from medft.engine import Engine, forward_probs, make_engine
from medft.errors import MedftError
from medft.schema import write_text_atomic
from medft.train import binary_scores, run_dir

PRED_COLUMNS = ("case", "unit", "lesion", "label", "score")


def lmdb_keys(path: Path) -> list[str]:
    """Record keys of an LMDB in the order Caffe and :func:`iter_lmdb_batches` read them."""
    env = lmdb.open(str(path), readonly=True, lock=False)
    try:
        with env.begin() as txn:
            return [k.decode() for k in txn.cursor().iternext(keys=True, values=False)]
    finally:
        env.close()


def aggregate_units(rows: list[dict], score: np.ndarray) -> list[dict]:
    """Mean ``score`` per (case, unit); label and lesion must agree within a unit.

    ``rows`` are manifest rows (case, unit, lesion, label) aligned with ``score``.
    """
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        groups[(r["case"], r["unit"])].append(i)
    out = []
    for (case, unit), idx in sorted(groups.items()):
        labels = {int(rows[i]["label"]) > 0 for i in idx}
        lesions = {rows[i]["lesion"] for i in idx}
        if len(labels) != 1 or len(lesions) != 1:
            raise MedftError(f"unit {case}/{unit}: its patches disagree on label or lesion")
        out.append({"case": case, "unit": unit, "lesion": lesions.pop(), "label": int(labels.pop()),
                    "score": f"{float(np.mean(score[idx])):.6f}"})
    return out


def _csv(rows: list[dict], columns) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def predict_run(app: str, variant: str, data: str | Path, runs: str | Path = "runs", fraction: str = "1",
                engine: Engine | None = None, engine_name: str = "pycaffe", batch: int = 50,
                force: bool = False, log=print) -> Path:
    """Write ``test_probs.npy``, ``test_patches.csv`` and ``predictions.csv`` into the run folder."""
    from medft.prep.manifest import read_manifest

    out = run_dir(runs, app, variant, fraction)
    best, deploy, record = out / "best.caffemodel", out / "deploy.prototxt", out / "run.json"
    for p in (best, deploy, record):
        if not p.is_file():
            raise MedftError(f"{p}: missing; train first (`medft train {app} ...`)")
    target = out / "predictions.csv"
    if target.is_file() and not force:
        log(f"medft predict: {target} exists; --force redoes it")
        return target
    data = Path(data)
    test_lmdb, manifest_path = data / "test_lmdb", data / "test_manifest.csv"
    mean = tuple(json.loads(record.read_text())["data"]["mean_bgr"])
    engine = engine or make_engine(engine_name)
    keys = lmdb_keys(test_lmdb)
    log(f"medft predict: {app}/{out.name}: {len(keys)} test patches with {best}")
    probs, labels = engine.predict_lmdb(test_lmdb, mean, batch, caffemodel=best, deploy=deploy)
    manifest = {r["key"]: r for r in read_manifest(manifest_path)}
    if set(manifest) != set(keys):
        raise MedftError(f"{manifest_path}: keys differ from {test_lmdb} "
                         f"({len(set(keys) - set(manifest))} LMDB keys not in the manifest)")
    rows = [manifest[k] for k in keys]
    bad = [k for k, r, lab in zip(keys, rows, labels) if int(r["label"]) != int(lab)]
    if bad:
        raise MedftError(f"{manifest_path}: label of key {bad[0]} differs from the LMDB's")
    np.save(out / ".test_probs.tmp.npy", probs)
    (out / ".test_probs.tmp.npy").replace(out / "test_probs.npy")
    prob_cols = [f"p{c}" for c in range(probs.shape[1])]
    patch_rows = [{"key": k, "case": r["case"], "unit": r["unit"], "label": r["label"],
                   **{c: f"{v:.6f}" for c, v in zip(prob_cols, p)}} for k, r, p in zip(keys, rows, probs)]
    write_text_atomic(out / "test_patches.csv", _csv(patch_rows, ["key", "case", "unit", "label", *prob_cols]))
    _, score = binary_scores(probs, labels)
    units = aggregate_units(rows, score)
    write_text_atomic(target, _csv(units, PRED_COLUMNS))
    log(f"medft predict: {len(units)} units -> {target}")
    return target


def deploy_predictor(deploy: Path, caffemodel: Path, mean_bgr: tuple[float, ...],
                     gpu: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """A function mapping uint8 patches (N x 3 x 227 x 227, BGR) to class probabilities (N x C)."""
    from medft.caffe_env import import_caffe

    caffe = import_caffe()
    if gpu is None:
        caffe.set_mode_cpu()
    else:
        caffe.set_device(gpu)
        caffe.set_mode_gpu()
    net = caffe.Net(str(deploy), str(caffemodel), caffe.TEST)
    mean = np.asarray(mean_bgr, dtype=np.float32).reshape(1, -1, 1, 1)

    def predict(patches: np.ndarray) -> np.ndarray:
        patches = np.asarray(patches)
        if patches.ndim != 4 or patches.shape[1:] != (3, 227, 227):
            raise MedftError(f"patches must be N x 3 x 227 x 227, got {patches.shape}")
        return forward_probs(net, patches.astype(np.float32) - mean)

    return predict
