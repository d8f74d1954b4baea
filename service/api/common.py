"""Helpers shared by every adapter: the registry and settings, body reading, JSON answers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import orjson
from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from service.codecs import content_coding
from service.errors import (
    BODIES_BUSY,
    Overloaded,
    PayloadTooLarge,
    UnsupportedMediaType,
    too_large,
)

if TYPE_CHECKING:
    from service.serving.model import ModelVersion
    from service.serving.registry import ModelRegistry
    from service.serving.tasks import Task
    from service.settings import Settings


def get_registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    return registry


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


class Totals(NamedTuple):
    requests: int
    seconds: float


class RequestTimes(Protocol):
    """What the request edge measured of the requests a model version answered (the app's
    metrics): an adapter reads it without importing the layer above."""

    def request_totals_by_version(
        self, routes: Collection[str]
    ) -> dict[tuple[str, str], tuple[Totals, Totals]]:
        """Per (model, version number as text) that answered one, the requests on ``routes``
        (templates): those under 400, then the others, each with their time from arrival to
        the response's end."""
        ...


def get_request_times(request: Request) -> RequestTimes | None:
    times: RequestTimes | None = getattr(request.app.state, "metrics", None)
    return times


def task_of(mv: ModelVersion) -> Task:
    """The version's task; NotReady (503) while the version has none (not loaded)."""
    if mv.task is None:
        raise mv.not_ready()
    return mv.task


def header(request: Request, name: bytes) -> str | None:
    """The first value of the request header ``name`` (lower-case bytes), or None.

    A scan of the raw ASGI headers: ``request.headers`` builds a ``Headers`` object per request
    and decodes every key it compares, several times the cost on the prediction path.
    """
    for key, value in request.scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def content_type(request: Request) -> str:
    """The media type of the request, lower-cased, without parameters."""
    return (header(request, b"content-type") or "").split(";", 1)[0].strip().lower()


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing more than ``limit`` bytes (413) before and while reading it.

    Read straight from the ASGI ``receive`` (Starlette's ``request.stream()`` is an async
    generator with its own checks per chunk). The body is cached on the request, so
    ``request.form()`` can parse it afterwards. A body in a content coding (``gzip``,
    ``deflate``) is decoded within the same limit (``codecs.content_coding``); one in a coding
    the server does not know is refused with 415, as RFC 9110 asks, rather than parsed as if
    it were plain.
    """
    encoding = header(request, b"content-encoding")
    codings = None
    if encoding is not None:
        # the header sent twice is one list (RFC 9110 section 5.3): "gzip" then "gzip" is
        # "gzip, gzip", and "identity" then "gzip" a gzip body, never read as plain
        every = [v for k, v in request.scope["headers"] if k == b"content-encoding"]
        if len(every) > 1:
            encoding = b",".join(every).decode("latin-1")
        codings = content_coding.codings_of(encoding)
    declared = header(request, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(too_large(limit, int(declared)))
    cached: bytes | None = getattr(request, "_body", None)
    if cached is not None:
        return cached
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            request._is_disconnected = True
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(too_large(limit))
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    state = request.scope.get("state")
    if state is not None:
        state["body_read"] = True  # a deadline passing now is the server's (504), not a 408
    if codings:
        chunks.clear()  # not kept beside the joined body while it decodes
        body = await _decoded(request, body, codings, limit)
    request._body = body  # Starlette reads a cached body from here (form parsing)
    request._stream_consumed = True
    return body


# A compressed body of at most _SENT_ON_LOOP bytes that decodes to at most _DECODED_ON_LOOP is
# decoded on the event loop (well under a millisecond); any other in a worker thread, so that
# decoding a large body (or one of many empty blocks) holds up no other request
_SENT_ON_LOOP = 64 * 1024
_DECODED_ON_LOOP = 256 * 1024


async def _decoded(request: Request, body: bytes, codings: list[str], limit: int) -> bytes:
    """``body`` with its content codings undone, the decoded bytes held in the bodies' budget
    until the request ends, as received bytes are (503 when they do not fit).

    A body decoded in a thread first holds all the budget it may decode to (the limit, or what
    is left of the budget): bodies decoding at once never hold more than the budget between
    them, and a decoded body is never larger than what it holds.
    """
    bodies = getattr(request.app.state, "bodies", None)  # the edge's budget
    state = request.scope.setdefault("state", {})
    own = getattr(state.get("body_held"), "size", 0)  # of the budget, this body's sent bytes
    if len(body) <= _SENT_ON_LOOP:
        try:
            decoded = content_coding.decode(body, codings, limit, _DECODED_ON_LOOP)
        except content_coding.Unfinished:
            pass
        else:
            if bodies is not None:
                if not bodies.take(len(decoded)):
                    raise (
                        _never_fits(bodies.limit, codings)
                        if own + len(decoded) > bodies.limit
                        else Overloaded(BODIES_BUSY)
                    )
                state["decoded_bytes"] = len(decoded)  # the edge gives it back at the end
            return decoded
    room = limit
    alone = False  # no other body held any of the budget when this one reserved its room
    if bodies is not None:
        room = min(limit, bodies.limit - bodies.held)
        alone = bodies.held <= own
        if room <= 0 or not bodies.take(room):
            raise Overloaded(BODIES_BUSY)
        state["decoded_bytes"] = room
    cap = room if room < limit else None
    stop = threading.Event()
    work = asyncio.ensure_future(
        run_in_threadpool(content_coding.decode, body, codings, limit, cap, stop)
    )
    try:
        decoded = await asyncio.shield(work)
    except asyncio.CancelledError:
        # the deadline passed or the client left: the thread stops at its next slice of input.
        # Until it has, the body and what it decoded are still in memory, so the budget stays
        # held (and the thread's slot taken) till then, not given back while it runs on
        stop.set()
        await asyncio.wait([work])
        if not work.cancelled():
            work.exception()  # retrieved: Stopped, or what the decoding raised meanwhile
        raise
    except content_coding.Unfinished:
        if alone and bodies is not None:  # waiting frees nothing: it can never fit
            raise _never_fits(bodies.limit, codings) from None
        raise Overloaded(BODIES_BUSY) from None
    if bodies is not None:
        bodies.held -= room - len(decoded)
        state["decoded_bytes"] = len(decoded)
    return decoded


def _never_fits(budget: int, codings: list[str]) -> PayloadTooLarge:
    """413 for a compressed body that, with what it decompresses to, is more than the server
    holds of all bodies at once: a 503's "try again" would never come true."""
    return PayloadTooLarge(
        f"the request body and what it decompresses to ({', '.join(codings)}) are together more "
        f"than this server holds of all request bodies at once ({budget:,} bytes, "
        "SERVE_MAX_BODY_BYTES_IN_FLIGHT): send it uncompressed, or ask for a larger budget"
    )


