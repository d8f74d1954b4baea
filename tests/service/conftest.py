"""Fixtures for the service tests: settings -> tiny repository -> app -> client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from service.app import create_app
from service.settings import Settings
from tests.helpers.apps import started
from tests.helpers.settings import make_settings


@pytest.fixture(scope="module")
def settings(tiny_repo: Path) -> Settings:
    return make_settings(tiny_repo, max_instances=16, max_body_bytes=200_000, max_upload_files=3)


@pytest.fixture(scope="module")
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture(scope="module")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with started(app) as http:
        yield http
