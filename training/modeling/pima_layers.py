"""Pima preprocessing that lives inside the exported model, so clients send raw values.

``PimaFeatures`` turns the eight raw clinical values into model features:

1. zeros in glucose, pressure, triceps, insulin and mass mean "not measured": they are replaced
   by the training median of the measured values (and can add a 0/1 missing indicator);
2. chosen columns are log-transformed (the pedigree score is strongly right-skewed);
3. every column is standardised with the training mean and standard deviation;
4. chosen columns get a piecewise-linear basis, ``relu(z - knot)`` at training quantiles, so a
   linear model on top can bend (an additive model in the spirit of a GAM).

All statistics come from ``adapt(x_train)`` and are stored as non-trainable weights; the graph
uses only ops that TFLite converts as builtins (select, log, gather, relu, concat).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from training.specs import PIMA_FEATURE_SPECS

N_FEATURES = len(PIMA_FEATURE_SPECS)
MISSING_IF_ZERO = tuple(i for i, spec in enumerate(PIMA_FEATURE_SPECS) if spec.missing_if_zero)
ALL_FEATURES = tuple(spec.name for spec in PIMA_FEATURE_SPECS)
_EPS = 1e-6


def _columns(names: Sequence[str]) -> tuple[int, ...]:
    index = {spec.name: i for i, spec in enumerate(PIMA_FEATURE_SPECS)}
    unknown = [n for n in names if n not in index]
    if unknown:
        raise ValueError(f"unknown Pima feature(s): {', '.join(unknown)}")
    return tuple(index[n] for n in names)


@keras.saving.register_keras_serializable(package="digitserve")
class PimaFeatures(keras.layers.Layer):
    """Raw ``[N, 8]`` Pima values to imputed, standardised (and expanded) features."""

    def __init__(
        self,
        keep: Sequence[str] = ALL_FEATURES,
        log: Sequence[str] = ("pedigree",),
        hinges: Sequence[str] = (),
        knots: int = 3,
        indicators: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.keep = tuple(keep)
        self.log = tuple(log)
        self.hinges = tuple(hinges)
        self.knots = int(knots)
        self.indicators = tuple(indicators)
        self._keep_idx = _columns(self.keep)
        self._log_mask = np.isin(np.arange(N_FEATURES), _columns(self.log))
        self._hinge_idx = _columns(self.hinges)
        self._indicator_idx = _columns(self.indicators)
        self._missing_mask = np.isin(np.arange(N_FEATURES), MISSING_IF_ZERO)
        self.adapted = False

    def build(self, input_shape: Any) -> None:
        def stat(name: str, shape: tuple[int, ...], value: float) -> keras.Variable:
            return self.add_weight(
                name=name,
                shape=shape,
                initializer=keras.initializers.Constant(value),
                trainable=False,
            )

        self.median = stat("median", (N_FEATURES,), 0.0)
        self.mean = stat("mean", (N_FEATURES,), 0.0)
        self.std = stat("std", (N_FEATURES,), 1.0)
        self.knot_values = stat("knot_values", (len(self._hinge_idx), self.knots), 0.0)

    @property
    def output_width(self) -> int:
        return len(self._keep_idx) + len(self._indicator_idx) + len(self._hinge_idx) * self.knots

    def _impute_and_log(self, x: np.ndarray, median: np.ndarray) -> np.ndarray:
        out = np.where(self._missing_mask & (x == 0), median, x)
        return np.where(self._log_mask, np.log(np.maximum(out, _EPS)), out)

    def adapt(self, x_train: np.ndarray) -> None:
        """Fit medians, means, standard deviations and knots on the training rows only."""
        x = np.asarray(x_train, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != N_FEATURES:
            raise ValueError(f"expected raw Pima rows [N, {N_FEATURES}], got {x.shape}")
        if not self.built:
            self.build((None, N_FEATURES))
        median = np.zeros(N_FEATURES)
        for j in MISSING_IF_ZERO:
            measured = x[x[:, j] != 0, j]
            median[j] = np.median(measured) if len(measured) else 0.0
        filled = self._impute_and_log(x, median)
        mean, std = filled.mean(axis=0), filled.std(axis=0) + _EPS
        z = (filled - mean) / std
        quantiles = np.linspace(0.0, 1.0, self.knots + 2)[1:-1]
        knots = np.array([np.quantile(z[:, j], quantiles) for j in self._hinge_idx])
        self.median.assign(median.astype(np.float32))
        self.mean.assign(mean.astype(np.float32))
        self.std.assign(std.astype(np.float32))
        self.knot_values.assign(knots.reshape(len(self._hinge_idx), self.knots).astype("float32"))
        self.adapted = True

    def call(self, inputs: Any) -> Any:
        x = ops.cast(inputs, "float32")
        missing = ops.logical_and(ops.equal(x, 0.0), ops.convert_to_tensor(self._missing_mask))
        filled = ops.where(missing, self.median, x)
        logged = ops.log(ops.maximum(filled, _EPS))
        filled = ops.where(ops.convert_to_tensor(self._log_mask), logged, filled)
        z = (filled - self.mean) / self.std
        parts = [ops.take(z, list(self._keep_idx), axis=1)]
        if self._indicator_idx:
            flags = ops.take(missing, list(self._indicator_idx), axis=1)
            parts.append(ops.cast(flags, "float32"))
        if self._hinge_idx:
            bent = ops.take(z, list(self._hinge_idx), axis=1)[:, :, None] - self.knot_values
            width = len(self._hinge_idx) * self.knots
            parts.append(ops.reshape(ops.relu(bent), (-1, width)))
        return ops.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, int]:
        return (input_shape[0], self.output_width)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "keep": list(self.keep),
                "log": list(self.log),
                "hinges": list(self.hinges),
                "knots": self.knots,
                "indicators": list(self.indicators),
            }
        )
        return config
