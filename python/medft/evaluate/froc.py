"""FROC analysis of a candidate-based detector (polyp and PE detection, paper Figs. 2 and 4).

Counting rules (medft's reading of the paper's section VI-A/B):

* A candidate is called positive when its score (the mean positive-class probability over
  its patches) is at least the threshold.
* Sensitivity counts *lesions*: a lesion is detected as soon as one of its candidates is
  called positive, so a lesion's detection score is the maximum score of its candidates.
  What a lesion is depends on the application and is decided by the caller's lesion keys:
  a polyp *occurrence in a frame* for polyp detection, a *unique PE* for PE detection.
* Lesions that no candidate hits (missed by the candidate generator) are in the
  denominator and can never be detected: the curve's ceiling is the generator's sensitivity.
* Every positive call of a candidate on no lesion is one false positive; the FP rate is
  false positives per image, i.e. per frame (polyp) or per volume (PE).  Extra candidates on
  an already-detected lesion are neither true nor false positives.

Arrays, not files: :class:`Detections` holds the encoded input; :func:`froc_curve`,
:func:`sensitivity_at_fp_score` and :func:`froc_bootstrap` compute from it.  The bootstrap
resamples cases (videos or patients) with replacement, as the cases are the independent
units.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from medft.errors import MedftError
from medft.evaluate import bootstrap as bs
from medft.evaluate._validation import check_finite


@dataclass(frozen=True)
class Detections:
    """Candidates of one detector on a test set, encoded as indices.

    Attributes (n candidates, L ground-truth lesions, C cases):
      ``score`` (n,) float: candidate scores.
      ``hit`` (n,) int: index into the lesions of the lesion the candidate hits, -1 if none.
      ``case`` (n,) int: case index of each candidate.
      ``lesion_case`` (L,) int: case index of each lesion.
      ``n_images`` (C,) float: frames (polyp) or volumes (PE) of each case, all > 0.
      ``case_ids`` (C,) the case names, in index order.
    """

    score: np.ndarray
    hit: np.ndarray
    case: np.ndarray
    lesion_case: np.ndarray
    n_images: np.ndarray
    case_ids: tuple

    @classmethod
    def from_ids(cls, cand_case: Sequence[Hashable], cand_lesion: Sequence[Hashable | None],
                 cand_score, lesion_case: Sequence[Hashable], lesion_key: Sequence[Hashable],
                 case_ids: Sequence[Hashable], n_images, *, source: str = "predictions"
                 ) -> Detections:
        """Encode named candidates against the ground-truth lesion list and case list.

        ``cand_lesion[i]`` is the key of the lesion candidate i hits (None or "" for none);
        ``lesion_key[j]`` is lesion j's key (unique per (case, key) pair).  Keys are any
        hashables: the caller chooses what a lesion is (e.g. ``(frame, polyp)`` pairs for
        polyp occurrences).  Raises :class:`MedftError` naming the first id that does not
        match (unknown case, lesion not in the ground truth, duplicate lesion).
        """
        score = check_finite(cand_score, f"{source}: score")
        n_img = check_finite(n_images, "cases: n_images")
        case_index = {c: i for i, c in enumerate(case_ids)}
        if len(case_index) != len(case_ids):
            raise MedftError(f"cases: duplicate case id among {len(case_ids)} cases")
        if len(n_img) != len(case_ids):
            raise MedftError("cases: case ids and image counts differ in length")
        if (n_img <= 0).any():
            i = int(np.flatnonzero(n_img <= 0)[0])
            raise MedftError(f"cases: case {case_ids[i]!r} has {n_img[i]:g} images; must be > 0")
        if not (len(cand_case) == len(cand_lesion) == len(score)):
            raise MedftError(f"{source}: case, lesion and score columns differ in length")

        def cidx(c, where):
            try:
                return case_index[c]
            except KeyError:
                raise MedftError(f"{where}: case {c!r} is not in the case list") from None

        lesion_index: dict[tuple, int] = {}
        l_case = np.empty(len(lesion_key), np.int64)
        for j, (c, k) in enumerate(zip(lesion_case, lesion_key)):
            l_case[j] = cidx(c, "lesions")
            if (c, k) in lesion_index:
                raise MedftError(f"lesions: lesion {k!r} of case {c!r} is listed twice")
            lesion_index[(c, k)] = j
        hit = np.full(len(score), -1, np.int64)
        case = np.empty(len(score), np.int64)
        for i, (c, k) in enumerate(zip(cand_case, cand_lesion)):
            case[i] = cidx(c, source)
            if k is None or k == "":
                continue
            try:
                hit[i] = lesion_index[(c, k)]
            except KeyError:
                raise MedftError(f"{source}: candidate {i} hits lesion {k!r} of case {c!r}, "
                                 "which is not in the ground-truth lesion list") from None
        return cls(score, hit, case, l_case, n_img, tuple(case_ids))

    @property
    def n_lesions(self) -> int:
        return int(self.lesion_case.size)

    def events(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The FROC as a step curve: ``(score, is_lesion, case, lesions_per_case, images_per_case)``.

        One event per detected-able lesion (score = max of its candidates) and one per
        candidate on no lesion; missed lesions only enter ``lesions_per_case`` (C,).
        """
        hits = self.hit >= 0
        lesion_max = np.full(self.n_lesions, -np.inf)
        np.maximum.at(lesion_max, self.hit[hits], self.score[hits])
        found = np.isfinite(lesion_max)
        neg = ~hits
        score = np.r_[lesion_max[found], self.score[neg]]
        is_lesion = np.r_[np.ones(found.sum(), bool), np.zeros(neg.sum(), bool)]
        group = np.r_[self.lesion_case[found], self.case[neg]]
        per_case = np.bincount(self.lesion_case, minlength=len(self.case_ids)).astype(float)
        return score, is_lesion, group, per_case, self.n_images

    def generator_operating_point(self) -> tuple[float, float]:
        """``(fp_per_image, sensitivity)`` of the candidate generator itself (threshold -inf)."""
        found = np.unique(self.hit[self.hit >= 0]).size
        sens = found / self.n_lesions if self.n_lesions else float("nan")
        return float(np.sum(self.hit < 0) / self.n_images.sum()), float(sens)


