"""Proof that a fine-tuning run started from the pretrained model and kept its frozen layers.

Planning a copy (:func:`medft.transfer.plan_copy`) says which layers *should* come from the source
caffemodel; this module checks that they *did*. Each engine records the SHA-1 of every copied
layer's blobs as training starts (iteration 0: pycaffe from its live net, ``caffe train`` from a
zero-iteration run of the same command); at every snapshot :func:`verify_snapshot` compares them
with the source file, and the frozen layers of Table II (lr_mult 0) of the snapshot with it too,
bit for bit. ``weights.json`` then holds what was verified, and a run whose copy failed or whose
frozen layers moved stops with an error naming the layer.

A blob's SHA-1 is taken over its float32 values in Caffe's order (little-endian), independent of
the legacy 4-D or N-D shape it is stored with, so BVLC's V1 file and a snapshot compare directly.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from medft import paths
from medft.errors import MedftError

#: weights.json's fields: per copied layer the start SHA-1s (from the engine), and the verification
START_FIELD, VERIFIED_FIELD = "start_sha1", "verified"


def blob_sha1(values: np.ndarray) -> str:
    """SHA-1 of a parameter blob's float32 values (little-endian, C order)."""
    return hashlib.sha1(np.ascontiguousarray(values, dtype="<f4").tobytes()).hexdigest()


def blob_values(blob) -> np.ndarray:
    """A ``BlobProto``'s values as flat float32, read as the raw bytes of its packed ``data`` field:
    protobuf's element-by-element conversion takes seconds for fc6's 38 million values."""
    from medft.schema import pb

    n = len(blob.data)
    if n == 0:
        return np.asarray(blob.double_data, dtype=np.float32)
    only = pb.BlobProto()
    only.CopyFrom(blob)
    for name in ("shape", "num", "channels", "height", "width", "diff", "double_data", "double_diff"):
        only.ClearField(name)
    raw = only.SerializeToString()
    if raw[:1] != b"\x2a":  # not field 5 packed (wire type 2): read it the slow way
        return np.asarray(blob.data, dtype=np.float32)
    return np.frombuffer(raw[len(raw) - 4 * n:], dtype="<f4")


def layer_hashes(layers: dict[str, list[np.ndarray]], names: list[str] | None = None) -> dict[str, list[str]]:
    """Layer -> SHA-1 of each of its blobs, for ``names`` (default: every layer given)."""
    return {n: [blob_sha1(b) for b in layers[n]] for n in (names if names is not None else layers) if n in layers}


def caffemodel_blobs(path: str | Path, names: list[str] | None = None) -> dict[str, list[np.ndarray]]:
    """Layer -> flat float32 values of each blob, for ``names`` (default: every layer with blobs) of a
    caffemodel file (V1 ``layers`` or V2 ``layer``)."""
    from medft.schema import read_net

    net = read_net(Path(path))
    return {la.name: [blob_values(b) for b in la.blobs] for la in list(net.layer) + list(net.layers)
            if len(la.blobs) and (names is None or la.name in names)}


def caffemodel_hashes(path: str | Path, names: list[str] | None = None) -> dict[str, list[str]]:
    """:func:`layer_hashes` of a caffemodel file."""
    return layer_hashes(caffemodel_blobs(path, names))


def _iteration(model: Path) -> int:
    snap = paths.parse_snapshot(Path(model).name)
    return snap[0] if snap and snap[1] == paths.CAFFEMODEL else -1


def check_start(report: dict, source: dict[str, list[str]]) -> dict[str, dict]:
    """Per copied layer: its source SHA-1s and whether training started from exactly them.
    Raises naming the first layer that did not (the engine did not load the pretrained weights)."""
    start = report.get(START_FIELD)
    if start is None:
        raise MedftError(f"no record of the weights training started from (weights.json lacks {START_FIELD}): "
                         "the run cannot show that the pretrained layers were loaded; --force retrains it")
    layers = {}
    for name in report["copied"]:
        equal = start.get(name) == source.get(name)
        layers[name] = {"source_sha1": source.get(name), "start_equal": equal}
    return layers


def verify_snapshot(out: Path, model: Path, config: str) -> dict | None:
    """Verify the copy recorded in ``out/weights.json`` against the snapshot ``model`` and record it
    there; None for a run without pretrained weights. Raises :class:`MedftError` naming the layer when
    a copied layer did not start from the source or a frozen layer (Table II) no longer equals it."""
    from medft.schedule import get_config
    from medft.util.atomic import write_text_atomic

    path = Path(out) / paths.WEIGHTS_RECORD
    if not path.is_file():
        return None
    report = json.loads(path.read_text())
    before = report.get(VERIFIED_FIELD) or {}
    if before.get("layers"):  # the source's hashes, taken at the first verification
        source = {n: e["source_sha1"] for n, e in before["layers"].items()}
    else:
        source = caffemodel_hashes(report["source"], report["copied"])
    layers = check_start(report, source)
    frozen = list(get_config(config).frozen_layers)
    after = caffemodel_hashes(model, frozen)
    for name in frozen:
        entry = layers.setdefault(name, {"source_sha1": None, "start_equal": False})
        entry.update(frozen=True, after_sha1=after.get(name), after_equal=after.get(name) == entry["source_sha1"])
    report[VERIFIED_FIELD] = {"iteration": _iteration(model), "frozen": frozen, "layers": layers}
    report["summary"] = summary_line(report)
    write_text_atomic(path, json.dumps(report, indent=2) + "\n")
    for name, e in layers.items():
        if not e["start_equal"]:
            why = "is not in the pretrained model" if e["source_sha1"] is None else "did not start from it"
            raise MedftError(f"{path}: layer {name} {why} ({report['source']}): the engine did not load the "
                             "pretrained weights; nothing this run learned is a fine-tuning result")
        if e.get("frozen") and not e["after_equal"]:
            raise MedftError(f"{model}: frozen layer {name} (lr_mult 0) no longer equals the pretrained weights "
                             f"of {report['source']}: the solver updated a layer Table II keeps fixed")
    return report


def summary_line(report: dict) -> str:
    """The report's human lines, with what the last verification found."""
    from medft.transfer import CopyReport

    plan = CopyReport(**{k: report[k] for k in ("source", "description", "copied", "initialised", "ignored")})
    lines = [plan.summary()]
    v = report.get(VERIFIED_FIELD)
    if v:
        started = sum(e["start_equal"] for e in v["layers"].values())
        kept = sum(bool(e.get("after_equal")) for e in v["layers"].values() if e.get("frozen"))
        lines.append(f"  verified at iteration {v['iteration']}: {started} of {len(report['copied'])} copied "
                     f"layer(s) started bit for bit from the source; {kept} of {len(v['frozen'])} frozen "
                     "layer(s) still equal it")
    return "\n".join(lines)
