"""The request edge: what every HTTP request goes through, in one pure-ASGI layer.

In order, for each request:

1. **request id**: a sane ``X-Request-ID`` is kept, anything else replaced by a new one; it is
   returned on the response and put in ``scope["state"]["request_id"]``;
2. **keys** (``service.security.Auth``): 401/403 before any body is read;
3. **body size** (``service.limits``): 400/413 for a bad or too large ``Content-Length``; a body
   without one is counted while it streams;
4. **deadline**: ``settings.request_timeout_s`` or a shorter ``X-Request-Timeout`` (422 when that
   header is not a duration); the work is cancelled and the client gets 504 when it passes before
   the response has started; the lifecycle endpoints are exempt;
5. **dispatch**: a prediction ``POST`` goes straight to its endpoint (``service.fastpath``),
   everything else to FastAPI's own stack (router, exception handlers, server-error handler);
6. **afterwards**: one access log line (``service.logging_config.AccessLog``) and the request
   metrics (``service.metrics``), whatever happened. An exception nobody answered becomes a
   logged 500 ``{"error": "internal error"}``; a client gone before its body arrived is logged
   with status 499 and gets no answer.

Auth, the deadline exemption and the routes look at the route path: the URL path without the
``root_path`` the server was started with (an ASGI server puts it into ``scope["path"]``).

These used to be five nested middlewares. One layer does the same with one ``send`` wrapper and
one coroutine per request: the layers, FastAPI's per-request telemetry check and its router cost
more than parsing the body and running the model.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import limits
from service.fastpath import HotRoutes, route_path
from service.logging_config import AccessLog
from service.metrics import Metrics, protocol_of
from service.middleware import request_id_of
from service.security import Auth
from service.settings import Settings

log = logging.getLogger("service.edge")
_ERROR_HEADERS = {
    401: [(b"www-authenticate", b'Bearer realm="digitserve"')],
    413: [(b"connection", b"close")],  # the unread body must not be parsed as a request
}


async def send_error(send: Send, status: int, message: str) -> None:
    """``{"error": message}`` with ``status`` (and the headers that status needs)."""
    body = orjson.dumps({"error": message})
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    headers += _ERROR_HEADERS.get(status, [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Edge:
    """The outermost HTTP layer of the app (see the module doc).

    ``inner`` is the framework's stack; ``hot`` the prediction routes taken past it; ``app`` is
    put in ``scope["app"]`` for them, as Starlette does.
    """

    def __init__(
        self,
        inner: ASGIApp,
        settings: Settings,
        *,
        metrics: Metrics | None = None,
        hot: HotRoutes | None = None,
        app: Any = None,
        access_log: AccessLog | None = None,
    ) -> None:
        self.inner = inner
        self.metrics = metrics
        self.hot = hot
        self.app = app
        self.auth = Auth(settings)
        self.max_body = settings.max_body_bytes
        self.timeout = settings.request_timeout_s
        self.access_log = access_log or AccessLog()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope["headers"])
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state["request_id"] = request_id
        raw_id = request_id.encode()
        status = 500
        answering = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, answering
            if message["type"] == "http.response.start":
                status = message["status"]
                answering = True  # the answer is on its way: the deadline never cuts it now
                message["headers"] = [*message.get("headers", []), (b"x-request-id", raw_id)]
            await send(message)

        path = route_path(scope)  # what auth, the deadline exemption and the routes look at
        stats = self.metrics.requests if self.metrics is not None else None
        if stats is not None:
            stats.in_flight += 1
        # The deadline is kept here rather than in a coroutine of its own: one coroutine and
        # one frame less on every request and every resumption.
        timer: asyncio.TimerHandle | None = None
        fired = False
        task: asyncio.Task[Any] | None = None

        def expire() -> None:
            nonlocal fired
            if not answering and task is not None:
                fired = True
                task.cancel()

        try:
            problem = self.auth.problem(scope, path) or limits.body_problem(
                scope["headers"], self.max_body
            )
            if problem is not None:
                await send_error(send_with_id, *problem)
                return
            if not limits.has_length(scope["headers"]):
                receive = limits.counted(receive, self.max_body)
            hot = None
            if self.hot is not None and scope["method"] == "POST":
                hot = self.hot.match(scope, path)
                if hot is not None and self.app is not None:
                    scope["app"] = self.app
            if limits.deadline_exempt(path):
                timeout = None
            else:
                try:
                    asked = limits.requested_timeout(scope["headers"])
                except limits.BadTimeout:
                    await send_error(send_with_id, 422, limits.bad_timeout_message())
                    return
                timeout = self.timeout if asked is None else min(asked, self.timeout)
                task = asyncio.current_task()
                loop = asyncio.get_running_loop()
                timer = loop.call_at(loop.time() + timeout, expire)
            guarded = limits.EDGE_DEADLINE.set(timer is not None)
            try:
                if hot is None:
                    await self.inner(scope, receive, send_with_id)
                else:
                    assert self.hot is not None
                    await self.hot.dispatch(hot, scope, receive, send_with_id)
            except asyncio.CancelledError:
                if task is None or not fired or task.uncancel() > 0:
                    raise  # cancelled by someone else (the server shutting down, a disconnect)
                message = f"request did not finish within its deadline of {timeout:g} s"
                await send_error(send_with_id, 504, message)
            else:
                if fired and task is not None:  # the app swallowed the cancellation: undo it
                    task.uncancel()
                    if not answering:  # and answer if it did not
                        await send_error(
                            send_with_id, 504, f"request did not finish within {timeout:g} s"
                        )
            finally:
                limits.EDGE_DEADLINE.reset(guarded)
                if timer is not None:
                    timer.cancel()
        except ClientDisconnect:
            status = 499  # the client went away before its body arrived: nobody to answer
        except Exception:
            if answering:  # FastAPI's own stack answered 500 already; the server logs it
                raise
            log.exception("unhandled error on %s %s", scope["method"], path)
            await send_error(send_with_id, 500, "internal error")
        finally:
            if stats is not None:
                stats.in_flight -= 1
            self._finish(scope, path, state, status, time.perf_counter() - started, request_id)

    def _finish(
        self,
        scope: Scope,
        path: str,
        state: Mapping[str, Any],
        status: int,
        seconds: float,
        request_id: str,
    ) -> None:
        route = getattr(scope.get("route"), "path", "")
        model, version = state.get("model"), state.get("model_version")
        if model is None:  # failed before the model was resolved: use the (checked) URL
            params = scope.get("path_params") or {}
            model = params.get("name") or params.get("model_name")
            version = params.get("version") or params.get("model_version")
        if self.metrics is not None:
            self.metrics.observe_request(
                model=model,
                version=version,
                path=path,
                route=route,
                status=status,
                seconds=seconds,
            )
        self.access_log(
            {
                "request_id": request_id,
                "method": scope["method"],
                "path": scope["path"],
                "route": route,
                "protocol": protocol_of(path),
                "status": status,
                "latency_ms": round(seconds * 1000, 3),
                "model": model,
                "version": version,
            }
        )
