"""Replay of a payload log, offline: unreadable lines and failed requests are counted apart."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path

import httpx
import pytest

from service.client.replay import lines_at_start, main, read_log, replay


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


def test_a_label_is_replayed_by_its_route_and_a_failure_keeps_the_servers_message() -> None:
    paths: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if "/labels/" in request.url.path:
            return httpx.Response(200, json={"predictions": [[0.25]]})
        return httpx.Response(404, json={"error": "model pima has no version 7"})

    with httpx.Client(transport=httpx.MockTransport(answer), base_url="http://s") as client:
        result = replay(read_log([line("a", "pima", [[0.25]])]), client, version="baseline")
        assert result.same == 1 and paths == ["/v1/models/pima/labels/baseline:predict"]
        result = replay(read_log([line("a", "pima", [[0.25]])]), client, version="7")
    assert paths[-1] == "/v1/models/pima/versions/7:predict"
    assert result.failures[0]["error"] == "404 Not Found: model pima has no version 7"


def test_bad_usage_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(line("a", "pima", [[0.25]]) + "\n")
    for argv in ([str(log), "--timeout", "0"], [str(log), "--batch", "0"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
    assert main([str(tmp_path)]) == 2
    assert "a folder, not a file" in capsys.readouterr().err


def test_only_the_lines_the_log_held_at_the_start_are_replayed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that logs to the file being replayed appends a line per request: those new
    lines are not replayed (they would be, again and again, while the log grows)."""
    log = tmp_path / "payloads.jsonl"
    log.write_text("".join(line(f"r{i}", "pima", [[0.25]]) + "\n" for i in range(3)))

    def logging_server(request: httpx.Request) -> httpx.Response:
        with log.open("a") as fh:  # as the server's payload log does
            fh.write(line("replayed", "pima", [[0.25]]) + "\n")
        return httpx.Response(200, json={"predictions": [[0.25]]})

    real = httpx.Client
    transport = httpx.MockTransport(logging_server)
    monkeypatch.setattr(httpx, "Client", lambda **kw: real(transport=transport, **kw))
    out = io.StringIO()
    assert main([str(log), "--batch", "1"], out=out) == 0
    assert out.getvalue().startswith("sent 3, same 3,")
    assert len(log.read_text().splitlines()) == 6


def test_lines_at_start_keeps_a_line_cut_at_the_start_as_it_stands() -> None:
    data = b'{"a": 1}\n{"b": 2}\n{"c"'
    assert list(lines_at_start(io.BytesIO(data + b": 3}\n"), len(data))) == [
        '{"a": 1}\n',
        '{"b": 2}\n',
        '{"c"',
    ]


def test_a_url_without_a_scheme_is_refused_up_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(line("a", "pima", [[0.25]]) + "\n")
    with pytest.raises(SystemExit) as info:
        main([str(log), "--url", "localhost:18203"])
    assert info.value.code == 2
    assert (
        "not a server URL: 'localhost:18203' (expected http://HOST:PORT" in capsys.readouterr().err
    )


def test_a_server_that_is_down_stops_the_replay_with_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text("".join(line(f"r{i}", "pima", [[0.25]]) + "\n" for i in range(50)))
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = io.StringIO()
    assert main([str(log), "--batch", "1", "--url", f"http://127.0.0.1:{port}"], out=out) == 1
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1 and f"cannot connect to the server at http://127.0.0.1:{port}" in err
    )
    assert "Stopped at the first request that could not connect" in err
    text = out.getvalue()
    assert "sent 0," in text and "failed 1," in text and "Connection refused" not in text


