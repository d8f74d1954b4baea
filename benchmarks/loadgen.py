"""A built-in async load generator on httpx, for machines without wrk.

``concurrency`` connections each send the same request back to back (closed loop) for
``duration`` seconds after a short warm-up; latencies of the measured part go into a
:class:`~benchmarks.stats.RunResult`. It is much slower than wrk (Python on one core tops out at a
few thousand requests per second), so its figures are a lower bound for fast servers; the report
says which tool measured each row.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from benchmarks.payloads import Request
from benchmarks.stats import RunResult, summarize_latencies


async def run_load_async(
    base_url: str,
    request: Request,
    *,
    concurrency: int,
    duration: float,
    warmup: float = 0.5,
    server: str = "server",
    timeout: float = 10.0,
) -> RunResult:
    """Drive ``base_url`` with ``request`` from ``concurrency`` connections."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = request.all_headers()
    latencies: list[float] = []
    errors = 0
    counted = 0
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as client:
        start = time.perf_counter()
        measure_from = start + warmup
        stop_at = measure_from + duration

        async def worker() -> None:
            nonlocal errors, counted
            while True:
                t0 = time.perf_counter()
                if t0 >= stop_at:
                    return
                ok = False
                try:
                    response = await client.post(
                        request.path, content=request.body, headers=headers
                    )
                    ok = 200 <= response.status_code < 300
                except httpx.HTTPError:
                    ok = False
                t1 = time.perf_counter()
                if t0 >= measure_from:
                    counted += 1
                    if ok:
                        latencies.append((t1 - t0) * 1000.0)
                    else:
                        errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = max(time.perf_counter() - measure_from, 1e-9)
    p50, p99, p999, mean = summarize_latencies(latencies)
    return RunResult(
        server=server,
        scenario=request.name,
        concurrency=concurrency,
        requests=counted,
        errors=errors,
        seconds=elapsed,
        p50_ms=p50,
        p99_ms=p99,
        p999_ms=p999,
        mean_ms=mean,
        items_per_request=request.items,
        tool="httpx",
    )


def run_load(
    base_url: str,
    request: Request,
    *,
    concurrency: int,
    duration: float,
    warmup: float = 0.5,
    server: str = "server",
) -> RunResult:
    """Blocking wrapper of :func:`run_load_async` (runs its own event loop)."""
    return asyncio.run(
        run_load_async(
            base_url,
            request,
            concurrency=concurrency,
            duration=duration,
            warmup=warmup,
            server=server,
        )
    )
