"""Percentiles and the record of one load run, shared by the wrk driver and the httpx loadgen."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of already sorted values, linear between closest ranks.

    Matches ``numpy.percentile(values, q)`` (its default "linear" method). NaN for no values.
    """
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be within [0, 100], got {q}")
    n = len(sorted_values)
    if n == 0:
        return math.nan
    if n == 1:
        return float(sorted_values[0])
    rank = (n - 1) * q / 100.0
    lo = math.floor(rank)
    hi = min(lo + 1, n - 1)
    frac = rank - lo
    return float(sorted_values[lo]) + (float(sorted_values[hi]) - float(sorted_values[lo])) * frac


@dataclass
class RunResult:
    """One load run against one server and one request, at one concurrency.

    Latencies are milliseconds. ``errors`` counts failed requests of any kind (connection errors,
    timeouts and non-2xx answers); a run with errors is reported, not hidden.
    """

    server: str
    scenario: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    mean_ms: float
    items_per_request: int = 1
    tool: str = "wrk"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        """Successful requests per second."""
        return (self.requests - self.errors) / self.seconds if self.seconds > 0 else 0.0

    @property
    def items_per_s(self) -> float:
        """Images (or records) per second: ``rps`` times the items in each request."""
        return self.rps * self.items_per_request

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rps"] = round(self.rps, 1)
        data["items_per_s"] = round(self.items_per_s, 1)
        return data


def summarize_latencies(
    latencies_ms: Sequence[float],
) -> tuple[float, float, float, float]:
    """(p50, p99, p99.9, mean) of latencies in milliseconds; NaN when there are none."""
    ordered = sorted(latencies_ms)
    if not ordered:
        return (math.nan, math.nan, math.nan, math.nan)
    mean = sum(ordered) / len(ordered)
    return (
        percentile(ordered, 50.0),
        percentile(ordered, 99.0),
        percentile(ordered, 99.9),
        mean,
    )
