"""Proof that a fine-tuning run started from the pretrained model and kept its frozen layers.

Planning a copy (:func:`medft.engines.transfer.plan_copy`) says which layers *should* come from the source
caffemodel; this module checks that they *did*. Each engine records the SHA-1 of every copied
layer's blobs as training starts (iteration 0: pycaffe from its live net, ``caffe train`` from a
zero-iteration run of the same command); at every snapshot :func:`verify_snapshot` compares them
with the source file, and the frozen layers of Table II (lr_mult 0) of the snapshot with it too,
bit for bit. ``weights.json`` then holds what was verified, and a run whose copy failed or whose
frozen layers moved stops with an error naming the layer (blob SHA-1s:
:func:`medft.caffemodel.caffemodel_hashes`).
"""

from __future__ import annotations

import json
from pathlib import Path

from medft import paths
from medft.caffemodel import caffemodel_hashes
from medft.engines.transfer import START_FIELD, CopyReport
from medft.errors import MedftError

#: weights.json's field with what the verification found (the start SHA-1s are :data:`START_FIELD`)
VERIFIED_FIELD = "verified"


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
