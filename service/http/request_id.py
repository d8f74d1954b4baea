"""Request ids: a client's own when it is sane, else a new random one that nobody can guess.

A new id is 128 random bits as 32 hex digits, like ``uuid4().hex``; labels posted back for a
prediction are matched by it (``/feedback``), so the next one must not follow from the last one
a client saw. ``uuid.uuid4()`` reads the OS random source on every call, a system call that also
hands the GIL to the inference thread in the middle of a request; here one read serves
:data:`IDS_PER_READ` ids (few enough that the request which refills the list hardly waits),
and each request takes one from a list.
"""

from __future__ import annotations

import os
import re

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
IDS_PER_READ = 256


class _Ids:
    """Ids drawn from the OS random source, :data:`IDS_PER_READ` at a time."""

    def __init__(self) -> None:
        self.pool: list[str] = []

    def reset(self) -> None:
        self.pool = []

    def refill(self) -> None:
        text = os.urandom(16 * IDS_PER_READ).hex()
        self.pool = [text[i : i + 32] for i in range(0, len(text), 32)]


_IDS = _Ids()
# A forked process (uvicorn's workers) must not hand out the ids its parent drew.
os.register_at_fork(after_in_child=_IDS.reset)


def new_request_id() -> str:
    """A new id: 32 hex digits, random (see the module doc)."""
    pool = _IDS.pool
    if not pool:
        _IDS.refill()
        pool = _IDS.pool
    return pool.pop()


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The request's ``X-Request-ID`` when it is 1-128 of ``[A-Za-z0-9._:-]``, else a new id."""
    for key, value in headers:
        if key == b"x-request-id":
            text = value.decode("latin-1")
            return text if _REQUEST_ID.fullmatch(text) else new_request_id()
    return new_request_id()
