"""Predict every test patch with a run's best snapshot and aggregate to the unit the paper scores.

Per patch: the deploy net's class probabilities, aligned with the test manifest by LMDB key
(``test_patches.csv``, and ``test_probs.npy`` N x C in key order). Per unit: the mean
positive-class probability over the unit's patches (``predictions.csv``, the scoring input of
eval/README.md): a polyp or PE candidate's augmented patches, a frame's random crops.
CIMT is scored per pixel by the dense stage of :mod:`medft.evaluate.cimt`, which uses the
engine's batched :class:`~medft.engines.predictor.Predictor`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import lmdb
import numpy as np

from medft import paths
from medft.apps import BOXPLOT, OVR, get_app
from medft.engines import DEFAULT_ENGINE, make_engine
from medft.engines.base import Engine
from medft.errors import MedftError
from medft.prep.manifest import write_rows_csv
from medft.solver import TEST_BATCH
from medft.train.validation import binary_scores
from medft.util import faults
from medft.util.atomic import write_npy_atomic, write_npz_atomic, write_text_atomic
from medft.util.progress import duration

PRED_COLUMNS = ("case", "unit", "lesion", "label", "score")


def lmdb_keys(path: Path) -> list[str]:
    """Record keys of an LMDB in the order Caffe and :func:`medft.engines.predictor.iter_lmdb_batches` read them."""
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


def aggregate_classes(rows: list[dict], probs: np.ndarray) -> list[dict]:
    """Mean class probabilities per (case, unit): ``label`` the class index, ``p<k>`` the mean
    probability of class k, ``score`` 1 - p0 (the positive-class score where C = 2)."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        groups[(r["case"], r["unit"])].append(i)
    out = []
    for (case, unit), idx in sorted(groups.items()):
        labels = {int(rows[i]["label"]) for i in idx}
        if len(labels) != 1:
            raise MedftError(f"unit {case}/{unit}: its patches disagree on label")
        mean = probs[idx].mean(axis=0)
        out.append({"case": case, "unit": unit, "lesion": "", "label": labels.pop(),
                    "score": f"{1.0 - float(mean[0]):.6f}", **{f"p{k}": f"{v:.6f}" for k, v in enumerate(mean)}})
    return out


def predict_run(app: str, variant: str, data: str | Path, runs: str | Path = paths.RUNS_ROOT, fraction: str = "1",
                engine: Engine | None = None, engine_name: str = DEFAULT_ENGINE, batch: int = TEST_BATCH,
                cimt_stride: int = 1, gpu: int | None = None, force: bool = False, log=print,
                seed: int | None = None) -> Path:
    """Write ``test_probs.npy``, ``test_patches.csv`` and ``predictions.csv`` into the run folder
    (of training seed ``seed``; None: the default seed)."""

    out = paths.run_dir(runs, app, variant, fraction, seed)
    best, deploy, record = out / paths.BEST_MODEL, out / paths.DEPLOY_NET, out / paths.RUN_RECORD
    for p in (best, deploy, record):
        if not p.is_file():
            raise MedftError(f"{p}: missing; train first (`medft train {app} ...`)")
    target = out / paths.PREDICTIONS
    if target.is_file() and not force:
        log(f"medft predict: {target} exists; --force redoes it")
        return target
    data = Path(data)
    from medft.engines.transfer import check_covers
    from medft.train.best import check_best, settle_best
    from medft.train.run import read_record
    from medft.util.lock import dataset_lock, folder_lock

    run = read_record(out)
    if run.get("status") != "done" or "data" not in run:
        raise MedftError(f"{out}: the run is not finished (status {run.get('status', 'unknown')!r}); "
                         f"`medft train {app} ...` with the same arguments resumes it")
    mean = tuple(run["data"]["mean_bgr"])
    with folder_lock(out, "predict"), dataset_lock(data, "predict"):
        settle_best(out)
        check_best(out)
        check_covers(best, deploy)
        check_predict_inputs(app, best, data, run)
        return _predict_locked(app, out, data, engine, engine_name, gpu, mean, batch, cimt_stride, log)


def check_predict_inputs(app: str, best: Path, data: Path, run: dict) -> None:
    """The selected weights finite, every test record decodable with a label of the net."""
    from medft import checks

    checks.check_caffemodel(best, "the selected weights")
    if not (data / paths.TEST_LMDB / paths.LMDB_DATA).is_file():
        raise MedftError(f"{data / paths.TEST_LMDB}: not an LMDB (no {paths.LMDB_DATA}); run `medft prep` first")
    fp = run["data"].get("fingerprint")
    from medft.apps import classes_of
    from medft.prep.dataset import read_dataset

    checks.check_lmdb(data / paths.TEST_LMDB, len(classes_of(get_app(app), read_dataset(data).record)),
                      fingerprint=fp.get("data") if isinstance(fp, dict) else fp)


def _predict_locked(app: str, out: Path, data: Path, engine: Engine | None, engine_name: str, gpu: int | None,
                    mean: tuple[float, ...], batch: int, cimt_stride: int, log) -> Path:
    own = engine is None
    engine = engine or make_engine(engine_name, gpu)
    if not own:
        engine.set_device(gpu)
    try:
        return _predict(app, out, data, engine, mean, batch, cimt_stride, log)
    finally:
        if own:
            engine.close()


