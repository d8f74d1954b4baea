"""The one explanation path that every protocol adapter uses.

Adapters decode a request into instances (as for a prediction) and an optional target class, then
call :func:`explain`: the instances are validated as a prediction's are, the version's task
builds the perturbed inputs that explain them, and those run through the version's batcher on its
inference thread, never on the event loop, a part at a time (so the predictions of other
clients queue between them, :data:`QUEUE_SHARE`). The task reads the outputs back into
an :class:`~service.serving.tasks.Explanation`.

Those model calls are not the client's inferences: the V2 statistics count an explanation as one
call of the instances it explains, timed by the calls it made, not as its thousands of perturbed
rows (:meth:`~service.serving.batcher.Batcher.submit_uncounted`).

The perturbed batch is built here from inputs already validated, so it skips the per-request
instance limit that protects the service from clients (it is 2^8 coalitions times the background
for a Pima row, a few hundred occluded copies for an image); the limit on explained instances per
request, :data:`MAX_INSTANCES`, keeps it bounded instead.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from service.errors import DeadlineExceeded
from service.serving.batcher import Batcher
from service.serving.deadline import EDGE_DEADLINE
from service.serving.inference import validate
from service.serving.model import ModelVersion
from service.serving.tasks import Explanation

MAX_INSTANCES = 16  # explained instances per request
# an explanation's rows go to the queue at most a client's largest request, and at most this
# fraction of the queue, at a time: several explanations at once leave room for predictions
QUEUE_SHARE = 8


async def explain(
    mv: ModelVersion, x: np.ndarray, target: Any = None, *, timeout: float | None = None
) -> Explanation:
    """Explain the instances ``x`` with ``mv`` (for the class ``target``, where the task has
    classes to choose from: None means the predicted one).

    Raises InvalidInput (422), BadRequest (400: the version has no explanations), NotReady or
    Overloaded (503) and DeadlineExceeded (504), as a prediction does.
    """
    if mv.task is None or mv.batcher is None or not mv.available:
        raise mv.not_ready()
    task = mv.task
    chosen = task.check_target(target)
    x = validate(task, x, min(mv.max_instances, MAX_INSTANCES))
    batch, context = task.explanation_inputs(x, chosen)
    if timeout is None and not EDGE_DEADLINE.get():
        timeout = mv.timeout_s
    step = max(1, min(mv.max_instances, mv.batcher.queue_size // QUEUE_SHARE))
    cost = [0.0]
    outputs = await _run(mv.batcher, step, batch, timeout, cost)
    explanation = task.explanation(outputs, context)
    mv.batcher.count_explanation(len(x), cost[0])  # once it is made: a failed one is no call
    return explanation


async def _run(
    batcher: Batcher, step: int, batch: np.ndarray, timeout: float | None, cost: list[float]
) -> np.ndarray:
    """The model's outputs for the perturbed ``batch``, submitted ``step`` rows at a time: as
    one submission, a Pima explanation's thousands of rows filled the version's queue, and the
    predictions of every other client behind it were refused as overloaded. ``timeout`` bounds
    the whole; the seconds of the calls are added to ``cost[0]``."""
    if len(batch) <= step:
        return await batcher.submit_uncounted(batch, cost, timeout)
    parts = []
    try:
        async with asyncio.timeout(timeout):  # the part waiting when it passes is cancelled
            for start in range(0, len(batch), step):
                parts.append(await batcher.submit_uncounted(batch[start : start + step], cost))
    except TimeoutError:
        raise DeadlineExceeded(f"prediction did not finish within {timeout:g} s") from None
    return np.concatenate(parts)
