"""Inference latency of a version, per image at batch 1 and batch 16.

The same timing loop runs at export time (``training.quantize``, ``training.export``: a longer
budget, stored in ``metadata.json`` as ``latency``) and at load time for versions that do not
carry the figure (a short budget, so that loading stays quick). The default-version policy in the
registry compares the batch-1 figure with ``SERVE_LATENCY_BUDGET_US``.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable
from functools import cache, partial
from pathlib import Path
from typing import Any

import numpy as np

BATCHES = (1, 16)


@cache
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _median_seconds(fn: Callable[[], object], budget_s: float, min_calls: int) -> float:
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < min_calls or time.perf_counter() < deadline:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if len(times) >= 100_000:
            break
    # the median, not the mean: a shared machine's stalls would otherwise decide the figure
    return statistics.median(times)


def measure(
    predict: Callable[[np.ndarray], np.ndarray],
    sample: np.ndarray,
    *,
    budget_s: float = 0.05,
    threads: int = 1,
    min_calls: int = 5,
) -> dict[str, Any]:
    """µs per image of ``predict`` at batch 1 and 16, built by repeating ``sample``'s rows.

    ``budget_s`` is split between the batch sizes; each runs at least ``min_calls`` timed calls
    after one untimed call (which allocates the batch size's interpreter).
    """
    rows = np.asarray(sample, dtype=np.float32)
    result: dict[str, Any] = {}
    for size in BATCHES:
        x = np.ascontiguousarray(np.resize(rows, (size, *rows.shape[1:])))
        predict(x)
        seconds = _median_seconds(partial(predict, x), budget_s / len(BATCHES), min_calls)
        result[f"us_per_image_b{size}"] = round(seconds * 1e6 / size, 2)
    result["threads"] = threads
    result["measured_on"] = cpu_model()
    return result


def per_image_us(latency: dict[str, Any] | None, batch: int) -> float | None:
    """A ``latency`` block's µs per image at ``batch`` (one of :data:`BATCHES`), or None when it
    is missing or malformed."""
    if not isinstance(latency, dict):
        return None
    value = latency.get(f"us_per_image_b{batch}")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def batch1_us(latency: dict[str, Any] | None) -> float | None:
    """The batch-1 figure of a ``latency`` block, or None when it is missing or malformed."""
    return per_image_us(latency, 1)
