"""Structured logs: one line per record, as JSON or as ``key=value`` text, set from settings.

    configure_logging(settings)      # settings.log_format: json | text; settings.log_level

Fields passed with ``extra={...}`` become top-level keys, so the request log line reads
``{"ts": ..., "level": "info", "logger": "service.access", "msg": "request", "request_id": ...,
"model": "mnist", "version": "2", "status": 200, "latency_ms": 1.3, ...}``.

Secrets never reach the output: the configured API keys are replaced by ``***`` wherever they
appear, and so is any ``Bearer <token>`` or ``Authorization`` value, in the message and in every
field.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from service.settings import Settings

REDACTED = "***"
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+")
_AUTH_FIELD = re.compile(r"(?i)((?:authorization|api[_-]?key|x-api-key)\s*[=:]\s*)[^\s\"',;]+")
# attributes every LogRecord has; anything else was passed in ``extra``
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's ANSI-coloured copy of msg
}
_HANDLER_NAME = "service-structured"
_QUIET = ("uvicorn.access",)  # the request middleware writes the access line itself


class Redactor:
    """Replaces known secrets and bearer tokens in strings."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        lowered = text.lower()  # the regexes only run when their keyword is there (hot path)
        if "bearer" in lowered:
            text = _BEARER.sub(rf"\g<1>{REDACTED}", text)
        if "authorization" in lowered or "key" in lowered:
            text = _AUTH_FIELD.sub(rf"\g<1>{REDACTED}", text)
        return text

    def value(self, value: Any) -> Any:
        if value is None or type(value) in (int, float, bool):
            return value
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value


class _StructuredFormatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": self.redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in out:
                out[key] = self.redact.value(value)
        if record.exc_info:
            out["exc"] = self.redact(self.formatException(record.exc_info))
        if record.stack_info:
            out["stack"] = self.redact(self.formatStack(record.stack_info))
        return out

    def format(self, record: logging.LogRecord) -> str:
        return self.render(self.fields(record))

    def render(self, fields: dict[str, Any]) -> str:
        raise NotImplementedError


