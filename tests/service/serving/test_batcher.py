"""Micro-batcher: coalescing, correctness of the split, bounds, deadlines and draining."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from service.errors import DeadlineExceeded, NotReady, Overloaded
from service.serving.batcher import Batcher, BatchError

pytestmark = pytest.mark.anyio


class Recorder:
    """A fake model: row sums times two, recording every batch size; optionally slow or gated."""

    def __init__(self, delay: float = 0.0, gate: threading.Event | None = None) -> None:
        self.sizes: list[int] = []
        self.delay = delay
        self.gate = gate

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.gate is not None:
            self.gate.wait(5)
        if self.delay:
            time.sleep(self.delay)
        self.sizes.append(len(x))
        return x.reshape(len(x), -1).sum(axis=1, keepdims=True) * 2


async def test_concurrent_requests_coalesce_and_results_match_unbatched() -> None:
    model = Recorder(delay=0.005)
    batcher = Batcher("t", model, max_batch_size=16, max_wait_s=0.002, queue_size=1000)
    batcher.start()
    rng = np.random.default_rng(1)
    inputs = [rng.random((int(rng.integers(1, 4)), 3), dtype=np.float32) for _ in range(60)]
    try:
        results = await asyncio.gather(*(batcher.submit(x) for x in inputs))
    finally:
        await batcher.stop()
    for x, out in zip(inputs, results, strict=True):
        np.testing.assert_allclose(out, model(x), rtol=1e-6)
    assert sum(model.sizes[: len(model.sizes) - len(inputs)]) == sum(len(x) for x in inputs)
    batches = len(model.sizes) - len(inputs)  # the reference calls above appended too
    assert batches < len(inputs) / 2, f"{batches} batches for {len(inputs)} requests"
    assert max(model.sizes[:batches]) <= 16


async def test_request_larger_than_max_batch_runs_alone() -> None:
    model = Recorder()
    batcher = Batcher("t", model, max_batch_size=4, max_wait_s=0.0)
    batcher.start()
    try:
        big = np.ones((10, 2), np.float32)
        out = await batcher.submit(big)
    finally:
        await batcher.stop()
    assert out.shape == (10, 1)
    assert model.sizes == [10]


async def test_lone_request_does_not_wait_out_the_window() -> None:
    batcher = Batcher("t", Recorder(), max_batch_size=64, max_wait_s=2.0)
    batcher.start()
    try:
        started = time.perf_counter()
        await batcher.submit(np.ones((1, 2), np.float32))
        elapsed = time.perf_counter() - started
    finally:
        await batcher.stop()
    assert elapsed < 1.0, f"a lone request took {elapsed:.3f} s with a 2 s window"


async def busy_batcher(gate: threading.Event) -> tuple[Batcher, asyncio.Future[np.ndarray]]:
    """A started batcher (batches of 2, a queue of 4) whose thread runs a first request of 2
    rows and waits on ``gate``; that request's future."""
    batcher = Batcher("t", Recorder(gate=gate), max_batch_size=2, max_wait_s=0.0, queue_size=4)
    batcher.start()
    first = asyncio.ensure_future(batcher.submit(np.ones((2, 2), np.float32)))
    for _ in range(500):  # until the thread has taken it (and blocks on the gate)
        await asyncio.sleep(0.01)
        if batcher.queued_rows == 0:
            break
    return batcher, first


async def test_full_queue_answers_overloaded_at_once() -> None:
    gate = threading.Event()
    batcher, first = await busy_batcher(gate)
    try:
        queued = [
            asyncio.ensure_future(batcher.submit(np.ones((2, 2), np.float32))) for _ in range(2)
        ]
        await asyncio.sleep(0)
        started = time.perf_counter()
        with pytest.raises(Overloaded) as info:
            await batcher.submit(np.ones((1, 2), np.float32))
        assert time.perf_counter() - started < 0.5
        assert info.value.status_code == 503
        assert "Retry-After" in info.value.headers
        gate.set()
        results = await asyncio.gather(first, *queued)
    finally:
        gate.set()
        await batcher.stop()
    assert [r.shape for r in results] == [(2, 1)] * 3


async def test_requests_past_their_deadline_leave_room_in_the_queue() -> None:
    """Clients that gave up (504) hold no room: the next request is queued, not refused."""
    gate = threading.Event()
    batcher, first = await busy_batcher(gate)
    try:
        hasty = [
            asyncio.ensure_future(batcher.submit(np.ones((2, 2), np.float32), timeout=0.05))
            for _ in range(2)
        ]
        for task in hasty:
            with pytest.raises(DeadlineExceeded):
                await task
        later = asyncio.ensure_future(batcher.submit(np.ones((2, 2), np.float32)))
        await asyncio.sleep(0)
        assert batcher.queued_rows == 2  # only the live request
        gate.set()
        results = await asyncio.gather(first, later)
    finally:
        gate.set()
        await batcher.stop()
    assert [r.shape for r in results] == [(2, 1)] * 2


