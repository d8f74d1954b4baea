"""Limits on input: body size, instances, pixels (decompression bombs), files, content types,
and names outside the strict pattern. Every answer is a clear 4xx with ``{"error": ...}``."""

from __future__ import annotations

import asyncio
import base64
import gzip
import io
import json
import random
import struct
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import numpy as np
import pytest
from PIL import Image

from service.api import common
from service.codecs import content_coding
from tests.helpers.apps import serve

pytestmark = pytest.mark.anyio

LIMITS: dict[str, Any] = {"max_body_bytes": 200_000, "max_instances": 8, "max_upload_files": 3}


def png(size: tuple[int, int] = (28, 28), value: int = 0) -> bytes:
    """A PNG with a light stroke on a dark ground (a blank picture is refused: no digit)."""
    buf = io.BytesIO()
    img = Image.new("L", size, value)
    img.paste(
        255 - value,
        (size[0] // 3, size[1] // 5, size[0] // 3 + max(1, size[0] // 7), size[1] * 4 // 5),
    )
    img.save(buf, "PNG")
    return buf.getvalue()


def png_bomb(width: int, height: int) -> bytes:
    """A valid PNG header declaring ``width`` x ``height`` with a tiny, highly compressed body:
    decoding it fully would need gigabytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    row = b"\0" + b"\0" * width
    body = zlib.compress(row * 64, 9)  # only the first rows; the rest would come on decoding
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


async def raw_request(app: Any, method: str, raw_path: str) -> tuple[int, bytes]:
    """Call the ASGI app with the path exactly as a server would pass it on: percent-decoded,
    dot segments kept (HTTP clients normalise them away, attackers do not)."""
    body = b'{"instances": [0]}'
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(raw_path),
        "raw_path": raw_path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 5000),
        "server": ("test", 80),
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def held_open(arrived: asyncio.Event, finish: asyncio.Event) -> AsyncIterator[bytes]:
    """150 KB of a body, then waits for ``finish``: the bytes are held in the budget meanwhile."""
    for _ in range(15):
        yield b" " * 10_000
    arrived.set()
    await finish.wait()
    yield b"{}"


def expect_error(response: httpx.Response, status: int, what: str) -> None:
    assert response.status_code == status, (what, response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json"), what
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"], (what, body)
    assert "Traceback" not in body["error"]


async def test_body_size(tiny_repo: Path) -> None:
    async with serve(tiny_repo, **LIMITS) as (_, client):
        big = b'{"instances": [' + b"0," * 150_000 + b"0]}"
        for path in ("/models/mnist/predict", "/v1/models/mnist:predict", "/v2/models/mnist/infer"):
            response = await client.post(
                path, content=big, headers={"content-type": "application/json"}
            )
            expect_error(response, 413, f"declared body of {len(big)} bytes to {path}")

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
            for _ in range(40):
                yield b" " * 10_000

        response = await client.post(
            "/models/mnist/predict", content=chunks(), headers={"content-type": "application/json"}
        )
        expect_error(response, 413, "chunked body over the limit")
        response = await client.post(
            "/v2/repository/index", content=chunks(), headers={"content-type": "application/json"}
        )
        expect_error(response, 413, "chunked body over the limit to an admin endpoint")


async def test_bodies_in_flight_beyond_the_budget_get_503_and_the_budget_comes_back(
    tiny_repo: Path,
) -> None:
    """Each body is within its limit, but together they would not fit in memory: a body that
    would go beyond max_body_bytes_in_flight is refused (503, Retry-After) until others end."""
    budget = {**LIMITS, "max_body_bytes_in_flight": 250_000}
    async with serve(tiny_repo, **budget) as (app, client):
        arrived, finish = asyncio.Event(), asyncio.Event()

        async def chunks(count: int) -> AsyncIterator[bytes]:
            for _ in range(count):
                yield b" " * 10_000

        json_type = {"content-type": "application/json"}
        first = asyncio.create_task(
            client.post(
                "/models/mnist/predict", content=held_open(arrived, finish), headers=json_type
            )
        )
        await asyncio.wait_for(arrived.wait(), 10)
        declared = b" " * 150_000
        response = await client.post(
            "/v1/models/mnist:predict", content=declared, headers=json_type
        )
        expect_error(response, 503, "a declared body beyond the budget")
        assert response.headers["retry-after"] == "1"
        assert response.headers["connection"] == "close"  # its body is never read
        response = await client.post(
            "/v2/models/mnist/infer", content=chunks(12), headers=json_type
        )
        expect_error(response, 503, "a chunked body beyond the budget")
        assert response.headers["retry-after"] == "1"
        small = await client.post("/models/mnist/predict", content=b" " * 50_000, headers=json_type)
        assert small.status_code == 400  # within the budget: read, and refused for what it is
        finish.set()
        assert (await first).status_code != 503
        response = await client.post(
            "/v1/models/mnist:predict", content=declared, headers=json_type
        )
        assert response.status_code == 400  # the bodies that ended gave their bytes back
        assert app.state.edge.bodies.held == 0


async def test_a_body_declared_large_and_sent_slowly_holds_only_what_has_arrived(
    tiny_repo: Path,
) -> None:
    """The budget counts bytes as they arrive, not as declared: a client declaring a body of
    most of the budget and sending a trickle of it must not make every other body a 503."""
    budget = {**LIMITS, "max_body_bytes_in_flight": 250_000}
    async with serve(tiny_repo, **budget) as (app, client):
        arrived, finish = asyncio.Event(), asyncio.Event()

        async def trickle() -> AsyncIterator[bytes]:  # 10 KB of a declared 200 KB, then waits
            yield b" " * 10_000
            arrived.set()
            await finish.wait()
            yield b" " * 190_000

        json_type = {"content-type": "application/json"}
        slow = asyncio.create_task(
            client.post(
                "/models/mnist/predict",
                content=trickle(),
                headers={**json_type, "content-length": "200000"},
            )
        )
        await asyncio.wait_for(arrived.wait(), 10)
        await asyncio.sleep(0.2)
        assert app.state.edge.bodies.held <= 10_000 + 65_536
        response = await client.post(
            "/v1/models/mnist:predict", content=b" " * 150_000, headers=json_type
        )
        assert response.status_code == 400, response.text  # read, refused for what it is
        finish.set()
        assert (await slow).status_code == 400
        assert app.state.edge.bodies.held == 0


async def test_a_compressed_body_is_bounded_once_decompressed(tiny_repo: Path) -> None:
    """A few hundred bytes of gzip can decode to gigabytes: the limit on a body holds for what
    it decodes to (413, found while decoding), and the decoded bytes are held in the bodies'
    budget like received ones (503 when they do not fit; given back when the request ends)."""
    budget = {**LIMITS, "max_body_bytes_in_flight": 250_000}
    async with serve(tiny_repo, **budget) as (app, client):
        bomb = gzip.compress(b" " * 50_000_000, 9)  # 48 KB: under every limit as sent
        assert len(bomb) < 100_000
        for path in ("/models/mnist/predict", "/v1/models/mnist:predict", "/v2/models/mnist/infer"):
            for coding, sent in (("gzip", bomb), ("deflate", zlib.compress(b" " * 300_000))):
                headers = {"content-type": "application/json", "content-encoding": coding}
                response = await client.post(path, content=sent, headers=headers)
                expect_error(response, 413, f"{coding} bomb to {path}")
                assert "decompresses" in response.json()["error"]
        assert app.state.edge.bodies.held == 0

        arrived, finish = asyncio.Event(), asyncio.Event()

        json_type = {"content-type": "application/json"}
        first = asyncio.create_task(
            client.post(
                "/models/mnist/predict", content=held_open(arrived, finish), headers=json_type
            )
        )
        await asyncio.wait_for(arrived.wait(), 10)
        packed = gzip.compress(b" " * 150_000)  # 150 KB once decoded: does not fit beside
        headers = {**json_type, "content-encoding": "gzip"}
        response = await client.post("/v1/models/mnist:predict", content=packed, headers=headers)
        expect_error(response, 503, "decoded bytes beyond the budget")
        assert response.headers["retry-after"] == "1"
        finish.set()
        assert (await first).status_code != 503
        response = await client.post("/v1/models/mnist:predict", content=packed, headers=headers)
        assert response.status_code == 400, response.text  # fits now: decoded, read as JSON
        assert app.state.edge.bodies.held == 0


async def test_a_body_decoded_in_a_thread_holds_what_it_may_decode_to_meanwhile(
    tiny_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bodies decoding at once in worker threads must not together decode past the budget:
    each holds, while it decodes, all it may decode to (the limit or what is left)."""
    budget = {**LIMITS, "max_body_bytes_in_flight": 250_000}
    async with serve(tiny_repo, **budget) as (app, client):
        held_then: list[int] = []
        original = common.run_in_threadpool

        async def watching(func: Any, *args: Any) -> Any:
            held_then.append(app.state.bodies.held)
            return await original(func, *args)

        monkeypatch.setattr(common, "run_in_threadpool", watching)
        text = base64.b64encode(random.Random(7).randbytes(75_000))  # 100 KB, hardly compressible
        packed = gzip.compress(text)
        assert 64 * 1024 < len(packed) < 100_000  # counted as received, and decoded in a thread
        headers = {"content-type": "application/json", "content-encoding": "gzip"}
        response = await client.post("/v1/models/mnist:predict", content=packed, headers=headers)
        expect_error(response, 400, "decoded, and not JSON")
        assert held_then == [250_000]  # what arrived, and all that was left for decoding
        assert app.state.bodies.held == 0


async def test_a_body_decoding_past_its_deadline_stops_and_holds_the_budget_till_then(
    tiny_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deadline cancels the request while its body decodes in a worker thread: the thread
    must stop too, and the budget the body holds is given back only once it has. A thread left
    to run on held the body and up to the limit it decodes to, outside the budget (a client
    sending X-Request-Timeout: 0.05 could start any number of them)."""
    settings = {**LIMITS, "max_body_bytes": 16_000_000}
    async with serve(tiny_repo, **settings) as (app, client):
        ended: list[tuple[str, int]] = []
        original = content_coding.decode

        def watched(*args: Any) -> bytes:
            try:
                return original(*args)
            except BaseException as exc:
                ended.append((type(exc).__name__, app.state.bodies.held))
                raise

        monkeypatch.setattr(content_coding, "decode", watched)
        four = bytes([0x02, 0x08, 0x20, 0x80, 0x00])  # four empty deflate blocks, 40 bits
        raw = four * 3_000_000 + b"\x03\x00"  # 15 MB decoding to nothing, slowly
        headers = {
            "content-type": "application/json",
            "content-encoding": "deflate",
            "x-request-timeout": "0.1",
        }
        response = await client.post("/v1/models/pima:predict", content=raw, headers=headers)
        expect_error(response, 504, "a deadline passing while the body decodes")
        assert ended and ended[0][0] == "Stopped", ended  # stopped before the answer
        assert ended[0][1] > 0  # the budget was held while the thread ran
        assert app.state.bodies.held == 0


async def test_a_compressed_body_that_can_never_fit_the_budget_is_413_not_503(
    tiny_repo: Path,
) -> None:
    """With the budget at the body limit, a body and what it decompresses to may pass it
    together though each is within the limit: a 503's "try again" would never come true."""
    budget = {**LIMITS, "max_body_bytes_in_flight": LIMITS["max_body_bytes"]}
    async with serve(tiny_repo, **budget) as (app, client):
        headers = {"content-type": "application/json", "content-encoding": "gzip"}

        async def chunked(data: bytes) -> AsyncIterator[bytes]:  # no length: counted as it comes
            yield data

        small = gzip.compress(b" " * 199_990)  # decoded on the event loop
        text = base64.b64encode(random.Random(8).randbytes(112_000))  # 150 KB, in a thread
        for packed in (small, gzip.compress(text)):
            response = await client.post(
                "/v1/models/mnist:predict", content=chunked(packed), headers=headers
            )
            expect_error(response, 413, "sent and decoded bytes beyond the whole budget")
            assert "SERVE_MAX_BODY_BYTES_IN_FLIGHT" in response.json()["error"]
            assert app.state.bodies.held == 0
        # with room for both, the same small body is read (and refused for what it holds)
        response = await client.post("/v1/models/mnist:predict", content=small, headers=headers)
        assert response.status_code == 400, response.text


async def test_instances_limit(tiny_repo: Path) -> None:
    async with serve(tiny_repo, **LIMITS) as (_, client):
        images = np.zeros((9, 28, 28)).tolist()
        response = await client.post("/models/mnist/predict", json={"instances": images})
        expect_error(response, 422, "9 instances, limit 8 (own API)")
        response = await client.post("/v1/models/mnist:predict", json={"instances": images})
        expect_error(response, 422, "9 instances, limit 8 (TF Serving API)")
        flat = np.zeros(9 * 784).tolist()
        tensor = {"name": "pixels", "shape": [9, 28, 28], "datatype": "FP32", "data": flat}
        response = await client.post("/v2/models/mnist/infer", json={"inputs": [tensor]})
        expect_error(response, 422, "9 instances, limit 8 (V2)")
        ok = await client.post("/models/mnist/predict", json={"instances": images[:8]})
        assert ok.status_code == 200


async def test_decompression_bombs_are_refused_before_decoding(tiny_repo: Path) -> None:
    async with serve(tiny_repo, **LIMITS) as (_, client):
        for width, height in ((50_000, 50_000), (100_000, 1), (30_000, 30_000)):
            bomb = png_bomb(width, height)
            assert len(bomb) < 10_000
            started = time.perf_counter()
            response = await client.post(
                "/models/mnist/predict", content=bomb, headers={"content-type": "image/png"}
            )
            expect_error(response, 413, f"PNG bomb declaring {width}x{height} pixels")
            assert time.perf_counter() - started < 2.0, "the bomb was decoded"
        files = [("file", ("bomb.png", png_bomb(40_000, 40_000), "image/png"))]
        response = await client.post("/models/mnist/predict", files=files)
        expect_error(response, 413, "PNG bomb in a multipart upload")


async def test_upload_file_count(tiny_repo: Path) -> None:
    async with serve(tiny_repo, **LIMITS) as (_, client):
        files = [("file", (f"{i}.png", png(), "image/png")) for i in range(4)]
        response = await client.post("/models/mnist/predict", files=files)
        expect_error(response, 413, "4 files, limit 3")
        ok = await client.post("/models/mnist/predict", files=files[:3])
        assert ok.status_code == 200 and len(ok.json()["predictions"]) == 3


async def test_unsupported_content_types(tiny_repo: Path) -> None:
    async with serve(tiny_repo, **LIMITS) as (_, client):
        cases = [
            ("/models/mnist/predict", "text/xml", b"<x/>"),
            ("/models/mnist/predict", "application/x-www-form-urlencoded", b"a=1"),
            ("/models/mnist/predict", "image/gif", b"GIF89a" + b"\0" * 20),
            ("/models/pima/predict", "image/png", png()),
            ("/v2/models/mnist/infer", "multipart/form-data; boundary=x", b"--x--"),
            ("/v1/models/mnist:predict", "image/png", png()),
        ]
        for path, ctype, body in cases:
            response = await client.post(path, content=body, headers={"content-type": ctype})
            expect_error(response, 415, f"{ctype} to {path}")


HOSTILE_NAMES = [
    "..",
    "../mnist",
    "..%2Fmnist",
    "%2e%2e%2fsecret",
    "MNIST",
    "mnist%00",
    "mnist;ls",
    "mnist%20",
    "m" * 300,
    "%C3%A9t%C3%A9",
    "secret",
    "~root",
    "mnist.json",
    "*",
]


async def test_names_outside_the_pattern_are_404(repo_copy: Path) -> None:
    # a directory beside the repository that a traversal would reach
    secret = repo_copy.parent / "secret" / "1"
    secret.mkdir(parents=True)
    (secret / "metadata.json").write_text("{}")
    async with serve(repo_copy, **LIMITS) as (app, client):
        for name in HOSTILE_NAMES:
            for method, path in (
                ("GET", f"/models/{name}"),
                ("GET", f"/models/mnist/versions/{name}"),
                ("GET", f"/models/mnist/versions/1/report/{name}"),
                ("POST", f"/models/{name}/predict"),
                ("POST", f"/models/mnist/versions/{name}/predict"),
                ("GET", f"/v1/models/{name}"),
                ("POST", f"/v1/models/{name}:predict"),
                ("POST", f"/v1/models/mnist/labels/{name}:predict"),
                ("GET", f"/v2/models/{name}"),
                ("POST", f"/v2/models/{name}/infer"),
                ("POST", f"/v2/models/mnist/versions/{name}/infer"),
                ("POST", f"/v2/repository/models/{name}/load"),
                ("POST", f"/v2/repository/models/{name}/unload"),
            ):
                status, body = await raw_request(app, method, path)
                assert status == 404, (method, path, status, body[:200])
                assert json.loads(body)["error"], (method, path)
        traversal = await client.get("/models/mnist/versions/1/report/..%2F..%2Fmetadata.json")
        expect_error(traversal, 404, "report path traversal")
        unlisted = await client.get("/models/mnist/versions/1/report/unlisted.md")
        expect_error(unlisted, 404, "report file not listed in metadata")
