"""The server of ``python -m service``: a forced quit (a second SIGINT) exits 130 only when it
cut requests off; once every request was answered, the stop is a clean one (0)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from service.http.server import FORCED_EXIT, Server


def _sigint() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def _server(tmp_path: Path, app: Any, finished: list[str]) -> Server:
    config = uvicorn.Config(
        app, uds=str(tmp_path / "server.sock"), lifespan="on", log_config=None, loop="asyncio"
    )
    return Server(config, on_forced_quit=lambda: finished.append("payload log written"))


def _client(tmp_path: Path, steps: Any) -> threading.Thread:
    def run() -> None:
        for _ in range(200):
            if (tmp_path / "server.sock").exists():
                break
            time.sleep(0.01)
        steps()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _serve(server: Server, tmp_path: Path, steps: Any) -> int:
    """Run ``server`` until stopped while a client thread plays ``steps``: its exit status."""
    thread = _client(tmp_path, steps)
    try:
        return server.serve_until_stopped()
    finally:
        thread.join()


async def _answers(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_a_second_sigint_after_the_drain_exits_0(tmp_path: Path) -> None:
    """The second Ctrl-C comes during the app's shutdown, every request long answered."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                asyncio.get_running_loop().call_later(0.1, _sigint)  # the first Ctrl-C
                await send({"type": "lifespan.startup.complete"})
            else:
                _sigint()  # the second, while the app shuts down
                await asyncio.sleep(0.05)
                await send({"type": "lifespan.shutdown.complete"})
                return

    finished: list[str] = []
    server = _server(tmp_path, app, finished)
    assert server.serve_until_stopped() == 0
    assert server.force_exit and not server.cut_off
    assert finished == ["payload log written"]


def test_a_second_sigint_during_the_drain_cuts_a_request_off_and_exits_130(
    tmp_path: Path,
) -> None:
    """A request whose body never ends holds the drain; the second Ctrl-C cuts it off."""

    def steps() -> None:
        with socket.socket(socket.AF_UNIX) as stuck:
            stuck.connect(str(tmp_path / "server.sock"))
            stuck.sendall(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{")
            time.sleep(0.2)
            _sigint()
            time.sleep(0.5)  # the server waits for the request
            _sigint()
            time.sleep(0.5)

    finished: list[str] = []
    server = _server(tmp_path, _answers, finished)
    assert _serve(server, tmp_path, steps) == FORCED_EXIT
    assert server.cut_off
    assert finished == ["payload log written"]


def test_an_idle_keep_alive_connection_is_no_request_cut_off(tmp_path: Path) -> None:
    """A connection whose request was answered, kept open for the next one: a second Ctrl-C
    right after the first (before the stop has closed it) cuts nothing off."""

    def steps() -> None:
        with socket.socket(socket.AF_UNIX) as idle:
            idle.connect(str(tmp_path / "server.sock"))
            idle.sendall(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\n\r\n{")
            assert idle.recv(1024).startswith(b"HTTP/1.1 200")
            _sigint()
            time.sleep(0.02)
            _sigint()
            time.sleep(0.5)

    finished: list[str] = []
    server = _server(tmp_path, _answers, finished)
    assert _serve(server, tmp_path, steps) == 0
    assert server.force_exit and not server.cut_off


def test_a_request_cancelled_when_the_graceful_stop_times_out_is_cut_off(
    tmp_path: Path,
) -> None:
    """SIGTERM's graceful stop waits ``timeout_graceful_shutdown`` for a request, then uvicorn
    cancels it: the stop cut it off, and the exit status says so as a forced quit's does."""

    def steps() -> None:
        with socket.socket(socket.AF_UNIX) as stuck:
            stuck.connect(str(tmp_path / "server.sock"))
            stuck.sendall(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{")
            time.sleep(0.2)
            _sigint()
            time.sleep(1.0)

    config = uvicorn.Config(
        _answers,
        uds=str(tmp_path / "server.sock"),
        lifespan="on",
        log_config=None,
        loop="asyncio",
        timeout_graceful_shutdown=0.3,
    )
    finished: list[str] = []
    server = Server(config, on_forced_quit=lambda: finished.append("payload log written"))
    assert _serve(server, tmp_path, steps) == FORCED_EXIT
    assert server.cut_off and not server.force_exit
    assert finished == []  # the lifespan's own shutdown wrote the payload log out
