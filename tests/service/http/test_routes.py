"""The route table of the real app: every route has a kind, every prediction route takes the fast
path, and what the fast path would skip (router dependencies, middleware, an undeclared route)
stops the app at start-up instead of being skipped silently."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import SecretStr
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.types import Receive, Scope, Send

from service.api import operations, own, tfserving, v2
from service.api.routing import RouteKind, dialect_router, route_kind
from service.app import ServeApp, create_app
from service.http import fastpath
from service.http.routes import RouteTable, RouteTableError
from service.settings import Settings
from tests.helpers.apps import started
from tests.helpers.settings import make_settings

PREDICTION_PATH = re.compile(r"(/predict|/infer|/explain|/feedback|:{verb})$")
DOCS = {"/openapi.json", "/docs", "/docs/{name}"}  # the OpenAPI document and its UI
PARAMS = {
    "name": "mnist",
    "model_name": "mnist",
    "version": "1",
    "model_version": "1",
    "verb": "predict",
}


def offline_app(**overrides: Any) -> FastAPI:
    """The service's app (not started: building the table needs no models)."""
    return create_app(Settings(models_dir=Path("unused"), **overrides))


def concrete(template: str) -> str:
    """A URL for a route template: mnist, version 1, :predict, and ``stable`` for a label."""
    return re.sub(r"{(\w+)(:\w+)?}", lambda m: PARAMS.get(m.group(1), "stable"), template)


def kind_route(kind: RouteKind, path: str = "/extra/{name}/predict") -> Any:
    """A router with one POST route of ``kind``, as a new adapter would declare it."""
    router = dialect_router("other")

    @router.post(path)
    @route_kind(kind)
    async def extra(name: str, request: Request) -> Response:
        return JSONResponse({"extra": name})

    return router


def test_every_route_of_the_app_has_a_kind() -> None:
    app = offline_app()
    table = RouteTable.of_app(app)
    contexts = list(iter_route_contexts(app.routes))
    assert len(table.entries) == len(contexts) > 30
    assert [e.path for e in table.entries] == [c.path_format for c in contexts]
    assert {e.path for e in table.entries} >= DOCS
    assert all(e.kind is RouteKind.READ for e in table.entries if e.path in DOCS)
    kinds = {e.kind for e in table.entries}
    assert kinds == set(RouteKind)  # all four kinds are in use
    assert {e.path for e in table.of_kind(RouteKind.HEALTH)} >= {"/healthz", "/readyz"}
    admin = {e.path for e in table.of_kind(RouteKind.ADMIN)}
    assert admin and all("/repository" in path for path in admin)


def test_every_prediction_route_is_hot_and_only_those() -> None:
    app = offline_app()
    table = RouteTable.of_app(app)
    predictions = table.of_kind(RouteKind.PREDICTION)
    declared = {
        (route.path_format, route.endpoint)
        for router in (own.router, tfserving.router, v2.router, operations.router)
        for route in router.routes
        if isinstance(route, APIRoute)
        and "POST" in (route.methods or ())
        and PREDICTION_PATH.search(route.path_format)
    }
    assert {(e.path, e.route.endpoint) for e in predictions} == declared  # type: ignore[attr-defined]
    assert {e.protocol for e in predictions} == {"own", "tfserving", "v2"}
    for entry in predictions:
        assert entry.hot is not None and entry.methods == {"POST"}, entry.path
        assert entry.hot.endpoint is entry.route.endpoint  # type: ignore[attr-defined]
    assert all(e.hot is None for e in table.entries if e.kind is not RouteKind.PREDICTION)


