"""Start the real service (``python -m service``) on a free loopback port, for end-to-end tests.

Also finds a trained model repository: ``SERVE_TEST_MODELS_DIR`` if set, else the repo's own
``models/`` when it holds all three tutorial models, else ``tests/.cache/models`` trained once
with the project's trainer (``python -m training all --recipe tutorial --if-missing``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
MODELS = ("mnist", "fashion_mnist", "pima")
CACHE_MODELS = ROOT / "tests" / ".cache" / "models"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def has_models(root: Path) -> bool:
    """True when every model has a finished version (a numbered folder with metadata.json)."""
    return all(
        any(p.parent.name.isdigit() for p in (root / name).glob("*/metadata.json"))
        for name in MODELS
    )


def trained_repository() -> Path:
    """A model repository holding all three models, trained here if none exists yet."""
    env = os.environ.get("SERVE_TEST_MODELS_DIR")
    if env:
        return Path(env)
    for candidate in (ROOT / "models", CACHE_MODELS):
        if has_models(candidate):
            return candidate
    CACHE_MODELS.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "training", "all", "--recipe", "tutorial", "--if-missing"]
    cmd += ["--models-dir", str(CACHE_MODELS), "--quiet"]
    subprocess.run(cmd, cwd=ROOT, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    return CACHE_MODELS


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    exit_code: int | None = None

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_lines(self) -> list[str]:
        return self.log_text().splitlines()

    def json_logs(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_lines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict):
                out.append(item)
        return out

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait for the exit code."""
        self.process.send_signal(signal.SIGTERM)
        self.exit_code = self.process.wait(timeout=timeout)
        return self.exit_code


@contextmanager
def launch(
    cmd: list[str],
    env: dict[str, str],
    log_path: Path,
    url: str,
    *,
    wait_ready: str = "/readyz",
    timeout: float = 240.0,
) -> Iterator[Server]:
    """Start ``cmd`` (a server answering at ``url``), wait for ``wait_ready`` to answer 200, and
    stop it (SIGTERM, then SIGKILL) when the block ends."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)
    server = Server(url, proc, log_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                tail = "\n".join(server.log_lines()[-60:])
                raise RuntimeError(f"server exited with {proc.returncode}:\n{tail}")
            try:
                if httpx.get(url + wait_ready, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready after {timeout:.0f} s")
            time.sleep(0.1)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def run_server(
    models_dir: Path, log_path: Path, env: dict[str, str] | None = None, timeout: float = 240.0
) -> Iterator[Server]:
    """Run the service until the block ends; waits for /readyz 200 first."""
    port = free_port()
    full_env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "SERVE_MODELS_DIR": str(models_dir),
        "SERVE_HOST": "127.0.0.1",
        "SERVE_PORT": str(port),
        "SERVE_VERSION_POLICY": "all",
        **(env or {}),
    }
    cmd = [sys.executable, "-m", "service"]
    with launch(cmd, full_env, log_path, f"http://127.0.0.1:{port}", timeout=timeout) as server:
        yield server
