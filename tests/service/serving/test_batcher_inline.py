"""Calls measured to be shorter than the hand-off run on the event loop; the rest on the thread."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from service.serving.batcher import CLIP, SMOOTHING, Batcher, BatchError, padded

pytestmark = pytest.mark.anyio


class Threads:
    """A fake model recording which thread ran each call; optionally slow (busy, not sleeping:
    the estimate is CPU time) or failing."""

    def __init__(self, busy_s: float = 0.0, fail: bool = False) -> None:
        self.threads: list[int] = []
        self.busy_s = busy_s
        self.fail = fail

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.threads.append(threading.get_ident())
        end = time.thread_time() + self.busy_s
        while time.thread_time() < end:
            pass
        if self.fail:
            raise ValueError("broken")
        return x[:, :1] * 3.0


async def one_by_one(batcher: Batcher, count: int) -> list[np.ndarray]:
    return [await batcher.submit(np.full((1, 2), i, np.float32)) for i in range(count)]


async def test_a_fast_model_moves_to_the_loop_after_its_first_call() -> None:
    model = Threads()
    batcher = Batcher("t", model, inline_max_s=0.01)
    batcher.start()
    try:
        results = await one_by_one(batcher, 5)
    finally:
        await batcher.stop()
    loop_thread = threading.get_ident()
    assert model.threads[0] != loop_thread  # no estimate yet: the thread measures it
    assert model.threads[1:] == [loop_thread] * 4
    assert batcher.inline_batches == 4
    assert [float(r[0, 0]) for r in results] == [3.0 * i for i in range(5)]


async def test_a_slow_model_stays_on_the_thread() -> None:
    model = Threads(busy_s=0.003)
    batcher = Batcher("t", model, inline_max_s=0.001)
    batcher.start()
    try:
        await one_by_one(batcher, 4)
    finally:
        await batcher.stop()
    assert threading.get_ident() not in model.threads
    assert batcher.inline_batches == 0
    assert batcher.call_s[1] >= 0.002


@pytest.mark.parametrize("options", [{"inline_max_s": 0.0}, {"max_wait_s": 0.001}])
async def test_inline_is_off_with_a_zero_limit_or_a_batching_window(
    options: dict[str, float],
) -> None:
    model = Threads()
    batcher = Batcher("t", model, **({"inline_max_s": 0.01} | options))
    batcher.start()
    try:
        await one_by_one(batcher, 4)
    finally:
        await batcher.stop()
    assert threading.get_ident() not in model.threads
    assert batcher.inline_batches == 0


async def test_each_batch_size_is_measured_on_its_own() -> None:
    model = Threads()
    batcher = Batcher("t", model, inline_max_s=0.01)
    batcher.start()
    try:
        await batcher.submit(np.ones((1, 2), np.float32))
        await batcher.submit(np.ones((3, 2), np.float32))  # padded to 4: not measured yet
        await batcher.submit(np.ones((4, 2), np.float32))  # measured now
    finally:
        await batcher.stop()
    loop_thread = threading.get_ident()
    assert model.threads[1] != loop_thread
    assert model.threads[2] == loop_thread
    assert sorted(batcher.call_s) == [1, 4]


async def test_a_failing_call_on_the_loop_answers_500() -> None:
    model = Threads()
    batcher = Batcher("t", model, inline_max_s=0.01)
    batcher.start()
    try:
        await one_by_one(batcher, 1)
        model.fail = True
        with pytest.raises(BatchError) as info:
            await batcher.submit(np.ones((1, 2), np.float32))
    finally:
        await batcher.stop()
    assert model.threads[-1] == threading.get_ident()
    assert info.value.status_code == 500


async def test_while_the_thread_is_busy_requests_queue_behind_it() -> None:
    gate = threading.Event()
    calls: list[int] = []

    def gated(x: np.ndarray) -> np.ndarray:
        calls.append(threading.get_ident())
        if len(x) == 2:
            gate.wait(5)
        return x[:, :1]

    batcher = Batcher("t", gated, inline_max_s=0.01)
    batcher.start()
    try:
        await batcher.submit(np.ones((1, 2), np.float32))  # measures batch size 1
        await batcher.submit(np.ones((1, 2), np.float32))  # inline
        slow = asyncio.ensure_future(batcher.submit(np.ones((2, 2), np.float32)))
        for _ in range(500):
            await asyncio.sleep(0.01)
            if batcher.queued_rows == 0:  # the thread runs it, held at the gate
                break
        after = asyncio.ensure_future(batcher.submit(np.ones((1, 2), np.float32)))
        await asyncio.sleep(0.05)
        assert not after.done()  # not run on the loop while the thread holds the runtime
        gate.set()
        await asyncio.gather(slow, after)
    finally:
        gate.set()
        await batcher.stop()
    loop_thread = threading.get_ident()
    assert calls[1] == loop_thread
    assert calls[2] != loop_thread and calls[3] != loop_thread


def test_one_stalled_call_moves_the_estimate_by_a_bounded_step() -> None:
    batcher = Batcher("t", lambda x: x)
    batcher._note_call(1, 10e-6)
    batcher._note_call(1, 1.0)  # the scheduler took the core away mid-call
    assert batcher.call_s[1] <= 10e-6 * (1 + SMOOTHING * (CLIP - 1)) + 1e-12
    assert batcher.call_s[1] > 10e-6


def test_padded_batch_sizes_are_powers_of_two() -> None:
    assert [padded(n) for n in (1, 2, 3, 4, 5, 16, 17)] == [1, 2, 4, 4, 8, 16, 32]
