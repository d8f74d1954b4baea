"""The per-request access line, ``{"msg": "request", ...}`` from logger ``service.access``.

With a sink (the structured handler ``configure_logging`` installed, handed over explicitly),
each line is formatted by the sink's own formatter and written by the access log itself: exactly
the text ``logging.getLogger("service.access").info("request", extra=fields)`` would write, without
building a ``LogRecord`` and walking the logger hierarchy, which cost more than the rest of a
prediction. Without a sink (an app built by a test, say) the line goes through ``logging``.

Inside an event loop a request only queues its time and fields. The lines of one loop iteration
are formatted and written together, with one ``write`` and ``flush``, at the start of the next
iteration (``call_soon``), or at once when :attr:`AccessLog.MAX_PENDING` are waiting: a write
system call per request cost more than formatting the line, and let the inference thread take the
GIL in the middle of each request. :meth:`AccessLog.flush` writes what is waiting (the app's
lifespan calls it at shutdown).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from service.observability.logs import LogSink

ACCESS_LOGGER = "service.access"
_PLAIN = (int, float, bool)  # the status, latency and version: never redacted


class AccessLog:
    MAX_PENDING = 256
    MAX_CLEAN = 4096  # redacted strings remembered (cleared when full: request ids churn it)
    MAX_CLEAN_LENGTH = 256  # longer strings are redacted every time

    def __init__(self, sink: LogSink | None = None, name: str = ACCESS_LOGGER) -> None:
        self.sink = sink
        self.logger = logging.getLogger(name)
        self._second = -1
        self._prefix = ""
        self._pending: list[tuple[float, dict[str, Any]]] = []
        self._clean: dict[str, str] = {}

    def __call__(self, fields: dict[str, Any]) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        if self.sink is None:
            self.logger.info("request", extra=fields)
            return
        pending = self._pending
        pending.append((time.time(), fields))
        if len(pending) >= self.MAX_PENDING:
            self.flush()
        elif len(pending) == 1:  # the iteration's first line: flush at the next one
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no running loop: nothing would ever flush it later
                self.flush()

    def flush(self) -> None:
        """Write the waiting lines to the sink in one write; through ``logging`` if that fails
        (a closed or broken stream: logging's own error handling then reports it)."""
        if not self._pending or self.sink is None:
            return
        pending, self._pending = self._pending, []
        try:
            if len(self._clean) > self.MAX_CLEAN:
                self._clean.clear()
            text = "".join([self._line(now, fields) for now, fields in pending])
        except Exception:  # a field the formatter cannot render: let logging deal with it
            text = None
        if text is not None:
            try:
                self.sink.write(text)
                return
            except Exception:
                pass
        for _, fields in pending:
            self.logger.info("request", extra=fields)

    def _line(self, now: float, fields: dict[str, Any]) -> str:
        """The text ``logging`` would write for ``fields`` logged at ``now``."""
        assert self.sink is not None
        formatter = self.sink.formatter
        redact, clean = formatter.redact, self._clean
        line: dict[str, Any] = {
            "ts": self._timestamp(now),
            "level": "info",
            "logger": self.logger.name,
            "msg": "request",
        }
        for key, value in fields.items():
            if key in line:
                continue
            if type(value) is str:  # most repeat from request to request: method, path, model
                text = clean.get(value)
                if text is None:
                    text = redact(value)
                    if len(value) <= self.MAX_CLEAN_LENGTH:  # a long URL is not kept
                        clean[value] = text
                line[key] = text
            elif value is None or type(value) in _PLAIN:  # what redact.value leaves as it is
                line[key] = value
            else:
                line[key] = redact.value(value)
        return formatter.render(line) + self.sink.handler.terminator

    def _timestamp(self, now: float) -> str:
        """As the formatter writes ``ts``: ISO 8601, UTC, milliseconds (the date part cached)."""
        second = int(now)
        millis = round((now - second) * 1e6) // 1000  # as datetime: microseconds, then truncated
        if millis >= 1000:  # rounds up into the next second: let datetime carry it
            return datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
        if second != self._second:
            self._second = second
            self._prefix = datetime.fromtimestamp(second, UTC).isoformat()[:19]
        return f"{self._prefix}.{millis:03d}+00:00"
