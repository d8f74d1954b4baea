"""A client that leaves while its request waits: the work is cancelled, not run for nobody, and
the access log says 499."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import reliability as h
from tests.helpers.reliability import BODY


def metric(client: httpx.Client, name: str) -> float:
    """The sum of a metric's samples (of mnist, for a metric with a model label)."""
    text = client.get("/metrics").text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and s.labels.get("model", "mnist") == "mnist"
    )


def rows_run(client: httpx.Client) -> float:
    """Rows every runtime call of mnist has run so far."""
    return metric(client, "serve_batch_size_sum")


@pytest.mark.timeout(180)
def test_requests_whose_clients_left_are_not_run(tiny_repo: Path, tmp_path: Path) -> None:
    env = {"SERVE_MAX_BATCH_SIZE": "1", "SERVE_MODELS": '["mnist"]'}
    with (
        h.run_server(tiny_repo, tmp_path / "server.log", env, slow_ms=600) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        assert client.post("/models/mnist/predict", json=BODY).status_code == 200
        before = rows_run(client)
        kept: list[int] = []
        first = threading.Thread(
            target=lambda: kept.append(client.post("/models/mnist/predict", json=BODY).status_code)
        )
        first.start()  # holds the model for 0.6 s: the others wait behind it
        for _ in range(200):  # on the server (the scrape itself is in flight too)
            if metric(client, "serve_requests_in_flight") >= 2:
                break
            time.sleep(0.01)

        gave_up: list[str] = []

        def leaves() -> None:
            with httpx.Client(base_url=server.url, timeout=0.2) as impatient:
                try:
                    impatient.post(
                        "/models/mnist/predict", json=BODY, headers={"x-request-id": "left"}
                    )
                except httpx.ReadTimeout:
                    gave_up.append("timeout")  # and closes its connection

        threads = [threading.Thread(target=leaves) for _ in range(4)]
        for t in threads:
            t.start()
        for t in [first, *threads]:
            t.join()
        time.sleep(1.0)  # what was still queued would have run by now
        assert kept == [200] and gave_up == ["timeout"] * 4
        assert rows_run(client) - before == 1  # the request whose client stayed, only
        logged = [
            line["status"]
            for line in server.json_logs()
            if line.get("request_id") == "left" and "status" in line
        ]
        assert logged == [499] * 4
        assert client.post("/models/mnist/predict", json=BODY).status_code == 200
