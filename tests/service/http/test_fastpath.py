"""The hot-path router: same answers as FastAPI's router, and the right requests go through it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute, iter_route_contexts

from service.api.routing import RouteKind, dialect_router, route_kind
from service.errors import InvalidInput
from service.http import fastpath
from service.http.edge import Edge
from service.http.routes import RouteTable
from service.observability.access_log import AccessLog
from service.settings import Settings


def build(use_fastpath: bool) -> tuple[Any, list[dict[str, Any]]]:
    router = dialect_router("own")
    seen: list[dict[str, Any]] = []

    @router.post("/models/{name}/versions/{version}/predict")
    @route_kind(RouteKind.PREDICTION)
    async def predict(name: str, version: str, request: Request) -> Response:
        body = await request.body()
        if body == b"bad":
            raise InvalidInput("bad input")
        if body == b"bug":
            raise RuntimeError("a bug")
        if body == b"teapot":
            raise HTTPException(418, "short and stout")
        return JSONResponse({"name": name, "version": version, "n": len(body)})

    @router.post("/v2/models/{name}/infer")
    @route_kind(RouteKind.PREDICTION)
    async def infer(name: str, request: Request) -> Response:
        return JSONResponse({"infer": name})

    @router.post("/v2/models/{name}/needs-int/status")
    @route_kind(RouteKind.READ)
    async def typed(name: int, request: Request) -> Response:  # not a plain str parameter
        return JSONResponse({"typed": name})

    @router.get("/models/{name}/versions/{version}/predict")
    @route_kind(RouteKind.READ)
    async def get_predict(name: str, version: str) -> dict[str, str]:
        return {"get": name}

    app = FastAPI()

    async def invalid(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=422)

    async def internal(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": "internal error"}, status_code=500)

    async def teapot(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": "teapot"}, status_code=418)

    app.add_exception_handler(InvalidInput, invalid)
    app.add_exception_handler(418, teapot)
    app.add_exception_handler(Exception, internal)
    app.include_router(router)
    entry: Any = app
    if use_fastpath:  # the request edge in front, as in the service (service.app.ServeApp)
        table = RouteTable.of_app(app)
        hot = [e.path for e in table.entries if e.hot is not None]
        assert hot == ["/models/{name}/versions/{version}/predict", "/v2/models/{name}/infer"]
        fast = fastpath.FastPath(app.exception_handlers)
        settings = Settings(models_dir=Path("x"))
        entry = Edge(app, settings, table, AccessLog(), fast=fast, app=app)

    async def spy(scope: Any, receive: Any, send: Any) -> None:  # sees what metrics and logs see
        await entry(scope, receive, send)
        route = scope.get("route")
        seen.append({"route": getattr(route, "path", None), "params": scope.get("path_params")})

    return spy, seen


REQUESTS = [
    ("POST", "/models/mnist/versions/2/predict", b"abc"),
    ("POST", "/models/mnist/versions/2/predict?top_k=3", b"abc"),
    ("POST", "/models/mnist/versions/2/predict", b"bad"),
    ("POST", "/models/mnist/versions/2/predict", b"bug"),
    ("POST", "/models/mnist/versions/2/predict", b"teapot"),
    ("POST", "/v2/models/pima/infer", b"{}"),
    ("POST", "/v2/models/7/needs-int/status", b""),
    ("GET", "/models/mnist/versions/2/predict", b""),
    ("POST", "/nowhere", b""),
]


async def answers(use_fastpath: bool) -> tuple[list[tuple[int, Any]], list[dict[str, Any]]]:
    app, seen = build(use_fastpath)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    out = []
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for method, url, body in REQUESTS:
            response = await client.request(method, url, content=body)
            out.append((response.status_code, response.json()))
    return out, seen


@pytest.mark.anyio
async def test_fast_routes_answer_exactly_as_fastapi_does(monkeypatch: pytest.MonkeyPatch) -> None:
    dispatched: list[str] = []
    original = fastpath.FastPath.dispatch

    async def counting(self: Any, hot: Any, params: Any, scope: Any, *rest: Any) -> None:
        dispatched.append(scope["path"])
        await original(self, hot, params, scope, *rest)

    monkeypatch.setattr(fastpath.FastPath, "dispatch", counting)
    fast, fast_seen = await answers(True)
    # the fast path took the prediction requests, FastAPI everything else
    assert dispatched == [
        "/models/mnist/versions/2/predict",
        "/models/mnist/versions/2/predict",
        "/models/mnist/versions/2/predict",
        "/models/mnist/versions/2/predict",
        "/models/mnist/versions/2/predict",
        "/v2/models/pima/infer",
    ]
    slow, slow_seen = await answers(False)
    assert fast == slow
    assert fast[0] == (200, {"name": "mnist", "version": "2", "n": 3})
    assert fast[1] == fast[0]  # a query string changes nothing: hot routes take no query
    assert fast[2] == (422, {"error": "bad input"})
    assert fast[3] == (500, {"error": "internal error"})
    assert fast[4] == (418, {"error": "teapot"})
    assert fast_seen[0] == slow_seen[0]
    assert fast_seen[0]["route"] == "/models/{name}/versions/{version}/predict"
    assert fast_seen[0]["params"] == {"name": "mnist", "version": "2"}


def reasons(app: FastAPI) -> dict[str, Any]:
    """``hot_route``'s answer for each POST route of ``app``: a HotRoute or why not."""
    out: dict[str, Any] = {}
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and "POST" in (route.methods or ()):
            out[context.path or route.path] = fastpath.hot_route(route, context)
    return out


