"""Request deadlines: the setting, the per-request header, 504, and skipped expired work."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from service.http.limits import BadTimeout, parse_timeout
from tests.helpers.apps import serve
from tests.helpers.reliability import BODY, slow_down

pytestmark = pytest.mark.anyio


def test_parse_timeout() -> None:
    assert parse_timeout("2.5") == 2.5
    assert parse_timeout(" 0.25 ") == 0.25
    assert parse_timeout("1e-1") == pytest.approx(0.1)
    assert parse_timeout("300") == 300.0
    for bad in (
        "",
        "abc",
        "-1",
        "0",
        "250ms",
        "3s",
        "nan",
        "inf",
        "1e999",
        "1 h",
        "1,5",
        "301",
        "9" * 40,
    ):
        with pytest.raises(BadTimeout):
            parse_timeout(bad)


async def test_header_shortens_the_deadline(tiny_repo: Path) -> None:
    async with serve(tiny_repo, request_timeout_s=5.0, max_batch_size=1) as (app, client):
        slow_down(app, 2.0)  # far longer than the deadline, so a late 504 shows
        for header in ("X-Request-Timeout", "Request-Timeout"):
            started = time.perf_counter()
            response = await client.post(
                "/models/mnist/predict", json=BODY, headers={header: "0.1"}
            )
            elapsed = time.perf_counter() - started
            assert response.status_code == 504, response.text
            assert "deadline" in response.json()["error"]
            assert elapsed < 1.2, f"504 came after {elapsed:.2f} s"
        for path, body in (
            ("/v1/models/mnist:predict", BODY),
            (
                "/v2/models/mnist/infer",
                {
                    "inputs": [
                        {
                            "name": "pixels",
                            "shape": [1, 784],
                            "datatype": "FP32",
                            "data": [0.0] * 784,
                        }
                    ]
                },
            ),
        ):
            response = await client.post(path, json=body, headers={"X-Request-Timeout": "0.1"})
            assert response.status_code == 504, (path, response.text)
        await asyncio.sleep(2.2)  # let the started batch finish
        ok = await client.post("/models/mnist/predict", json=BODY)
        assert ok.status_code == 200


async def test_setting_caps_the_header(tiny_repo: Path) -> None:
    async with serve(tiny_repo, request_timeout_s=0.3, max_batch_size=1) as (app, client):
        slow_down(app, 3.0)
        started = time.perf_counter()
        response = await client.post(
            "/models/mnist/predict", json=BODY, headers={"X-Request-Timeout": "30"}
        )
        assert response.status_code == 504
        assert time.perf_counter() - started < 2.0, "a header must not extend the server's limit"
        assert "0.3 s" in response.json()["error"]


async def test_expired_requests_are_skipped_not_run(tiny_repo: Path) -> None:
    async with serve(tiny_repo, request_timeout_s=5.0, max_batch_size=1) as (app, client):
        rows = slow_down(app, 0.3)
        headers = {"X-Request-Timeout": "0.15"}
        responses = await asyncio.gather(
            *(client.post("/models/mnist/predict", json=BODY, headers=headers) for _ in range(6))
        )
        assert [r.status_code for r in responses] == [504] * 6
        await asyncio.sleep(0.8)
        assert rows() < 6, "work whose deadline passed while queued must be skipped"
        assert (await client.post("/models/mnist/predict", json=BODY)).status_code == 200


async def test_bad_deadline_headers_are_422(tiny_repo: Path) -> None:
    async with serve(tiny_repo) as (_, client):
        for value in ("soon", "-2", "0", "nan", "1e999", "1e9"):
            response = await client.post(
                "/models/mnist/predict", json=BODY, headers={"X-Request-Timeout": value}
            )
            assert response.status_code == 422, value
            assert "X-Request-Timeout" in response.json()["error"]
        response = await client.post(  # the message names the header the client sent
            "/models/mnist/predict", json=BODY, headers={"Request-Timeout": "soon"}
        )
        assert response.status_code == 422
        assert response.json()["error"].startswith("header Request-Timeout must be a number")
        for probe in ("/healthz", "/readyz", "/v2/health/ready"):  # a proxy's header, not theirs
            response = await client.get(probe, headers={"X-Request-Timeout": "soon"})
            assert response.status_code in (200, 503), (probe, response.text)  # never 422


async def test_lifecycle_endpoints_are_not_cut(tiny_repo: Path) -> None:
    async with serve(tiny_repo) as (_, client):
        response = await client.post(
            "/v2/repository/index", headers={"X-Request-Timeout": "0.000001"}
        )
        assert response.status_code == 200
