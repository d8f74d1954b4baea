"""Request deadline and body-size limit, as pure-ASGI middleware (cheap on the hot path).

**Deadline.** Every request except the lifecycle endpoints (``/v2/repository``, whose loads must
never be cut in half) runs under a deadline: ``settings.request_timeout_s``, or shorter when the
client asks with ``X-Request-Timeout`` (or ``Request-Timeout``) in seconds, e.g. ``2.5``. A header
cannot extend the server's limit; one that is not a number in (0, 300] gets 422 (as
``service.api.request_timeout`` answers). When the deadline passes before the response has
started, the work is cancelled (queued rows are then skipped by the batcher) and the client gets
504 ``{"error": ...}``.

**Body size.** A declared ``Content-Length`` above ``settings.max_body_bytes`` gets 413 before a
byte is read; a chunked body is counted while it streams and stops with 413 at the limit.
"""

from __future__ import annotations

import asyncio
import math
import re

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import PayloadTooLarge
from service.settings import Settings

TIMEOUT_HEADERS = (b"x-request-timeout", b"request-timeout")
MAX_TIMEOUT_S = 300.0  # the same bound as service.api.request_timeout
_EXEMPT_PREFIXES = ("/v2/repository",)
_SECONDS = re.compile(r"^\s*[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?\s*$")


class BadTimeout(ValueError):
    """A deadline header that is not a positive duration."""


def parse_timeout(text: str) -> float:
    """Seconds from ``"2.5"``; BadTimeout for anything else."""
    if len(text) > 32 or not _SECONDS.fullmatch(text):
        raise BadTimeout(text)
    value = float(text)
    if not math.isfinite(value) or not 0 < value <= MAX_TIMEOUT_S:
        raise BadTimeout(text)
    return value


def requested_timeout(headers: list[tuple[bytes, bytes]]) -> float | None:
    for key, value in headers:
        if key in TIMEOUT_HEADERS:
            return parse_timeout(value.decode("latin-1"))
    return None


async def send_error(send: Send, status: int, message: str) -> None:
    body = orjson.dumps({"error": message})
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if status == 413:
        headers.append((b"connection", b"close"))  # the unread body must not be parsed as a request
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class DeadlineMiddleware:
    """504 when a request outlives its deadline (settings, or shorter per request)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.limit = settings.request_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        try:
            asked = requested_timeout(scope["headers"])
        except BadTimeout:
            await send_error(
                send,
                422,
                "header X-Request-Timeout must be a number of seconds above 0 and at most "
                f"{MAX_TIMEOUT_S:g}",
            )
            return
        timeout = self.limit if asked is None else min(asked, self.limit)
        task = asyncio.current_task()
        assert task is not None
        started = fired = False

        def expire() -> None:
            nonlocal fired
            if not started:
                fired = True
                task.cancel()

        async def send_started(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True  # the answer is on its way: never cut it
            await send(message)

        loop = asyncio.get_running_loop()
        timer = loop.call_at(loop.time() + timeout, expire)
        try:
            await self.app(scope, receive, send_started)
        except asyncio.CancelledError:
            if not fired or task.uncancel() > 0:
                raise  # cancelled by someone else (the server shutting down, a disconnect)
            await send_error(
                send, 504, f"request did not finish within its deadline of {timeout:g} s"
            )
        else:
            if fired:  # the app swallowed the cancellation: undo it, answer if it did not
                task.uncancel()
                if not started:
                    await send_error(send, 504, f"request did not finish within {timeout:g} s")
        finally:
            timer.cancel()


class BodyLimitMiddleware:
    """413 for bodies above ``settings.max_body_bytes``, declared or streamed."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.limit = settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit
        declared = None
        for key, value in scope["headers"]:
            if key == b"content-length":
                declared = value
                break
        if declared is not None:
            if not declared.isdigit():
                await send_error(send, 400, "Content-Length must be a non-negative integer")
                return
            if int(declared) > limit:
                await send_error(
                    send, 413, f"request body of {int(declared)} bytes exceeds the limit of {limit}"
                )
                return
            await self.app(scope, receive, send)  # the server enforces the declared length
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
            return message

        await self.app(scope, counted, send)