def froc_curve(det: Detections) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The empirical FROC curve.

    Returns ``(fps, sensitivity, thresholds)``, each of shape (T + 1,) with T the number of
    distinct event scores.  ``fps[t]`` is false positives per image and ``sensitivity[t]``
    the fraction of lesions detected when candidates with score >= ``thresholds[t]`` are
    called positive; index 0 is (0, 0) at threshold +inf.  Both are non-decreasing.

    >>> det = Detections.from_ids(["v1", "v1", "v1", "v2"], ["p1", "p1", "", ""],
    ...                           [0.9, 0.4, 0.6, 0.2], ["v1", "v2"], ["p1", "p2"],
    ...                           ["v1", "v2"], [2, 2])
    >>> fps, sens, thr = froc_curve(det)
    >>> fps.tolist(), sens.tolist(), thr.tolist()
    ([0.0, 0.0, 0.25, 0.5], [0.0, 0.5, 0.5, 0.5], [inf, 0.9, 0.6, 0.2])
    """
    if det.n_lesions == 0:
        raise MedftError("FROC needs at least one ground-truth lesion; the lesion list is empty")
    x, y, thr = bs.step_curve(*det.events())
    return x[0], y[0], thr


def sensitivity_at_fp_score(det: Detections, fp_rates) -> np.ndarray:
    """Sensitivity at each FP rate in ``fp_rates`` (F,): the largest sensitivity whose FP
    rate is <= the given rate (step interpolation).  Shape (F,)."""
    fps, sens, _ = froc_curve(det)
    return bs.value_at(fps, sens, fp_rates)[0]


def froc_bootstrap(det: Detections, fp_rates, *, n_boot: int = bs.N_BOOT, seed: int = bs.SEED,
                   weights: np.ndarray | None = None) -> np.ndarray:
    """Case-level bootstrap of the sensitivity at ``fp_rates`` (F,).

    Cases are drawn with replacement (``n_boot`` replicates, seeded); each replicate's FROC
    is recomputed from the drawn cases (lesions, candidates and images of a case drawn k
    times count k times).  Pass ``weights`` (B, C) from :func:`bootstrap.resample_weights`
    to pair two detectors on the same cases.  Returns shape (B, F).
    """
    if weights is None:
        weights = bs.resample_weights(len(det.case_ids), n_boot, seed)
    return bs.bootstrap_at(*det.events(), fp_rates, weights)
