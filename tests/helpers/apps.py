"""In-process apps for the tests: built with their own settings, started, with an httpx client.

``httpx.ASGITransport`` alone does not run the lifespan, so every app here is started inside an
``asgi_lifespan.LifespanManager``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from service.app import create_app
from tests.helpers.settings import make_settings

VERSION_LABELS = {"mnist": {"stable": 1, "canary": 2}}


@asynccontextmanager
async def started(app: FastAPI, client_host: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    """``app`` started, and an in-process client (connecting from ``client_host``)."""
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        transport = httpx.ASGITransport(
            app=app, raise_app_exceptions=False, client=(client_host, 50000)
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@asynccontextmanager
async def serve(
    models_dir: Path, client_host: str = "127.0.0.1", **overrides: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with these settings, started, and an in-process client (from ``client_host``)."""
    app = create_app(make_settings(models_dir, **overrides))
    async with started(app, client_host) as client:
        yield app, client


def labelled_app(models_dir: Path, **overrides: Any) -> FastAPI:
    """An app whose mnist versions 1 and 2 are labelled ``stable`` and ``canary``."""
    return create_app(make_settings(models_dir, version_labels=VERSION_LABELS, **overrides))
