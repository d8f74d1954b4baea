"""The demo page: ``GET /`` and its static files under ``/static/``; the OpenAPI UI at ``/docs``.

The files ship inside the package (``service/static``). They are read once when the router is
built and served from memory; a request names a file only by looking it up in that table, so no
path is ever built from the URL. The OpenAPI UI (Swagger UI) is served the same way, from the
files the ``fastapi-swagger`` package ships, not from a CDN: it works where the server has no
internet, as the demo page does.
"""

from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path

import fastapi_swagger.resources
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import Response

from service.api.routing import RouteKind, dialect_router, route_kind
from service.errors import NotFound

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
SWAGGER_DIR = Path(fastapi_swagger.resources.__file__).resolve().parent
SWAGGER_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
}


class _StaticFile:
    def __init__(self, path: Path) -> None:
        self.body = path.read_bytes()
        self.media_type = _TYPES.get(path.suffix) or (
            mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        )
        self.etag = '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'

    def response(self, if_none_match: str | None) -> Response:
        headers = {"ETag": self.etag, "Cache-Control": "no-cache", **_SECURITY_HEADERS}
        if if_none_match == self.etag:
            return Response(status_code=304, headers=headers)
        return Response(self.body, media_type=self.media_type, headers=headers)


def load_static(directory: Path = STATIC_DIR) -> dict[str, _StaticFile]:
    """Every regular file directly inside ``directory``, keyed by file name."""
    if not directory.is_dir():
        return {}
    return {p.name: _StaticFile(p) for p in sorted(directory.iterdir()) if p.is_file()}


def build_router(directory: Path = STATIC_DIR, swagger: Path = SWAGGER_DIR) -> APIRouter:
    """Router serving ``/`` (index.html), ``/static/<file>``, and ``/docs`` with its files under
    ``/docs/<file>``; hidden from the OpenAPI schema."""
    files = load_static(directory)
    docs_files = {name: _StaticFile(swagger / name) for name in SWAGGER_FILES}
    router = dialect_router("ui", include_in_schema=False)

    @router.get("/docs")
    @route_kind(RouteKind.READ)
    def docs(request: Request) -> Response:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json",
            title="digitserve - API",
            swagger_js_url=f"{root}/docs/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs/favicon-32x32.png",
        )

    @router.get("/docs/{name}")
    @route_kind(RouteKind.READ)
    def docs_file(name: str, request: Request) -> Response:
        static = docs_files.get(name)
        if static is None:
            raise NotFound(f"no documentation file named {name!r}")
        return static.response(request.headers.get("if-none-match"))

    def _get(name: str, if_none_match: str | None) -> Response:
        static = files.get(name)
        if static is None:
            raise NotFound(f"no static file named {name!r}")
        return static.response(if_none_match)

    @router.get("/")
    @route_kind(RouteKind.READ)
    def index(request: Request) -> Response:
        return _get("index.html", request.headers.get("if-none-match"))

    @router.get("/static/{name}")
    @route_kind(RouteKind.READ)
    def static_file(name: str, request: Request) -> Response:
        return _get(name, request.headers.get("if-none-match"))

    return router


router = build_router()
