"""uvicorn's httptools protocol with a deadline on each request's head.

uvicorn times a connection out only while it idles after an answer (``timeout_keep_alive``, 5
s). A connection that never sends a request, or sends its request line and headers a few bytes
at a time, is held open for ever: each holds a file descriptor and a place among the
connections, and enough of them (a client that opens connections it never uses, a slowloris
attack) leave the server unable to accept anyone, its health probes included. Nothing above
this layer can see them: the app is called only once a head is complete.

Here a request's head (request line and headers) must be whole within ``head_timeout_s`` of
the connection opening, or of the first byte of a later request on it: the request deadline,
``SERVE_REQUEST_TIMEOUT_S`` (``python -m service`` sets it). Past it, a connection that sent
nothing is closed, as an idle keep-alive connection is; one whose head had begun is answered
408 and closed, as nginx answers a head that does not arrive. A head held up by the server
itself (a pipelined request waiting for the answer before it) is never cut.

A request answered before its body was read (a 401, a 503, a route that reads no body) leaves
the rest of the body to arrive after the answer, where neither the edge's deadline nor
uvicorn's keep-alive timeout (reset by every byte) sees it: that rest, too, must arrive within
the deadline of the answer, or the connection is closed (a body trickled a byte at a time held
it for ever).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeadDeadlineProtocol(HttpToolsProtocol):
    head_timeout_s = 10.0  # the request deadline's default; the server sets its own

    # One timer per connection, not one per request: a request only reads the clock when its
    # head begins, cheaper than arming and cancelling a timer on every request. The timer looks
    # at the connection and arms itself again for the nearest deadline; it never fires after a
    # deadline, as every deadline begins after the timer was last armed.

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._head_since: float | None = None  # the deadline of the head to come starts here
        self._head_begun = False  # its first byte has arrived
        self._tail_since: float | None = None  # a request was answered before its body ended

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_since = self.loop.time()
        self._timer = self.loop.call_later(self.head_timeout_s, self._check)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn stops its keep-alive timer at the first byte after an answer, whatever the byte:
        # one that begins no request (the blank line a client may send between requests) left
        # the connection with no timer at all. The next head's deadline starts with it instead.
        if (
            self.timeout_keep_alive_task is not None
            and self._head_since is None
            and self._tail_since is None
        ):
            self._head_since = self.loop.time()
        super().data_received(data)

    def on_message_begin(self) -> None:
        # the keep-alive timer armed when an answered request's body ended (below), if the next
        # request came in the same read: it would close the connection under that request
        self._unset_keepalive_if_required()
        super().on_message_begin()
        self._head_begun = True
        if self._head_since is None:  # a later request: the first one's began with the connection
            self._head_since = self.loop.time()

    def on_headers_complete(self) -> None:
        self._head_since = None
        self._head_begun = False
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        cycle = self.cycle
        if cycle is not None and cycle.response_complete and cycle.more_body:
            self._tail_since = self.loop.time()  # answered before its body ended

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self.cycle is not None and self.cycle.response_complete:
            self._tail_since = None  # the rest of an answered request's body arrived
            # Its bytes stopped the keep-alive timer armed with the answer: the connection is
            # idle now, and without the timer nothing would ever close it.
            if self.timeout_keep_alive_task is None and not self.transport.is_closing():
                self.timeout_keep_alive_task = self.loop.call_later(
                    self.timeout_keep_alive, self.timeout_keep_alive_handler
                )

    def _check(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        timeout = self.head_timeout_s
        wait = timeout
        if self.cycle is not None and not self.cycle.response_complete:
            # a request is being answered: a head behind it waits for it (pipelining pauses the
            # reading), which is the server's delay, not the client's
            if self._head_since is not None:
                self._head_since = now
        else:
            started = [t for t in (self._head_since, self._tail_since) if t is not None]
            if started:  # else idle between requests, where uvicorn's keep-alive timeout rules
                wait = min(started) + timeout - now
                if wait <= 0:
                    self._time_out(timeout)
                    return
        self._timer = self.loop.call_later(wait, self._check)

    def _time_out(self, timeout: float) -> None:
        if self._head_begun:
            body = orjson.dumps({"error": f"the request head did not arrive within {timeout:g} s"})
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
            )
        self.transport.close()
