"""The request edge in front of tiny ASGI apps: order of checks, request ids, the deadline flag.

The route table comes from a small app whose routes declare their kinds, as the service's do.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import SecretStr

from service.api.routing import RouteKind, dialect_router, route_kind
from service.http import edge as edge_module
from service.http.edge import Edge, _version_number
from service.http.routes import RouteTable
from service.observability.access_log import AccessLog
from service.serving.deadline import EDGE_DEADLINE
from service.settings import Settings

pytestmark = pytest.mark.anyio


async def call(
    app: Any,
    method: str = "POST",
    path: str = "/models/m/predict",
    headers: Any = (),
    **scope_extra: Any,
) -> list[dict[str, Any]]:
    scope = {"type": "http", "method": method, "path": path, "headers": list(headers)}
    scope.update(scope_extra)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def settings(**kw: Any) -> Settings:
    return Settings(models_dir=Path("x"), **kw)


def table() -> RouteTable:
    """A prediction, an admin and a read route, declared as the service declares its own."""
    router = dialect_router("own")

    @router.post("/models/{name}/predict")
    @route_kind(RouteKind.PREDICTION)
    async def predict(name: str, request: Request) -> Response:
        raise AssertionError("the edge under test sends everything to its inner app")

    @router.post("/v2/repository/index")
    @route_kind(RouteKind.ADMIN)
    async def index() -> Response:
        raise AssertionError("not called")

    @router.get("/x")
    @route_kind(RouteKind.READ)
    async def read() -> Response:
        raise AssertionError("not called")

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(router)
    return RouteTable.of_app(app)


def make_edge(inner: Any, config: Settings) -> Edge:
    """The edge with no fast path: every request that passes the checks goes to ``inner``."""
    return Edge(inner, config, table(), AccessLog())


async def ok(scope: Any, receive: Any, send: Any) -> None:
    seen.append(EDGE_DEADLINE.get())
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


seen: list[bool] = []


async def test_deadline_flag_is_set_inside_and_reset_after() -> None:
    seen.clear()
    sent = await call(make_edge(ok, settings()))
    assert sent[0]["status"] == 200 and seen == [True]
    assert EDGE_DEADLINE.get() is False  # nothing leaks into the caller's context
    seen.clear()
    await call(make_edge(ok, settings()), method="POST", path="/v2/repository/index")
    assert seen == [False]  # the lifecycle endpoints run without a deadline


async def test_checks_run_in_order_keys_then_size_then_deadline_header() -> None:
    edge = make_edge(ok, settings(api_key=SecretStr("k"), max_body_bytes=1024))
    big = [(b"content-length", b"4096"), (b"x-request-timeout", b"nope")]
    assert (await call(edge, headers=big))[0]["status"] == 401
    auth = [(b"authorization", b"Bearer k")]
    assert (await call(edge, headers=[*auth, *big]))[0]["status"] == 413
    sent = await call(edge, headers=[*auth, (b"x-request-timeout", b"nope")])
    assert sent[0]["status"] == 422
    assert (await call(edge, headers=auth))[0]["status"] == 200


async def test_a_transfer_coding_other_than_chunked_is_501_before_the_body_is_read() -> None:
    called: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        called.append("app")
        await ok(scope, receive, send)

    edge = make_edge(inner, settings())
    for coding in (b"gzip, chunked", b"deflate,chunked", b"gzip", b"chunked, gzip"):
        sent = await call(edge, headers=[(b"transfer-encoding", coding)])
        headers = dict(sent[0]["headers"])
        assert sent[0]["status"] == 501 and headers[b"connection"] == b"close", coding
        error = orjson.loads(sent[1]["body"])["error"]
        assert coding.decode() in error and "Content-Encoding: gzip" in error  # where it goes
    assert called == []  # nothing read the body
    accepted = (b"chunked", b"Chunked", b" chunked ", b", chunked", b"chunked ,")
    for coding in accepted:  # empty list elements are ignored (RFC 9110, section 5.6.1)
        assert (await call(edge, headers=[(b"transfer-encoding", coding)]))[0]["status"] == 200
    assert called == ["app"] * len(accepted)


async def test_request_id_kept_when_sane_replaced_otherwise() -> None:
    def rid(sent: list[dict[str, Any]]) -> bytes:
        return dict(sent[0]["headers"])[b"x-request-id"]

    edge = make_edge(ok, settings())
    assert rid(await call(edge, headers=[(b"x-request-id", b"abc-1.2:3")])) == b"abc-1.2:3"
    replaced = rid(await call(edge, headers=[(b"x-request-id", b"no spaces allowed")]))
    assert replaced != b"no spaces allowed" and len(replaced) == 32
    assert rid(await call(edge)) != rid(await call(edge))  # fresh ids differ


async def test_deadline_cuts_only_before_the_answer_starts() -> None:
    quick = settings(request_timeout_s=0.05)

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(1)

    async def swallows(scope: Any, receive: Any, send: Any) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(1)

    async def streams(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(0.15)  # past the deadline, but the answer has started
        await send({"type": "http.response.body", "body": b"done"})

    for app in (slow, swallows):
        sent = await call(make_edge(app, quick), method="GET", path="/x")
        assert sent[0]["status"] == 504, app.__name__
        await asyncio.sleep(0)  # the task is not left cancelled
    sent = await call(make_edge(streams, quick), method="GET", path="/x")
    assert sent[0]["status"] == 200 and sent[-1]["body"] == b"done"
    sent = await call(
        make_edge(slow, quick), method="GET", path="/x", headers=[(b"x-request-timeout", b"x")]
    )
    assert sent[0]["status"] == 422


async def test_a_deadline_passing_while_the_body_arrives_is_a_408() -> None:
    """The client's delay (a stalled upload) is a 408 that closes the connection, not a server
    timeout: only once the body is read does the deadline become the server's 504."""
    quick = settings(request_timeout_s=0.05)

    async def reading(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(1)  # as if waiting for the rest of the body

    async def working(scope: Any, receive: Any, send: Any) -> None:
        scope["state"]["body_read"] = True  # what the body reader marks
        await asyncio.sleep(1)

    sent = await call(make_edge(reading, quick))
    assert sent[0]["status"] == 408 and (b"connection", b"close") in sent[0]["headers"]
    assert b"did not arrive" in sent[1]["body"]
    sent = await call(make_edge(working, quick))
    assert sent[0]["status"] == 504


async def test_auth_and_deadline_exemption_see_the_path_without_root_path() -> None:
    """An ASGI server puts root_path into path: the checks must not be fooled by the prefix."""
    edge = make_edge(ok, settings(api_key=SecretStr("k")))

    async def under_root(path: str, client: tuple[str, int] = ("203.0.113.9", 5000)) -> Any:
        return await call(edge, path=path, root_path="/api", client=client)

    assert (await under_root("/api/models/mnist/predict"))[0]["status"] == 401
    # no admin key set: lifecycle endpoints refuse remote clients, prefix or not
    assert (await under_root("/api/v2/repository/index"))[0]["status"] == 403
    seen.clear()
    local = await under_root("/api/v2/repository/index", ("127.0.0.1", 5000))
    assert local[0]["status"] == 200 and seen == [False]  # exempt from the deadline


async def test_unanswered_exception_is_a_json_500_and_a_disconnect_gets_no_answer() -> None:
    from starlette.requests import ClientDisconnect

    async def bug(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("a bug")

    async def gone(scope: Any, receive: Any, send: Any) -> None:
        raise ClientDisconnect()

    sent = await call(make_edge(bug, settings()))
    assert sent[0]["status"] == 500 and b"x-request-id" in dict(sent[0]["headers"])
    assert sent[1]["body"] == b'{"error":"internal error"}'
    assert await call(make_edge(gone, settings())) == []

    async def answers_then_fails(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})
        raise RuntimeError("re-raised after answering, as Starlette's error middleware does")

    with pytest.raises(RuntimeError):
        await call(make_edge(answers_then_fails, settings()))


def test_a_version_from_the_url_is_logged_as_a_number_or_null() -> None:
    """Access log lines and metrics of requests refused before their version was resolved: a
    log pipeline that types the field as a number takes every line."""
    assert [_version_number(v) for v in ("2", "02", "000000002")] == [2, 2, 2]
    assert [_version_number(v) for v in ("baseline", "", None, "²", "9" * 40)] == [None] * 5


class Client:
    """``receive`` of a client that sent ``body`` and may leave later: after the body, the next
    message waits until :meth:`leave` (or for ever), as an ASGI server's does."""

    def __init__(self, body: bytes = b"{}") -> None:
        self.body = body
        self.left = asyncio.Event()
        self.messages = 0

    async def receive(self) -> dict[str, Any]:
        self.messages += 1
        if self.messages == 1:
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.left.wait()
        return {"type": "http.disconnect"}

    def leave(self) -> None:
        self.left.set()


async def run_edge(edge: Edge, client: Client) -> tuple[list[dict[str, Any]], list[Any]]:
    """What the edge sent, and its access log lines."""
    logged: list[Any] = []
    edge.access_log = logged.append  # type: ignore[assignment]
    scope = {"type": "http", "method": "POST", "path": "/models/m/predict", "headers": []}
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await edge(scope, client.receive, send)
    return sent, logged


async def test_a_client_that_leaves_a_long_request_cancels_its_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(edge_module, "LISTEN_AFTER_S", 0.01)
    cancelled = asyncio.Event()

    async def long_work(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        scope["state"]["body_read"] = True
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    client = Client()
    asyncio.get_running_loop().call_later(0.1, client.leave)
    sent, logged = await run_edge(make_edge(long_work, settings()), client)
    assert cancelled.is_set() and sent == []  # nobody to answer
    assert [line["status"] for line in logged] == [499]
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_long_request_whose_client_stays_is_answered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(edge_module, "LISTEN_AFTER_S", 0.01)

    async def slow_body_then_work(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(0.05)  # listening starts only once the app has read the body
        assert (await receive())["body"] == b"{}"
        scope["state"]["body_read"] = True
        await asyncio.sleep(0.1)
        await ok(scope, receive, send)

    client = Client()
    sent, logged = await run_edge(make_edge(slow_body_then_work, settings()), client)
    assert sent[0]["status"] == 200 and [line["status"] for line in logged] == [200]
    assert client.messages == 2  # the body, then one message listened for
    await asyncio.sleep(0)
    assert not [t for t in asyncio.all_tasks() if t.get_coro().__name__ == "listen"]


async def test_a_quick_request_never_listens() -> None:
    async def quick(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        scope["state"]["body_read"] = True
        await asyncio.sleep(0.01)  # a quick request still yields to the loop
        await ok(scope, receive, send)

    client = Client()
    sent, _ = await run_edge(make_edge(quick, settings()), client)
    assert sent[0]["status"] == 200 and client.messages == 1  # the body only


@pytest.mark.parametrize("first", ["deadline", "client"])
async def test_a_deadline_and_a_client_leaving_together_cancel_once(
    first: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both would cancel the work; a second cancellation would escape the edge (a 500)."""
    monkeypatch.setattr(edge_module, "LISTEN_AFTER_S", 0.01)
    client = Client()

    async def work(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        scope["state"]["body_read"] = True
        try:
            await asyncio.sleep(30)
        finally:  # a clean-up that awaits (an upload's spooled file closed)
            await asyncio.sleep(0.3)

    # deadline 0.2 s; the client leaves before it (0.1 s) or during the clean-up (0.3 s)
    asyncio.get_running_loop().call_later(0.1 if first == "client" else 0.3, client.leave)
    sent, logged = await run_edge(make_edge(work, settings(request_timeout_s=0.2)), client)
    want = 499 if first == "client" else 504
    assert [line["status"] for line in logged] == [want]
    assert [m["status"] for m in sent if "status" in m] == ([] if want == 499 else [504])


async def test_a_request_leaves_no_reference_cycle() -> None:
    """Whatever a request touched is freed when it ends, not when the garbage collector next
    runs: a cycle through the request's closures holds its task, its body and its arrays, and
    collecting those costs every request CPU (the benchmarks measured 10-15 µs)."""
    edge = make_edge(ok, settings())
    await call(edge)  # first-use caches
    gc.collect()
    gc.disable()
    try:
        for _ in range(5):
            await call(edge)
        assert gc.collect() == 0
    finally:
        gc.enable()
