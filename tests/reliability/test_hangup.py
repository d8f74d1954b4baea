"""SIGHUP rescans the model repository of a running server, which lives on (its default action
ended the process)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import reliability as h


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
