"""The training arithmetic without Caffe: the learning rate of an iteration, the validation AUC."""

from __future__ import annotations

import numpy as np
import pytest
from medft.train.lr import step_lr
from medft.train.validation import binary_scores, validation_auc


def test_step_lr_and_scores():
    assert step_lr(0, 10) == 0.001 and step_lr(9, 10) == 0.001
    assert step_lr(10, 10) == pytest.approx(0.00095) and step_lr(25, 10) == pytest.approx(0.001 * 0.95**2)
    y, s = binary_scores(np.array([[0.2, 0.5, 0.3], [0.9, 0.05, 0.05]]), np.array([2, 0]))
    assert list(y) == [1, 0] and s == pytest.approx([0.8, 0.1])
    assert validation_auc(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), np.array([0, 1, 1])) == 1.0


def test_validation_auc_equals_scikit_learn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    for classes in (2, 3):
        probs = rng.dirichlet(np.ones(classes), size=200)
        probs[:5] = probs[5:10]  # ties
        labels = rng.integers(0, classes, size=200)
        merged = (labels > 0).astype(int)  # CIMT: both interface classes are the positive class
        assert validation_auc(probs, labels) == pytest.approx(roc_auc_score(merged, 1 - probs[:, 0]), abs=1e-12)