def _predict(app: str, out: Path, data: Path, engine: Engine, mean: tuple[float, ...], batch: int,
             cimt_stride: int, log) -> Path:
    from medft.prep.manifest import read_manifest

    best, deploy, target = out / paths.BEST_MODEL, out / paths.DEPLOY_NET, out / paths.PREDICTIONS
    test_lmdb, manifest_path = data / paths.TEST_LMDB, data / paths.TEST_MANIFEST
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
    write_npy_atomic(out / paths.TEST_PROBS, probs)
    faults.point("predict:before-predictions")
    prob_cols = [f"p{c}" for c in range(probs.shape[1])]
    patch_rows = [{"key": k, "case": r["case"], "unit": r["unit"], "label": r["label"],
                   **{c: f"{v:.6f}" for c, v in zip(prob_cols, p)}} for k, r, p in zip(keys, rows, probs)]
    write_rows_csv(out / paths.TEST_PATCHES, patch_rows, ["key", "case", "unit", "label", *prob_cols])
    if get_app(app).evaluation == BOXPLOT:  # scored per ROI pixel, not per patch unit
        predictor = engine.predictor(deploy, best, mean, batch)
        folder = predict_cimt_maps(data / paths.TEST_ROIS, out / paths.CIMT_MAPS, predictor, stride=cimt_stride,
                                   batch=batch, log=log)
        from medft.evaluate.io import CIMT_DONE

        write_text_atomic(target, CIMT_DONE)
        return folder
    _, score = binary_scores(probs, labels)
    if get_app(app).evaluation == OVR:  # scored per class: the class index and every class's probability
        units = aggregate_classes(rows, probs)
        write_rows_csv(target, units, [*PRED_COLUMNS, *prob_cols])
    else:
        units = aggregate_units(rows, score)
        write_rows_csv(target, units, PRED_COLUMNS)
    log(f"medft predict: {len(units)} units -> {target}")
    return target


def handcrafted_predictions(app: str, data: str | Path, runs: str | Path = "runs", log=print) -> Path | None:
    """``runs/<app>/handcrafted/predictions.csv`` from the candidate generator's own scores.

    The paper compares the CNNs with its handcrafted systems; medft's stand-in for them is
    the score that the input's candidate generator gave each candidate (``score`` column of
    the test manifest). Returns None when the input has no such scores (frames, cimt).
    """
    from medft.prep.manifest import read_manifest

    rows = read_manifest(Path(data) / paths.TEST_MANIFEST)
    if not rows or any(r["score"] == "" for r in rows):
        return None
    score = np.asarray([float(r["score"]) for r in rows])
    if not np.isfinite(score).all():
        raise MedftError(f"{Path(data) / paths.TEST_MANIFEST}: non-finite candidate score")
    units = aggregate_units(rows, score)
    target = paths.run_dir(runs, app, "handcrafted") / paths.PREDICTIONS
    write_rows_csv(target, units, PRED_COLUMNS)
    log(f"medft predict: handcrafted baseline (candidate generator scores), {len(units)} units -> {target}")
    return target


def dense_maps(image: np.ndarray, predictor: Callable[[np.ndarray], np.ndarray], window: int,
               stride: int = 1, batch: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Confidence maps (lumen-intima, media-adventitia), each H x W, of a gray test ROI.

    :func:`medft.evaluate.cimt.dense_predict` with the patch `medft prep cimt` made for
    training (:func:`medft.prep.cimt.patch`: a ``window``-pixel square resampled to 227,
    edges replicated), so test and training patches are made the same way. ``stride`` > 1
    runs the net on a coarser grid and interpolates (the paper applies it at every pixel).
    """
    from medft.evaluate.cimt import dense_predict
    from medft.prep.cimt import patch

    return dense_predict(image, predictor, batch=batch, stride=stride,
                         patch_fn=lambda img, y, x: patch(img, y, x, window))


def predict_cimt_maps(rois: Path, out: Path, predictor: Callable[[np.ndarray], np.ndarray], stride: int = 1,
                      batch: int = 50, log=print) -> Path:
    """``cimt_maps/<roi>.npz`` (p_li, p_ma, gt_li, gt_ma, image, and spacing_mm where the ROI's
    calibration is known, so errors are scored in mm too) for every test ROI of `medft prep`."""
    import time

    files = sorted(Path(rois).glob("*.npz"))
    if not files:
        raise MedftError(f"{rois}: no test ROIs (medft prep cimt writes test_rois/*.npz)")
    t0 = time.time()
    for k, f in enumerate(files, 1):
        d = np.load(f)
        p_li, p_ma = dense_maps(d["image"], predictor, int(d["window"]), stride=stride, batch=batch)
        write_npz_atomic(out / f.name, p_li=p_li, p_ma=p_ma, gt_li=d["lumen_intima_y"].astype(float),
                         gt_ma=d["media_adventitia_y"].astype(float), image=d["image"],
                         **({"spacing_mm": d["spacing_mm"]} if "spacing_mm" in d.files else {}))
        rate = (time.time() - t0) / k
        log(f"medft predict: cimt ROI {k}/{len(files)} {f.stem}  {rate:.1f} s/ROI  "
            f"ETA {duration(rate * (len(files) - k))}")
    return out