def test_merged_requests_stay_within_the_batch_and_a_refusal_falls_back_to_single_lines() -> None:
    """A server whose instance limit is below --batch, and a bad line among good ones: every
    good line is still replayed, and only the bad one fails, with the server's message."""
    sizes: list[int] = []

    def limited(request: httpx.Request) -> httpx.Response:
        instances = json.loads(request.content)["instances"]
        sizes.append(len(instances))
        if len(instances) > 3:
            return httpx.Response(422, json={"error": "too many instances: at most 3"})
        if any(row[0] < 0 for row in instances):
            return httpx.Response(422, json={"error": "instances[0]: negative"})
        return httpx.Response(200, json={"predictions": [[0.25]] * len(instances)})

    log = [line(f"r{i}", "pima", [[0.25]]) for i in range(5)]
    log.insert(2, json.dumps({**json.loads(log[0]), "request_id": "bad", "inputs": [[-1.0] * 8]}))
    log.append(line("big", "pima", [[0.25]] * 5))  # more rows than --batch: sent alone
    with httpx.Client(transport=httpx.MockTransport(limited), base_url="http://s") as client:
        result = replay(read_log(log), client, batch=4)
    assert max(sizes[:2]) == 4 and 5 in sizes  # merged up to 4 rows, never past; big alone
    assert (result.sent, result.same, result.failed) == (5, 5, 2)
    assert {f["request_id"]: f["error"] for f in result.failures} == {
        "bad": "422 Unprocessable Entity: instances[0]: negative",
        "big": "422 Unprocessable Entity: too many instances: at most 3",
    }


def test_records_that_are_not_log_lines_are_unreadable_and_odd_outputs_fail() -> None:
    good = line("good", "pima", [[0.25]])
    log = [
        good,
        json.dumps({"request_id": "x", "version": 1, "outputs": [[0.2]], "inputs": [[0] * 8]}),
        json.dumps({"request_id": "y", "model": "pima", "version": 1, "inputs": [[0] * 8]}),
        json.dumps({"model": "pima", "version": [1], "outputs": [], "inputs": [[0] * 8]}),
        json.dumps({"model": "pima", "version": True, "outputs": [[0.2]], "inputs": [[0] * 8]}),
        line("wide", "pima", [[0.7, 0.3]]),  # two outputs logged for a one-output answer
    ]
    unreadable: list[int] = []
    with httpx.Client(transport=httpx.MockTransport(answering), base_url="http://s") as client:
        result = replay(read_log(log, unreadable), client, batch=1)
    assert unreadable == [2, 3, 4, 5]
    assert (result.sent, result.same, result.failed) == (1, 1, 1)
    assert result.failures == [
        {"request_id": "wide", "error": "the logged outputs do not fit the answer's shape [1, 1]"}
    ]


@pytest.mark.parametrize("atol", ["nan", "-1", "inf", "x"])
def test_a_tolerance_that_is_no_difference_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], atol: str
) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(line("a", "pima", [[0.25]]) + "\n")
    with pytest.raises(SystemExit) as info:
        main([str(log), "--atol", atol])
    assert info.value.code == 2 and "--atol: must be a number 0 or more" in capsys.readouterr().err


def test_version_is_checked_as_predict_checks_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(line("a", "pima", [[0.25]]) + "\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"  # nobody listens: nothing may be sent
    for version in ("", "../../../healthz#", "1/x", ".."):
        with pytest.raises(SystemExit) as info:
            main([str(log), "--url", url, "--version", version])
        err = capsys.readouterr().err
        assert info.value.code == 2 and "not a version number or label" in err, version
    # a number or a label goes through to the request (here: to nobody)
    for version in ("2", "baseline"):
        assert main([str(log), "--url", url, "--version", version], out=io.StringIO()) == 1
        assert "cannot connect" in capsys.readouterr().err


def test_ctrl_c_is_one_line_and_exit_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(line("r0", "pima", [[0.25]]) + "\n")

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("service.client.replay.replay", interrupted)
    try:
        code = main([str(log), "--url", "http://127.0.0.1:9"], out=io.StringIO())
    except KeyboardInterrupt:  # let out, it would stop the whole test session
        pytest.fail("Ctrl-C got out of the command, which prints its stack")
    assert code == 130
    assert capsys.readouterr().err == "replay: interrupted\n"
