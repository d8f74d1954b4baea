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


def test_the_calibration_split_is_held_out_of_training_stratified_and_fixed() -> None:
    from training.specs import MNIST, PIMA, Split

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 100)
    x = rng.random((1000, 28, 28)).astype(np.float32)
    x[:, 0, 0] = np.arange(1000)  # a row id
    split = Split("mnist", x, y, x[:5], y[:5], list(MNIST.labels))
    rest, x_cal, y_cal = MNIST.hold_out_calibration(split)
    # 5,000 of a full training split; a quarter of this small one
    assert len(x_cal) == 250 and len(rest.x_train) == 750
    assert set(x_cal[:, 0, 0]).isdisjoint(rest.x_train[:, 0, 0])
    assert np.bincount(y_cal).tolist() == [25] * 10  # stratified
    again = MNIST.hold_out_calibration(split)[1]
    np.testing.assert_array_equal(again, x_cal)
    assert rest.x_test is split.x_test  # the test split is never touched
    rows = Split("pima", x[:614, 0, :8], y[:614] % 2, x[:5, 0, :8], y[:5] % 2, ["a", "b"])
    assert len(PIMA.hold_out_calibration(rows)[1]) == 123


def _calibrated_binary(n: int, seed: int, sharpness: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Sigmoid outputs; labels drawn from them made ``sharpness`` times less sharp."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-z / sharpness))).astype(np.int64)
    return (1 / (1 + np.exp(-z))).reshape(-1, 1).astype(np.float32), y


def test_platt_keeps_a_calibrated_model_as_it_is_on_a_small_split() -> None:
    # On 120 rows the fitted (a, b) of a calibrated model is noise: the test keeps the identity
    # in most draws; an overconfident model of the same size is rescaled.
    kept = [
        calibration.fit("platt", *_calibrated_binary(120, seed)).params == {"a": 1.0, "b": 0.0}
        for seed in range(40)
    ]
    assert np.mean(kept) >= 0.85
    untested = calibration.fit_platt(*_calibrated_binary(120, 0), critical=None)
    assert untested.params != {"a": 1.0, "b": 0.0}
    sharp = calibration.fit("platt", *_calibrated_binary(120, 1, sharpness=3.0))
    assert sharp.params["a"] < 0.6


def test_the_trainer_ships_the_default_alpha_chosen_on_the_calibration_split() -> None:
    from types import SimpleNamespace

    from service.serving import conformal
    from training import trainer

    probs, y = _overconfident(3000, 4)
    inputs = keras.Input((5,))
    model = keras.Model(inputs, keras.layers.Identity()(inputs))
    spec = SimpleNamespace(
        calibration_method="temperature",
        decision_threshold=lambda chosen: chosen,
        calibration_spec=dict,
    )
    split = SimpleNamespace(x_test=probs[2000:], y_test=y[2000:], labels=list("abcde"))
    out = trainer.calibrate(spec, model, split, probs[:2000], y[:2000], None)
    block = out.conformal
    cal_probs = calibration.fit("temperature", probs[:2000], y[:2000]).apply(probs[:2000])
    expected, figures = conformal.choose_alpha(out.scores, cal_probs, conformal.DELTA)
    assert block["alpha"] == expected and block["delta"] == conformal.DELTA
    assert [f["alpha"] for f in block["calibration_split"]] == list(conformal.ALPHA_CANDIDATES)
    assert [f["single_label"] for f in block["calibration_split"]] == pytest.approx(
        [f["single_label"] for f in figures], abs=1e-3
    )
    assert [row["alpha"] for row in block["test"]] == list(conformal.ALPHA_CANDIDATES)
    assert all(0.0 <= row["coverage"] <= 1.0 for row in block["test"])


def test_invert_recovers_the_trained_models_probabilities() -> None:
    probs, _ = _overconfident(200, 5)
    cal = calibration.Calibrator("temperature", {"temperature": 2.5})
    np.testing.assert_allclose(cal.invert(cal.apply(probs)), probs, atol=1e-6)
    binary = probs[:, :1]
    platt = calibration.Calibrator("platt", {"a": 0.6, "b": 0.3})
    np.testing.assert_allclose(platt.invert(platt.apply(binary)), binary, atol=1e-6)