@pytest.mark.anyio
async def test_a_request_to_each_prediction_route_goes_through_the_fast_path(
    tiny_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    framework = ServeApp.framework
    dispatch = fastpath.FastPath.dispatch
    through_fastapi: list[str] = []
    through_fast_path: list[str] = []

    async def spy_framework(self: ServeApp, scope: Scope, receive: Receive, send: Send) -> None:
        through_fastapi.append(scope["path"])
        await framework(self, scope, receive, send)

    async def spy_dispatch(
        self: fastpath.FastPath, hot: Any, params: Any, scope: Scope, *rest: Any
    ) -> None:
        through_fast_path.append(scope["path"])
        await dispatch(self, hot, params, scope, *rest)

    monkeypatch.setattr(ServeApp, "framework", spy_framework)
    monkeypatch.setattr(fastpath.FastPath, "dispatch", spy_dispatch)
    settings = make_settings(
        tiny_repo,
        models=["mnist"],
        version_labels={"mnist": {"stable": 1}},
        feedback_window=10,  # feedback off answers 404
    )
    app = create_app(settings)
    predictions = RouteTable.of_app(app).of_kind(RouteKind.PREDICTION)
    async with started(app) as client:
        for entry in predictions:
            url = concrete(entry.path)
            through_fastapi.clear()
            through_fast_path.clear()
            response = await client.post(url, json={"instances": [[[0.0] * 28] * 28]})
            assert response.status_code not in (404, 405, 500), (url, response.text)
            assert through_fast_path == [url] and through_fastapi == [], url
        # the spies see the other way too: a read route goes to FastAPI's own stack
        through_fast_path.clear()
        assert (await client.get("/models")).status_code == 200
        assert through_fastapi == ["/models"] and through_fast_path == []


def test_router_dependencies_on_a_prediction_route_refuse_to_build() -> None:
    app = offline_app()
    app.include_router(own.router, prefix="/extra", dependencies=[Depends(lambda: None)])
    with pytest.raises(RouteTableError, match=r"cannot take the fast path.*dependencies"):
        RouteTable.of_app(app)


def test_router_dependencies_at_create_app_fail_there(monkeypatch: pytest.MonkeyPatch) -> None:
    include = FastAPI.include_router

    def with_dependency(self: FastAPI, router: Any, **kwargs: Any) -> None:
        if router is v2.router:
            kwargs["dependencies"] = [Depends(lambda: None)]
        include(self, router, **kwargs)

    monkeypatch.setattr(FastAPI, "include_router", with_dependency)
    with pytest.raises(RouteTableError, match=r"/v2/models/.*cannot take the fast path"):
        offline_app()


@pytest.mark.anyio
async def test_router_dependencies_added_after_create_app_fail_at_start_up(
    tiny_repo: Path,
) -> None:
    app = create_app(make_settings(tiny_repo, models=["mnist"]))
    app.include_router(kind_route(RouteKind.PREDICTION), dependencies=[Depends(lambda: None)])
    with pytest.raises(RouteTableError, match="cannot take the fast path"):
        async with started(app):
            pass


@pytest.mark.anyio
async def test_middleware_added_after_create_app_fails_at_start_up(tiny_repo: Path) -> None:
    async def passthrough(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        return response

    app = create_app(make_settings(tiny_repo, models=["mnist"]))
    app.add_middleware(BaseHTTPMiddleware, dispatch=passthrough)
    with pytest.raises(RouteTableError, match="BaseHTTPMiddleware"):
        async with started(app):
            pass


@pytest.mark.anyio
async def test_a_route_without_a_kind_fails_at_start_up(tiny_repo: Path) -> None:
    app = create_app(make_settings(tiny_repo, models=["mnist"]))

    @app.get("/undeclared")
    async def undeclared() -> dict[str, str]:
        return {}

    with pytest.raises(RouteTableError, match="/undeclared declares no kind"):
        RouteTable.of_app(app)
    with pytest.raises(RouteTableError, match="/undeclared declares no kind"):
        async with started(app):
            pass


@pytest.mark.anyio
async def test_a_newly_declared_prediction_route_needs_the_api_key(tiny_repo: Path) -> None:
    app = create_app(make_settings(tiny_repo, models=["mnist"], api_key=SecretStr("k")))
    app.include_router(kind_route(RouteKind.PREDICTION))
    app.include_router(kind_route(RouteKind.READ, "/open/{name}/status"))
    async with started(app) as client:
        missing = await client.post("/extra/mnist/predict")
        assert missing.status_code == 401 and "API key" in missing.json()["error"]
        wrong = await client.post("/extra/mnist/predict", headers={"Authorization": "Bearer x"})
        assert wrong.status_code == 403
        ok = await client.post("/extra/mnist/predict", headers={"Authorization": "Bearer k"})
        assert ok.status_code == 200 and ok.json() == {"extra": "mnist"}
        # the same route declared as a read needs no key: the kind decides, not the path
        assert (await client.post("/open/mnist/status")).status_code == 200


@pytest.mark.anyio
async def test_a_newly_declared_admin_route_needs_the_admin_key(tiny_repo: Path) -> None:
    app = create_app(make_settings(tiny_repo, models=["mnist"], admin_key=SecretStr("a")))
    app.include_router(kind_route(RouteKind.ADMIN, "/extra/{name}/reload"))
    async with started(app) as client:
        assert (await client.post("/extra/mnist/reload")).status_code == 401
        allowed = await client.post("/extra/mnist/reload", headers={"Authorization": "Bearer a"})
        assert allowed.status_code == 200


def test_match_gives_the_route_of_the_method_or_the_first_of_the_path() -> None:
    table = RouteTable.of_app(offline_app())
    found = table.match("POST", "/models/mnist/versions/2/predict")
    assert found is not None
    entry, match = found
    assert entry.kind is RouteKind.PREDICTION and entry.protocol == "own"
    assert match.groupdict() == {"name": "mnist", "version": "2"}
    wrong_method = table.match("DELETE", "/v2/repository/index")
    assert wrong_method is not None and wrong_method[0].kind is RouteKind.ADMIN
    assert table.match("GET", "/nowhere") is None
    assert table.kind_of("GET", "/healthz") is RouteKind.HEALTH
    assert table.kind_of("DELETE", "/healthz") is None
