"""Structured logs: one line per request with id, model, version, status and latency; no keys."""

from __future__ import annotations

import io
import json
import logging
import shlex
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from asgi_lifespan import LifespanManager
from pydantic import SecretStr

from service.app import create_app
from service.observability.logs import (
    REDACTED,
    AccessLog,
    JsonFormatter,
    KeyValueFormatter,
    Redactor,
    configure_logging,
)
from service.settings import Settings
from tests.helpers.settings import make_settings

API_KEY = "k3y-very-secret-0123456789"
ADMIN_KEY = "adm1n-very-secret-9876543210"


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _record(msg: str, *args: Any, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("service.test", logging.INFO, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_json_formatter_puts_extra_fields_at_top_level() -> None:
    line = JsonFormatter(Redactor()).format(_record("hello %s", "you", request_id="r1", status=200))
    out = json.loads(line)
    assert out["msg"] == "hello you" and out["level"] == "info" and out["logger"] == "service.test"
    assert out["request_id"] == "r1" and out["status"] == 200
    assert out["ts"].endswith("+00:00")


def test_key_value_formatter_quotes_when_needed() -> None:
    line = KeyValueFormatter(Redactor()).format(
        _record("two words", path="/models/mnist/predict", latency_ms=1.5, model=None, note='a "b"')
    )
    fields = dict(part.split("=", 1) for part in shlex.split(line))
    assert fields["msg"] == "two words"
    assert fields["path"] == "/models/mnist/predict" and fields["latency_ms"] == "1.5"
    assert fields["model"] == "" and fields["note"] == 'a "b"'
    assert "\n" not in line


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {API_KEY}",
        f"authorization=Bearer {API_KEY}",
        f"headers {{'authorization': 'Bearer {API_KEY}'}}",
        f"api_key={API_KEY}",
        f"the key is {API_KEY} and the admin key is {ADMIN_KEY}",
        "bearer some-other-token-never-configured",
    ],
)
def test_redactor_removes_keys_and_bearer_tokens(text: str) -> None:
    redact = Redactor([API_KEY, ADMIN_KEY])
    cleaned = redact(text)
    assert API_KEY not in cleaned and ADMIN_KEY not in cleaned
    assert "some-other-token" not in cleaned
    assert REDACTED in cleaned


def test_redaction_covers_fields_and_tracebacks(restore_root: None) -> None:
    settings = Settings(
        api_key=SecretStr(API_KEY), admin_key=SecretStr(ADMIN_KEY), log_format="json"
    )
    buf = io.StringIO()
    configure_logging(settings, stream=buf)
    log = logging.getLogger("service.test")
    log.warning("header was %s", f"Bearer {API_KEY}", extra={"headers": {"authorization": API_KEY}})
    try:
        raise ValueError(f"bad key {ADMIN_KEY}")
    except ValueError:
        log.exception("failed")
    text = buf.getvalue()
    assert API_KEY not in text and ADMIN_KEY not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["headers"] == {"authorization": REDACTED}
    assert "ValueError" in lines[1]["exc"]


@pytest.fixture
async def logged_app(
    tiny_repo: Path, restore_root: None
) -> AsyncIterator[tuple[httpx.AsyncClient, io.StringIO]]:
    settings = make_settings(tiny_repo, api_key=API_KEY, admin_key=ADMIN_KEY, log_format="json")
    buf = io.StringIO()
    configure_logging(settings, stream=buf)
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=headers
        ) as http:
            yield http, buf


