"""The one explanation path that every protocol adapter uses.

Adapters decode a request into instances (as for a prediction) and an optional target class, then
call :func:`explain`: the instances are validated as a prediction's are, the version's task
builds the perturbed inputs that explain them, and those run through the version's batcher in one
model call on its inference thread, never on the event loop. The task reads the outputs back into
an :class:`~service.serving.tasks.Explanation`.

The perturbed batch is built here from inputs already validated, so it skips the per-request
instance limit that protects the service from clients (it is 2^8 coalitions times the background
for a Pima row, a few hundred occluded copies for an image); the limit on explained instances per
request, :data:`MAX_INSTANCES`, keeps it bounded instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from service.errors import NotReady
from service.serving.deadline import EDGE_DEADLINE
from service.serving.inference import validate
from service.serving.model import ModelVersion
from service.serving.tasks import Explanation

MAX_INSTANCES = 16  # explained instances per request


async def explain(
    mv: ModelVersion, x: np.ndarray, target: Any = None, *, timeout: float | None = None
) -> Explanation:
    """Explain the instances ``x`` with ``mv`` (for the class ``target``, where the task has
    classes to choose from: None means the predicted one).

    Raises InvalidInput (422), BadRequest (400: the version has no explanations), NotReady or
    Overloaded (503) and DeadlineExceeded (504), as a prediction does.
    """
    if mv.task is None or mv.batcher is None or not mv.available:
        raise NotReady(f"model {mv.name} version {mv.version} is {mv.state.value}")
    task = mv.task
    chosen = task.check_target(target)
    x = validate(task, x, min(mv.max_instances, MAX_INSTANCES))
    batch, context = task.explanation_inputs(x, chosen)
    if timeout is None and not EDGE_DEADLINE.get():
        timeout = mv.timeout_s
    outputs = await mv.batcher.submit(batch, timeout)
    return task.explanation(outputs, context)
