"""SIGHUP rescans the model repository of a running server, which lives on (its default action
ended the process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import reliability as h
from tests.helpers.live_server import free_port


def served(url: str) -> int | None:
    try:
        return int(httpx.get(url + "/readyz", timeout=5).json()["models"]["mnist"])
    except (httpx.HTTPError, KeyError, TypeError, ValueError):
        return None


@pytest.mark.timeout(180)
@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_loads_a_new_version_and_the_server_lives_on(
    workers: int, repo_copy: Path, tmp_path: Path
) -> None:
    """One process rescans on its own; with two workers uvicorn's supervisor takes the SIGHUP
    and replaces its workers one by one, each loading the repository as it is now."""
    env = {"SERVE_MODELS": "mnist", "SERVE_WORKERS": str(workers)}  # no polling: 0 by default
    with h.run_server(repo_copy, tmp_path / "server.log", env) as server:
        before = served(server.url)
        assert before is not None
        server.process.send_signal(signal.SIGHUP)  # nothing new: changes nothing
        time.sleep(1)
        assert server.process.poll() is None, server.log_text()[-2000:]
        assert served(server.url) == before
        new = 1 + max(int(p.name) for p in (repo_copy / "mnist").iterdir() if p.name.isdigit())
        h.publish(repo_copy / "mnist" / str(before), repo_copy, "mnist", new)
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while {served(server.url) for _ in range(4)} != {new}:  # every worker
            assert server.process.poll() is None, server.log_text()[-2000:]
            assert time.monotonic() < deadline, server.log_text()[-2000:]
            time.sleep(0.2)
        exit_code = server.terminate()
    assert exit_code == 0


def _hangup_ignored(pid: int) -> bool:
    """Whether the process ignores SIGHUP (its disposition, from /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    ignored = next(line for line in status.splitlines() if line.startswith("SigIgn:"))
    return bool(int(ignored.split()[1], 16) & (1 << (signal.SIGHUP - 1)))


@pytest.mark.timeout(120)
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_sighup_while_the_server_starts_or_stops_does_not_end_it(tmp_path: Path) -> None:
    """Before the app runs (its imports, building it) and once its shutdown has begun (the
    payload log written out, the models unloaded) a SIGHUP is ignored, not the end of the
    process: a reload sent by a process manager at the wrong moment."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SERVE_")},
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "SERVE_MODELS_DIR": str(tmp_path / "models"),  # none: /healthz answers all the same
        "SERVE_HOST": "127.0.0.1",
        "SERVE_PORT": str(port),
    }
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "server.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "service"], env=env, stdout=log, stderr=log)
    try:
        sent = 0
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if _hangup_ignored(proc.pid):
                proc.send_signal(signal.SIGHUP)
                sent += 1
            time.sleep(0.02)
        assert sent > 0, "SIGHUP was not ignored while the server started"
        proc.send_signal(signal.SIGTERM)
        while proc.poll() is None:  # until the process has ended
            proc.send_signal(signal.SIGHUP)
            time.sleep(0.002)
        assert proc.returncode == 0, (tmp_path / "server.log").read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
