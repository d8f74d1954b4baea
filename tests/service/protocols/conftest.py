"""Fixtures for the protocol adapters: the shared tiny repository and an app over it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from service.app import create_app
from tests.service.conftest import make_settings

LABELS = {"mnist": {"stable": 1, "canary": 2}}


def make_app(models_dir: Path, **overrides: Any) -> FastAPI:
    from service.api import tfserving, v2

    app = create_app(make_settings(models_dir, version_labels=LABELS, **overrides))
    paths = {getattr(r, "path", None) for r in app.router.routes}
    for router in (tfserving.router, v2.router):  # only until create_app includes them
        if not any(getattr(r, "path", None) in paths for r in router.routes):
            app.include_router(router)
    return app


@pytest.fixture(scope="module")
async def client(tiny_repo: Path) -> AsyncIterator[httpx.AsyncClient]:
    """Every model of the tiny repository, including the broken ones (server not ready)."""
    app = make_app(tiny_repo, max_instances=64)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


@pytest.fixture(scope="module")
async def ready_client(tiny_repo: Path) -> AsyncIterator[httpx.AsyncClient]:
    """Only the working models: the server is ready."""
    app = make_app(tiny_repo, models=["mnist", "pima", "fashion_mnist"])
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http
