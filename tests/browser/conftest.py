"""A real server on a trained repository and a headless Debian Chromium driven by Playwright.

Chromium comes from Debian (``apt-get install chromium``; ``make system-deps`` does it), never from
``playwright install``. Without it the browser tests are skipped, unless ``CI`` is set, where they
fail instead. The browser is module-scoped on purpose: Playwright's sync API keeps an event loop
running in this thread while it is open, which would break async tests that run after it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.helpers.browser import choose_model, open_page, served_metadata
from tests.helpers.live_server import ROOT, Server, run_server, trained_repository

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"


@pytest.fixture(scope="session")
def page_models_dir() -> Path:
    return trained_repository()


@pytest.fixture(scope="module")
def page_server(
    page_models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("page-server") / "server.log"
    with run_server(page_models_dir, log) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium (or make system-deps)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def page(browser: Any, page_server: Server) -> Iterator[Any]:
    """The page on the shared server, with mnist chosen (a module may define its own)."""
    with open_page(browser, page_server.url) as pg:
        choose_model(pg, "mnist")
        yield pg


@pytest.fixture
def golden_digit(page_models_dir: Path, tmp_path: Path) -> Path:
    """A real MNIST test digit from the served version's golden sample, as a PNG file."""

    meta = served_metadata(page_models_dir, "mnist")
    image = np.asarray(meta["golden"]["inputs"][0], dtype=np.float32)
    path = tmp_path / "digit.png"
    Image.fromarray(np.round(image * 255).astype(np.uint8), mode="L").save(path)
    return path
