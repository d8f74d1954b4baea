"""Structured logs: formatters, redaction, the level, and one access line per request of an app
whose access log writes to the sink ``configure_logging`` returned."""

from __future__ import annotations

import asyncio
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


def test_each_of_several_keys_is_redacted(restore_root: None) -> None:
    """A client sends one key of a list, never the whole setting."""
    settings = Settings(api_key=SecretStr(f"{API_KEY}, second-key-4242"), log_format="json")
    buf = io.StringIO()
    configure_logging(settings, stream=buf)
    logging.getLogger("service.test").warning("id %s then %s", API_KEY, "second-key-4242")
    text = buf.getvalue()
    assert API_KEY not in text and "second-key-4242" not in text and REDACTED in text


@pytest.fixture
async def logged_app(
    tiny_repo: Path, restore_root: None
) -> AsyncIterator[tuple[httpx.AsyncClient, io.StringIO]]:
    settings = make_settings(tiny_repo, api_key=API_KEY, admin_key=ADMIN_KEY, log_format="json")
    buf = io.StringIO()
    app = create_app(settings, configure_logging(settings, stream=buf))
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
    await asyncio.sleep(0)  # access lines are written at the loop's next iteration
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

    await asyncio.sleep(0)
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
    app = create_app(settings, configure_logging(settings, stream=buf))
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


@pytest.mark.parametrize(
    "value",
    ["/models/\x1b[2J\x1b[31mRED/predict", "/healthz\r", "x\x0b\x0cy", "a\x85b", "a\u2028b"],
)
def test_text_format_never_writes_a_control_character_raw(value: str) -> None:
    from service.observability.logs import _logfmt

    written = _logfmt(value)
    assert written.isprintable() and json.loads(written) == value  # escaped, and reads back
