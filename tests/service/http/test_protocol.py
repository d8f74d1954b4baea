"""A real server closes connections whose request head does not arrive within the deadline:
one that sends nothing, one that stops halfway through its headers, one that sends them a byte
at a time. Heads that arrive in time, on new and kept-alive connections, are served. A body in
a transfer coding the server does not remove (gzip) is refused with 501, not read as plain."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

import pytest
import uvicorn

from service.http.protocol import HeadDeadlineProtocol
from tests.helpers.live_server import Server, free_port, launch

DEADLINE_S = 1.0
KEEP_ALIVE_S = 5  # uvicorn's timeout_keep_alive, which python -m service keeps
PROBE = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("head_deadline")
    port = free_port()
    env = {
        **os.environ,
        "SERVE_MODELS_DIR": str(tmp / "models"),  # no model needed: /healthz answers
        "SERVE_HOST": "127.0.0.1",
        "SERVE_PORT": str(port),
        "SERVE_REQUEST_TIMEOUT_S": str(DEADLINE_S),
    }
    cmd = [sys.executable, "-m", "service"]
    url = f"http://127.0.0.1:{port}"
    with launch(cmd, env, tmp / "server.log", url, wait_ready="/healthz") as live:
        yield live


def connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.settimeout(DEADLINE_S + 5)
    return sock


def until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and the seconds that took."""
    started = time.monotonic()
    data = b""
    while chunk := sock.recv(4096):  # a server that never closes: socket.timeout
        data += chunk
    return data, time.monotonic() - started


def cut_after(sock: socket.socket, chunks: Iterable[bytes], started: float) -> float | None:
    """Sends ``chunks`` 50 ms apart: the seconds since ``started`` when the server had closed
    (a send fails), or None when all were sent."""
    try:
        for chunk in chunks:
            sock.send(chunk)
            time.sleep(0.05)
    except OSError:
        return time.monotonic() - started
    return None


