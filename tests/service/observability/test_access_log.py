"""The access log, through what it writes: the sink ``configure_logging`` returns gets exactly the
line ``logging`` would write, the lines of one loop iteration in one write, and a broken stream
sends them through ``logging`` instead of failing the request."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import types
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from service.app import create_app
from service.observability import access_log as access_log_module
from service.observability.access_log import ACCESS_LOGGER, AccessLog
from service.observability.logs import REDACTED, LogSink, configure_logging
from tests.helpers.settings import make_settings

API_KEY = "k3y-very-secret-0123456789"
FIELDS: dict[str, Any] = {
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


class CountingStream(io.StringIO):
    """A stream that counts its ``write`` calls."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


class FlushFails(CountingStream):
    def flush(self) -> None:
        raise OSError("flush failed")


class Collect(logging.Handler):
    """Keeps the records that reach it (to see what went through ``logging``)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    raise_exceptions = logging.raiseExceptions
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.raiseExceptions = raise_exceptions


def sink_on(stream: io.StringIO, log_format: str = "json", **settings: Any) -> LogSink:
    return configure_logging(
        make_settings(Path("."), log_format=log_format, **settings), stream=stream
    )


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def seconds(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_a_line_is_what_logging_writes_through_the_same_handler(
    log_format: str, restore_logging: None
) -> None:
    stream = io.StringIO()
    sink = sink_on(stream, log_format, api_key=API_KEY)
    AccessLog(sink)(dict(FIELDS))  # no running loop: written at once
    logging.getLogger(ACCESS_LOGGER).info("request", extra=dict(FIELDS))
    direct, logged = stream.getvalue().splitlines(keepends=True)
    assert direct.endswith("\n") and API_KEY not in direct and REDACTED in direct
    if log_format == "json":
        d, lg = json.loads(direct), json.loads(logged)
        assert abs(seconds(d.pop("ts")) - seconds(lg.pop("ts"))) < 1.0
        assert list(d) == list(lg) and d == lg
    else:
        d_ts, d_rest = direct.split(" ", 1)
        l_ts, l_rest = logged.split(" ", 1)
        assert d_rest == l_rest
        assert abs(seconds(d_ts.removeprefix("ts=")) - seconds(l_ts.removeprefix("ts="))) < 1


@pytest.mark.parametrize(
    "now", [1_764_000_000.0, 1_764_000_000.999, 1_764_000_059.5004, 1_764_000_060.9999997]
)
def test_the_timestamp_is_the_formatters(
    now: float, restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    sink = sink_on(stream)
    monkeypatch.setattr(access_log_module, "time", types.SimpleNamespace(time=lambda: now))
    AccessLog(sink)({"request_id": "r"})
    record = logging.LogRecord(ACCESS_LOGGER, logging.INFO, __file__, 1, "request", (), None)
    record.created = now
    assert lines(stream)[0]["ts"] == json.loads(sink.formatter.format(record))["ts"]


def test_secrets_in_fields_are_redacted_in_every_line(restore_logging: None) -> None:
    stream = io.StringIO()
    access = AccessLog(sink_on(stream, api_key=API_KEY, admin_key="adm1n-secret-key"))
    long_path = "/models/mnist/" + "x" * 1000 + API_KEY
    for _ in range(2):  # the second time, any remembered redaction must be the same
        access({"path": f"/m/{API_KEY}", "note": "Authorization: Bearer abc.def"})
        access({"path": long_path, "who": "adm1n-secret-key", "nested": {"k": API_KEY}})
    text = stream.getvalue()
    assert API_KEY not in text and "adm1n-secret-key" not in text and "abc.def" not in text
    out = [{k: v for k, v in line.items() if k != "ts"} for line in lines(stream)]
    assert len(out) == 4 and out[0] == out[2] and out[1] == out[3]  # the time may differ
    assert out[0]["path"] == f"/m/{REDACTED}"
    assert out[1]["path"] == "/models/mnist/" + "x" * 1000 + REDACTED
    assert out[1]["who"] == REDACTED and out[1]["nested"] == {"k": REDACTED}


@pytest.mark.anyio
async def test_the_lines_of_one_loop_iteration_are_one_write(restore_logging: None) -> None:
    stream = CountingStream()
    access = AccessLog(sink_on(stream))
    for i in range(3):
        access({"request_id": f"r-{i}", "status": 200})
    assert stream.getvalue() == ""  # waiting for the end of this iteration
    await asyncio.sleep(0)  # the loop runs the flush scheduled by the first line
    assert [line["request_id"] for line in lines(stream)] == ["r-0", "r-1", "r-2"]
    assert stream.writes == 1
    access({"request_id": "r-3", "status": 200})  # the next iteration schedules a new flush
    await asyncio.sleep(0)
    assert lines(stream)[-1]["request_id"] == "r-3"
    assert stream.writes == 2


@pytest.mark.anyio
async def test_max_pending_lines_are_written_at_once(restore_logging: None) -> None:
    stream = CountingStream()
    access = AccessLog(sink_on(stream))
    for i in range(AccessLog.MAX_PENDING - 1):
        access({"request_id": f"r-{i}", "status": 200})
    assert stream.writes == 0
    access({"request_id": "last", "status": 200})
    assert len(lines(stream)) == AccessLog.MAX_PENDING  # no iteration passed
    assert stream.writes == 1
    await asyncio.sleep(0)  # the scheduled flush finds nothing: no empty write
    access.flush()
    assert stream.writes == 1


def test_lines_outside_a_loop_are_written_at_once(restore_logging: None) -> None:
    stream = CountingStream()
    AccessLog(sink_on(stream))({"request_id": "r-1", "status": 200})
    assert lines(stream)[0]["request_id"] == "r-1" and stream.writes == 1


def test_without_a_sink_lines_go_through_logging(restore_logging: None) -> None:
    logging.getLogger().setLevel(logging.INFO)
    collect = Collect()
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.addHandler(collect)
    try:
        AccessLog()({"request_id": "r-1", "status": 201})
    finally:
        logger.removeHandler(collect)
    (record,) = collect.records
    assert record.getMessage() == "request" and record.__dict__["status"] == 201


def test_a_closed_stream_falls_back_to_logging_without_raising(restore_logging: None) -> None:
    stream = io.StringIO()
    access = AccessLog(sink_on(stream))
    collect = Collect()
    logging.getLogger(ACCESS_LOGGER).addHandler(collect)
    stream.close()
    logging.raiseExceptions = False  # the structured handler reports its own failure
    try:
        access({"request_id": "r-1", "status": 200})  # the request goes on
    finally:
        logging.getLogger(ACCESS_LOGGER).removeHandler(collect)
    assert [r.__dict__["request_id"] for r in collect.records] == ["r-1"]


def test_a_failed_flush_after_the_write_repeats_no_line(restore_logging: None) -> None:
    stream = FlushFails()
    access = AccessLog(sink_on(stream))
    logging.raiseExceptions = False
    access({"request_id": "r-1", "status": 200})
    assert stream.getvalue().count('"r-1"') == 1


@pytest.mark.anyio
async def test_every_line_is_written_by_the_time_the_app_stops(
    tmp_path: Path, restore_logging: None
) -> None:
    stream = CountingStream()
    settings = make_settings(tmp_path)
    app = create_app(settings, configure_logging(settings, stream=stream))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/healthz", headers={"X-Request-ID": "last-one"})
            assert response.status_code == 200
    assert any(line.get("request_id") == "last-one" for line in lines(stream))
