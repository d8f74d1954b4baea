"""Replay of a payload log, offline: unreadable lines and failed requests are counted apart."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest

from service.client.replay import main, read_log, replay


def line(request_id: str, model: str, outputs: list[list[float]]) -> str:
    record = {"request_id": request_id, "model": model, "version": 1, "outputs": outputs}
    return json.dumps({**record, "inputs": [[0.0] * 8] * len(outputs)})


def answering(request: httpx.Request) -> httpx.Response:
    if "/pima/" in request.url.path:
        return httpx.Response(200, json={"predictions": [[0.25]]})
    return httpx.Response(503, json={"error": "model mnist version 1 is loading"})


LOG = [
    line("same", "pima", [[0.25]]),
    '{"request_id": "cut by a cra',
    "",
    line("other", "pima", [[0.75]]),
    "[1, 2]",
    line("failing", "mnist", [[0.1] * 10]),
]


def test_unreadable_lines_are_counted_and_the_rest_replayed() -> None:
    unreadable: list[int] = []
    with httpx.Client(transport=httpx.MockTransport(answering), base_url="http://s") as client:
        result = replay(read_log(LOG, unreadable), client, batch=1)
    assert unreadable == [2, 5]
    assert (result.sent, result.same, result.failed) == (2, 1, 1)
    assert [d["request_id"] for d in result.differ] == ["other"]  # failures are not differences
    assert [f["request_id"] for f in result.failures] == ["failing"]


def test_read_log_without_a_list_names_the_bad_line() -> None:
    with pytest.raises(ValueError, match="line 2"):
        list(read_log(LOG))


def test_the_command_reports_unreadable_lines_and_fails(tmp_path: Path) -> None:
    log = tmp_path / "cut.jsonl"
    log.write_text('{"request_id": "cut\n\n{"x": 1\n')
    out = io.StringIO()
    assert main([str(log), "--url", "http://127.0.0.1:9"], out=out) == 1  # nothing is sent
    text = out.getvalue()
    assert "sent 0," in text and "unreadable 2" in text and "unreadable lines: 1, 3" in text
