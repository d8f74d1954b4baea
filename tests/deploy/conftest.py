"""Shared set-up for the deployment tests."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

# TensorFlow's C++ log noise off for the processes these tests start.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The helpers module sits beside the tests; make it importable whatever the rootdir.
sys.path.insert(0, str(Path(__file__).parent))


@contextmanager
def _readyz_server(status: int) -> Iterator[int]:
    """A loopback HTTP server whose /readyz answers `status`; yields its port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code = status if self.path == "/readyz" else 404
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ready": %s}' % (b"true" if code == 200 else b"false"))

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


HealthcheckRunner = Callable[[list[str], "int | None"], int]


@pytest.fixture
def run_healthcheck() -> HealthcheckRunner:
    """Run a healthcheck command against a fake /readyz answering 200 or 503, or no server.

    Returns the command's exit code. The port reaches the command through SERVE_PORT, as the
    container's environment does.
    """

    def run(argv: list[str], status: int | None) -> int:
        env = dict(os.environ)

        def call(port: int) -> int:
            env["SERVE_PORT"] = str(port)
            return subprocess.run(argv, env=env, timeout=30, capture_output=True).returncode

        if status is None:
            with _readyz_server(200) as port:
                pass  # the port is now closed: nothing listens there
            return call(port)
        with _readyz_server(status) as port:
            return call(port)

    return run
