"""Requests submitted in one event-loop iteration reach the inference thread together."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from service.batcher import Batcher
from service.errors import NotReady, Overloaded

pytestmark = pytest.mark.anyio


class Sizes:
    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with self.lock:
            self.sizes.append(len(x))
        return x[:, :1] * 2.0


async def test_requests_of_one_iteration_form_one_batch_without_waiting() -> None:
    model = Sizes()
    batcher = Batcher("t", model, max_batch_size=64, max_wait_s=0.0)
    batcher.start()
    try:
        tasks = [
            asyncio.ensure_future(batcher.submit(np.full((1, 2), i, np.float32))) for i in range(16)
        ]
        results = await asyncio.gather(*tasks)
    finally:
        await batcher.stop()
    assert model.sizes == [16]  # one hand-over, one runtime call
    assert [float(r[0, 0]) for r in results] == [2.0 * i for i in range(16)]
    assert batcher.queued_rows == 0


async def test_pending_rows_count_towards_the_queue_bound() -> None:
    batcher = Batcher("t", Sizes(), max_batch_size=64, max_wait_s=0.0, queue_size=4)
    batcher.start()
    try:
        first = [
            asyncio.ensure_future(batcher.submit(np.ones((2, 2), np.float32))) for _ in range(2)
        ]
        await asyncio.sleep(0)  # both submitted, not yet handed over
        assert batcher.queued_rows == 4
        with pytest.raises(Overloaded):
            await batcher.submit(np.ones((1, 2), np.float32))
        await asyncio.gather(*first)
    finally:
        await batcher.stop()


async def test_stop_hands_over_pending_requests_before_closing() -> None:
    model = Sizes()
    batcher = Batcher("t", model, max_batch_size=64, max_wait_s=0.0)
    batcher.start()
    pending = [asyncio.ensure_future(batcher.submit(np.ones((1, 2), np.float32))) for _ in range(3)]
    await asyncio.sleep(0)  # submitted; the flush callback has not run yet
    await batcher.stop()
    assert [r.shape for r in await asyncio.gather(*pending)] == [(1, 1)] * 3
    with pytest.raises(NotReady):
        await batcher.submit(np.ones((1, 2), np.float32))
