"""The applications of the study and their fixed facts: the paper's four (section VI) and
``classify``, the study on a researcher's own classification images.

The tokens ``polyp``, ``pe``, ``frames``, ``cimt`` and ``classify`` are used everywhere: CLI
arguments, Make targets, ``prototxt/<app>/``, ``runs/<app>/`` and LMDB names.
"""

from __future__ import annotations

from dataclasses import dataclass

from medft.errors import MedftError, unknown_name

#: the reduced set of a single patient (cimt): a count of cases, not a share of them
ONE_PATIENT = "1patient"

#: "we divided the training set into a smaller training set with 80% of the training data and a
#: validation set with the remaining 20%" (section VI): the stratified set is train + validation
VAL_FRACTION = 0.2

#: how an application is scored (``App.evaluation``): the scoring and the report dispatch on it.
#: OVR: ROC for two classes, one-vs-rest ROC per class and their macro-average for more
FROC, ROC, BOXPLOT, OVR = "FROC", "ROC", "box plot", "one-vs-rest ROC"


@dataclass(frozen=True)
class InputSize:
    """A synthetic input set's size (``medft synth``, ``medft prep --synthetic``): cases (videos,
    patients) and frames, ROIs or emboli per case; for the crop-sampled applications (frames,
    classify) also the random crops per training and test image (None: prep's default)."""

    cases: int
    per_case: int
    crops: int | None = None
    test_crops: int | None = None


@dataclass(frozen=True)
class InputSizes:
    """An application's synthetic input sizes, one per purpose."""

    default: InputSize  # `medft synth` and `medft prep --synthetic`: prep in well under a minute on a CPU
    tiny: InputSize  # the smallest that still gives every class in train, val and test (tests, benchmarks)
    study: InputSize  # `medft grid` and `medft cell` on synthetic input: every reduced set keeps every class
    #: `medft demo`: detection apps get many test cases (about 100 test polyps) so that their bootstrap
    #: intervals are near +-0.1; frames more, smaller videos and fewer crops per frame; cimt more patients
    #: and ROIs; classify 180 training-pool images per class, so that its 1% set keeps two of each
    demo: InputSize

    def of(self, purpose: str) -> InputSize:
        """The size for ``purpose``: one of :data:`SIZE_PURPOSES`."""
        if purpose not in SIZE_PURPOSES:
            raise unknown_name("synthetic input size", purpose, SIZE_PURPOSES)
        return getattr(self, purpose)


#: the purposes of :class:`InputSizes`, its field names
SIZE_PURPOSES: tuple[str, ...] = ("default", "tiny", "study", "demo")


@dataclass(frozen=True)
class App:
    """Every fact of one application; code dispatches on these fields, never on the name."""

    name: str
    title: str
    num_classes: int  # C of Table I; 0: read from the prepared data set (:func:`classes_of`)
    class_names: tuple[str, ...]  # () where the data set names them
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
    unit_name: str = "units"  # what one scored unit is, in the report's words (ROC apps)
    #: the synthetic input sizes, one per purpose (each application below states its own)
    inputs: InputSizes = InputSizes(*(InputSize(6, 2),) * 4)
    #: `medft prep` options of this application's reader (frames and classify: crops; cimt: the patch window)
    prep_options: tuple[str, ...] = ()
    #: test candidates are seen from many views (polyp 120, pe 54): prep takes ``--test-views N``
    test_views: bool = False
    #: operating points suited to the demo's small synthetic test sets (about 120 test frames resolve
    #: false positives per frame in steps of ~0.01; the paper's lowest points need far more frames)
    demo_operating_points: tuple[float, ...] = ()

    @property
    def classes_from_data(self) -> bool:
        """True where the classes are the input's own (C >= 2), named in the data set's prep.json."""
        return self.num_classes == 0


