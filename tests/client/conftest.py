"""A real server on a trained repository, shared by the client and CLI tests of this session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.live_server import Server, run_server, trained_repository


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return trained_repository()


@pytest.fixture(scope="session")
def server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("client-server") / "server.log"
    with run_server(models_dir, log) as running:
        yield running
