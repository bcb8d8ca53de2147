"""Kvasir-SEG (Jha et al., MMM 2020): 1,000 polyp images with masks and boxes, no video ids."""

from __future__ import annotations

import json
from pathlib import Path

from medft.errors import MedftError
from medft.importers import _base, _polyp

APP = "polyp"
DATASET = "kvasir-seg"
DESCRIPTION = ("Kvasir-SEG: images/*.jpg, masks/*.jpg, kavsir_bboxes.json; 1,000 polyp frames -> polyp "
               "(one case per image, candidates generated)")
LAYOUT = ("Kvasir-SEG/images/<id>.jpg, Kvasir-SEG/masks/<id>.jpg (same size, JPEG), "
          "Kvasir-SEG/kavsir_bboxes.json (optional)")
BOX_COLUMNS = ("video", "frame", "box", "label", "x0", "y0", "x1", "y1")


def read_boxes(path: Path, ids: dict[str, str]) -> list[dict]:
    """Rows of ``kavsir_bboxes.json`` ({id: {height, width, bbox: [{label, xmin, ymin, xmax, ymax}]}})."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MedftError(f"{path}: not JSON ({e})") from None
    if not isinstance(data, dict):
        raise MedftError(f"{path}: expected an object keyed by image id")
    rows = []
    for name, rec in sorted(data.items()):
        if name not in ids:
            raise MedftError(f"{path}: boxes for {name!r}, which has no image in images/")
        try:
            for k, b in enumerate(rec["bbox"], 1):
                rows.append({"video": ids[name], "frame": ids[name], "box": f"b{k}", "label": b.get("label", ""),
                             "x0": int(b["xmin"]), "y0": int(b["ymin"]), "x1": int(b["xmax"]), "y1": int(b["ymax"])})
        except (KeyError, TypeError, ValueError) as e:
            raise MedftError(f"{path}: entry {name!r} is not {{bbox: [{{xmin, ymin, xmax, ymax}}]}} ({e})") from None
    return rows


def run(source: Path, out: Path, *, force: bool = False, progress: bool = True) -> dict:
    source = Path(source)
    _base.require(source / "images", DATASET, LAYOUT)
    _base.require(source / "masks", DATASET, LAYOUT)
    images = _base.images_in(source / "images")
    ids = _base.unique_ids([p.stem for p in images], source / "images")
    masks = {p.stem: p for p in _base.images_in(source / "masks")}
    items = [_polyp.Item(ids[p.stem], ids[p.stem], p, masks.get(p.stem, source / "masks" / f"{p.stem}.jpg"))
             for p in images]
    extra_masks = sorted(set(masks) - set(ids))
    if extra_masks:
        raise MedftError(f"{masks[extra_masks[0]]}: mask without an image in images/")
    with _base.staging(out, force, source) as tmp:
        files, counts, cands = _polyp.convert(tmp, source, items, progress)
        boxes_json = source / "kavsir_bboxes.json"
        decisions = _polyp.decisions(
            "cases: Kvasir-SEG has no video ids, so every image is its own case (video = frame = image id); "
            "frames of one patient can fall on both sides of a case-level split, so test results "
            "are optimistic next to a split by patient")
        if boxes_json.is_file():
            rows = read_boxes(boxes_json, ids)
            _base.write_csv(tmp / "source_boxes.csv", rows, BOX_COLUMNS)
            files.append(_base.file_entry(boxes_json, source))
            counts["source_boxes"] = len(rows)
            decisions.append("kavsir_bboxes.json kept as source_boxes.csv (not used by prep: the masks "
                             "define the polyps)")
        return _base.write_record(tmp, dataset=DATASET, app=APP, source=source, files=files, counts=counts,
                                  decisions=decisions, extra={"candidates": cands})
