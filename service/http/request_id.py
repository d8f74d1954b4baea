"""Request ids: a client's own when it is sane, else a cheap process-unique one."""

from __future__ import annotations

import itertools
import os
import re

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


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The request's ``X-Request-ID`` when it is 1-128 of ``[A-Za-z0-9._:-]``, else a new id."""
    for key, value in headers:
        if key == b"x-request-id":
            text = value.decode("latin-1")
            return text if _REQUEST_ID.fullmatch(text) else new_request_id()
    return new_request_id()