def response(sock: socket.socket) -> bytes:
    """One whole response (its head, and a body of its Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(4096)
    return head


def test_a_connection_that_sends_nothing_is_closed(server: Server) -> None:
    with connect(server) as sock:
        data, took = until_closed(sock)
    assert data == b"" and took < DEADLINE_S + 2


def test_a_head_that_stops_halfway_is_answered_408_and_closed(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        data, took = until_closed(sock)
    assert data.startswith(b"HTTP/1.1 408 ") and b"connection: close" in data
    assert data.endswith(b'{"error":"the request head did not arrive within 1 s"}')
    assert took < DEADLINE_S + 2


def test_a_head_sent_a_byte_at_a_time_is_cut_at_the_deadline(server: Server) -> None:
    started = time.monotonic()
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
    with connect(server) as sock:
        cut = cut_after(sock, (bytes([byte]) for byte in head), started)
    assert cut is not None and cut < DEADLINE_S + 2


def test_heads_in_time_are_served_on_new_and_kept_alive_connections(server: Server) -> None:
    with connect(server) as sock:
        time.sleep(DEADLINE_S / 2)
        sock.sendall(PROBE[:20])
        time.sleep(DEADLINE_S / 3)
        sock.sendall(PROBE[20:])
        assert response(sock).startswith(b"HTTP/1.1 200 ")
        time.sleep(DEADLINE_S * 0.8)  # an idle kept-alive connection: the deadline starts anew
        sock.sendall(PROBE[:20])  # with the next request's first byte
        time.sleep(DEADLINE_S / 2)
        sock.sendall(PROBE[20:])
        assert response(sock).startswith(b"HTTP/1.1 200 ")


def test_a_body_trickled_after_its_answer_is_cut_at_the_deadline(server: Server) -> None:
    # /healthz answers without reading the body: the rest arrives after the answer, where
    # neither the edge's deadline nor the keep-alive timeout (reset by each byte) applied
    started = time.monotonic()
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        assert response(sock).startswith(b"HTTP/1.1 200 ")
        cut = cut_after(sock, [b"x"] * (int(DEADLINE_S * 20) + 60), started)
    assert cut is not None and cut < DEADLINE_S + 2


def test_a_body_sent_whole_after_its_answer_keeps_the_connection(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
        assert response(sock).startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"0123456789")
        time.sleep(DEADLINE_S * 1.5)  # the drain timer is gone with the body's end
        sock.sendall(PROBE)
        assert response(sock).startswith(b"HTTP/1.1 200 ")


def test_a_blank_line_after_an_answer_does_not_hold_the_connection(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(PROBE)
        assert response(sock).startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"\r\n")  # begins no request, but stops uvicorn's keep-alive timer
        data, took = until_closed(sock)
    assert data == b"" and took < DEADLINE_S + 2


def test_a_connection_idle_after_a_body_sent_after_its_answer_is_closed(server: Server) -> None:
    with connect(server) as sock:
        sock.settimeout(KEEP_ALIVE_S + 10)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
        assert response(sock).startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"0123456789")  # its bytes stopped the keep-alive timer armed with the answer
        data, took = until_closed(sock)
    assert data == b"" and took < KEEP_ALIVE_S + 2


def test_a_gzip_transfer_coding_is_refused_501_before_the_body_is_read(server: Server) -> None:
    body = gzip.compress(b'{"instances": [[1, 2, 3]]}')
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    with connect(server) as sock:
        sock.sendall(
            b"POST /models/mnist/predict HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" + chunked
        )
        answer, _ = until_closed(sock)  # the body was not read: the connection is closed
    head, _, text = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 501 "), answer
    assert b"connection: close" in head.lower()
    assert "gzip, chunked" in json.loads(text)["error"]
    with connect(server) as sock:  # chunked alone is still read: the route answers (no model)
        sock.sendall(
            b"POST /models/mnist/predict HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked
        )
        assert not response(sock).startswith(b"HTTP/1.1 501 ")


# In-process: the protocol class under uvicorn with a tiny app, to hold an answer up on purpose.


async def slow_or_quick(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        await asyncio.sleep(DEADLINE_S * 1.5)
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


async def in_process(client: Callable[[int], Awaitable[None]]) -> None:
    port = free_port()
    config = uvicorn.Config(
        slow_or_quick,
        host="127.0.0.1",
        port=port,
        http=HeadDeadlineProtocol,
        lifespan="off",
        log_level="warning",
    )
    HeadDeadlineProtocol.head_timeout_s = DEADLINE_S
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        await client(port)
    finally:
        server.should_exit = True
        await task
        HeadDeadlineProtocol.head_timeout_s = 10.0


async def read_answers(reader: asyncio.StreamReader, count: int) -> list[bytes]:
    answers = []
    for _ in range(count):
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), DEADLINE_S * 5)
        answers.append(head + await reader.readexactly(2))
    return answers


def test_a_pipelined_head_waiting_behind_a_slow_answer_is_not_cut() -> None:
    async def client(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /quick HTTP/1.1\r\nHost: x\r\n\r\n")
        answers = await read_answers(reader, 2)
        writer.close()
        assert all(a.startswith(b"HTTP/1.1 200 ") and a.endswith(b"ok") for a in answers)

    asyncio.run(in_process(client))


def test_requests_on_a_kept_alive_connection_arm_no_timer_of_their_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    armed: list[object] = []
    real = asyncio.BaseEventLoop.call_later

    def call_later(
        loop: asyncio.AbstractEventLoop, delay: float, callback: Any, *args: Any, **kw: Any
    ) -> Any:
        method = getattr(callback, "__func__", None)
        if method is not None and method in vars(HeadDeadlineProtocol).values():
            armed.append(callback)  # a deadline timer (uvicorn's keep-alive timer is its own)
        return real(loop, delay, callback, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(asyncio.BaseEventLoop, "call_later", call_later)

    async def client(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(50):
            writer.write(b"GET /quick HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await read_answers(reader, 1))[0].startswith(b"HTTP/1.1 200 ")
        writer.close()

    asyncio.run(in_process(client))
    assert len(armed) == 1  # the connection's own
