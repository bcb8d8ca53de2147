"""Small seeded synthetic inputs for every application, written in the documented formats.

They exist so every stage runs offline and the formats are shown by example. They are built so
that the demo's study can show a difference: the classes do not separate on global intensity,
colour, contrast, size or position (a logistic regression on global patch features stays at or
below validation AUC 0.65; tests/test_synthetic_study.py), negatives include hard mimics, and a
scratch AlexNet learns them within the demo's budget without reaching AUC 1.

* polyp (:mod:`.colon`): colonoscopy-like frames (tissue texture, lumen, folds, specular
  highlights) with a polyp (a shaded dome with a rim; some flat and faint) among 6-8 same-coloured
  mimics (flat bumps, fold segments, bubbles, twin bumps) drawn from the same size, contrast and
  blur ranges, the polyp's mask, and candidates (one box size) from
  :func:`.colon.polyp_candidate_generator` (the generator of :mod:`medft.prep.candidates`, blob
  cue only), whose score is the handcrafted baseline;
* pe (:mod:`.ct`): CT-like volumes (HU, 0.75 x 0.75 x 1 mm) with a branching contrast-filled
  vessel tree of varying calibre; emboli (central, eccentric, occlusive filling defects, labelled
  1..k) and as many mimics (mixing artefacts, lymph nodes and partial volume in branch crotches,
  beam-hardening streaks) share sites, sizes, HU and surroundings;
* frames (:mod:`.frames`): informative frames with mild flaws (softness, a few bubbles, exposure)
  vs non-informative ones with one artefact of graded strength (motion blur, defocus, wall
  contact, bubbles, under- or over-exposure), 500 x 350;
* cimt (:mod:`.ultrasound`): ultrasound-like ROIs with the near wall, lumen haze, the far wall
  (intima line, grey media, bright adventitia) and tissue layers and fascia below that mimic its
  interfaces, per-ROI scanner variation and speckle, with both far-wall interfaces as polylines;
* classify (:mod:`.shapes`): three classes of small grey images (rings, discs, bar pairs of one
  area range and random polarity on a textured field), in the labels.csv form with patients.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from medft.prep.synthetic.colon import synth_polyp
from medft.prep.synthetic.ct import synth_pe
from medft.prep.synthetic.frames import synth_frames
from medft.prep.synthetic.io import SynthSize
from medft.prep.synthetic.shapes import synth_shapes
from medft.prep.synthetic.ultrasound import synth_cimt

__all__ = ["SynthSize", "WRITERS", "synth_size", "ensure_synthetic", "write_synthetic"]

WRITERS: dict[str, Callable[[Path, SynthSize], None]] = {
    "polyp": synth_polyp,
    "pe": synth_pe,
    "frames": synth_frames,
    "cimt": synth_cimt,
    "classify": synth_shapes,
}

def synth_size(app: str, cases: int | None = None, per_case: int | None = None, seed: int = 0,
               purpose: str = "default") -> SynthSize:
    """The synthetic set's size: the application's size for ``purpose`` (``App.inputs``) where ``cases``
    or ``per_case`` is None."""
    from medft.apps import get_app

    d = get_app(app).inputs.of(purpose)
    return SynthSize(cases=cases or d.cases, per_case=per_case or d.per_case, seed=seed)


def ensure_synthetic(app: str, data_root: str | Path, size: SynthSize | None = None) -> Path:
    """``<data_root>/synthetic/<app>``: the synthetic input set that ``medft prep --synthetic`` reads,
    written first if it is not there."""
    path = Path(data_root) / "synthetic" / app
    return path if path.exists() else write_synthetic(app, path.parent, size)


def write_synthetic(app: str, out: str | Path, size: SynthSize | None = None, force: bool = False) -> Path:
    """Write the synthetic input set of ``app`` to ``<out>/<app>`` (atomically); return that path."""
    import os
    import shutil

    from medft.apps import get_app
    from medft.datum_lmdb import collect_stale_tmp, mark_output, refuse_existing
    from medft.util.atomic import replace_path

    get_app(app)
    final = Path(out) / app
    refuse_existing(final, force)
    collect_stale_tmp(final)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        WRITERS[app](tmp, size or synth_size(app))
        mark_output(tmp, "synthetic")
        replace_path(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
