"""The FastAPI application: ``create_app(settings)``, its lifespan and the error handlers.

Every error a client sees has one shape, ``{"error": "..."}``, with its status and headers:
domain errors (``ServeError``), unknown routes (404), wrong methods (405), FastAPI's own parameter
validation (422) and bugs (500, logged with the traceback; the client only sees "internal error").
"""

from __future__ import annotations

import gc
import logging
import re
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api import admin, health, own, tfserving, ui, v2
from service.api import operations as operations_api
from service.api.common import json_response
from service.api.schemas import add_record_schemas
from service.codecs.magic import ACCEPTED_NAMES
from service.codecs.v2 import HEADER_LENGTH as V2_HEADER_LENGTH
from service.errors import ServeError, method_not_allowed, shown_path
from service.http.edge import Edge
from service.http.fastpath import FastPath
from service.http.limits import TIMEOUT_HEADERS
from service.http.protocol import HeadDeadlineProtocol
from service.http.routes import RouteTable
from service.http.security import install_openapi as install_security_openapi
from service.observability.access_log import AccessLog
from service.observability.logs import LogSink, configure_logging
from service.observability.metrics import Metrics
from service.observability.metrics import build_router as metrics_router
from service.serving.hangup import Hangup
from service.serving.operations import CURRENT, Operations
from service.serving.registry import ModelRegistry
from service.settings import Settings

log = logging.getLogger("service.app")

# Request headers the service reads, so a browser on another origin may send them: the key
# (http.security), the request id (http.request_id), the body's type and coding (api.common),
# the deadline (http.limits) and the V2 binary part's length (codecs.v2). Spelled as Starlette
# spells its always-allowed ones, so the preflight's answer names Content-Type once.
CORS_REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "Content-Encoding",
    "X-Request-ID",
    *(name.decode("latin-1") for name in TIMEOUT_HEADERS),
    V2_HEADER_LENGTH,
)
# Response headers a browser client reads: the request id, when to retry (429/503), the V2
# binary response's JSON length and the scheme a 401 asks for.
CORS_EXPOSE_HEADERS = ("x-request-id", "retry-after", V2_HEADER_LENGTH, "www-authenticate")

DESCRIPTION = f"""Serves the versioned MNIST, Fashion-MNIST and Pima models of the model repository.

Every error is `{{"error": "..."}}` with a 4xx/5xx status. Predictions accept JSON
(`{{"instances": ...}}`), a {ACCEPTED_NAMES} body, or multipart image files."""