def test_only_plain_endpoints_qualify() -> None:
    plain = APIRouter()

    @plain.post("/plain/{x}/predict")
    async def plain_endpoint(x: str, req: Request) -> Response:
        return Response()

    @plain.post("/a/{x}/predict")
    async def a(x: str, request: Request, k: int = Query(3)) -> Response:  # a query default
        return Response()

    @plain.post("/b/{x}/predict")
    async def b(x: str, payload: dict[str, Any]) -> Response:  # a body model
        return Response()

    @plain.post("/c/{x}/predict")
    def c(x: str, request: Request) -> Response:  # sync: FastAPI runs it in a thread
        return Response()

    @plain.post("/d/{x:int}/predict")
    async def d(x: str, request: Request) -> Response:  # a path convertor
        return Response()

    @plain.post("/e/{x}/predict", dependencies=[Depends(lambda: None)])
    async def e(x: str, request: Request) -> Response:
        return Response()

    @plain.post("/f/{x}/predict")
    async def f(x: str) -> Response:
        return Response()

    app = FastAPI()
    app.include_router(plain)
    app.include_router(plain, prefix="/deps", dependencies=[Depends(lambda: None)])
    found = reasons(app)
    hot = found.pop("/plain/{x}/predict")
    assert isinstance(hot, fastpath.HotRoute) and hot.request_param == "req"
    assert hot.endpoint is plain_endpoint
    assert hot.regex.match("/plain/abc/predict") is not None
    why = {path: reason for path, reason in found.items() if not path.startswith("/deps")}
    assert "parameter 'k'" in why["/a/{x}/predict"]
    assert "parameter 'payload'" in why["/b/{x}/predict"]
    assert "not a coroutine" in why["/c/{x}/predict"]
    assert "convertor" in why["/d/{x:int}/predict"]
    assert "dependencies" in why["/e/{x}/predict"]
    assert "no Request" in why["/f/{x}/predict"]
    # the same route included with dependencies: its context carries them, so it does not qualify
    deps = [
        fastpath.hot_route(c.original_route, c)  # type: ignore[arg-type]
        for c in iter_route_contexts(app.routes)
        if (c.path or "").startswith("/deps/plain/")
    ]
    assert deps and all(isinstance(r, str) and "dependencies" in r for r in deps)


def test_a_get_route_does_not_qualify() -> None:
    router = APIRouter()

    @router.get("/g/{x}")
    async def g(x: str, request: Request) -> Response:
        return Response()

    app = FastAPI()
    app.include_router(router)
    (context,) = [c for c in iter_route_contexts(app.routes) if c.path == "/g/{x}"]
    assert fastpath.hot_route(context.original_route, context) == "it is not a POST route"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "root", "expected"),
    [
        ("/models/m/predict", "", "/models/m/predict"),
        ("/api/models/m/predict", "/api", "/models/m/predict"),
        ("/api", "/api", ""),
        ("/apis/models", "/api", "/apis/models"),  # a longer first segment is not the root
        ("/other/x", "/api", "/other/x"),
    ],
)
def test_route_path_strips_only_the_root_path(path: str, root: str, expected: str) -> None:
    assert fastpath.route_path({"path": path, "root_path": root}) == expected
