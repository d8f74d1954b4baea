"""The hot-path router: same answers as FastAPI's router, and the right requests go through it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from service.errors import InvalidInput
from service.http import fastpath
from service.http.edge import Edge
from service.settings import Settings


def build(use_fastpath: bool) -> tuple[Any, list[dict[str, Any]]]:
    router = APIRouter()
    seen: list[dict[str, Any]] = []

    @router.post("/models/{name}/versions/{version}/predict")
    async def predict(
        name: str, version: str, request: Request, top_k: int | None = Query(None, ge=1)
    ) -> Response:
        body = await request.body()
        if body == b"bad":
            raise InvalidInput("bad input")
        if body == b"bug":
            raise RuntimeError("a bug")
        if body == b"teapot":
            raise HTTPException(418, "short and stout")
        return JSONResponse({"name": name, "version": version, "top_k": top_k, "n": len(body)})

    @router.post("/v2/models/{name}/infer")
    async def infer(name: str, request: Request) -> Response:
        return JSONResponse({"infer": name})

    @router.post("/v2/models/{name}/needs-int/predict")
    async def typed(name: int, request: Request) -> Response:  # not a plain str parameter
        return JSONResponse({"typed": name})

    @router.post("/models/{name}/dep/predict", dependencies=[Depends(lambda: None)])
    async def with_dependency(name: str, request: Request) -> Response:
        return JSONResponse({"dep": name})

    @router.get("/models/{name}/versions/{version}/predict")
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
        taken = fastpath.hot_routes([router], fastpath.is_prediction)
        assert [h.route.path for h in taken] == [
            "/models/{name}/versions/{version}/predict",
            "/v2/models/{name}/infer",
        ]
        hot = fastpath.HotRoutes(taken, app.exception_handlers)
        entry = Edge(app, Settings(models_dir=Path("x")), hot=hot, app=app)

    async def spy(scope: Any, receive: Any, send: Any) -> None:  # sees what metrics and logs see
        await entry(scope, receive, send)
        route = scope.get("route")
        seen.append({"route": getattr(route, "path", None), "params": scope.get("path_params")})

    return spy, seen


REQUESTS = [
    ("POST", "/models/mnist/versions/2/predict", b"abc"),
    ("POST", "/models/mnist/versions/2/predict?top_k=3", b"abc"),
    ("POST", "/models/mnist/versions/2/predict?top_k=0", b"abc"),
    ("POST", "/models/mnist/versions/2/predict", b"bad"),
    ("POST", "/models/mnist/versions/2/predict", b"bug"),
    ("POST", "/models/mnist/versions/2/predict", b"teapot"),
    ("POST", "/v2/models/pima/infer", b"{}"),
    ("POST", "/v2/models/7/needs-int/predict", b""),
    ("POST", "/models/x/dep/predict", b""),
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
    original = fastpath.HotRoutes.dispatch

    async def counting(self: Any, hot: Any, scope: Any, receive: Any, send: Any) -> None:
        dispatched.append(scope["path"])
        await original(self, hot, scope, receive, send)

    monkeypatch.setattr(fastpath.HotRoutes, "dispatch", counting)
    fast, fast_seen = await answers(True)
    # the fast path took the plain prediction requests, FastAPI everything else
    assert dispatched == [
        "/models/mnist/versions/2/predict",
        "/models/mnist/versions/2/predict",
        "/models/mnist/versions/2/predict",
        "/models/mnist/versions/2/predict",
        "/v2/models/pima/infer",
    ]
    slow, slow_seen = await answers(False)
    assert fast == slow
    assert fast[0] == (200, {"name": "mnist", "version": "2", "top_k": None, "n": 3})
    assert fast[1][1]["top_k"] == 3  # a query string goes through FastAPI's validation
    assert fast[2][0] == 422
    assert fast[3] == (422, {"error": "bad input"})
    assert fast[4] == (500, {"error": "internal error"})
    assert fast[5] == (418, {"error": "teapot"})
    assert fast_seen[0] == slow_seen[0]
    assert fast_seen[0]["route"] == "/models/{name}/versions/{version}/predict"
    assert fast_seen[0]["params"] == {"name": "mnist", "version": "2"}


def test_only_plain_endpoints_qualify() -> None:
    plain = APIRouter()

    @plain.post("/a/{x}/predict")
    async def a(x: str, request: Request, k: int = Query(3)) -> Response:
        return Response()

    @plain.post("/b/{x}/predict")
    async def b(x: str, payload: dict[str, Any]) -> Response:  # a body model
        return Response()

    @plain.post("/c/{x}/predict")
    def c(x: str, request: Request) -> Response:  # sync: FastAPI runs it in a thread
        return Response()

    @plain.post("/d/{x}/predict")
    async def d(x: str, request: Request, k: int = Query(...)) -> Response:  # required query
        return Response()

    hot = fastpath.hot_routes([plain], fastpath.is_prediction)
    assert [h.route.path for h in hot] == ["/a/{x}/predict"]
    assert hot[0].defaults == {"k": 3} and hot[0].request_param == "request"
