"""Calibration: the fitted calibrator lowers the calibration error of a miscalibrated model
without changing a single decision, and the layer exported in the model computes the same."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from training import calibration
from training.metrics import expected_calibration_error


def _overconfident(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Softmax outputs of logits scaled 3x too sharp: labels drawn from the true softmax."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.5, (n, 5))
    true = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(5, p=row) for row in true])
    sharp = np.exp(3 * logits) / np.exp(3 * logits).sum(axis=1, keepdims=True)
    return sharp.astype(np.float32), y


def test_temperature_scaling_recovers_the_temperature_and_lowers_ece() -> None:
    probs, y = _overconfident(4000, 0)
    cal = calibration.fit("temperature", probs, y)
    assert cal.params["temperature"] == pytest.approx(3.0, rel=0.1)
    test_probs, test_y = _overconfident(4000, 1)
    after = cal.apply(test_probs)
    assert expected_calibration_error(test_y, after) < 0.02
    assert expected_calibration_error(test_y, test_probs) > 0.1
    assert (after.argmax(1) == test_probs.argmax(1)).all()  # accuracy unchanged
    assert calibration.brier_score(test_y, after) < calibration.brier_score(test_y, test_probs)


def test_platt_scaling_lowers_ece_and_maps_the_threshold() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 3000)
    y = (rng.random(3000) < 1 / (1 + np.exp(-z))).astype(np.int64)
    probs = (1 / (1 + np.exp(-(2.5 * z + 1.0)))).reshape(-1, 1).astype(np.float32)
    cal = calibration.fit("platt", probs, y)
    assert cal.params["a"] == pytest.approx(0.4, rel=0.15)
    after = cal.apply(probs)
    assert after.shape == probs.shape
    assert expected_calibration_error(y, after) < expected_calibration_error(y, probs) / 2
    t = 0.6
    mapped = cal.threshold(t)
    assert mapped is not None
    assert ((probs[:, 0] >= t) == (after[:, 0] >= mapped)).mean() > 0.999


def test_a_model_that_anti_correlates_keeps_its_order() -> None:
    probs = np.array([[0.9], [0.1], [0.8], [0.2]], np.float32)
    cal = calibration.fit("platt", probs, np.array([0, 1, 0, 1]))
    assert cal.params == {"a": 1.0, "b": 0.0}


def test_the_exported_layer_computes_what_apply_computes() -> None:
    probs, _ = _overconfident(64, 2)
    inputs = keras.Input((5,))
    base = keras.Model(inputs, keras.layers.Identity()(inputs))
    for cal in (
        calibration.Calibrator("temperature", {"temperature": 1.7}),
        calibration.Calibrator("platt", {"a": 0.7, "b": -0.2}),
    ):
        x = probs if cal.method == "temperature" else probs[:, :1]
        if cal.method == "platt":
            inputs = keras.Input((1,))
            base = keras.Model(inputs, keras.layers.Identity()(inputs))
        wrapped = calibration.wrap(base, cal)
        np.testing.assert_allclose(np.asarray(wrapped(x)), cal.apply(x), atol=1e-5)


def test_reliability_bins_count_every_example() -> None:
    probs, y = _overconfident(500, 3)
    bins = calibration.reliability(y, probs)
    assert sum(bins["count"]) == 500 and len(bins["accuracy"]) == 15
