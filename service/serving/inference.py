"""The one prediction path that every protocol adapter uses.

Adapters decode a request into a float32 array and options, then call :func:`predict` (validate
against the version's input spec, queue into its batcher, wait within the deadline) and encode the
result, for the service's own API with :func:`postprocess` (labels, probabilities, outcomes).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from service.errors import InvalidInput, NotReady
from service.serving.deadline import EDGE_DEADLINE
from service.serving.model import ModelSpec, ModelVersion

_RANGE_SLACK = 1e-6
_MIN, _MAX = np.minimum.reduce, np.maximum.reduce  # what ndarray.min/max call, minus a layer


def validate(spec: ModelSpec, x: np.ndarray, max_instances: int) -> np.ndarray:
    """``x`` as contiguous float32 ``(n, *input_shape)``, or InvalidInput saying what is wrong."""
    if not isinstance(x, np.ndarray):
        raise InvalidInput("input must be an array")
    if x.dtype != np.float32:
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
            raise InvalidInput(f"input must be numeric, got {x.dtype}")
        x = x.astype(np.float32)
    shape = spec.input_shape
    if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != shape:
        raise InvalidInput(
            f"input has shape {list(x.shape)}, expected [n, {', '.join(map(str, shape))}]"
        )
    n = x.shape[0]
    if n == 0:
        raise InvalidInput("no instances: send at least one")
    if n > max_instances:
        raise InvalidInput(f"too many instances: {n} (at most {max_instances} per request)")
    lo_seen, hi_seen = float(_MIN(x, None)), float(_MAX(x, None))  # NaN and Inf show up here
    if not (math.isfinite(lo_seen) and math.isfinite(hi_seen)):
        row = int(np.argmin(np.isfinite(x).reshape(n, -1).all(axis=1)))
        raise InvalidInput(f"instance {row} contains NaN or Inf")
    if spec.input_range is not None:
        lo, hi = spec.input_range
        if lo_seen < lo - _RANGE_SLACK or hi_seen > hi + _RANGE_SLACK:
            flat = x.reshape(n, -1)
            bad = (flat < lo - _RANGE_SLACK) | (flat > hi + _RANGE_SLACK)
            row = int(np.argmax(bad.any(axis=1)))
            value = float(flat[row][bad[row]][0])
            raise InvalidInput(
                f"instance {row}: value {value:g} is outside the range [{lo:g}, {hi:g}]"
            )
    if spec.features:
        lows, highs = spec.feature_bounds
        bad_cols = (x.min(axis=0) < lows) | (x.max(axis=0) > highs)
        if bad_cols.any():
            col = int(np.argmax(bad_cols))
            feature = spec.features[col]
            column = x[:, col]
            row = int(np.argmax((column < lows[col]) | (column > highs[col])))
            raise InvalidInput(
                f"instance {row}: {feature.name}={float(column[row]):g} is outside "
                f"[{float(lows[col]):g}, {float(highs[col]):g}]"
            )
    return np.ascontiguousarray(x)


async def predict(mv: ModelVersion, x: np.ndarray, *, timeout: float | None = None) -> np.ndarray:
    """Validate ``x`` against ``mv``'s input spec and run it through the version's batcher.

    Returns the model's output ``(n, *output_shape)`` (probabilities). Raises InvalidInput (422),
    NotReady/Overloaded (503) or DeadlineExceeded (504). ``timeout`` defaults to the setting,
    except inside a request whose deadline the edge already enforces (``EDGE_DEADLINE``).
    """
    if mv.spec is None or mv.batcher is None or not mv.available:
        raise NotReady(f"model {mv.name} version {mv.version} is {mv.state.value}")
    x = validate(mv.spec, x, mv.max_instances)
    if timeout is None and not EDGE_DEADLINE.get():
        timeout = mv.timeout_s
    return await mv.batcher.submit(x, timeout)


def check_top_k(spec: ModelSpec, value: Any) -> int | None:
    if value is None:
        return None
    if spec.kind != "classifier":
        raise InvalidInput("top_k applies to classifiers only")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= len(spec.labels):
        raise InvalidInput(f"top_k must be an integer from 1 to {len(spec.labels)}")
    return value


def check_threshold(spec: ModelSpec, value: Any) -> float:
    if value is None:
        return spec.threshold
    if spec.kind != "binary":
        raise InvalidInput("threshold applies to binary models (pima) only")
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InvalidInput("threshold must be a number from 0 to 1")
    return float(value)


def classify(spec: ModelSpec, probs: np.ndarray, top_k: int | None = None) -> list[dict[str, Any]]:
    """Per instance: label, class_index, probabilities keyed by label, optional top_k."""
    probs = probs.reshape(len(probs), -1)
    labels = spec.labels
    best = probs.argmax(axis=1).tolist()
    rows = list(probs)  # numpy float32 scalars: JSON gets their shortest float32 repr
    order = np.argsort(-probs, axis=1, kind="stable")[:, :top_k].tolist() if top_k else None
    out: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        item: dict[str, Any] = {
            "label": labels[best[i]],
            "class_index": best[i],
            "probabilities": dict(zip(labels, row, strict=True)),
        }
        if order is not None:
            item["top_k"] = [{"label": labels[j], "probability": row[j]} for j in order[i]]
        out.append(item)
    return out


def outcomes(spec: ModelSpec, probs: np.ndarray, threshold: float) -> list[dict[str, Any]]:
    """Per instance of a sigmoid model: probability, outcome label and index, threshold."""
    p = list(probs.reshape(len(probs), -1)[:, 0])
    negative, positive = spec.labels[0], spec.labels[-1]
    return [
        {
            "probability": value,
            "outcome": positive if value >= threshold else negative,
            "outcome_index": 1 if value >= threshold else 0,
            "threshold": threshold,
        }
        for value in p
    ]


def postprocess(
    spec: ModelSpec,
    probs: np.ndarray,
    *,
    top_k: int | None = None,
    threshold: float | None = None,
) -> list[dict[str, Any]]:
    """Predictions for the service's own API, by the version's output kind."""
    if spec.kind == "classifier":
        return classify(spec, probs, top_k)
    return outcomes(spec, probs, spec.threshold if threshold is None else threshold)
