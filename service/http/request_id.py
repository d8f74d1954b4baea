"""Request ids: a client's own when it is sane, else a cheap process-unique one."""

from __future__ import annotations

import itertools
import os
import re

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class _Ids:
    """A random 64-bit prefix per process and a 64-bit counter."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count(1)


_IDS = _Ids()
# A forked process (uvicorn's workers) draws its own prefix once, in the child, instead of every
# request asking the OS for its process id.
os.register_at_fork(after_in_child=_IDS.reset)


def new_request_id() -> str:
    """A process-unique request id: 32 hex digits, like ``uuid4().hex``.

    ``uuid.uuid4()`` reads the OS random source on every call, a system call that also hands the
    GIL to the inference thread in the middle of the request; this is one f-string.
    """
    return f"{_IDS.prefix}{next(_IDS.counter):016x}"


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The request's ``X-Request-ID`` when it is 1-128 of ``[A-Za-z0-9._:-]``, else a new id."""
    for key, value in headers:
        if key == b"x-request-id":
            text = value.decode("latin-1")
            return text if _REQUEST_ID.fullmatch(text) else new_request_id()
    return new_request_id()
