"""The adapters' shared helpers: the encoded JSON response, the body reader."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from starlette.responses import Response

from service.api.common import JSONBytesResponse, json_response


@pytest.mark.parametrize("status", [200, 422])
def test_json_bytes_response_sends_what_starlettes_response_sends(status: int) -> None:
    body = b'{"predictions":[[0.25,0.75]]}'

    def sent(response: Response) -> list[dict[str, object]]:
        messages: list[dict[str, object]] = []

        async def send(message: dict[str, object]) -> None:
            messages.append(message)

        async def receive() -> dict[str, object]:
            return {"type": "http.disconnect"}

        scope = {"type": "http", "method": "POST", "headers": []}
        asyncio.run(response(scope, receive, send))  # type: ignore[arg-type]
        return messages

    expected = sent(Response(body, status_code=status, media_type="application/json"))
    assert sent(JSONBytesResponse(body, status)) == expected
    fast = json_response({"predictions": [[0.25, 0.75]]}, status)
    assert isinstance(fast, JSONBytesResponse) and sent(fast) == expected
    assert fast.headers["content-type"] == "application/json"


PIMA = [6, 148, 72, 35, 0, 33.6, 0.627, 50]
V2_PIMA = {"inputs": [{"name": "features", "shape": [1, 8], "datatype": "FP32", "data": PIMA}]}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/models/pima/predict", {"instances": [PIMA]}),
        ("/v1/models/pima:predict", {"instances": [PIMA]}),
        ("/v2/models/pima/infer", V2_PIMA),
    ],
)
@pytest.mark.parametrize("gzipped", [True, False])
@pytest.mark.anyio
async def test_a_content_coding_is_refused_in_every_dialect(
    dialect_client: httpx.AsyncClient, path: str, body: dict[str, Any], gzipped: bool
) -> None:
    """Neither parsed as if plain (a garbled-JSON 400) nor, when the body is in fact plain,
    answered as if it had been decoded."""
    plain = orjson.dumps(body)
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    sent = gzip.compress(plain) if gzipped else plain
    r = await dialect_client.post(path, content=sent, headers=headers)
    assert r.status_code == 415, r.text
    assert r.json() == {"error": "Content-Encoding 'gzip' is not supported; send the body as is"}
    assert r.headers["accept-encoding"] == "identity"
    headers["content-encoding"] = "identity"
    assert (await dialect_client.post(path, content=plain, headers=headers)).status_code == 200


def _with_true(row: list[Any], at: int = 1) -> list[Any]:
    return [True if i == at else v for i, v in enumerate(row)]


_RECORD = dict(zip(("pregnant", "glucose", "pressure", "triceps", "insulin", "mass",
                    "pedigree", "age"), _with_true(PIMA), strict=True))  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body", "said"),
    [
        # the own API reads Pima records value by value and names the feature
        ("/models/pima/predict", {"instances": [_with_true(PIMA)]},
         "instances[0][1] (glucose): expected a number, got boolean"),
        ("/models/pima/explain", {"instances": [_with_true(PIMA, 7)]},
         "instances[0][7] (age): expected a number, got boolean"),
        ("/v1/models/pima:classify", {"examples": [_RECORD]},
         "examples[0]: feature 'glucose' must be a number"),
        # tensors: the JSON parse names the boolean (numpy would read it as 1)
        ("/models/mnist/predict", {"instances": [[[0.5, True]]], "include_input": True},
         "instances[0][0][1]: expected a number, got boolean"),
        ("/v1/models/pima:predict", {"instances": [PIMA, _with_true(PIMA)]},
         "instances[1][1]: expected a number, got boolean"),
        ("/v1/models/pima:predict", {"inputs": {"features": [_with_true(PIMA)]}},
         "inputs.features[0][1]: expected a number, got boolean"),
        ("/v2/models/pima/infer", {"inputs": [{**V2_PIMA["inputs"][0], "data": _with_true(PIMA)}]},
         "inputs[0].data[1]: expected a number, got boolean"),
        # a large body: the fast parse declines it, the orjson path names the boolean
        ("/v1/models/mnist:predict", {"instances": [[[0.5] * 28] * 27 + [[0.25, False] * 14]]},
         "instances[0][27][1]: expected a number, got boolean"),
    ],
)  # fmt: skip
@pytest.mark.anyio
async def test_a_boolean_among_numbers_is_refused_in_every_dialect(
    dialect_client: httpx.AsyncClient, path: str, body: dict[str, Any], said: str
) -> None:
    """numpy reads true as 1: never a silent prediction for an input nobody sent."""
    r = await dialect_client.post(path, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"].startswith(said)


@pytest.mark.anyio
async def test_a_body_that_stops_arriving_is_a_408(
    dialect_client: httpx.AsyncClient,
) -> None:
    async def stalling() -> AsyncIterator[bytes]:
        yield b'{"instances": [[6, 148, 72'
        await asyncio.sleep(2)
        yield b", 35, 0, 33.6, 0.627, 50]]}"

    headers = {"content-type": "application/json", "x-request-timeout": "0.2"}
    r = await dialect_client.post("/models/pima/predict", content=stalling(), headers=headers)
    assert r.status_code == 408 and "did not arrive" in r.json()["error"], r.text
