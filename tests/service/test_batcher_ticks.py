"""Requests reach the inference thread in groups: those of one loop iteration, and of the
iterations after it while each adds more."""

from __future__ import annotations

import asyncio
import threading
from collections import deque

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


async def _one(batcher: Batcher, value: float) -> np.ndarray:
    return await batcher.submit(np.full((1, 2), value, np.float32))


async def test_a_group_stays_open_while_each_iteration_adds_to_it() -> None:
    model = Sizes()
    batcher = Batcher("t", model, max_batch_size=64, max_wait_s=0.0)
    batcher.start()
    try:
        tasks = []
        for i in range(5):  # one more request in each of five iterations
            tasks.append(asyncio.ensure_future(_one(batcher, i)))
            await asyncio.sleep(0)
        results = await asyncio.gather(*tasks)
    finally:
        await batcher.stop()
    assert model.sizes == [5]  # handed over once the loop had nothing more to add
    assert [float(r[0, 0]) for r in results] == [0.0, 2.0, 4.0, 6.0, 8.0]


async def test_a_lone_request_waits_one_iteration_not_a_time_window() -> None:
    model = Sizes()
    batcher = Batcher("t", model, max_batch_size=64, max_wait_s=0.0)
    batcher.start()
    try:
        task = asyncio.ensure_future(_one(batcher, 1.0))
        await asyncio.sleep(0)  # submitted: the group is open
        assert batcher._items == deque() and batcher.queued_rows == 1
        await asyncio.sleep(0)  # an iteration that added nothing: handed over
        assert batcher._pending == []
        assert float((await asyncio.wait_for(task, 5))[0, 0]) == 2.0
    finally:
        await batcher.stop()
    assert model.sizes == [1]


async def test_a_group_closes_at_max_batch_size_and_after_max_ticks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import service.batcher as batcher_module

    monkeypatch.setattr(batcher_module, "MAX_TICKS", 3)
    model = Sizes()
    batcher = Batcher("t", model, max_batch_size=4, max_wait_s=0.0)
    batcher.start()
    try:
        first = [asyncio.ensure_future(_one(batcher, i)) for i in range(4)]  # full at once
        await asyncio.gather(*first)
        trickle = []
        for i in range(12):  # one per iteration, never a quiet one
            trickle.append(asyncio.ensure_future(_one(batcher, i)))
            await asyncio.sleep(0)
        await asyncio.gather(*trickle)
    finally:
        await batcher.stop()
    assert model.sizes[0] == 4
    assert sum(model.sizes[1:]) == 12 and max(model.sizes[1:]) <= 4
    assert len(model.sizes) >= 4  # the trickle was cut into groups, not held to the end
