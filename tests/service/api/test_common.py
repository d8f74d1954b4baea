"""The adapters' shared helpers: the encoded JSON response, the body reader."""

from __future__ import annotations

import asyncio
import gzip
import io
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
from PIL import Image
from starlette.responses import Response

from service.api import common
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
_JSON = {"content-type": "application/json"}
V2_PIMA = {"inputs": [{"name": "features", "shape": [1, 8], "datatype": "FP32", "data": PIMA}]}


DIALECTS = [
    ("/models/pima/predict", {"instances": [PIMA]}),
    ("/v1/models/pima:predict", {"instances": [PIMA]}),
    ("/v2/models/pima/infer", V2_PIMA),
]


def _gzip_members(data: bytes) -> bytes:
    """Two gzip members one after the other, as ``cat a.gz b.gz`` makes."""
    return gzip.compress(data[:10]) + gzip.compress(data[10:])


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-15)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(
    ("coding", "compress"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("GZip", _gzip_members),
        ("deflate", zlib.compress),  # the zlib format, as RFC 9110, tritonclient and curl send it
        ("deflate", _raw_deflate),  # a raw stream, as some clients send it under that name
        ("gzip, deflate", lambda data: zlib.compress(gzip.compress(data))),
        ("identity, gzip", gzip.compress),
    ],
)
@pytest.mark.parametrize(("path", "body"), DIALECTS)
@pytest.mark.anyio
async def test_a_compressed_body_is_answered_as_the_plain_one_in_every_dialect(
    dialect_client: httpx.AsyncClient,
    path: str,
    body: dict[str, Any],
    coding: str,
    compress: Callable[[bytes], bytes],
) -> None:
    plain = orjson.dumps(body)
    expected = await dialect_client.post(path, content=plain, headers=_JSON)
    assert expected.status_code == 200, expected.text
    headers = {**_JSON, "content-encoding": coding}
    r = await dialect_client.post(path, content=compress(plain), headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == expected.json()


@pytest.mark.anyio
async def test_a_compressed_picture_is_answered_as_the_plain_one(
    dialect_client: httpx.AsyncClient,
) -> None:
    picture = Image.new("L", (28, 28), 0)
    picture.paste(255, (12, 4, 16, 24))
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    png = buffer.getvalue()
    path, kind = "/models/mnist/predict", {"content-type": "image/png"}
    expected = await dialect_client.post(path, content=png, headers=kind)
    assert expected.status_code == 200, expected.text
    sent = gzip.compress(png)
    r = await dialect_client.post(path, content=sent, headers={**kind, "content-encoding": "gzip"})
    assert r.status_code == 200, r.text
    assert r.json() == expected.json()


@pytest.mark.anyio
async def test_a_body_that_decodes_to_much_is_decoded_off_the_event_loop(
    dialect_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A few hundred KB decoded blocks no other request: it goes to a worker thread."""
    handed: list[object] = []
    original = common.run_in_threadpool

    async def counting(func: Callable[..., bytes], *args: object) -> bytes:
        handed.append(func)
        return await original(func, *args)

    monkeypatch.setattr(common, "run_in_threadpool", counting)
    path, body = DIALECTS[1]
    small = orjson.dumps(body)
    large = small[:-1] + b" " * 400_000 + b"}"  # JSON's own whitespace: the same request
    headers = {**_JSON, "content-encoding": "gzip"}
    r = await dialect_client.post(path, content=gzip.compress(small), headers=headers)
    assert r.status_code == 200, r.text
    assert handed == []
    r = await dialect_client.post(path, content=gzip.compress(large), headers=headers)
    assert r.status_code == 200, r.text
    assert len(handed) == 1


@pytest.mark.parametrize(
    ("lines", "compress", "status"),
    [
        (["gzip", "gzip"], lambda data: gzip.compress(gzip.compress(data)), 200),
        (["identity", "gzip"], gzip.compress, 200),
        (["gzip", "deflate"], lambda data: zlib.compress(gzip.compress(data)), 200),
        (["gzip", "br"], gzip.compress, 415),
    ],
)
@pytest.mark.parametrize(("path", "body"), DIALECTS)
@pytest.mark.anyio
async def test_content_encoding_sent_on_several_lines_is_one_list(
    dialect_client: httpx.AsyncClient,
    path: str,
    body: dict[str, Any],
    lines: list[str],
    compress: Callable[[bytes], bytes],
    status: int,
) -> None:
    """RFC 9110 section 5.3: header lines of one name are one comma-separated list. Reading the
    first line alone parsed a gzip body sent after "identity" as plain, undid one of two gzips,
    and took a body in a coding it does not know."""
    plain = orjson.dumps(body)
    headers = [("content-type", "application/json")] + [("content-encoding", v) for v in lines]
    r = await dialect_client.post(path, content=compress(plain), headers=headers)
    assert r.status_code == status, r.text
    if status == 200:
        expected = await dialect_client.post(path, content=plain, headers=_JSON)
        assert r.json() == expected.json()
    else:
        assert r.headers["accept-encoding"] == "gzip, deflate"


@pytest.mark.parametrize("sent_as", [b"br", b"zstd", b"gzip, br", b"compress"])
@pytest.mark.parametrize(("path", "body"), DIALECTS)
@pytest.mark.anyio
async def test_an_unknown_content_coding_is_refused_naming_the_known_ones(
    dialect_client: httpx.AsyncClient, path: str, body: dict[str, Any], sent_as: bytes
) -> None:
    """Never parsed as if plain (RFC 9110: 415, RFC 7694: with the codings that are taken)."""
    headers = {**_JSON, "content-encoding": sent_as.decode()}
    r = await dialect_client.post(path, content=orjson.dumps(body), headers=headers)
    assert r.status_code == 415, r.text
    unknown = sent_as.split(b",")[-1].strip().decode()
    assert r.json() == {
        "error": f"Content-Encoding {unknown!r} is not supported: send the body as is, "
        "or compressed with gzip or deflate"
    }
    assert r.headers["accept-encoding"] == "gzip, deflate"


@pytest.mark.parametrize(
    ("coding", "sent", "said"),
    [
        ("gzip", orjson.dumps(V2_PIMA),
         "the request body is not gzip data: it lacks gzip's header"),
        ("gzip", gzip.compress(orjson.dumps(V2_PIMA))[:-12],
         "the request body's gzip data ends before its end (truncated)"),
        ("gzip", gzip.compress(orjson.dumps(V2_PIMA)) + b"{}",
         "the request body has 2 bytes after the end of its gzip data"),
        ("gzip", gzip.compress(b"{}") + b"\x1f\x8b\x08" + bytes(7) + b"\xff" * 8,
         "the request body is not valid gzip data"),
        ("deflate", b"\x78\x9c not deflate at all", "the request body is not valid deflate data"),
    ],
)  # fmt: skip
@pytest.mark.anyio
async def test_a_body_that_does_not_decode_is_a_400_saying_why(
    dialect_client: httpx.AsyncClient, coding: str, sent: bytes, said: str
) -> None:
    headers = {**_JSON, "content-encoding": coding}
    r = await dialect_client.post("/v2/models/pima/infer", content=sent, headers=headers)
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith(said)


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
