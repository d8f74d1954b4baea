"""Fixtures for the protocol adapters: an app over the tiny repository with version labels."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.apps import labelled_app, started


@pytest.fixture(scope="module")
async def dialect_client(tiny_repo: Path) -> AsyncIterator[httpx.AsyncClient]:
    """Every model of the tiny repository, including the broken ones (server not ready)."""
    async with started(labelled_app(tiny_repo, max_instances=64)) as http:
        yield http


@pytest.fixture(scope="module")
async def dialect_ready_client(tiny_repo: Path) -> AsyncIterator[httpx.AsyncClient]:
    """Only the working models: the server is ready."""
    app = labelled_app(tiny_repo, models=["mnist", "pima", "fashion_mnist"])
    async with started(app) as http:
        yield http
