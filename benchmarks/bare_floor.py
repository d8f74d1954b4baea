"""The bare-ASGI floor: uvicorn with httptools and no framework, parsing the body like the floor.

A plain ASGI callable reads the whole body, parses it as the FastAPI floor does (orjson; the JSON
header only, for V2 binary requests; image bodies are only read) and answers a constant. Nothing
in Python can serve a request with less work on this HTTP stack, so "service req/s / bare floor
req/s" is the share of a Python server's real ceiling that the service keeps. Run it with
``python -m benchmarks.bare_floor --port 8103`` (uvicorn, uvloop, httptools, no access log).
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from benchmarks.floor_server import CONSTANT

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

READY = b'{"status":"ready"}'
_JSON_HEADERS = [(b"content-type", b"application/json")]


def _start(status: int, length: int) -> Message:
    headers = [*_JSON_HEADERS, (b"content-length", str(length).encode())]
    return {"type": "http.response.start", "status": status, "headers": headers}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The whole server: ``GET /readyz`` is ready, any POST is parsed and answered."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["method"] != "POST":
        found = scope["path"] == "/readyz"
        answer = READY if found else b'{"error":"not found"}'
        await send(_start(200 if found else 404, len(answer)))
        await send({"type": "http.response.body", "body": answer})
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    ctype = b""
    header_length = None
    for key, value in scope["headers"]:
        if key == b"content-type":
            ctype = value
        elif key == b"inference-header-content-length":
            header_length = int(value)
    if header_length is not None:
        orjson.loads(body[:header_length])
    elif ctype.startswith(b"application/json"):
        orjson.loads(body)
    await send(_start(200, len(CONSTANT)))
    await send({"type": "http.response.body", "body": CONSTANT})


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m benchmarks.bare_floor")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8103)
    args = parser.parse_args(argv)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
