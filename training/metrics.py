"""Test-set metrics computed from the serving model's probabilities."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score

# One definition of each for the training report and the service's live quality window
from service.serving.quality import (
    ECE_BINS,
    class_probabilities,
    expected_calibration_error,
    predicted_classes,
)

__all__ = [
    "ECE_BINS",
    "class_probabilities",
    "classification_metrics",
    "cross_entropy",
    "expected_calibration_error",
    "predicted_classes",
]

_EPS = 1e-7


def cross_entropy(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean negative log-likelihood of the true class (what Keras reports as loss)."""
    p = class_probabilities(probs)
    chosen = p[np.arange(len(p)), np.asarray(y_true, dtype=np.int64)]
    return float(-np.mean(np.log(np.clip(chosen, _EPS, 1.0))))


def classification_metrics(
    y_true: np.ndarray, probs: np.ndarray, labels: list[str], threshold: float | None = None
) -> dict[str, Any]:
    """accuracy, loss, roc_auc (binary), per_class, confusion_matrix, ece, cv (None)."""
    y = np.asarray(y_true, dtype=np.int64).reshape(-1)
    pred = predicted_classes(probs, threshold)
    classes = list(range(len(labels)))
    precision, recall, _, _ = precision_recall_fscore_support(
        y, pred, labels=classes, zero_division=0
    )
    roc_auc = None
    if len(labels) == 2 and len(np.unique(y)) == 2:
        roc_auc = float(roc_auc_score(y, class_probabilities(probs)[:, 1]))
    return {
        "accuracy": float(np.mean(pred == y)),
        "loss": cross_entropy(y, probs),
        "roc_auc": roc_auc,
        "per_class": {
            label: {"precision": float(precision[i]), "recall": float(recall[i])}
            for i, label in enumerate(labels)
        },
        "confusion_matrix": confusion_matrix(y, pred, labels=classes).tolist(),
        "ece": expected_calibration_error(y, probs),
        "cv": None,
    }
