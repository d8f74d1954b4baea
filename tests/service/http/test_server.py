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

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        while (await receive()).get("more_body"):
            pass

    def client() -> None:
        for _ in range(200):
            if (tmp_path / "server.sock").exists():
                break
            time.sleep(0.01)
        with socket.socket(socket.AF_UNIX) as stuck:
            stuck.connect(str(tmp_path / "server.sock"))
            stuck.sendall(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{")
            time.sleep(0.2)
            _sigint()
            time.sleep(0.5)  # the server waits for the request
            _sigint()
            time.sleep(0.5)

    finished: list[str] = []
    server = _server(tmp_path, app, finished)
    thread = threading.Thread(target=client)
    thread.start()
    try:
        assert server.serve_until_stopped() == FORCED_EXIT
    finally:
        thread.join()
    assert server.cut_off
    assert finished == ["payload log written"]
