"""Requests reach the inference thread in groups: those of one loop iteration, and of the
iterations after it while each adds more."""

from __future__ import annotations

import asyncio
import threading
from collections import deque

import numpy as np
import pytest

from service.errors import NotReady, Overloaded
from service.serving.batcher import MAX_TICKS, Batcher, keep_open

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


@pytest.mark.parametrize(
    ("rows", "seen", "ticks", "keep"),
    [
        (5, 3, 0, True),  # it grew since the last look: wait one more iteration
        (5, 5, 0, False),  # an iteration added nothing: hand it over
        (1, 1, 0, False),  # a lone request, as submitted: next iteration
        (64, 10, 0, False),  # full (max_batch_size)
        (70, 10, 0, False),  # over full
        (5, 3, 16, False),  # open for MAX_TICKS iterations already
        (5, 3, 15, True),
    ],
)
def test_when_a_group_stays_open(rows: int, seen: int, ticks: int, keep: bool) -> None:
    assert MAX_TICKS == 16
    assert keep_open(rows, seen, ticks, 64) is keep


async def test_requests_over_several_iterations_are_all_answered_none_stranded() -> None:
    model = Sizes()
    batcher = Batcher("t", model, max_batch_size=64, max_wait_s=0.0)
    batcher.start()
    try:
        tasks = []
        for i in range(5):  # one more request in each of five iterations
            tasks.append(asyncio.ensure_future(_one(batcher, i)))
            await asyncio.sleep(0)
        results = await asyncio.wait_for(asyncio.gather(*tasks), 5)
    finally:
        await batcher.stop()
    assert sum(model.sizes) == 5 and batcher.queued_rows == 0
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


async def test_a_full_group_is_run_in_batches_of_max_batch_size() -> None:
    model = Sizes()
    batcher = Batcher("t", model, max_batch_size=4, max_wait_s=0.0)
    batcher.start()
    try:
        first = [asyncio.ensure_future(_one(batcher, i)) for i in range(6)]  # one iteration
        await asyncio.gather(*first)
    finally:
        await batcher.stop()
    assert model.sizes == [4, 2]  # handed over at once (full), run 4 rows at a time