async def test_output_count_is_checked() -> None:
    batcher = Batcher("t", lambda x: np.zeros((len(x) + 1, 1), np.float32), max_wait_s=0.0)
    batcher.start()
    try:
        with pytest.raises(BatchError, match="2 outputs for 1 inputs"):
            await batcher.submit(np.ones((1, 2), np.float32))
    finally:
        await batcher.stop()


async def test_model_exception_becomes_500_without_details() -> None:
    def broken(x: np.ndarray) -> np.ndarray:
        raise ValueError("secret internals")

    batcher = Batcher("t", broken, max_wait_s=0.0)
    batcher.start()
    try:
        with pytest.raises(BatchError) as info:
            await batcher.submit(np.ones((1, 2), np.float32))
    finally:
        await batcher.stop()
    assert info.value.status_code == 500
    assert "secret" not in info.value.message


async def test_deadline_exceeded() -> None:
    batcher = Batcher("t", Recorder(delay=0.3), max_wait_s=0.0)
    batcher.start()
    try:
        with pytest.raises(DeadlineExceeded):
            await batcher.submit(np.ones((1, 2), np.float32), timeout=0.05)
    finally:
        await batcher.stop()


async def test_stop_drains_accepted_work_then_refuses() -> None:
    model = Recorder(delay=0.01)
    batcher = Batcher("t", model, max_batch_size=2, max_wait_s=0.0)
    batcher.start()
    pending = [
        asyncio.ensure_future(batcher.submit(np.full((1, 2), i, np.float32))) for i in range(10)
    ]
    await asyncio.sleep(0)
    await batcher.stop()
    results = await asyncio.gather(*pending)
    assert [float(r[0, 0]) for r in results] == [4.0 * i for i in range(10)]
    with pytest.raises(NotReady):
        await batcher.submit(np.ones((1, 2), np.float32))


async def test_calls_are_tallied_by_their_rows_with_the_requests_they_answered() -> None:
    model = Recorder(delay=0.002)

    def fails_on_five(x: np.ndarray) -> np.ndarray:
        if len(x) == 5:
            raise ValueError("no")
        return model(x)

    batcher = Batcher("t", fails_on_five, max_batch_size=16, inline_max_s=0.0)
    batcher.start()
    assert batcher.last_call_epoch_s() is None and batcher.tallies() == []
    before = time.time()
    try:
        # submitted in one loop iteration: one group, one call of 4 rows for 3 requests
        sizes = (1, 2, 1)
        await asyncio.gather(*(batcher.submit(np.ones((n, 2), np.float32)) for n in sizes))
        await batcher.submit(np.ones((3, 2), np.float32))
        with pytest.raises(BatchError):
            await batcher.submit(np.ones((5, 2), np.float32))
    finally:
        await batcher.stop()
    assert model.sizes == [4, 3]
    four, three = batcher.tallies()[1], batcher.tallies()[0]
    assert (three.rows, three.calls, three.requests) == (3, 1, 1)
    assert three.request_seconds == three.seconds >= 0.002
    assert (four.rows, four.calls, four.requests) == (4, 1, 3)
    assert four.request_seconds == pytest.approx(3 * four.seconds)  # each charged the call's
    assert (batcher.batches, batcher.rows) == (3, 12)  # the failed call too
    assert (batcher.failed_calls, batcher.failed_rows) == (1, 5)
    started = batcher.last_call_epoch_s()  # the last successful call's start
    assert started is not None and before - 0.01 <= started <= time.time()


async def test_an_explanations_rows_are_left_out_of_the_tallies_and_it_counts_as_one_call() -> None:
    model = Recorder(delay=0.002)
    batcher = Batcher("t", model, max_batch_size=16, inline_max_s=0.0)
    batcher.start()
    cost = [0.0]
    try:
        # one group: a call of 8 rows, 3 of them the clients' (two requests), 5 an explanation's
        await asyncio.gather(
            batcher.submit(np.ones((1, 2), np.float32)),
            batcher.submit_uncounted(np.ones((5, 2), np.float32), cost),
            batcher.submit(np.ones((2, 2), np.float32)),
        )
        await batcher.submit_uncounted(np.ones((4, 2), np.float32), cost)  # alone: no call
    finally:
        await batcher.stop()
    assert model.sizes == [8, 4]
    (three,) = batcher.tallies()
    assert (three.rows, three.calls, three.requests) == (3, 1, 2)
    assert cost[0] > three.seconds >= 0.002  # both calls it was in
    batcher.count_explanation(2, cost[0])
    assert batcher.tallies() == [three]  # no batch size's time: its calls held other rows
    (two,) = batcher.explanations()
    assert (two.rows, two.calls, two.requests, two.seconds) == (2, 1, 1, cost[0])
    assert (batcher.batches, batcher.rows) == (2, 5)
