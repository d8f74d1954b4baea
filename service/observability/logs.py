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

import json
import logging
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from service.settings import Settings, split_keys

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
_QUIET = ("uvicorn.access",)  # the request edge writes the access line itself


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


class StructuredFormatter(logging.Formatter):
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


class JsonFormatter(StructuredFormatter):
    """One JSON object per line."""

    def render(self, fields: dict[str, Any]) -> str:
        try:  # orjson: several times faster than json.dumps on the per-request line
            return orjson.dumps(fields, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        except (TypeError, orjson.JSONEncodeError):  # e.g. an int beyond 64 bits
            return json.dumps(fields, default=str, ensure_ascii=False)


class KeyValueFormatter(StructuredFormatter):
    """``ts=... level=info logger=... msg="..." key=value`` per line (logfmt)."""

    def render(self, fields: dict[str, Any]) -> str:
        return " ".join(f"{k}={_logfmt(v)}" for k, v in fields.items())


def _logfmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    # a client's path or model name may hold terminal escapes, CR or a Unicode line break:
    # every character that is not printable is written escaped, never raw
    printable = text.isprintable()
    if text == "" or not printable or any(c in text for c in ' ="\\'):
        return json.dumps(text, ensure_ascii=not printable)
    return text


def secrets_of(settings: Settings) -> list[str]:
    """The key values that must never appear in a log line."""
    secrets = []
    for setting in (getattr(settings, "api_key", None), getattr(settings, "admin_key", None)):
        if setting is not None:  # each key, as a client may send any one of them
            secrets += [setting.get_secret_value(), *split_keys(setting)]
    return secrets


def make_formatter(settings: Settings) -> StructuredFormatter:
    redact = Redactor(secrets_of(settings))
    return JsonFormatter(redact) if settings.log_format == "json" else KeyValueFormatter(redact)


@dataclass(frozen=True)
class LogSink:
    """Where structured lines go, and how they are formatted: the handler ``configure_logging``
    installed. The access log writes its lines here directly (see ``access_log``)."""

    handler: logging.StreamHandler[TextIO]
    formatter: StructuredFormatter

    def write(self, text: str) -> None:
        """Write ``text`` (whole lines) in one call, under the handler's lock so that it never
        interleaves with a line ``logging`` writes from another thread. A failed flush after
        the write is ignored: the lines are out, and writing them again would repeat them."""
        with self.handler.lock:  # type: ignore[union-attr]
            self.handler.stream.write(text)
            # not contextlib.suppress (an object and two calls): this runs every loop iteration
            try:  # noqa: SIM105
                self.handler.flush()
            except Exception:
                pass


def configure_logging(settings: Settings, stream: TextIO | None = None) -> LogSink:
    """Route every logger (ours and uvicorn's) through one structured handler on stderr, and
    return it as the sink the access log writes to.

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
    formatter = make_formatter(settings)
    handler.setFormatter(formatter)
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
    return LogSink(handler, formatter)