class ServeApp(FastAPI):
    """FastAPI, with every HTTP request entering through the request edge (``http.edge``).

    The edge does the request id, keys, limits, deadline, access log and metrics, and sends the
    prediction routes straight to their endpoints; the rest goes on to FastAPI's own stack.
    """

    entry: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.entry is not None:
            await self.entry(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def framework(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI's own handling of a request (what the edge calls for non-hot routes)."""
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, log_sink: LogSink | None = None) -> FastAPI:
    """Build the app; the lifespan loads the registry from ``settings.models_dir``.

    ``log_sink`` is where ``configure_logging`` sends log lines; the access log writes there.
    """
    registry = ModelRegistry(settings)
    operations = Operations(settings, registry)
    hangup = Hangup(registry)  # SIGHUP rescans the repository
    access_log = AccessLog(log_sink)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Routes or middleware added after create_app must obey the table's rules too.
        edge.routes = RouteTable.of_app(app)
        hangup.start()
        await registry.start()
        operations.start()
        ready, problems = registry.readiness()
        log.info("service started", extra={"ready": ready, "problems": problems or None})
        try:
            yield
        finally:
            await hangup.stop()
            await operations.stop()
            await registry.stop()
            access_log.flush()

    otel = settings.opentelemetry
    app = ServeApp(
        title="digitserve",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        telemetry={"tracing": otel, "metrics": otel, "logs": otel},
        docs_url=None,  # served by the ui router, without a CDN
        redoc_url=None,  # ReDoc would need its CDN
        # a path with a trailing slash is unknown (404), not a redirect built from the
        # client's Host header and sent before any key is checked
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.registry = registry
    app.state.operations = operations

    app.add_exception_handler(ServeError, _serve_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _internal_error)

    app.include_router(health.router)
    app.include_router(own.router)
    app.include_router(tfserving.router)
    app.include_router(v2.router)
    app.include_router(ui.router)
    metrics = Metrics()
    metrics.bind(registry)
    app.state.metrics = metrics
    app.include_router(metrics_router(metrics))
    app.include_router(admin.router)
    app.include_router(operations_api.router)
    metrics.bind_operations(operations)
    # Every HTTP request enters through the edge; the prediction routes skip FastAPI's router.
    routes = RouteTable.of_app(app)
    edge = Edge(
        app.framework,
        settings,
        routes,
        access_log,
        metrics=metrics,
        fast=FastPath(app.exception_handlers),
        app=app,
    )
    entry: ASGIApp = edge
    if operations.enabled:  # off, the prediction path pays one context-variable read
        entry = OperationsEntry(entry, operations)
    if settings.cors_origins:  # around the edge: its own answers (401, 413, 504) get CORS too
        entry = JsonCORSMiddleware(
            entry,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSE_HEADERS,
        )
    app.entry = entry
    app.state.edge = edge  # its route table names the routes a 404 may suggest
    app.state.bodies = edge.bodies  # the body reader holds a compressed body's decoded bytes in it
    _document_records(app, registry)
    install_security_openapi(app, settings, lambda: edge.routes)
    return app


class JsonCORSMiddleware(CORSMiddleware):
    """Starlette's CORS middleware, whose refused preflight says why in the service's one error
    shape (``{"error": ...}``) instead of plain text."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        headers = {
            k: v for k, v in response.headers.items() if k not in ("content-type", "content-length")
        }
        message = bytes(response.body).decode()
        return json_response({"error": message}, response.status_code, headers)


class OperationsEntry:
    """Makes the request's ASGI state (where the edge puts the request id) and the operations
    hub visible to the prediction path, which knows nothing of HTTP."""

    def __init__(self, inner: ASGIApp, operations: Operations) -> None:
        self.inner = inner
        self.operations = operations

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        token = CURRENT.set((self.operations, state))
        try:
            await self.inner(scope, receive, send)
        finally:
            CURRENT.reset(token)


def _document_records(app: FastAPI, registry: ModelRegistry) -> None:
    """Add the loaded tabular models' feature names, units and ranges to the OpenAPI schema."""
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None and registry.started:
            return app.openapi_schema
        app.openapi_schema = None
        schema = default_openapi()  # FastAPI caches it in app.openapi_schema
        records: dict[str, dict[str, Any]] = {}
        for name in registry.model_names():
            metas = [mv.metadata for mv in registry.versions(name) if mv.metadata]
            meta_input = metas[-1]["input"] if metas else {}
            features = meta_input.get("features")
            if isinstance(features, list) and features:
                records[name] = meta_input
        add_record_schemas(schema, records)
        if not registry.started:  # models unknown yet: build it again next time
            app.openapi_schema = None
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` and multi-worker runs: settings from the environment.
    Run by hand, give uvicorn ``--http service.http.protocol:HeadDeadlineProtocol`` too, as
    ``python -m service`` does, or request heads have no deadline."""
    settings = Settings()
    HeadDeadlineProtocol.head_timeout_s = settings.request_timeout_s  # this worker's connections
    app = create_app(settings, configure_logging(settings))
    freeze_heap()  # a server process (each uvicorn worker), never a test
    return app


def freeze_heap() -> None:
    """Take every object alive now out of the cyclic garbage collector's scans (``gc.freeze``).

    The modules a server imports (FastAPI, pydantic, numpy, ...) leave tens of thousands of
    long-lived objects that every full collection walks again: pauses of tens of milliseconds
    under load, the main source of tail latency. Frozen, they are never scanned again. For
    server processes only: objects frozen in a long test session would never be collected.
    """
    gc.collect()
    gc.freeze()


MAX_ERROR_CHARS = 1000  # a message may quote the client's input: never all of it


def _capped(message: str) -> str:
    if len(message) <= MAX_ERROR_CHARS:
        return message
    return f"{message[:MAX_ERROR_CHARS]}... ({len(message) - MAX_ERROR_CHARS} more characters)"


async def _serve_error(request: Request, exc: ServeError) -> Response:
    return json_response({"error": _capped(exc.message)}, exc.status_code, exc.headers or None)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    headers = dict(exc.headers or {})
    path = request.url.path
    if exc.status_code == 404:
        hint = _route_hint(request.app, path, request.method) or "the routes are listed at /docs"
        message = f"no route {request.method} {shown_path(path)}: {hint}"
    elif exc.status_code == 405:
        allowed = headers.pop("Allow", None) or headers.pop("allow", None)
        if allowed:
            methods = [m.strip() for m in allowed.split(",")]
            if "GET" in methods and "HEAD" not in methods:  # the edge answers HEAD as a GET
                allowed = ", ".join([*methods, "HEAD"])
            headers["Allow"] = allowed
        else:
            allowed = "another method"
        message = method_not_allowed(request.method, path, allowed)
        hint = _route_hint(request.app, path, "POST") if request.method == "POST" else ""
        if hint:  # a TF Serving path without /v1 is a model's status route with a strange name
            message = f"method POST is not allowed on {shown_path(path)}, which answers {allowed}"
            message += f" only: {hint}"
    else:
        message = _capped(str(exc.detail))
    return json_response({"error": message}, exc.status_code, headers or None)


_TFS_VERB_AFTER_SLASH = re.compile(
    r"(/v1/models/[^/]+(?:/(?:versions|labels)/[^/]+)?)/(predict|classify|regress|explain)"
)
_V2_WITHOUT_PREFIX = re.compile(r"/models/[^/]+(?:/versions/[^/]+)?/(?:infer|ready)")
_TFS_WITHOUT_PREFIX = re.compile(
    r"/models/[^/:]+(?:/(?:versions|labels)/[^/:]+)?:(?:predict|classify|regress|explain)"
)


def _route_hint(app: Any, path: str, method: str) -> str:
    """What the client most likely meant by a path that no route answers as asked: the path
    with the likely slips mended (a trailing slash, TF Serving's verb after a slash or its
    missing /v1, V2's missing /v2), when a route answers it, with the methods it takes; "" when
    nothing is mended."""
    mended, slips, verb = path, [], False
    if len(mended) > 1 and mended.endswith("/"):
        mended = mended.rstrip("/") or "/"
        slips.append("no route ends with '/'")
    if match := _TFS_VERB_AFTER_SLASH.fullmatch(mended):
        mended, verb = f"{match[1]}:{match[2]}", True
        slips.append("TF Serving's methods follow a colon")
    elif _V2_WITHOUT_PREFIX.fullmatch(mended):
        mended = f"/v2{mended}"
        slips.append("the Open Inference Protocol's routes start with /v2")
    elif _TFS_WITHOUT_PREFIX.fullmatch(mended):
        mended, verb = f"/v1{mended}", True
        slips.append("TF Serving's routes start with /v1")
    routes = app.state.edge.routes
    methods = routes.methods_at(mended) if slips else []
    if not methods and len(path) <= _NEAR_MAX_CHARS:
        near, slip = _near_path(routes, mended, app.state.registry.model_names())
        if slip and method in (near_methods := routes.methods_at(near)):
            mended, slips, methods = near, [slip], near_methods
            verb = ":" in near.rsplit("/", 1)[-1]
    if verb and "POST" in methods:  # the status route's GET takes "mnist:predict" as a name
        methods = ["POST"]
    if not methods:
        last = path.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        if last in _PREDICTING and path.count("/") <= 2:  # /predict, /v1:predict, /v2/infer
            names = ", ".join(app.state.registry.model_names()) or "none loaded"
            route = _PREDICTION_ROUTES.get(path.strip("/")[:2], "/models/<name>/predict")
            return f"a prediction names its model: try POST {route} ({names})"
        return ""
    return f"{'; '.join(slips)}: try {' or '.join(methods)} {shown_path(mended)}"


_PREDICTING = ("predict", "infer", "classify", "explain")
_PREDICTION_ROUTES = {"v1": "/v1/models/<name>:predict", "v2": "/v2/models/<name>/infer"}
_NEAR_MAX_CHARS = 200  # a longer path is nobody's slip: no search for a near route
# Words one dialect uses for what another spells otherwise
_SYNONYMS = {"predict": ("infer",), "infer": ("predict",)}


def _near_path(routes: Any, path: str, models: Collection[str]) -> tuple[str, str]:
    """A route path one slip away from ``path``, and the slip: the model's segment left out
    (``/v1/mnist:predict``, ``/mnist/predict``), or one word of a route misspelt by a letter or
    two or said in another dialect's word (``/models/mnist/predic``, ``/v2/models/mnist/predict``);
    ``(path, "")`` when there is none. Bounded: a few dozen templates, words of a few letters."""
    parts = path.strip("/").split("/")
    head = parts[0] if parts[0] in ("v1", "v2") else ""
    rest = parts[1:] if head else parts
    # only before a model's name: /v2/health is not the metadata of a model named "health"
    if rest and rest[0] != "models" and rest[0].split(":")[0] in models:
        inserted = "/".join([*([head] if head else []), "models", *rest])
        if routes.methods_at(f"/{inserted}"):
            return f"/{inserted}", "model routes start with /models"
    templates = sorted({entry.path for entry in routes.entries})  # the same answer every time
    for template in templates:
        words = template.strip("/").split("/")
        if len(words) != len(parts):
            continue
        slips = [
            at
            for at, (said, word) in enumerate(zip(parts, words, strict=True))
            if said != word and not (word.startswith("{") and word.endswith("}"))
        ]
        if len(slips) != 1 or "{" in words[slips[0]]:
            continue
        said, word = parts[slips[0]], words[slips[0]]
        if word in _SYNONYMS.get(said, ()) or _one_or_two_letters_apart(said, word):
            near = "/" + "/".join([*parts[: slips[0]], word, *parts[slips[0] + 1 :]])
            if any(said in t.strip("/").split("/") for t in templates):  # /v1/models/x/infer
                return near, f"no route has {said[:40]!r} with the rest of this path"
            return near, f"no route has a part {said[:40]!r}"
    return path, ""


def _one_or_two_letters_apart(said: str, word: str) -> bool:
    """Whether ``said`` is ``word`` with at most two letters added, dropped or changed (one for
    a word of four letters or fewer): Levenshtein's distance, on short words only."""
    allowed = 1 if len(word) <= 4 else 2
    if abs(len(said) - len(word)) > allowed or len(said) > 32:
        return False
    previous = list(range(len(word) + 1))
    for i, a in enumerate(said, 1):
        current = [i]
        for j, b in enumerate(word, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b)))
        previous = current
    return previous[-1] <= allowed


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    parts = [_describe(err) for err in exc.errors()[:5]]
    return json_response({"error": "; ".join(parts) or "invalid request"}, 422)


def _describe(err: dict[str, Any]) -> str:
    loc = [str(x) for x in err.get("loc", ())]
    where = {"query": "query parameter", "path": "path parameter", "header": "header"}
    if len(loc) >= 2 and loc[0] in where:
        return f"{where[loc[0]]} {'.'.join(loc[1:])}: {err.get('msg', 'invalid')}"
    return f"{'.'.join(loc) or 'request'}: {err.get('msg', 'invalid')}"


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.error(
        "unhandled error on %s %s",
        request.method,
        request.url.path,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return json_response({"error": "internal error"}, 500)
