"""The four applications of the study (paper section VI) and their fixed facts.

The tokens ``polyp``, ``pe``, ``frames`` and ``cimt`` are used everywhere: CLI arguments,
Make targets, ``prototxt/<app>/``, ``runs/<app>/`` and LMDB names.
"""

from __future__ import annotations

from dataclasses import dataclass

from medft.errors import unknown_name


@dataclass(frozen=True)
class App:
    name: str
    title: str
    num_classes: int  # C of Table I
    class_names: tuple[str, ...]
    evaluation: str  # how the paper scores it
    split_unit: str  # the level at which train/test are split
    #: the stratified set stated in section VI (divided 80/20 into training and validation):
    #: prep's default size and the committed solvers' epoch
    paper_train_patches: int


APPS: dict[str, App] = {
    a.name: a
    for a in (
        App("polyp", "Polyp detection (colonoscopy)", 2, ("non-polyp", "polyp"), "FROC", "video",
            100_000),
        App("pe", "Pulmonary embolism detection (CTPA)", 2, ("non-PE", "PE"), "FROC", "patient", 81_000),
        App("frames", "Colonoscopy frame classification", 2, ("non-informative", "informative"),
            "ROC", "video", 40_000),
        App("cimt", "Intima-media boundary segmentation (ultrasound)", 3,
            ("background", "lumen-intima", "media-adventitia"), "box plot", "patient",
            200_000),
    )
}

APP_NAMES: tuple[str, ...] = tuple(APPS)


def get_app(name: str) -> App:
    """The :class:`App` called ``name``; a one-line error lists valid names otherwise."""
    try:
        return APPS[name]
    except KeyError:
        raise unknown_name("application", name, APP_NAMES) from None
