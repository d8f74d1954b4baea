"""The request edge: what every HTTP request goes through, in one pure-ASGI layer.

In order, for each request:

1. **request id**: a sane ``X-Request-ID`` is kept, anything else replaced by a new one; it is
   returned on the response and put in ``scope["state"]["request_id"]``;
2. **route**: the request is matched once against the route table (``routes``), which gives its
   kind and protocol;
3. **keys** (``security``): prediction and admin routes are checked, 401/403 before any body is
   read;
4. **body size** (``limits``): 400/413 for a bad or too large ``Content-Length``, 501 for a
   transfer coding other than chunked; a body without a length is counted while it streams;
   503 for a body that does not fit in what the server holds of all requests' bodies at once
   (``settings.body_bytes_in_flight``); a compressed body's decoded bytes, held by the body
   reader (``api.common``), are given back with them;
5. **deadline**: ``settings.request_timeout_s`` or a shorter ``X-Request-Timeout`` (422 when that
   header is not a duration; health probes ignore it); the work is cancelled and the client gets
   504 when it passes before the response has started, or 408 when it was still sending the body
   of a ``POST`` (the body reader marks ``scope["state"]["body_read"]``): the delay was the
   client's; admin routes have none;
   **a client that leaves**: a request still unanswered after ``LISTEN_AFTER_S`` whose body has
   been read starts listening for its client's disconnect; when it comes, the work is cancelled
   (rows still queued for the model are skipped) and the request is logged with status 499. A
   quick request never listens, so the hot path pays nothing for it;
6. **dispatch**: a ``HEAD`` goes where its ``GET`` would (answered without the body); a
   prediction ``POST`` goes straight to its endpoint (``fastpath``), everything else to
   FastAPI's own stack (router, exception handlers, server-error handler);
7. **afterwards**: one access log line and the request metrics, whatever happened. An exception
   nobody answered becomes a logged 500 ``{"error": "internal error"}``; a client gone before
   its body arrived is logged with status 499 and gets no answer.

The route table sees the route path: the URL path without the ``root_path`` the server was
started with (an ASGI server puts it into ``scope["path"]``).

It is one layer with one ``send`` wrapper and one coroutine per request because nested
middlewares, FastAPI's per-request telemetry check and its router cost more than parsing the
body and running the model.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.routing import RouteKind
from service.errors import BODIES_BUSY
from service.http import limits
from service.http.fastpath import FastPath, route_path
from service.http.request_id import request_id_of
from service.http.routes import RouteTable
from service.http.security import Auth
from service.observability.access_log import AccessLog
from service.observability.metrics import Metrics
from service.repository.disk import parse_version
from service.serving.deadline import EDGE_DEADLINE
from service.settings import Settings

log = logging.getLogger("service.edge")
# a request unanswered this long listens for its client leaving (an extra task: not for quick ones)
LISTEN_AFTER_S = 0.1
_ERROR_HEADERS = {
    401: [(b"www-authenticate", b'Bearer realm="digitserve"')],
    408: [(b"connection", b"close")],  # the rest of the body must not be parsed as a request
    413: [(b"connection", b"close")],  # the unread body must not be parsed as a request
    501: [(b"connection", b"close")],  # an unknown transfer coding: the body is left unread too
    # bodies in flight: refused before reading, so the connection closes as for a 413
    503: [(b"retry-after", b"1"), (b"connection", b"close")],
}


def _version_number(text: object) -> int | None:
    """A version as the log and the metrics give it: the number the registry reads in the path
    ("02" is 2), or None for what names no number (a label the request could not resolve; the
    path holds it)."""
    return parse_version(text) if isinstance(text, str) else None


async def send_error(send: Send, status: int, message: str) -> None:
    """``{"error": message}`` with ``status`` (and the headers that status needs)."""
    body = orjson.dumps({"error": message})
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    headers += _ERROR_HEADERS.get(status, [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Edge:
    """The outermost HTTP layer of the app (see the module doc).

    ``inner`` is the framework's stack; ``routes`` the route table; ``fast`` runs the prediction
    routes past ``inner``; ``app`` is put in ``scope["app"]`` for them, as Starlette does.
    """

    def __init__(
        self,
        inner: ASGIApp,
        settings: Settings,
        routes: RouteTable,
        access_log: AccessLog,
        *,
        metrics: Metrics | None = None,
        fast: FastPath | None = None,
        app: Any = None,
    ) -> None:
        self.inner = inner
        self.routes = routes
        self.metrics = metrics
        self.fast = fast
        self.app = app
        self.auth = Auth(settings)
        self.max_body = settings.max_body_bytes
        self.bodies = limits.BodyBudget(settings.body_bytes_in_flight)
        self.timeout = settings.request_timeout_s
        self.access_log = access_log

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

        path = route_path(scope)
        method = scope["method"]
        found = self.routes.match(method, path)
        if method == "HEAD" and found is not None and "HEAD" not in found[0].methods:
            as_get = self.routes.match("GET", path)
            if as_get is not None and "GET" in as_get[0].methods:
                # HEAD is GET without the body: the server, which keeps the request's own
                # scope, sends none
                found, scope = as_get, {**scope, "method": "GET"}
        kind = found[0].kind if found is not None else None
        protocol = found[0].protocol if found is not None else "other"
        stats = self.metrics.requests if self.metrics is not None else None
        if stats is not None:
            stats.in_flight += 1
        # The deadline is kept here rather than in a coroutine of its own: one coroutine and
        # one frame less on every request and every resumption. Its one timer first fires at
        # LISTEN_AFTER_S, to listen for the client leaving, then at the deadline.
        timer: asyncio.TimerHandle | None = None
        fired = False  # the deadline passed
        gone = False  # the client left
        task: asyncio.Task[Any] | None = None
        listener: asyncio.Task[None] | None = None
        deadline = 0.0
        held: limits.Held | None = None  # of the bodies' budget, given back at the end

        # expire() is handed itself to reschedule: naming itself would make it a cycle that
        # holds the task and all the request touched until the garbage collector runs (10-15
        # µs of CPU per request, measured); a cancelled timer lets go of its callback
        def expire(again: Callable[..., None]) -> None:
            nonlocal fired, timer, listener
            if answering or gone or task is None:  # cancelled once already: never twice
                return
            now = loop.time()
            if now >= deadline:
                fired = True
                task.cancel()
                return
            if listener is None and state.get("body_read"):
                # the app reads nothing more: the next message can only say the client left
                listener = loop.create_task(listen())
                timer = loop.call_at(deadline, again, again)
            else:  # the body is still arriving (the app is reading it): look again later
                timer = loop.call_at(min(deadline, now + LISTEN_AFTER_S), again, again)

        async def listen() -> None:
            nonlocal gone
            message = await receive()
            gave_up = message["type"] == "http.disconnect"
            if gave_up and not (answering or fired) and task is not None:  # never cancel twice
                gone = True
                task.cancel()

        try:
            length, too_long = limits.declared_length(scope["headers"], self.max_body)
            problem = self.auth.problem(scope, kind) or too_long
            if problem is not None:
                await send_error(send_with_id, *problem)
                return
            # Bytes are held as they arrive, not as declared: a client declaring a large body and
            # sending it slowly must not hold the budget every other request needs. A small
            # declared body is not counted: counting costs microseconds on every request, and
            # what small bodies hold is bounded by the connections
            if length is None or length > limits.UNCOUNTED_BYTES:
                if length and not self.bodies.fits(length):
                    await send_error(send_with_id, 503, BODIES_BUSY)
                    return
                held = limits.Held(self.bodies)
                state["body_held"] = held  # the body reader tells its own bytes from others'
                receive = limits.counted(receive, self.max_body, held)
            hot = None
            if found is not None and method == "POST" and self.fast is not None:
                hot = found[0].hot
                if hot is not None and self.app is not None:
                    scope["app"] = self.app
            if kind is RouteKind.ADMIN:
                timeout = None
            else:
                try:  # a probe's answer never depends on a header a proxy may add to everything
                    asked = (
                        None
                        if kind is RouteKind.HEALTH
                        else limits.requested_timeout(scope["headers"])
                    )
                except limits.BadTimeout as exc:
                    await send_error(send_with_id, 422, str(exc))
                    return
                timeout = self.timeout if asked is None else min(asked, self.timeout)
                # one look-up of the running loop: on CPython 3.11 each asks the OS for the
                # process id, to tell a forked child's copy of the loop from the parent's
                loop = asyncio.get_running_loop()
                task = asyncio.current_task(loop)
                now = loop.time()
                deadline = now + timeout
                timer = loop.call_at(min(deadline, now + LISTEN_AFTER_S), expire, expire)
            guarded = EDGE_DEADLINE.set(timer is not None)
            try:
                if hot is None:
                    await self.inner(scope, receive, send_with_id)
                else:
                    assert self.fast is not None and found is not None
                    params = found[1].groupdict()
                    await self.fast.dispatch(hot, params, scope, receive, send_with_id)
            except asyncio.CancelledError:
                if task is None or not (fired or gone) or task.uncancel() > 0:
                    raise  # cancelled by someone else (the server shutting down)
                if gone:
                    status = 499  # nobody to answer
                elif method == "POST" and not state.get("body_read"):  # the client's delay
                    message = f"the request body did not arrive within {timeout:g} s"
                    await send_error(send_with_id, 408, message)
                else:
                    message = f"request did not finish within its deadline of {timeout:g} s"
                    await send_error(send_with_id, 504, message)
            else:
                if (fired or gone) and task is not None:  # the app swallowed the cancellation
                    task.uncancel()
                    if gone and not answering:
                        status = 499
                    elif not answering:  # answer if it did not
                        await send_error(
                            send_with_id, 504, f"request did not finish within {timeout:g} s"
                        )
            finally:
                EDGE_DEADLINE.reset(guarded)
                if timer is not None:
                    timer.cancel()
                if listener is not None:
                    listener.cancel()
        except ClientDisconnect:
            status = 499  # the client went away before its body arrived: nobody to answer
        except Exception:
            if answering:  # FastAPI's own stack answered 500 already; the server logs it
                raise
            log.exception("unhandled error on %s %s", method, path)
            await send_error(send_with_id, 500, "internal error")
        finally:
            if held is not None:
                held.give_back()
            decoded = state.get("decoded_bytes")  # a compressed body's, held by the reader
            if decoded:
                self.bodies.held -= decoded
            if stats is not None:
                stats.in_flight -= 1
            seconds = time.perf_counter() - started
            self._finish(scope, method, protocol, state, status, seconds, request_id)

    def _finish(
        self,
        scope: Scope,
        method: str,
        protocol: str,
        state: Mapping[str, Any],
        status: int,
        seconds: float,
        request_id: str,
    ) -> None:
        route = getattr(scope.get("route"), "path_format", "")  # the template: no convertors
        model, version = state.get("model"), state.get("model_version")
        if model is None:  # failed before the model was resolved: use the (checked) URL
            params = scope.get("path_params") or {}
            model = params.get("name") or params.get("model_name")
            version = _version_number(params.get("version") or params.get("model_version"))
        if self.metrics is not None:
            self.metrics.observe_request(
                model=model,
                version=version,
                protocol=protocol,
                route=route,
                status=status,
                seconds=seconds,
            )
        self.access_log(
            {
                "request_id": request_id,
                "method": method,  # a HEAD is logged as such, though answered as its GET
                "path": scope["path"],
                "route": route,
                "protocol": protocol,
                "status": status,
                "latency_ms": round(seconds * 1000, 3),
                "model": model,
                "version": version,
            }
        )
