"""Reliability tests reuse the service tests' tiny repository (built once per session) and build
their own app per test, since each needs its own settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from service.app import create_app
from tests.service.conftest import anyio_backend, make_settings, repo_copy, tiny_repo

__all__ = ["anyio_backend", "repo_copy", "serve", "tiny_repo"]


@asynccontextmanager
async def serve(
    models_dir: Path, client_host: str = "127.0.0.1", **overrides: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with these settings, started, and an in-process client (from ``client_host``)."""
    app = create_app(make_settings(models_dir, **overrides))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        transport = httpx.ASGITransport(
            app=app, raise_app_exceptions=False, client=(client_host, 50000)
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield app, client
