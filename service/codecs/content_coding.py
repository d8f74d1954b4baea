"""Request bodies sent compressed: ``Content-Encoding: gzip`` or ``deflate``, decoded within limits.

Clients compress large bodies to save bandwidth (``tritonclient``'s
``request_compression_algorithm``, ``curl --data-binary @x.json.gz``, a proxy). A compressed body
can expand a thousandfold, so the decoded bytes are bounded like a plain body's: at most
``max_body_bytes`` (413 past it, found while inflating, never after inflating it all) and held
in the bodies' budget like received bytes (503 when they do not fit). A coding that is not
supported is a 415 naming the ones that are (RFC 9110 section 8.4, RFC 7694); a body that does
not decode is a 400.

``deflate`` is the zlib format (RFC 9110 section 8.4.1.2), as ``tritonclient`` and curl send it;
a raw deflate stream, which some clients send under that name, is read too. A gzip body may hold
several members one after another (RFC 1952), as ``cat a.gz b.gz`` makes. The codings a header
lists are undone last first.

The inflater is the standard library's zlib: its time is bounded by the bytes it reads and
writes on any input. ISA-L, three times as fast on ordinary data, takes a millisecond per KB on
a stream of empty blocks (60 ms for 64 KB on the event loop; 20 s of CPU for a 32 MB body).
The input is fed in slices, so a decode in a worker thread stops soon after its request is
cancelled (``stop``) instead of running on, unaccounted, after the answer.
"""

from __future__ import annotations

import threading
import zlib
from typing import Any

from service.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, too_large_decoded

__all__ = ["ACCEPT_ENCODING", "SUPPORTED", "Stopped", "Unfinished", "codings_of", "decode"]

SUPPORTED = ("gzip", "deflate")
# the ``Accept-Encoding`` of a 415: the codings a request body may be sent in (RFC 9110 15.5.16)
ACCEPT_ENCODING = ", ".join(SUPPORTED)
_NAMES = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate", "identity": None}
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_CODINGS = 4  # more than this in one header is no client's doing
# gzip members in one body: a tool concatenating files makes a few; many thousands of empty
# ones would cost a Python step each
_MAX_MEMBERS = 64
# input fed to the inflater at a time: a few milliseconds at worst between two looks at ``stop``
_SLICE = 256 * 1024


class _Corrupt(BadRequest):
    """Data the inflater refused."""


class Unfinished(Exception):
    """The body decodes to more than the bytes it was allowed on this pass (``decode``'s
    ``cap``): decode it again where taking longer blocks nothing."""


class Stopped(Exception):
    """``decode``'s ``stop`` was set: nobody waits for the body any more."""


def codings_of(header: str) -> list[str]:
    """The content codings a ``Content-Encoding`` header lists, in the order they were applied
    (``identity`` dropped); UnsupportedMediaType (415) for one that is not supported."""
    codings: list[str] = []
    for part in header.split(","):
        name = part.strip().lower()
        if not name:
            continue  # empty list elements are ignored (RFC 9110 section 5.6.1)
        if name not in _NAMES:
            raise UnsupportedMediaType(
                f"Content-Encoding {part.strip()[:40]!r} is not supported: send the body as is, "
                f"or compressed with {' or '.join(SUPPORTED)}",
                headers={"Accept-Encoding": ACCEPT_ENCODING},
            )
        coding = _NAMES[name]
        if coding is not None:
            codings.append(coding)
    if len(codings) > _MAX_CODINGS:
        raise UnsupportedMediaType(
            f"Content-Encoding lists {len(codings)} codings; at most {_MAX_CODINGS} are undone",
            headers={"Accept-Encoding": ACCEPT_ENCODING},
        )
    return codings


def decode(
    body: bytes,
    codings: list[str],
    limit: int,
    cap: int | None = None,
    stop: threading.Event | None = None,
) -> bytes:
    """``body`` with ``codings`` undone, last first.

    PayloadTooLarge (413) as soon as a step would produce more than ``limit`` bytes; BadRequest
    (400) for data that does not decode; Unfinished when a step would produce more than ``cap``
    bytes (None: no cap); Stopped soon after ``stop`` is set.
    """
    for coding in reversed(codings):
        try:
            body = _undo(body, coding, limit, cap, stop, raw=False)
        except _Corrupt:
            if coding != "deflate" or not _zlib_header(body):
                raise
            # a raw deflate stream whose first two bytes happen to read as zlib's header
            body = _undo(body, coding, limit, cap, stop, raw=True)
    return body


def _undo(
    data: bytes,
    coding: str,
    limit: int,
    cap: int | None,
    stop: threading.Event | None,
    *,
    raw: bool,
) -> bytes:
    bound = limit if cap is None else min(limit, cap)
    view = memoryview(data)
    parts: list[bytes] = []
    size = 0
    member = 0
    at = 0  # where the member being inflated starts in ``data``
    while True:
        inflater = _start(data[at : at + 2], coding, member, raw=raw)
        fed = at
        while True:
            if stop is not None and stop.is_set():
                raise Stopped()
            piece = view[fed : fed + _SLICE]
            fed += len(piece)
            try:
                # one byte more than is allowed: getting it means the body is too large,
                # without inflating the rest of it
                out = inflater.decompress(piece, bound - size + 1)
            except zlib.error as exc:  # the data is corrupt
                raise _Corrupt(f"the request body is not valid {coding} data: {exc}") from None
            size += len(out)
            if size > bound:
                if bound < limit:
                    raise Unfinished()
                raise PayloadTooLarge(too_large_decoded(limit, coding))
            if out:
                parts.append(out)
            if inflater.eof or fed >= len(data):
                break
        if not inflater.eof:
            raise BadRequest(f"the request body's {coding} data ends before its end (truncated)")
        at = fed - len(inflater.unused_data)
        if at >= len(data):
            break
        if coding != "gzip" or not data.startswith(_GZIP_MAGIC, at):
            raise BadRequest(
                f"the request body has {len(data) - at:,} bytes after the end of its {coding} data"
            )
        member += 1
        if member == _MAX_MEMBERS:
            raise BadRequest(f"the request body holds more than {_MAX_MEMBERS} gzip members")
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _start(data: bytes, coding: str, member: int, *, raw: bool) -> Any:
    """An inflater for ``coding``: gzip's header; for deflate, zlib's when the data starts with
    one, else (or when ``raw``) a raw deflate stream."""
    if coding == "gzip":
        if not data.startswith(_GZIP_MAGIC):
            what = "" if member == 0 else f" (member {member + 1})"
            raise BadRequest(f"the request body is not gzip data{what}: it lacks gzip's header")
        return zlib.decompressobj(31)
    return zlib.decompressobj(-15 if raw or not _zlib_header(data) else 15)


def _zlib_header(data: bytes) -> bool:
    """Whether ``data`` starts as a zlib stream (RFC 1950): the deflate method, and the two
    bytes a multiple of 31."""
    return len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
