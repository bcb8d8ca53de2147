"""One folder per class (e.g. HyperKvasir's bowel-preparation quality folders) -> frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medft.errors import MedftError
from medft.importers import _base

APP = "frames"
DATASET = "labelled-frames"
#: folder names that mean informative (1) and non-informative (0)
CLASS_NAMES: dict[str, int] = {
    "informative": 1, "1": 1, "good": 1, "bbps-2-3": 1,
    "non-informative": 0, "noninformative": 0, "uninformative": 0, "0": 0, "bad": 0, "bbps-0-1": 0,
}
DESCRIPTION = ("labelled frames: <class>/[<video>/]<frame>.jpg with two class folders (informative / "
               "non-informative, or HyperKvasir's bbps-2-3 / bbps-0-1) -> frames")
LAYOUT = ("SOURCE/<class>/<frame>.jpg or SOURCE/<class>/<video>/<frame>.jpg, two class folders named "
          + " / ".join(sorted(CLASS_NAMES)))


def run(source: Path, out: Path, *, force: bool = False, progress: bool = True) -> dict:
    source = Path(source)
    if not source.is_dir():
        raise _base.layout_error(source, DATASET, LAYOUT)
    classes = sorted(p for p in source.iterdir() if p.is_dir())
    unknown = [c.name for c in classes if c.name.lower() not in CLASS_NAMES]
    if unknown or len({CLASS_NAMES[c.name.lower()] for c in classes}) != 2:
        raise MedftError(f"{source}: class folders {[c.name for c in classes]}; expected one informative and "
                         f"one non-informative folder: {LAYOUT}")
    items = []  # (video, frame, label, path)
    for c in classes:
        label = CLASS_NAMES[c.name.lower()]
        for p in _base.images_in(c):
            items.append((f"{c.name}-{p.stem}", p.stem, label, p))
        for v in sorted(d for d in c.iterdir() if d.is_dir()):
            items += [(f"{c.name}-{v.name}", p.stem, label, p) for p in _base.images_in(v)]
    if not items:
        raise _base.layout_error(classes[0] / "<frame>.jpg", DATASET, LAYOUT)
    vid = _base.unique_ids([i[0] for i in items], source)
    files, rows = [], []
    with _base.staging(out, force, source) as tmp:
        for video, frame, label, p in _base.progress(items, "frames", progress):
            img = _base.to_uint8(_base.read_raster(p), p)
            if img.ndim == 2:
                img = np.repeat(img[..., None], 3, axis=2)
            f_id = _base.safe_id(frame)
            _base.write_png(tmp / "videos" / vid[video] / f"{f_id}.png", img)
            rows.append({"video": vid[video], "frame": f_id, "label": label})
            files.append(_base.file_entry(p, source))
        keys = [(r["video"], r["frame"]) for r in rows]
        if len(set(keys)) != len(keys):
            raise MedftError(f"{source}: two frames of one video share a name after conversion")
        _base.write_csv(tmp / "labels.csv", rows, ("video", "frame", "label"))
        counts = {"frames": len(rows), "videos": len(set(vid.values())),
                  "informative": sum(r["label"] for r in rows),
                  "non_informative": sum(1 - r["label"] for r in rows)}
        decisions = [
            "label from the class folder: " + ", ".join(f"{c.name} = {CLASS_NAMES[c.name.lower()]}" for c in classes),
            "a sub-folder of a class folder is one video (case); a frame directly in a class folder is "
            "its own case <class>-<name> (no video ids: a case-level split is a frame-level split)",
            "frames written as lossless RGB PNG, pixels and size unchanged (prep resizes to 500 x 350)",
        ]
        return _base.write_record(tmp, dataset=DATASET, app=APP, source=source, files=files, counts=counts,
                                  decisions=decisions)