APPS: dict[str, App] = {
    a.name: a
    for a in (
        App("polyp", "Polyp detection (colonoscopy)", 2, ("non-polyp", "polyp"), FROC, "video",
            100_000, ("1", "0.5", "0.25"), (0.01, 0.05, 0.10), "false positives per frame", "case", "n_frames",
            inputs=InputSizes(default=InputSize(6, 2), tiny=InputSize(5, 1), study=InputSize(6, 2),
                              demo=InputSize(40, 6)),
            test_views=True, demo_operating_points=(0.1, 0.25, 0.5)),
        App("pe", "Pulmonary embolism detection (CTPA)", 2, ("non-PE", "PE"), FROC, "patient", 81_000,
            ("1", "0.5", "0.25"), (1.0, 2.0, 3.0), "false positives per volume", "case", "n_volumes",
            inputs=InputSizes(default=InputSize(6, 2), tiny=InputSize(5, 2), study=InputSize(12, 3),
                              demo=InputSize(24, 3)),
            test_views=True),
        App("frames", "Colonoscopy frame classification", 2, ("non-informative", "informative"),
            ROC, "video", 40_000, ("1", "0.1", "0.05", "0.01"), (0.10, 0.15, 0.20), "false positive rate",
            "case", unit_name="frames",
            inputs=InputSizes(default=InputSize(4, 2), tiny=InputSize(4, 1, crops=6, test_crops=4),
                              study=InputSize(20, 10), demo=InputSize(12, 8, crops=20, test_crops=10)),
            prep_options=("crops", "test_crops")),
        App("cimt", "Intima-media boundary segmentation (ultrasound)", 3,
            ("background", "lumen-intima", "media-adventitia"), BOXPLOT, "patient",
            200_000, ("1", "1patient"),
            inputs=InputSizes(default=InputSize(6, 2), tiny=InputSize(5, 2), study=InputSize(6, 2),
                              demo=InputSize(20, 2)),
            prep_options=("window", "bg_margin")),
        # a researcher's own images: classes from the data; the frames application's reduced
        # fractions and stratified-set size (40,000 crops), split and resampled by case (patient)
        App("classify", "Image classification (your own data)", 0, (), OVR, "case", 40_000,
            ("1", "0.1", "0.05", "0.01"), (0.10, 0.15, 0.20), "one-vs-rest false positive rate", "case",
            unit_name="images",
            inputs=InputSizes(default=InputSize(6, 4), tiny=InputSize(4, 2, crops=4), study=InputSize(30, 12),
                              demo=InputSize(30, 12, crops=4, test_crops=4)),
            prep_options=("crops", "test_crops", "mirror")),
    )
}

APP_NAMES: tuple[str, ...] = tuple(APPS)


#: the applications whose nets are fixed (C known): the committed prototxt/ and solvers/
FIXED_APPS: tuple[str, ...] = tuple(n for n, a in APPS.items() if not a.classes_from_data)


def classes_of(app: App, prep_record: dict | None = None) -> tuple[str, ...]:
    """The class names of ``app``: its own, or those of a prepared data set's ``prep.json``."""
    if not app.classes_from_data:
        return app.class_names
    names = tuple((prep_record or {}).get("class_names") or ())
    if len(names) < 2:
        raise MedftError(f"{app.name}: the classes come from the prepared data set, and its prep.json names "
                         f"{len(names)} (run `medft prep {app.name}` first; 2 or more classes are needed)")
    return names


def get_app(name: str) -> App:
    """The :class:`App` called ``name``; a one-line error lists valid names otherwise."""
    try:
        return APPS[name]
    except KeyError:
        raise unknown_name("application", name, APP_NAMES) from None


def check_fraction(app: str, fraction: str) -> str:
    """``fraction`` normalised ("1.0" and "full" are "1"), or a one-line error listing the reduced sets
    valid for ``app`` (:attr:`App.fractions`)."""
    valid = get_app(app).fractions
    norm = fraction.strip()
    if norm in ("1.0", "full"):
        norm = "1"
    if norm not in valid:
        raise MedftError(f"fraction {fraction!r} is not one of {app}'s reduced sets; valid: {', '.join(valid)}")
    return norm


def patch_share(fraction: str) -> float:
    """The share of the full stratified set's patch count that the reduced set ``fraction`` (a checked
    token) may hold: the fraction itself, but 1 for a single patient, whose set is bounded by what its
    ROIs give rather than by a share. (:func:`medft.paths.fraction_share` instead orders run folders by
    how much training data they saw, a single patient least.)"""
    return 1.0 if fraction == ONE_PATIENT else float(fraction)


def set_size(app: str, fraction: str = "1", full: int | None = None) -> int:
    """Patches (train + validation) of ``app``'s stratified set at ``fraction``.

    ``full`` is the full set's size, the paper's (:attr:`App.paper_train_patches`) by default; a reduced
    set gets its share (:func:`patch_share`), so fewer cases also mean fewer patches.
    """
    total = get_app(app).paper_train_patches if full is None else full
    return round(total * patch_share(check_fraction(app, fraction)))


def split_sizes(total: int, val_fraction: float = VAL_FRACTION) -> tuple[int, int]:
    """(train, validation) patches of a stratified set of ``total``, divided as section VI says."""
    n_val = round(total * val_fraction)
    return total - n_val, n_val
