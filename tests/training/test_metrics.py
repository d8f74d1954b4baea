"""Test-set metrics from the serving model's probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics import classification_metrics, expected_calibration_error, predicted_classes


def test_metrics_on_known_predictions() -> None:
    y = np.array([0, 1, 1, 0])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
    m = classification_metrics(y, probs, ["a", "b"])
    assert m["accuracy"] == 0.75
    assert m["confusion_matrix"] == [[2, 0], [1, 1]]
    assert m["per_class"]["b"] == {"precision": 1.0, "recall": 0.5}
    assert m["roc_auc"] == 1.0  # every positive scores above every negative
    expected_loss = -np.mean(np.log([0.9, 0.8, 0.4, 0.7]))
    assert m["loss"] == pytest.approx(expected_loss)


def test_sigmoid_column_and_calibration() -> None:
    y = np.array([1, 0, 1, 1])
    p = np.array([[0.8], [0.3], [0.6], [0.4]])
    m = classification_metrics(y, p, ["no", "yes"])
    assert m["accuracy"] == 0.75
    # confident and always right: ECE 0; confident 0.9 but right half the time: ECE 0.4
    assert expected_calibration_error(np.array([0, 1]), np.array([[1.0, 0.0], [0.0, 1.0]])) == 0
    half = expected_calibration_error(np.array([0, 1]), np.array([[0.9, 0.1], [0.9, 0.1]]))
    assert half == pytest.approx(0.4)


def test_threshold_applies_to_a_sigmoid_column_only() -> None:
    sigmoid = np.array([[0.3], [0.45], [0.7]])
    np.testing.assert_array_equal(predicted_classes(sigmoid), [0, 0, 1])  # None: 0.5
    np.testing.assert_array_equal(predicted_classes(sigmoid, 0.4), [0, 1, 1])
    softmax = np.array([[0.3, 0.7], [0.6, 0.4]])
    np.testing.assert_array_equal(predicted_classes(softmax, 0.9), [1, 0])
