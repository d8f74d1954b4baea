"""Post-hoc calibration, fitted on a calibration split held out from training.

A calibrator maps the trained model's probabilities to calibrated ones and is exported inside the
model (:func:`wrap`), so the SavedModel, the TFLite file and every protocol return calibrated
probabilities with no change to serving:

- ``temperature`` (softmax models): ``softmax(log(p) / T)``. For a softmax over logits ``z``,
  ``log p = z - logsumexp(z)``, so this is exactly temperature scaling of the logits; the argmax,
  hence the accuracy, does not change.
- ``platt`` (sigmoid models): ``sigmoid(a * logit(p) + b)`` with ``a > 0``, monotone, so the
  decision threshold maps to ``sigmoid(a * logit(t) + b)`` and every decision stays the same.
  Two parameters suit a table of a few hundred rows; isotonic scaling would overfit them.
  A calibration split of a hundred-odd rows cannot pin ``a`` and ``b`` down, and a fit to its
  noise makes a well-calibrated model worse, so Platt scaling replaces the model's probabilities
  only when the split shows they are off: when the likelihood-ratio statistic of the fitted
  ``(a, b)`` against ``(1, 0)`` (no change) passes the 95% point of chi-square with two degrees
  of freedom. Otherwise the calibrator is the identity, ``a = 1, b = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from scipy.optimize import minimize, minimize_scalar

from training.metrics import class_probabilities, expected_calibration_error

METHODS = ("temperature", "platt")
_EPS = 1e-7  # Platt: probabilities are clipped to [EPS, 1 - EPS] before the logit
# Temperature: a probability that underflowed to 0 is clipped to this before the log; it is a
# normal float32, and small enough that such a class stays at about 0 after scaling.
_TINY = 1e-30
_LOG_T_BOUNDS = (-4.0, 4.0)  # temperature from e^-4 to e^4
PLATT_CRITICAL = 5.991  # the 95% point of chi-square with 2 degrees of freedom


def _log(p: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.asarray(p, np.float64), _TINY, 1.0))


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, np.float64).reshape(-1), _EPS, 1.0 - _EPS)
    return np.log(q) - np.log1p(-q)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass(frozen=True)
class Calibrator:
    method: str
    params: dict[str, float]

    def apply(self, probs: np.ndarray) -> np.ndarray:
        """The calibrated probabilities, in the model's output shape (NumPy, float64)."""
        if self.method == "temperature":
            return _softmax(_log(probs) / self.params["temperature"])
        z = self.params["a"] * _logit(probs) + self.params["b"]
        return _sigmoid(z).reshape(np.shape(probs))

    def invert(self, probs: np.ndarray) -> np.ndarray:
        """The trained model's probabilities, from the calibrated ones :meth:`apply` returned."""
        if self.method == "temperature":
            return _softmax(_log(probs) * self.params["temperature"])
        z = (_logit(probs) - self.params["b"]) / self.params["a"]
        return _sigmoid(z).reshape(np.shape(probs))

    def threshold(self, threshold: float | None) -> float | None:
        """A decision threshold on the old probabilities, on the calibrated ones."""
        if threshold is None or self.method != "platt":
            return threshold
        return float(self.apply(np.array([[threshold]]))[0, 0])


def fit_temperature(probs: np.ndarray, y: np.ndarray) -> Calibrator:
    """The temperature that minimises the negative log-likelihood of ``y``."""
    log_p = _log(probs)
    rows = np.arange(len(y))

    def nll(log_t: float) -> float:
        z = log_p / np.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        log_q = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-log_q[rows, y].mean())

    best = minimize_scalar(nll, bounds=_LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-6})
    return Calibrator("temperature", {"temperature": float(np.exp(best.x))})


