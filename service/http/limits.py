"""Request deadline and body-size limit: the checks ``service.http.edge`` runs on every request.

**Deadline.** Every request except the admin routes (the model lifecycle, whose loads must
never be cut in half) runs under a deadline: ``settings.request_timeout_s``, or shorter when the
client asks with ``X-Request-Timeout`` (or ``Request-Timeout``) in seconds, e.g. ``2.5``. A header
cannot extend the server's limit; one that is not a number in (0, 300] gets 422. When the deadline
passes before the response has started, the work is cancelled (queued rows are then skipped by the
batcher) and the client gets 504 ``{"error": ...}``.

**Body size.** A declared ``Content-Length`` above ``settings.max_body_bytes`` gets 413 before a
byte is read; a chunked body is counted while it streams and stops with 413 at the limit. A
transfer coding other than chunked (``gzip, chunked``) gets 501 before a byte is read.

**Bodies in flight.** Every body is held in memory while its request runs, so the limit per
body alone does not bound memory: 70 clients each sending 30 MB held 2 GB, a container's whole
limit. ``BodyBudget`` counts the bytes of every body received so far by requests still running
(``settings.body_bytes_in_flight``), as they arrive: a client that declares a large body and
sends it slowly holds only what it has sent. A request whose declared length does not fit in
what is left gets 503 with ``Retry-After`` before a byte is read; any body, at the chunk that
does not fit. A declared body of at most ``UNCOUNTED_BYTES`` is not counted (the count cost
microseconds on every request; what such bodies hold is bounded by the connections).
"""

from __future__ import annotations

import math
import re

from starlette.types import Message, Receive

from service.errors import BODIES_BUSY, Overloaded, PayloadTooLarge, too_large

TIMEOUT_HEADERS = (b"x-request-timeout", b"request-timeout")
MAX_TIMEOUT_S = 300.0
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
    """The deadline a client asks for; BadTimeout (its message names the header sent) for one
    that is not a duration."""
    for key, value in headers:
        if key in TIMEOUT_HEADERS:
            try:
                return parse_timeout(value.decode("latin-1"))
            except BadTimeout:
                raise BadTimeout(_bad_timeout(key.decode("latin-1"))) from None
    return None


def declared_length(
    headers: list[tuple[bytes, bytes]], limit: int
) -> tuple[int | None, tuple[int, str] | None]:
    """The ``Content-Length`` (None without one), and the problem with how the body is framed:
    400 for a malformed length, 413 for one above ``limit``, 501 for a transfer coding other
    than chunked, None when there is none.

    The server removes the chunked coding only: a body sent ``gzip, chunked`` would reach the
    app still compressed and be read as what it encodes, so it is refused before it is read
    (RFC 9112, section 6.1). The HTTP parser refuses a request carrying both headers, so the
    coding is looked for only when there is no length: a body with one costs nothing more."""
    for key, value in headers:
        if key == b"content-length":
            if not value.isdigit():
                return None, (400, "Content-Length must be a non-negative integer")
            length = int(value)
            return length, ((413, too_large(limit, length)) if length > limit else None)
    for key, value in headers:
        if key == b"transfer-encoding" and _codings(value) != [b"chunked"]:
            return None, (501, _unknown_coding(value))
    return None, None


def _codings(value: bytes) -> list[bytes]:
    """The transfer codings a header lists, lower-cased; empty list elements are ignored, as
    RFC 9110 (section 5.6.1) asks of a recipient."""
    return [part for part in (p.strip().lower() for p in value.split(b",")) if part]


def _unknown_coding(value: bytes) -> str:
    shown = value.decode("latin-1")[:64]
    return (
        f"Transfer-Encoding {shown!r} is not implemented, only chunked is: send the body "
        "chunked or with a Content-Length, compressed if at all with Content-Encoding: gzip"
    )


UNCOUNTED_BYTES = 64 * 1024  # a declared body up to this size is not counted in the budget


class BodyBudget:
    """Bytes of request bodies held at once, all requests together (event loop only)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def fits(self, size: int) -> bool:
        return self.held + size <= self.limit

    def take(self, size: int) -> bool:
        """Hold ``size`` more bytes; False, holding nothing, when they do not fit."""
        if self.held + size > self.limit:
            return False
        self.held += size
        return True


class Held:
    """What one request holds of a ``BodyBudget``: given back when the request ends."""

    __slots__ = ("budget", "size")

    def __init__(self, budget: BodyBudget) -> None:
        self.budget = budget
        self.size = 0

    def give_back(self) -> None:
        self.budget.held -= self.size
        self.size = 0


def counted(receive: Receive, limit: int, held: Held | None = None) -> Receive:
    """``receive`` counting the body: PayloadTooLarge (413) past ``limit`` (a body without a
    declared length; a declared one was checked against it), Overloaded (503) for a chunk that
    does not fit in ``held``'s budget."""
    seen = 0

    async def counting() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            size = len(message.get("body", b""))
            seen += size
            if seen > limit:
                raise PayloadTooLarge(too_large(limit))
            if held is not None:
                if not held.budget.take(size):
                    raise Overloaded(BODIES_BUSY)
                held.size += size
        return message

    return counting


def _bad_timeout(header: str) -> str:
    name = "-".join(part.capitalize() for part in header.split("-"))
    return f"header {name} must be a number of seconds above 0 and at most {MAX_TIMEOUT_S:g}"
