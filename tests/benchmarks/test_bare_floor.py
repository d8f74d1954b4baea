"""The bare-ASGI floor answers any POST with the constant after parsing the body like the floor."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest

from benchmarks.bare_floor import app
from benchmarks.floor_server import CONSTANT


async def _post(path: str, body: bytes, ctype: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bare") as client:
        return await client.post(path, content=body, headers={"Content-Type": ctype})


async def _get(path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bare") as client:
        return await client.get(path)


def test_a_post_is_answered_with_the_constant() -> None:
    body = orjson.dumps({"instances": [[0.0] * 784]})
    response = asyncio.run(_post("/v1/models/mnist:predict", body, "application/json"))
    assert response.status_code == 200
    assert response.content == CONSTANT
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(CONSTANT)
    image = asyncio.run(_post("/models/mnist/predict", b"\x89PNG not parsed", "image/png"))
    assert image.status_code == 200 and image.content == CONSTANT


def test_a_json_body_is_really_parsed() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        asyncio.run(_post("/p", b"{not json", "application/json"))


def test_readiness_and_unknown_gets() -> None:
    assert asyncio.run(_get("/readyz")).status_code == 200
    assert asyncio.run(_get("/elsewhere")).status_code == 404