def fit_platt(
    probs: np.ndarray, y: np.ndarray, critical: float | None = PLATT_CRITICAL
) -> Calibrator:
    """``a`` and ``b`` that minimise the negative log-likelihood of ``y`` (0/1); ``(1, 0)``
    unless twice the log-likelihood gained exceeds ``critical`` (None: always the fit)."""
    z = _logit(probs)
    t = np.asarray(y, np.float64).reshape(-1)

    def nll(params: np.ndarray) -> tuple[float, np.ndarray]:
        a, b = params
        s = a * z + b
        loss = np.logaddexp(0.0, s) - t * s  # -log-likelihood per row, stable
        g = _sigmoid(s) - t
        return float(loss.mean()), np.array([(g * z).mean(), g.mean()])

    best = minimize(nll, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    a, b = (float(v) for v in best.x)
    if not a > 0:  # a model whose scores anti-correlate with the truth: keep its order
        a, b = 1.0, 0.0
    gained = 2 * len(t) * (nll(np.array([1.0, 0.0]))[0] - nll(np.array([a, b]))[0])
    if critical is not None and gained <= critical:
        a, b = 1.0, 0.0
    return Calibrator("platt", {"a": a, "b": b})


def fit(method: str, probs: np.ndarray, y: np.ndarray) -> Calibrator:
    if method == "temperature":
        return fit_temperature(probs, np.asarray(y, np.int64))
    if method == "platt":
        return fit_platt(probs, np.asarray(y, np.int64))
    raise ValueError(f"unknown calibration method {method!r} (known: {', '.join(METHODS)})")


@keras.saving.register_keras_serializable(package="digitserve")
class TemperatureScaling(keras.layers.Layer):
    """``softmax(log(clip(p)) / T)``: the builtin ops TFLite has (log, divide, softmax)."""

    def __init__(self, temperature: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.temperature = float(temperature)

    def call(self, p: Any) -> Any:
        log_p = keras.ops.log(keras.ops.clip(p, _TINY, 1.0))
        return keras.ops.softmax(log_p / self.temperature, axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "temperature": self.temperature}


@keras.saving.register_keras_serializable(package="digitserve")
class PlattScaling(keras.layers.Layer):
    """``sigmoid(a * logit(clip(p)) + b)``."""

    def __init__(self, a: float, b: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.a, self.b = float(a), float(b)

    def call(self, p: Any) -> Any:
        q = keras.ops.clip(p, _EPS, 1.0 - _EPS)
        logit = keras.ops.log(q) - keras.ops.log(1.0 - q)
        return keras.ops.sigmoid(self.a * logit + self.b)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "a": self.a, "b": self.b}


def wrap(model: keras.Model, calibrator: Calibrator) -> keras.Model:
    """``model`` followed by the calibrator: the model that is exported."""
    if calibrator.method == "temperature":
        layer: keras.layers.Layer = TemperatureScaling(
            calibrator.params["temperature"], name="temperature_scaling"
        )
    else:
        layer = PlattScaling(calibrator.params["a"], calibrator.params["b"], name="platt_scaling")
    inputs = keras.Input(shape=model.input_shape[1:], dtype="float32", name=model.inputs[0].name)
    return keras.Model(inputs, layer(model(inputs)), name=f"{model.name}_calibrated")


def brier_score(y: np.ndarray, probs: np.ndarray) -> float:
    """Softmax: mean over examples of the squared distance to the one-hot truth (summed over
    classes). Sigmoid: mean of ``(p - y)^2``, the usual binary Brier score."""
    flat = np.asarray(probs, np.float64).reshape(len(probs), -1)
    y = np.asarray(y, np.int64).reshape(-1)
    if flat.shape[1] == 1:
        return float(np.mean((flat[:, 0] - y) ** 2))
    onehot = np.eye(flat.shape[1])[y]
    return float(np.mean(((flat - onehot) ** 2).sum(axis=1)))


def summary(y: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    return {
        "ece": round(expected_calibration_error(y, probs), 6),
        "brier": round(brier_score(y, probs), 6),
    }


def reliability(y: np.ndarray, probs: np.ndarray, bins: int = 15) -> dict[str, list[float]]:
    """Per equal-width bin of top-class confidence: mean confidence, accuracy, count."""
    p = class_probabilities(probs)
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == np.asarray(y).reshape(-1)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    out: dict[str, list[float]] = {"confidence": [], "accuracy": [], "count": []}
    for b in range(bins):
        mask = index == b
        out["count"].append(float(mask.sum()))
        out["confidence"].append(float(confidence[mask].mean()) if mask.any() else float("nan"))
        out["accuracy"].append(float(correct[mask].mean()) if mask.any() else float("nan"))
    return out
