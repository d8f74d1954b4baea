"""The one prediction path that every protocol adapter uses.

Adapters decode a request into a float32 array and options, then call :func:`predict` (validate
against the version's task, queue into its batcher, wait within the deadline) and encode the
result (for the service's own API with the task's ``predictions``).
"""

from __future__ import annotations

import math

import numpy as np

from service.errors import InvalidInput
from service.serving.deadline import EDGE_DEADLINE
from service.serving.model import ModelVersion
from service.serving.operations import CURRENT
from service.serving.tasks import Task

_MIN, _MAX = np.minimum.reduce, np.maximum.reduce  # what ndarray.min/max call, minus a layer


def validate(task: Task, x: np.ndarray, max_instances: int) -> np.ndarray:
    """``x`` as contiguous float32 ``(n, *input_shape)``, or InvalidInput saying what is wrong."""
    if not isinstance(x, np.ndarray):
        raise InvalidInput("input must be an array")
    given = x
    if x.dtype != np.float32:
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
            raise InvalidInput(f"input must be numeric, got {x.dtype}")
        with np.errstate(over="ignore"):
            x = x.astype(np.float32)
    shape = task.input_shape
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
        if given is not x and np.isfinite(given[row]).all():  # finite until the cast
            raise InvalidInput(f"instance {row} holds a number beyond float32's range (3.4e38)")
        raise InvalidInput(f"instance {row} contains NaN or Inf")
    task.check_values(x, lo_seen, hi_seen)
    return np.ascontiguousarray(x)


async def predict(
    mv: ModelVersion, x: np.ndarray, *, timeout: float | None = None, answered: bool = True
) -> np.ndarray:
    """Validate ``x`` against ``mv``'s input spec and run it through the version's batcher.

    Returns the model's output ``(n, *output_shape)`` (probabilities). Raises InvalidInput (422),
    NotReady/Overloaded (503) or DeadlineExceeded (504). ``timeout`` defaults to the setting,
    except inside a request whose deadline the edge already enforces (``EDGE_DEADLINE``).
    ``answered``: the rows are the request's answer (:func:`observe`d); rows the caller chooses
    among first (a number's ways to split) are observed once chosen.
    """
    if mv.task is None or mv.batcher is None or not mv.available:
        raise mv.not_ready()
    x = validate(mv.task, x, mv.max_instances)
    if timeout is None and not EDGE_DEADLINE.get():
        timeout = mv.timeout_s
    out = await mv.batcher.submit(x, timeout)
    if answered:
        observe(mv, x, out)
    return out


def observe(mv: ModelVersion, x: np.ndarray, out: np.ndarray) -> None:
    """Hand a request's answered rows to the operations that watch them (payload log, feedback,
    drift, shadow), when any is on."""
    operations = CURRENT.get()
    if operations is not None:
        operations[0].observe(mv, x, out, operations[1])
