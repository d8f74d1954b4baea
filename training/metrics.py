"""Test-set metrics computed from the serving model's probabilities."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score

ECE_BINS = 15
DEFAULT_THRESHOLD = 0.5
_EPS = 1e-7


def class_probabilities(probs: np.ndarray) -> np.ndarray:
    """[N, C] class probabilities; a single sigmoid column becomes [1 - p, p]."""
    flat = np.asarray(probs, dtype=np.float64).reshape(len(probs), -1)
    if flat.shape[1] == 1:
        return np.concatenate([1.0 - flat, flat], axis=1)
    return flat


def predicted_classes(probs: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """argmax, or ``p >= threshold`` for a single sigmoid column (0.5 when None)."""
    flat = np.asarray(probs, dtype=np.float64).reshape(len(probs), -1)
    if flat.shape[1] == 1:
        cut = DEFAULT_THRESHOLD if threshold is None else threshold
        return (flat[:, 0] >= cut).astype(np.int64)
    return np.argmax(flat, axis=1).astype(np.int64)


def cross_entropy(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean negative log-likelihood of the true class (what Keras reports as loss)."""
    p = class_probabilities(probs)
    chosen = p[np.arange(len(p)), np.asarray(y_true, dtype=np.int64)]
    return float(-np.mean(np.log(np.clip(chosen, _EPS, 1.0))))


def expected_calibration_error(
    y_true: np.ndarray, probs: np.ndarray, bins: int = ECE_BINS
) -> float:
    """ECE of the top-class confidence over ``bins`` equal-width bins."""
    p = class_probabilities(probs)
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == np.asarray(y_true)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


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
