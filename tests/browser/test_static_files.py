"""The page's files are served by the app itself (no browser needed)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from service.api.ui import STATIC_DIR
from service.app import create_app
from service.settings import Settings


@pytest.fixture
async def client(tmp_path: Path) -> httpx.AsyncClient:  # type: ignore[misc]
    app = create_app(Settings(models_dir=tmp_path))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


@pytest.mark.anyio
async def test_index_and_assets(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    html = page.text
    for asset in ("/static/app.js", "/static/style.css"):
        assert asset in html
        response = await client.get(asset)
        assert response.status_code == 200
        assert response.content == (STATIC_DIR / asset.rsplit("/", 1)[1]).read_bytes()
    assert (
        (await client.get("/static/app.js")).headers["content-type"].startswith("text/javascript")
    )


@pytest.mark.anyio
async def test_etag_and_unknown_files(client: httpx.AsyncClient) -> None:
    first = await client.get("/static/style.css")
    again = await client.get("/static/style.css", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    for bad in ("/static/nope.js", "/static/..%2Fapp.py", "/static/%2e%2e"):
        response = await client.get(bad)
        assert response.status_code == 404, bad
        assert "error" in response.json()


def test_page_uses_no_external_resources() -> None:
    for path in STATIC_DIR.iterdir():
        text = path.read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text, path.name


@pytest.mark.anyio
async def test_the_openapi_ui_is_served_without_a_cdn(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "://" not in page.text  # no asset from another host: works with no internet
    for asset in ("/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/openapi.json"):
        assert asset in page.text
        assert (await client.get(asset)).status_code == 200, asset
    assert (await client.get("/docs/main.py")).status_code == 404  # only the UI's own files
    assert (await client.get("/redoc")).status_code == 404  # it would need its CDN
