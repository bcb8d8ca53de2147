"""The PraNet test layout (Fan et al., MICCAI 2020): CVC-ColonDB, ETIS-LaribPolypDB, CVC-300, Kvasir."""

from __future__ import annotations

from pathlib import Path

from medft.errors import MedftError
from medft.importers import _base, _polyp

APP = "polyp"
DATASET = "pranet-test"
DESCRIPTION = ("PraNet TestDataset (CVC-ColonDB, ETIS-LaribPolypDB, ...): <set>/images/*.png, "
               "<set>/masks/*.png -> polyp (one case per image, candidates generated)")
LAYOUT = ("TestDataset/<set>/images/<n>.png and TestDataset/<set>/masks/<n>.png, or one <set> folder "
          "holding images/ and masks/")


def sets_of(source: Path) -> list[Path]:
    if (source / "images").is_dir() or (source / "masks").is_dir():
        _base.require(source / "images", DATASET, LAYOUT)
        _base.require(source / "masks", DATASET, LAYOUT)
        return [source]
    sets = sorted(p for p in source.iterdir() if p.is_dir() and (p / "images").is_dir()) if source.is_dir() else []
    if not sets:
        raise _base.layout_error(source / "images", DATASET, LAYOUT)
    for s in sets:
        _base.require(s / "masks", DATASET, LAYOUT)
    return sets


def run(source: Path, out: Path, *, force: bool = False, progress: bool = True) -> dict:
    source = Path(source)
    sets = sets_of(source)
    items, names = [], []
    for s in sets:
        masks = {p.stem: p for p in _base.images_in(s / "masks")}
        for p in _base.images_in(s / "images"):
            names.append(f"{s.name}-{p.stem}")
            items.append((names[-1], p, masks.get(p.stem, s / "masks" / p.name)))
        extra = sorted(set(masks) - {p.stem for p in _base.images_in(s / "images")})
        if extra:
            raise MedftError(f"{masks[extra[0]]}: mask without an image in images/")
    ids = _base.unique_ids(names, source)
    items = [_polyp.Item(ids[n], "f", img, m) for n, img, m in items]
    with _base.staging(out, force, source) as tmp:
        files, counts, cands = _polyp.convert(tmp, source, items, progress)
        counts["sets"] = [s.name for s in sets]
        decisions = _polyp.decisions(
            "cases: this layout has no sequence ids (CVC-ColonDB's 380 frames come from 15 videos, "
            "ETIS-Larib's 196 from 34, without published ranges), so every image is its own case "
            "<set>-<name> with frame id 'f'; a case-level split can put frames of one polyp on both sides")
        return _base.write_record(tmp, dataset=DATASET, app=APP, source=source, files=files, counts=counts,
                                  decisions=decisions, extra={"candidates": cands})