def _access_lines(buf: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    return [line for line in lines if line.get("logger") == "service.access"]


@pytest.mark.anyio
async def test_one_line_per_request_with_id_model_version_status_latency(
    logged_app: tuple[httpx.AsyncClient, io.StringIO],
) -> None:
    client, buf = logged_app
    image = np.zeros((28, 28)).tolist()
    start = len(_access_lines(buf))
    ok = await client.post(
        "/models/mnist/predict", json={"instances": [image]}, headers={"X-Request-ID": "trace-42.a"}
    )
    assert ok.status_code == 200
    assert ok.headers["x-request-id"] == "trace-42.a"
    v1 = await client.post("/models/mnist/versions/1/predict", json={"instances": [image]})
    generated = v1.headers["x-request-id"]
    assert len(generated) >= 16
    bad_id = await client.get("/models", headers={"X-Request-ID": "no spaces <or> quotes" * 10})
    replaced = bad_id.headers["x-request-id"]
    assert replaced != "no spaces" and " " not in replaced
    missing = await client.post("/models/nope/predict", json={"instances": [image]})
    assert missing.status_code == 404

    lines = _access_lines(buf)[start:]
    assert len(lines) == 4  # exactly one line per request
    first, second, third, fourth = lines
    assert first["request_id"] == "trace-42.a"
    assert (first["model"], first["version"], first["status"]) == ("mnist", 2, 200)
    assert first["method"] == "POST" and first["path"] == "/models/mnist/predict"
    assert isinstance(first["latency_ms"], float) and first["latency_ms"] > 0
    assert (second["request_id"], second["version"]) == (generated, 1)
    assert third["request_id"] == replaced and third["status"] == 200
    assert fourth["status"] == 404 and fourth["request_id"] == missing.headers["x-request-id"]
    assert API_KEY not in buf.getvalue() and ADMIN_KEY not in buf.getvalue()


@pytest.mark.anyio
async def test_text_format_is_key_value(tiny_repo: Path, restore_root: None) -> None:
    settings = make_settings(tiny_repo, log_format="text", log_level="info")
    buf = io.StringIO()
    configure_logging(settings, stream=buf)
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            r = await http.post(
                "/models/pima/predict", json={"instances": [[6, 148, 72, 35, 0, 33.6, 0.627, 50]]}
            )
            assert r.status_code == 200
    access = [line for line in buf.getvalue().splitlines() if "logger=service.access" in line]
    assert len(access) == 1
    fields = dict(part.split("=", 1) for part in shlex.split(access[0]))
    assert fields["model"] == "pima" and fields["version"] == "1" and fields["status"] == "200"
    assert fields["request_id"] == r.headers["x-request-id"]
    assert float(fields["latency_ms"]) > 0


def test_log_level_from_settings(restore_root: None) -> None:
    buf = io.StringIO()
    configure_logging(Settings(log_level="warning", log_format="json"), stream=buf)
    logging.getLogger("service.test").info("hidden")
    logging.getLogger("service.test").warning("shown")
    assert [json.loads(line)["msg"] for line in buf.getvalue().splitlines()] == ["shown"]


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_access_line_written_directly_is_what_logging_writes(
    log_format: str, restore_root: None
) -> None:
    """AccessLog's direct path (a server process) and the logging path write the same line."""
    settings = make_settings(Path("."), api_key=API_KEY, log_format=log_format)
    fields: dict[str, Any] = {
        "request_id": "r-1",
        "method": "POST",
        "path": f"/models/Bearer {API_KEY}/predict",  # secrets are redacted on both paths
        "route": "/models/{name}/predict",
        "protocol": "own",
        "status": 200,
        "latency_ms": 0.417,
        "model": "mnist",
        "version": 2,
        "nothing": None,
    }
    lines = []
    for direct in (True, False):
        buf = io.StringIO()
        configure_logging(settings, stream=buf)
        root = logging.getLogger()
        if not direct:  # a second handler (as pytest's own) sends the line through logging
            root.addHandler(logging.NullHandler())
        else:  # only ours: pytest's capture handlers are taken off for this call
            root.handlers[:] = [h for h in root.handlers if h.get_name() == "service-structured"]
        access = AccessLog()
        assert (access._direct_handler() is not None) is direct
        access(fields)
        lines.append(buf.getvalue())
    direct_line, logged_line = lines
    assert direct_line.endswith("\n") and direct_line.count("\n") == 1
    assert API_KEY not in direct_line and REDACTED in direct_line
    if log_format == "json":
        d, lg = json.loads(direct_line), json.loads(logged_line)
        assert abs(_seconds(d.pop("ts")) - _seconds(lg.pop("ts"))) < 1.0
        assert list(d) == list(lg) and d == lg
    else:
        d_ts, d_rest = direct_line.split(" ", 1)
        l_ts, l_rest = logged_line.split(" ", 1)
        assert d_rest == l_rest
        assert abs(_seconds(d_ts.removeprefix("ts=")) - _seconds(l_ts.removeprefix("ts="))) < 1


def _seconds(ts: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(ts).timestamp()


def test_access_timestamp_matches_the_formatter() -> None:
    access = AccessLog()
    formatter = JsonFormatter(Redactor())
    for now in (1_764_000_000.0, 1_764_000_000.999, 1_764_000_059.5004, 1_764_000_060.9999997):
        record = _record("x")
        record.created = now
        assert access._timestamp(now) == json.loads(formatter.format(record))["ts"]


def test_access_line_to_a_closed_stream_does_not_raise(restore_root: None) -> None:
    stream = io.StringIO()
    configure_logging(make_settings(Path("."), log_format="json"), stream=stream)
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if h.get_name() == "service-structured"]
    stream.close()
    raise_exceptions, logging.raiseExceptions = logging.raiseExceptions, False
    try:
        AccessLog()({"request_id": "r", "status": 200})  # logging reports it; the request goes on
    finally:
        logging.raiseExceptions = raise_exceptions


class _CountingStream(io.StringIO):
    """A stream that counts its ``write`` calls (one per flush of the access lines)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def _direct_access_log(
    restore: None, log_format: str = "json"
) -> tuple[AccessLog, _CountingStream]:
    stream = _CountingStream()
    configure_logging(make_settings(Path("."), log_format=log_format), stream=stream)
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if h.get_name() == "service-structured"]
    access = AccessLog()
    assert access._direct_handler() is not None
    return access, stream


@pytest.mark.anyio
async def test_access_lines_of_one_loop_iteration_are_written_together(
    restore_root: None,
) -> None:
    import asyncio

    access, stream = _direct_access_log(restore_root)
    for i in range(3):
        access({"request_id": f"r-{i}", "status": 200})
    assert stream.getvalue() == ""  # waiting for the end of this iteration
    await asyncio.sleep(0)  # the loop runs the flush scheduled by the first line
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["request_id"] for line in lines] == ["r-0", "r-1", "r-2"]
    assert stream.writes == 1
    access({"request_id": "r-3", "status": 200})  # the next iteration schedules a new flush
    await asyncio.sleep(0)
    assert json.loads(stream.getvalue().splitlines()[-1])["request_id"] == "r-3"
    assert stream.writes == 2


@pytest.mark.anyio
async def test_access_lines_are_written_at_once_when_many_wait(restore_root: None) -> None:
    access, stream = _direct_access_log(restore_root)
    for i in range(AccessLog.MAX_PENDING):
        access({"request_id": f"r-{i}", "status": 200})
    assert len(stream.getvalue().splitlines()) == AccessLog.MAX_PENDING  # no iteration passed
    assert stream.writes == 1
    access.flush()  # nothing left: no empty write
    assert stream.writes == 1


def test_access_lines_outside_a_loop_are_written_at_once(restore_root: None) -> None:
    access, stream = _direct_access_log(restore_root)
    access({"request_id": "r-1", "status": 200})
    assert json.loads(stream.getvalue())["request_id"] == "r-1"


@pytest.mark.anyio
async def test_waiting_access_lines_go_through_logging_when_reconfigured(
    restore_root: None,
) -> None:
    """A handler added before the flush: the lines are not lost, they take the logging path."""
    access, stream = _direct_access_log(restore_root)
    access({"request_id": "r-1", "status": 200})
    other = io.StringIO()
    extra = logging.StreamHandler(other)
    logging.getLogger().addHandler(extra)
    access.flush()
    assert json.loads(stream.getvalue())["request_id"] == "r-1"  # through the structured handler
    assert "request" in other.getvalue()  # and the new one


@pytest.mark.anyio
async def test_every_access_line_is_written_by_the_time_the_app_stops(
    tmp_path: Path, restore_root: None
) -> None:
    stream = _CountingStream()
    settings = make_settings(tmp_path)
    configure_logging(settings, stream=stream)
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if h.get_name() == "service-structured"]
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/healthz", headers={"X-Request-ID": "last-one"})
            assert response.status_code == 200
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert any(line.get("request_id") == "last-one" for line in lines)


def test_long_strings_are_redacted_every_time_not_remembered(restore_root: None) -> None:
    access, stream = _direct_access_log(restore_root)
    long_path = "/models/mnist/" + "x" * 1000
    access({"request_id": "r-1", "path": long_path, "method": "POST"})
    assert json.loads(stream.getvalue())["path"] == long_path
    assert long_path not in access._clean and "POST" in access._clean


class _FlushFails(_CountingStream):
    def flush(self) -> None:
        raise OSError("flush failed")


def test_a_failed_flush_after_the_write_repeats_no_line(restore_root: None) -> None:
    stream = _FlushFails()
    configure_logging(make_settings(Path("."), log_format="json"), stream=stream)
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if h.get_name() == "service-structured"]
    access = AccessLog()
    raise_exceptions, logging.raiseExceptions = logging.raiseExceptions, False
    try:
        access({"request_id": "r-1", "status": 200})
    finally:
        logging.raiseExceptions = raise_exceptions
    assert stream.writes == 1 and stream.getvalue().count('"r-1"') == 1
