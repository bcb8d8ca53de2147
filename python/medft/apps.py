"""The four applications of the study (paper section VI) and their fixed facts.

The tokens ``polyp``, ``pe``, ``frames`` and ``cimt`` are used everywhere: CLI arguments,
Make targets, ``prototxt/<app>/``, ``runs/<app>/`` and LMDB names.
"""

from __future__ import annotations

from dataclasses import dataclass

from medft.errors import unknown_name

#: how an application is scored (``App.evaluation``): the scoring and the report dispatch on it
FROC, ROC, BOXPLOT = "FROC", "ROC", "box plot"


@dataclass(frozen=True)
class App:
    """Every fact of one application; code dispatches on these fields, never on the name."""

    name: str
    title: str
    num_classes: int  # C of Table I
    class_names: tuple[str, ...]
    evaluation: str  # how the paper scores it: FROC, ROC or BOXPLOT
    split_unit: str  # the level at which train/test are split
    #: the stratified set stated in section VI (divided 80/20 into training and validation):
    #: prep's default size and the committed solvers' epoch
    paper_train_patches: int
    #: reduced training sets of the paper ("1" is all data), in prep's folder-name tokens
    fractions: tuple[str, ...]
    #: x of the curve at which sensitivities are read (medft's choice for polyp; Table S3 for frames)
    operating_points: tuple[float, ...] = ()
    x_label: str = ""  # the curve's x axis
    resample: str = "case"  # what the bootstrap resamples: cases (videos, patients) or units (frames)
    image_column: str = ""  # cases.csv column with each case's image count (FP denominators), FROC apps


APPS: dict[str, App] = {
    a.name: a
    for a in (
        App("polyp", "Polyp detection (colonoscopy)", 2, ("non-polyp", "polyp"), FROC, "video",
            100_000, ("1", "0.5", "0.25"), (0.01, 0.05, 0.10), "false positives per frame", "case", "n_frames"),
        App("pe", "Pulmonary embolism detection (CTPA)", 2, ("non-PE", "PE"), FROC, "patient", 81_000,
            ("1", "0.5", "0.25"), (1.0, 2.0, 3.0), "false positives per volume", "case", "n_volumes"),
        App("frames", "Colonoscopy frame classification", 2, ("non-informative", "informative"),
            ROC, "video", 40_000, ("1", "0.1", "0.05", "0.01"), (0.10, 0.15, 0.20), "false positive rate",
            "case"),
        App("cimt", "Intima-media boundary segmentation (ultrasound)", 3,
            ("background", "lumen-intima", "media-adventitia"), BOXPLOT, "patient",
            200_000, ("1", "1patient")),
    )
}

APP_NAMES: tuple[str, ...] = tuple(APPS)


def get_app(name: str) -> App:
    """The :class:`App` called ``name``; a one-line error lists valid names otherwise."""
    try:
        return APPS[name]
    except KeyError:
        raise unknown_name("application", name, APP_NAMES) from None
