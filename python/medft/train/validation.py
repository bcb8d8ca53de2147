"""The validation AUC that selects the best epoch (section VI)."""

from __future__ import annotations

import numpy as np

from medft.errors import MedftError


def binary_scores(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(0/1 labels, positive score) for AUC. For CIMT's 3 classes the two interface classes
    are merged into one positive class (score = p1 + p2), as the paper's discussion does."""
    if probs.ndim != 2 or probs.shape[0] != labels.shape[0]:
        raise MedftError(f"probabilities {probs.shape} do not match labels {labels.shape}")
    return (labels > 0).astype(int), 1.0 - probs[:, 0]


def validation_auc(probs: np.ndarray, labels: np.ndarray, one_vs_rest: bool = False) -> float:
    """Validation AUC for model selection: of :func:`binary_scores`, or with ``one_vs_rest`` (an
    application scored per class) the macro one-vs-rest AUC over the net's classes."""
    from medft.evaluate.roc import roc_auc_score

    if one_vs_rest:
        from medft.evaluate.multiclass import macro_auc

        return macro_auc(labels, probs)
    y, s = binary_scores(probs, labels)
    return float(roc_auc_score(y, s))
