"""The explanation path's submission in parts: order, and the deadline over the whole."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from service.errors import DeadlineExceeded
from service.serving.batcher import Batcher
from service.serving.explanations import _run

pytestmark = pytest.mark.anyio


def slow_double(x: np.ndarray) -> np.ndarray:
    time.sleep(0.03)
    return np.asarray(x)[:, :1] * 2


async def test_parts_come_back_in_order_and_the_deadline_is_the_whole_one() -> None:
    batcher = Batcher("t", slow_double, max_batch_size=4, max_wait_s=0.0, queue_size=64)
    batcher.start()
    try:
        x = np.arange(40, dtype=np.float32).reshape(20, 2)
        cost = [0.0]
        out = await _run(batcher, 4, x, 5.0, cost)
        assert np.array_equal(out, x[:, :1] * 2)
        assert cost[0] >= 5 * 0.03 and batcher.tallies() == []  # its calls: no client's
        # five parts of 30 ms each: the deadline passes during the fourth, and the answer names
        # the deadline the client asked for, not the time that was left for that part
        with pytest.raises(DeadlineExceeded, match=r"within 0\.1 s$"):
            await _run(batcher, 4, x, 0.1, [0.0])
        await asyncio.sleep(0.1)
        assert batcher.queued_rows == 0  # the part waiting when it passed was dropped
    finally:
        await batcher.stop()
