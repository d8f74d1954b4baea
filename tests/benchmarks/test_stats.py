"""Percentile math and the run record."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.soak import drift
from benchmarks.stats import RunResult, percentile, summarize_latencies


@pytest.mark.parametrize("q", [0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 100.0])
@pytest.mark.parametrize("n", [1, 2, 7, 1000])
def test_percentile_matches_numpy(q: float, n: int) -> None:
    values = sorted(np.random.default_rng(n).exponential(3.0, size=n).tolist())
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12)


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50.0) == 2.5
    assert percentile([10.0, 20.0], 99.0) == pytest.approx(19.9)


def test_percentile_edge_cases() -> None:
    assert math.isnan(percentile([], 50.0))
    with pytest.raises(ValueError):
        percentile([1.0], 101.0)


def test_summarize_latencies_orders_its_input() -> None:
    p50, p99, p999, mean = summarize_latencies([5.0, 1.0, 3.0, 2.0, 4.0])
    assert p50 == 3.0
    assert mean == 3.0
    assert p50 <= p99 <= p999 <= 5.0
    assert all(math.isnan(v) for v in summarize_latencies([]))


def test_run_result_rates_count_successes_only() -> None:
    r = RunResult(
        "s",
        "json-1024",
        4,
        requests=110,
        errors=10,
        seconds=2.0,
        p50_ms=1,
        p99_ms=2,
        p999_ms=3,
        mean_ms=1,
        items_per_request=1024,
    )
    assert r.rps == 50.0
    assert r.items_per_s == 50.0 * 1024
    data = r.to_dict()
    assert data["rps"] == 50.0 and data["scenario"] == "json-1024"


def test_soak_drift_uses_samples_after_warmup() -> None:
    samples = [(0.0, 100.0), (10.0, 300.0), (20.0, 310.0), (30.0, 320.0), (40.0, 330.0)]
    out = drift(samples, warmup_s=10.0)
    assert out["rss_after_warmup_mb"] == 300.0
    assert out["rss_end_mb"] == 330.0
    assert out["drift_mb"] == 30.0
    assert out["peak_mb"] == 330.0
    assert out["slope_mb_per_min"] == pytest.approx(60.0)
    with pytest.raises(ValueError):
        drift(samples, warmup_s=35.0)


def test_soak_drift_ignores_single_spikes() -> None:
    flat = [(float(t), 200.0) for t in range(0, 80, 5)]
    flat[8] = (40.0, 260.0)  # one large request in flight when sampled
    out = drift(flat, warmup_s=0.0)
    assert out["drift_mb"] == 0.0 and out["peak_mb"] == 260.0