def note_model(request: Request, name: str, version: int | None) -> None:
    """Record model and version for the per-request log line."""
    state = request.scope.setdefault("state", {})
    state["model"] = name
    state["model_version"] = version


class JSONBytesResponse(Response):
    """An encoded JSON body: the same two headers as ``Response(body, media_type=...)`` builds,
    without its header machinery (measurable on the single-prediction path)."""

    media_type = "application/json"

    def __init__(self, content: bytes, status_code: int = 200) -> None:
        self.status_code = status_code
        self.body = content
        self.background = None
        self.raw_headers = [
            (b"content-length", b"%d" % len(content)),
            (b"content-type", b"application/json"),
        ]


def json_response(
    payload: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """orjson-encoded response (numpy arrays and scalars allowed)."""
    if headers is None:
        return JSONBytesResponse(
            orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), status_code
        )
    return Response(
        orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )


_REFUSED_TYPES = ("multipart/", "image/", "audio/", "video/")


def check_tensor_content_type(request: Request, *, binary: bool) -> None:
    """For the tensor protocols (TF Serving, V2): JSON, or octet-stream where the protocol has
    ``binary`` tensor data (V2); also any other type (curl -d sends a form type), except
    multipart, image and other media bodies, which belong to the own API (415)."""
    ctype = content_type(request)
    if ctype.startswith(_REFUSED_TYPES):
        also = " (or application/octet-stream with binary tensor data)" if binary else ""
        raise UnsupportedMediaType(
            f"unsupported content type {ctype[:100]!r}: send application/json{also}; image "
            "files go to the own API, POST /models/{name}/predict"
        )
