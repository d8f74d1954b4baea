"""The demo page: ``GET /`` and its static files under ``/static/``.

The files ship inside the package (``service/static``). They are read once when the router is
built and served from memory; a request names a file only by looking it up in that table, so no
path is ever built from the URL.
"""

from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.api.routing import RouteKind, dialect_router, route_kind
from service.errors import NotFound

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
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


def build_router(directory: Path = STATIC_DIR) -> APIRouter:
    """Router serving ``/`` (index.html) and ``/static/<file>``; hidden from the OpenAPI schema."""
    files = load_static(directory)
    router = dialect_router("ui", include_in_schema=False)

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
