"""Bounded queues: when a model's queue is full the service answers at once with 503 and
Retry-After, never hangs, and recovers when the load goes."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.helpers import reliability as h
from tests.helpers.apps import serve
from tests.helpers.reliability import BODY, slow_down


@pytest.mark.anyio
async def test_full_queue_answers_503_with_retry_after(tiny_repo: Path) -> None:
    async with serve(tiny_repo, queue_size=4, max_instances=4, max_batch_size=1) as (app, client):
        slow_down(app, 0.1)

        async def timed() -> tuple[int, float, str | None]:
            started = time.perf_counter()
            response = await client.post("/models/mnist/predict", json=BODY)
            if response.status_code == 503:  # said as every other message names a version
                assert re.match(r"model mnist version \d+ is overloaded", response.json()["error"])
            return (
                response.status_code,
                time.perf_counter() - started,
                response.headers.get("retry-after"),
            )

        started = time.perf_counter()
        results = await asyncio.gather(*(timed() for _ in range(40)))
        total = time.perf_counter() - started
        statuses = [s for s, _, _ in results]
        assert set(statuses) <= {200, 503}, statuses
        refused = [(t, ra) for s, t, ra in results if s == 503]
        assert refused, "a full queue must refuse work"
        assert statuses.count(200) >= 4
        assert all(ra is not None and int(ra) >= 1 for _, ra in refused)
        # at once: well before the 4 s that 40 requests take in turn (generous for busy CI)
        assert max(t for t, _ in refused) < 2.0, "503 must come at once, not after waiting"
        assert total < 4.0
        assert (await client.post("/models/mnist/predict", json=BODY)).status_code == 200


@pytest.mark.timeout(180)
def test_overload_on_a_real_server(tiny_repo: Path, tmp_path: Path) -> None:
    """32 connections against a queue of 8 and 20 ms per inference, for a few seconds."""
    env = {
        "SERVE_QUEUE_SIZE": "8",
        "SERVE_MAX_INSTANCES": "8",
        "SERVE_MAX_BATCH_SIZE": "1",
        "SERVE_MODELS": '["mnist"]',
    }
    with h.run_server(tiny_repo, tmp_path / "server.log", env, slow_ms=20) as server:
        tally = h.Tally()
        lock = threading.Lock()
        slowest = [0.0]
        stop = time.monotonic() + 4.0

        def worker() -> None:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                while time.monotonic() < stop:
                    started = time.perf_counter()
                    try:
                        response = client.post("/models/mnist/predict", json=BODY)
                    except httpx.TransportError as exc:
                        with lock:
                            tally.sent += 1
                            tally.transport_errors.append(repr(exc))
                        continue
                    elapsed = time.perf_counter() - started
                    with lock:
                        tally.sent += 1
                        code = response.status_code
                        tally.by_status[code] = tally.by_status.get(code, 0) + 1
                        slowest[0] = max(slowest[0], elapsed)
                        if code == 200:
                            tally.ok += 1
                        elif code != 503 or "retry-after" not in response.headers:
                            tally.wrong.append(f"{code} {response.text[:100]}")
                    if response.status_code == 503:
                        time.sleep(0.01)

        threads = [threading.Thread(target=worker) for _ in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(f"\noverload on a real server: {tally.summary()} slowest={slowest[0]:.2f}s")
        assert not tally.transport_errors, tally.summary()
        assert not tally.wrong, tally.summary()
        assert tally.by_status.get(503, 0) > 0 and tally.ok > 0, tally.summary()
        assert slowest[0] < 5.0, "no request may hang"
        assert httpx.get(server.url + "/readyz", timeout=5).status_code == 200
        response = httpx.post(server.url + "/models/mnist/predict", json=BODY, timeout=5)
        assert response.status_code == 200
        assert np.isclose(sum(response.json()["predictions"][0]["probabilities"].values()), 1.0)