class JsonFormatter(_StructuredFormatter):
    """One JSON object per line."""

    def render(self, fields: dict[str, Any]) -> str:
        try:  # orjson: several times faster than json.dumps on the per-request line
            return orjson.dumps(fields, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        except (TypeError, orjson.JSONEncodeError):  # e.g. an int beyond 64 bits
            return json.dumps(fields, default=str, ensure_ascii=False)


class KeyValueFormatter(_StructuredFormatter):
    """``ts=... level=info logger=... msg="..." key=value`` per line (logfmt)."""

    def render(self, fields: dict[str, Any]) -> str:
        return " ".join(f"{k}={_logfmt(v)}" for k, v in fields.items())


class AccessLog:
    """The per-request access line, ``{"msg": "request", ...}`` from logger ``service.access``.

    When the structured handler is the only one the line would reach (a server process), the line
    is formatted and written directly: exactly the text ``log.info("request", extra=fields)``
    writes, without building a ``LogRecord`` and walking the logger hierarchy, which cost more
    than the rest of a prediction. Otherwise (other handlers or filters, e.g. under pytest) it
    goes through ``logging`` as usual.

    Inside an event loop a request only queues its time and fields (the direct path is checked
    once per loop iteration, by its first line). The lines of one iteration are formatted and
    written together, with one ``write`` and ``flush``, at the start of the next iteration
    (``call_soon``), or at once when :data:`MAX_PENDING` are waiting. A write system call per
    request cost more than formatting the line and let the inference thread take the GIL in the
    middle of each request. :meth:`flush` writes what is waiting (the app's lifespan calls it at
    shutdown).
    """

    MAX_PENDING = 256
    MAX_CLEAN = 4096  # redacted strings remembered (cleared when full: request ids churn it)
    MAX_CLEAN_LENGTH = 256  # longer strings are redacted every time

    def __init__(self, name: str = "service.access") -> None:
        self.logger = logging.getLogger(name)
        self._second = -1
        self._prefix = ""
        self._pending: list[tuple[float, dict[str, Any]]] = []
        self._clean: dict[str, str] = {}
        self._clean_for: Redactor | None = None

    def __call__(self, fields: dict[str, Any]) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        pending = self._pending
        if pending:  # this iteration's first line found the direct path open
            pending.append((time.time(), fields))
            if len(pending) < self.MAX_PENDING:
                return
        elif self._direct_handler() is None:
            self.logger.info("request", extra=fields)
            return
        else:
            pending.append((time.time(), fields))
            try:
                asyncio.get_running_loop().call_soon(self.flush)
                return
            except RuntimeError:  # no running loop: nothing would ever flush it later
                pass
        self.flush()

    def flush(self) -> None:
        """Write the waiting lines: formatted directly (one write, one flush), or via logging."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        handler = self._direct_handler()
        if handler is not None:
            written = False
            try:
                self._check_clean(handler)
                text = "".join([self._line(handler, now, fields) for now, fields in pending])
                with handler.lock:  # type: ignore[union-attr]
                    handler.stream.write(text)
                    written = True
                    handler.flush()
                return
            except Exception:  # a closed or broken stream: logging's own path reports it
                if written:  # only the flush failed: the lines are out, do not repeat them
                    return
        for _, fields in pending:  # other handlers, or a broken stream
            self.logger.info("request", extra=fields)

    def _check_clean(self, handler: logging.StreamHandler[Any]) -> None:
        """Forget the remembered redactions when the redactor changed (new settings) or when
        there are too many (once per flush)."""
        redact = handler.formatter.redact  # type: ignore[union-attr]
        if self._clean_for is not redact or len(self._clean) > self.MAX_CLEAN:
            self._clean.clear()
            self._clean_for = redact

    def _line(self, handler: logging.StreamHandler[Any], now: float, fields: dict[str, Any]) -> str:
        """The text ``logging`` would write for ``fields`` logged at ``now``."""
        formatter: _StructuredFormatter = handler.formatter  # type: ignore[assignment]
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
            else:  # int, float or None here, as a rule
                line[key] = redact.value(value)
        return formatter.render(line) + handler.terminator

    def _direct_handler(self) -> logging.StreamHandler[Any] | None:
        logger = self.logger
        if logger.handlers or logger.filters or not logger.propagate:
            return None
        parent = logger.parent
        while parent is not None and parent.parent is not None:  # up to, not including, root
            if parent.handlers or not parent.propagate:
                return None
            parent = parent.parent
        handlers = logging.getLogger().handlers
        if len(handlers) != 1:
            return None
        handler = handlers[0]
        if (
            handler.get_name() != _HANDLER_NAME
            or handler.filters
            or handler.level > logging.INFO
            or not isinstance(handler.formatter, _StructuredFormatter)
            or not isinstance(handler, logging.StreamHandler)
        ):
            return None
        return handler

    def _timestamp(self, now: float) -> str:
        """As ``fields`` writes ``ts``: ISO 8601, UTC, milliseconds (the date part cached)."""
        second = int(now)
        millis = round((now - second) * 1e6) // 1000  # as datetime: microseconds, then truncated
        if millis >= 1000:  # rounds up into the next second: let datetime carry it
            return datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
        if second != self._second:
            self._second = second
            self._prefix = datetime.fromtimestamp(second, UTC).isoformat()[:19]
        return f"{self._prefix}.{millis:03d}+00:00"


def _logfmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text == "" or any(c in text for c in ' ="\n\t\\'):
        return json.dumps(text, ensure_ascii=False)
    return text


def secrets_of(settings: Settings) -> list[str]:
    """The key values that must never appear in a log line."""
    keys = [getattr(settings, "api_key", None), getattr(settings, "admin_key", None)]
    return [k.get_secret_value() for k in keys if k is not None]


def make_formatter(settings: Settings) -> logging.Formatter:
    redact = Redactor(secrets_of(settings))
    return JsonFormatter(redact) if settings.log_format == "json" else KeyValueFormatter(redact)


def configure_logging(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """Route every logger (ours and uvicorn's) through one structured handler on stderr.

    Idempotent: a second call replaces the handler installed by the first.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    # No caller lookup, thread, process or task names per record: no formatter here prints them,
    # and they cost the per-request access line several microseconds (the logging HOWTO's
    # "Optimization" section lists these switches).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(make_formatter(settings))
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    for name in _QUIET:
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = False
    return handler
