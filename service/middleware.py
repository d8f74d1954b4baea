"""Request ids and one log line per request (pure ASGI, cheap), plus logging set-up."""

from __future__ import annotations

import itertools
import logging
import os
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.logging_config import configure_logging
from service.metrics import Metrics, protocol_of

log = logging.getLogger("service.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_ID_STATE: dict[str, object] = {}


def new_request_id() -> str:
    """A process-unique request id: 32 hex digits, like ``uuid4().hex``.

    A random 64-bit prefix per process and a 64-bit counter. ``uuid.uuid4()`` reads the OS
    random source on every call, a system call that also hands the GIL to the inference
    thread in the middle of the request; this is one f-string.
    """
    if _ID_STATE.get("pid") != os.getpid():  # a new (forked) process gets its own prefix
        _ID_STATE.update(pid=os.getpid(), prefix=os.urandom(8).hex(), counter=itertools.count(1))
    counter: itertools.count[int] = _ID_STATE["counter"]  # type: ignore[assignment]
    return f"{_ID_STATE['prefix']}{next(counter):016x}"


class RequestIdMiddleware:
    """Honour a sane ``X-Request-ID`` or make one; return it; log method, path, status, latency."""

    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = ""
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                text = value.decode("latin-1")
                request_id = text if _REQUEST_ID.fullmatch(text) else ""
                break
        if not request_id:
            request_id = new_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        raw_id = request_id.encode()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", raw_id)]
            await send(message)

        metrics = self.metrics
        if metrics is not None:
            metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "")
            model, version = state.get("model"), state.get("model_version")
            if model is None:  # failed before the model was resolved: use the (checked) URL
                params = scope.get("path_params") or {}
                model = params.get("name") or params.get("model_name")
                version = params.get("version") or params.get("model_version")
            if metrics is not None:
                metrics.in_flight.dec()
                metrics.observe_request(
                    model=model,
                    version=version,
                    path=scope["path"],
                    route=route,
                    status=status,
                    seconds=seconds,
                )
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "request",
                    extra={
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "route": route,
                        "protocol": protocol_of(scope["path"]),
                        "status": status,
                        "latency_ms": round(seconds * 1000, 3),
                        "model": model,
                        "version": version,
                    },
                )


# Log formatting lives in service.logging_config; re-exported so existing imports keep working.
__all__ = ["RequestIdMiddleware", "configure_logging"]
