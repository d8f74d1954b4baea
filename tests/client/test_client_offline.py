"""Client and CLI behaviour that needs no model server: inputs, CSV, usage errors, server down."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from service.client import Client, ClientError, cli
from service.client import client as client_module
from service.client.client import _array_payload, image_content_type, read_records_csv


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_server_down_gives_a_clear_message() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    with Client(url, timeout=2) as client, pytest.raises(ClientError) as info:
        client.models()
    assert "cannot connect" in info.value.message
    assert url in info.value.message
    assert info.value.status_code is None


def test_ready_is_false_while_nothing_answers() -> None:
    with Client(f"http://127.0.0.1:{_closed_port()}", timeout=2) as client:
        assert client.ready() is False


def test_cli_server_down_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    image = tmp_path / "x.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 10)
    code = cli.main(["mnist", str(image), "--url", f"http://127.0.0.1:{_closed_port()}"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("predict: error: cannot connect")
    assert "Traceback" not in err


def test_image_signature() -> None:
    assert image_content_type(b"\x89PNG\r\n\x1a\nrest") == "image/png"
    assert image_content_type(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert image_content_type(b"RIFF\x10\x00\x00\x00WEBPVP8 ") == "image/webp"
    with pytest.raises(ClientError, match="not a PNG, JPEG or WebP"):
        image_content_type(b"GIF89a")


def test_missing_file_is_a_client_error() -> None:
    with Client("http://127.0.0.1:1") as client, pytest.raises(ClientError, match="cannot read"):
        client.predict("mnist", "/nonexistent/digit.png")


def test_path_segments_cannot_change_the_route() -> None:
    with Client("http://127.0.0.1:1") as client:
        for bad in ("../admin", "a/b", "", ".."):
            with pytest.raises(ClientError, match="invalid model or version name"):
                client.predict(bad, np.zeros((28, 28)))


def test_array_payload_adds_batch_and_reads_uint8_as_bytes_only() -> None:
    one = _array_payload(np.full((28, 28), 255, dtype=np.uint8))
    assert np.asarray(one["instances"]).shape == (1, 28, 28)
    assert "scale" not in one  # the auto rule reads 255 as 0-255 already
    floats = _array_payload(np.zeros((3, 784), dtype=np.float32))
    assert np.asarray(floats["instances"]).shape == (3, 784)
    assert "scale" not in floats
    record = _array_payload(np.arange(8))
    assert record["instances"] == [list(range(8))]
    assert "scale" not in record


def test_array_scale_follows_the_dtype() -> None:
    """uint8 is 0-255; other integers and floats go by the server's auto rule; a bool array is
    an ink mask; scale= says it outright."""
    ink = np.zeros((28, 28), dtype=np.uint8)
    ink[4:24, 12:16] = 200
    mask = ink > 127
    # a 0/1 integer mask is read as [0, 1] (auto), not as 0-255 (almost black)
    assert "scale" not in _array_payload(mask.astype(np.int64))
    assert "scale" not in _array_payload(mask.astype(np.int32))
    as_bool = _array_payload(mask)
    assert "scale" not in as_bool and np.asarray(as_bool["instances"]).max() == 1
    # a uint8 array whose values are all 0 or 1 would be read as [0, 1] by auto: say byte
    assert _array_payload(mask.astype(np.uint8))["scale"] == "byte"
    assert _array_payload(ink.astype(np.float64) / 255)  # floats: no scale either
    assert "scale" not in _array_payload(ink.astype(np.float64) / 255)
    assert _array_payload(ink, "unit")["scale"] == "unit"
    with pytest.raises(ClientError, match="unsupported array of <U1"):
        _array_payload(np.array(["a"] * 8))


def test_records_csv(tmp_path: Path) -> None:
    path = tmp_path / "pima.csv"
    path.write_text(
        "pregnant,glucose,pressure,triceps,insulin,mass,pedigree,age,diabetes\n"
        "6,148,72,35,0,33.6,0.627,50,pos\n1,85,66,29,0,26.6,0.351,31,neg\n"
    )
    records = read_records_csv(path)
    assert len(records) == 2
    assert records[0]["glucose"] == 148.0 and records[1]["pedigree"] == pytest.approx(0.351)
    assert "diabetes" not in records[0]


def test_records_csv_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("glucose,mass\n148,abc\n")
    with pytest.raises(ClientError, match=r"line 2: column 'mass' is not a number"):
        read_records_csv(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("glucose,mass\n")
    with pytest.raises(ClientError, match="no records"):
        read_records_csv(empty)


def test_records_csv_from_a_spreadsheet_and_what_is_not_a_csv(tmp_path: Path) -> None:
    excel = tmp_path / "excel.csv"  # "CSV UTF-8" starts with a byte order mark
    excel.write_bytes(b"\xef\xbb\xbfpregnant,glucose\n6,148\n")
    assert read_records_csv(excel) == [{"pregnant": 6.0, "glucose": 148.0}]
    latin = tmp_path / "latin.csv"
    latin.write_bytes("glucose,note\n148,caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ClientError, match=r"latin.csv is not UTF-8 text \(byte 0xe9"):
        read_records_csv(latin)
    long = tmp_path / "long.csv"
    long.write_text("glucose,mass\n148,33.6,7,8\n")
    with pytest.raises(ClientError, match="line 2: more values than the header has"):
        read_records_csv(long)
    for cell in ("nan", "inf", "-Infinity"):
        odd = tmp_path / "odd.csv"
        odd.write_text(f"glucose,mass\n148,{cell}\n")
        with pytest.raises(ClientError, match="column 'mass' is not a number"):
            read_records_csv(odd)


def test_what_cannot_be_sent_is_a_client_error() -> None:
    """NaN in an array, a key outside ASCII, a bad timeout or URL: ClientError, not a
    traceback from deep inside httpx."""
    with pytest.raises(ClientError, match="cannot be sent"), Client("http://127.0.0.1:9") as client:
        client.predict("mnist", np.full((28, 28), np.nan, np.float32))
    with pytest.raises(ClientError, match="must be printable ASCII"):
        Client("http://127.0.0.1:9", api_key="cl\u00e9")
    for timeout in (0.0, -1.0, float("nan"), 1e12):  # 1e12 s would overflow the clock
        with pytest.raises(ClientError, match="positive number of seconds up to"):
            Client("http://127.0.0.1:9", timeout=timeout)
    with pytest.raises(ClientError, match="not a usable server URL"):
        Client("http://[::1")
    for url in ("127.0.0.1:8000", "http://h:1?x=1"):  # refused when made, not at the first call
        with pytest.raises(ClientError, match="base_url: not a server URL"):
            Client(url)


def test_an_api_key_read_from_a_file_loses_its_line_end_and_is_never_echoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = Recorder(httpx.Response(200, json={"models": []}))
    with server.client(api_key="s3cret-key\n") as client:
        client.models()
    assert server.requests[0].headers["authorization"] == "Bearer s3cret-key"
    monkeypatch.setenv("SERVE_API_KEY", "s3cret\x07key")
    with pytest.raises(ClientError) as info:
        Client("http://s")
    assert "s3cret" not in info.value.message and "$SERVE_API_KEY" in info.value.message


def test_a_page_that_is_not_this_servers_error_is_one_line() -> None:
    from service.client.client import _error_message

    html = "<!DOCTYPE HTML>\n<html>\n  <head><title>Error</title></head>\n</html>\n"
    response = httpx.Response(501, text=html, headers={"content-type": "text/html"})
    message = _error_message("POST", "http://x/models/mnist/predict", response)
    assert "\n" not in message and "not a digitserve answer: <!DOCTYPE HTML> <html>" in message


def test_cli_csv_and_feature_flags_together_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = tmp_path / "p.csv"
    csv_file.write_text("glucose\n148\n")
    with pytest.raises(SystemExit) as info:
        cli.main(["pima", "--csv", str(csv_file), "--glucose", "3"])
    assert info.value.code == 2 and "not both" in capsys.readouterr().err


def test_cli_refuses_numbers_json_cannot_hold(capsys: pytest.CaptureFixture[str]) -> None:
    features = ["--pregnant", "6", "--pressure", "72", "--triceps", "35", "--insulin", "0"]
    features += ["--mass", "33.6", "--pedigree", "0.627", "--age", "50"]
    for argv in (
        ["pima", *features, "--glucose", "nan"],
        ["pima", *features, "--glucose", "148", "--threshold", "inf"],
        ["mnist", "a.png", "--timeout", "-1"],
    ):
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert "not a finite number" in err or "more than 0 and at most" in err, err


def test_cli_pima_needs_all_features(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["pima", "--glucose", "148", "--mass", "33.6"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "missing: --pregnant, --pressure, --triceps, --insulin, --pedigree, --age" in err


def test_cli_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["mnist"], ["mnist", "a.png", "--top-k", "0"]):
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        assert info.value.code == 2


def test_format_image_result_ranks_by_probability() -> None:
    result = {
        "model": "mnist",
        "version": 2,
        "predictions": [
            {"label": "7", "probabilities": {"1": 0.05, "7": 0.9, "9": 0.05, "3": 0.0}}
        ],
    }
    text = cli.format_result(result, ["digit.png"], 2)
    lines = text.splitlines()
    assert lines[0] == "mnist version 2"
    assert lines[3].split()[:4] == ["digit.png", "1", "7", "0.9000"]
    assert lines[4].split()[:3] == ["2", "1", "0.0500"]
    assert len(lines) == 5


def test_format_pima_and_models() -> None:
    result = {
        "model": "pima",
        "version": 1,
        "threshold": 0.5,
        "predictions": [
            {"probability": 0.73, "outcome": "diabetes", "outcome_index": 1, "threshold": 0.5}
        ],
    }
    out = io.StringIO()
    out.write(cli.format_result(result, [], 1))
    text = out.getvalue()
    assert "pima version 1, threshold 0.5" in text
    assert "0.7300" in text and "diabetes" in text
    calibrated = {**result, "threshold": 0.38299935564838694}
    assert "pima version 1, threshold 0.382999\n" in cli.format_result(calibrated, [], 1)
    models = [
        {
            "name": "mnist",
            "default_version": 2,
            "labels": {"baseline": 1},
            "versions": [
                {"version": 1, "state": "available", "reason": None},
                {"version": 2, "state": "available", "reason": None},
                {"version": 3, "state": "failed", "reason": "checksum mismatch for x"},
            ],
        }
    ]
    listing = cli.format_models(models).splitlines()
    assert "baseline" in listing[2] and "default" in listing[3]
    assert "failed" in listing[4] and "checksum mismatch" in listing[4]


def test_cli_takes_options_between_the_model_and_its_files(tmp_path: Path) -> None:
    parser = cli.build_parser()
    args = parser.parse_intermixed_args(["mnist", "--top-k", "2", "a.png", "--json", "b.png"])
    assert (args.model, args.inputs, args.top_k, args.json) == (
        "mnist",
        ["a.png", "b.png"],
        2,
        True,
    )
    image = tmp_path / "x.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 10)
    port = _closed_port()  # the command gets as far as the request: its options were taken
    assert cli.main(["mnist", "--top-k", "2", str(image), "--url", f"http://127.0.0.1:{port}"]) == 1


def test_cli_malformed_url_or_version_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["mnist", "a.png", "--url", "notaurl"],
        ["mnist", "a.png", "--url", "127.0.0.1:8000"],
        ["mnist", "a.png", "--url", "ftp://host"],
        ["mnist", "a.png", "--version", "../x"],
        ["mnist", "a.png", "--version", ""],
    ):
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        assert info.value.code == 2, argv
        assert "not a server URL" in capsys.readouterr().err or "--version" in " ".join(argv)


def test_format_result_without_probabilities_shows_the_label() -> None:
    text = cli.format_result({"model": "m", "version": 1, "predictions": [{"label": "7"}]}, [], 1)
    assert text.splitlines()[3].split() == ["#1", "1", "7", "-"]


def test_a_file_that_is_no_image_is_named(tmp_path: Path) -> None:
    gif = tmp_path / "cat.gif"
    gif.write_bytes(b"GIF89a" + b"0" * 10)
    png = tmp_path / "ok.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 10)
    with Client("http://127.0.0.1:9") as client:
        for data in (gif, [png, gif]):
            with pytest.raises(ClientError, match=r"cat\.gif: not a PNG, JPEG or WebP"):
                client.predict("mnist", data)  # type: ignore[arg-type]


def test_numpy_numbers_in_records_and_options_are_sent_as_numbers() -> None:
    sent: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.content)
        return httpx.Response(200, json={"predictions": []})

    record = {"glucose": np.int64(148), "mass": np.float32(33.5)}
    with Client("http://s", transport=httpx.MockTransport(answer)) as client:
        client.predict("pima", record, threshold=np.float32(0.5))  # type: ignore[arg-type]
        client.predict("pima", [record])  # type: ignore[list-item]
    assert json.loads(sent[0]) == {"instances": [{"glucose": 148, "mass": 33.5}], "threshold": 0.5}
    assert json.loads(sent[1]) == {"instances": [{"glucose": 148, "mass": 33.5}]}


def test_a_redirect_says_where_to() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(308, headers={"location": "https://s/models"})

    redirect = "308 Permanent Redirect: the server redirects to https://s/models"
    with (
        Client("http://s", transport=httpx.MockTransport(answer)) as client,
        pytest.raises(ClientError, match=redirect),
    ):
        client.models()


def test_records_csv_duplicate_columns_and_trailing_commas(tmp_path: Path) -> None:
    dup = tmp_path / "dup.csv"
    dup.write_text("glucose,mass,glucose\n148,33.6,150\n")
    with pytest.raises(ClientError, match="the header names glucose more than once"):
        read_records_csv(dup)
    trailing = tmp_path / "trailing.csv"  # a spreadsheet export ends each line with a comma
    trailing.write_text("glucose,mass,\n148,33.6,\n")
    assert read_records_csv(trailing) == [{"glucose": 148.0, "mass": 33.6}]


# -- a fake server: what the client sends, what it makes of the answers -------------------------


class Recorder:
    """A MockTransport handler that keeps every request and answers from a list (the last one
    again when the list runs out)."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.requests: list[httpx.Request] = []
        self.answers = list(answers) or [httpx.Response(200, json={"predictions": []})]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers[min(len(self.requests), len(self.answers)) - 1]

    def client(self, **kwargs: Any) -> Client:
        return Client("http://s", transport=httpx.MockTransport(self), **kwargs)

    def body(self, n: int = -1) -> Any:
        return json.loads(self.requests[n].content)


def test_an_image_array_for_pima_gets_no_scale_so_the_server_names_the_shape() -> None:
    server = Recorder()
    with server.client() as client:
        image = np.zeros((28, 28), np.uint8)
        image[10:20, 10:20] = 255
        client.predict("pima", image)
        client.predict("mnist", (image > 127).astype(np.int64))
    assert "scale" not in server.body(0) and "scale" not in server.body(1)
    assert np.asarray(server.body(1)["instances"]).max() == 1


def test_numpy_integers_options_and_no_timeout_are_accepted() -> None:
    server = Recorder()
    with server.client(timeout=None) as client:
        assert client.timeout is None
        client.predict("mnist", np.zeros((28, 28)), top_k=np.int64(2), alpha=np.float32(0.5))
        client.predict("mnist", b"\x89PNG\r\n\x1a\n0", top_k=np.int64(2), abstain=np.bool_(True))
    assert server.body(0)["top_k"] == 2 and server.body(0)["alpha"] == 0.5
    assert server.requests[1].url.params["top_k"] == "2"
    assert server.requests[1].url.params["abstain"] == "true"
    assert "x-request-timeout" not in server.requests[0].headers  # no client limit, none asked


def test_what_cannot_be_sent_or_configured_is_a_client_error_not_a_type_error() -> None:
    server = Recorder()
    with server.client() as client, pytest.raises(ClientError, match="cannot be sent"):
        client.predict("pima", {"glucose": object()})  # type: ignore[dict-item]
    for timeout in ("10", True, [1]):
        with pytest.raises(ClientError, match="positive number of seconds up to 1e"):
            Client("http://s", timeout=timeout)  # type: ignore[arg-type]
    with pytest.raises(ClientError, match="retries must be a whole number"):
        Client("http://s", retries=-1)
    with pytest.raises(ClientError, match="max_retry_wait"):
        Client("http://s", max_retry_wait=float("inf"))
    with server.client() as client, pytest.raises(ClientError, match="scale must be one of"):
        client.predict("mnist", np.zeros((28, 28)), scale="bytes")  # type: ignore[arg-type]


def test_the_server_is_asked_to_give_up_before_the_client_does() -> None:
    server = Recorder()
    for timeout, header in ((10.0, "9.000"), (2.0, "1.800"), (600.0, "300.000")):
        with server.client(timeout=timeout) as client:
            client.health()
        assert server.requests[-1].headers["x-request-timeout"] == header


def test_digits_alpha_abstain_and_lists() -> None:
    server = Recorder()
    with server.client() as client:
        client.predict("mnist", b"\x89PNG\r\n\x1a\n0", digits="many", alpha=0.1, abstain=True)
        client.predict("pima", [6, 148, 72, 35, 0, 33.6, 0.627, 50], alpha=0.05, abstain=False)
        client.predict("mnist", np.full((28, 28), 255, np.uint8).tolist())
        client.predict("mnist", [[0.0] * 784, np.zeros((28, 28))])  # flat and 2-D mixed
        client.predict("pima", [np.arange(8), np.arange(8)], digits="one")
    params = server.requests[0].url.params
    assert (params["digits"], params["alpha"], params["abstain"]) == ("many", "0.1", "true")
    assert server.body(1) == {
        "instances": [[6, 148, 72, 35, 0, 33.6, 0.627, 50]],
        "alpha": 0.05,
        "abstain": False,
    }
    assert np.asarray(server.body(2)["instances"]).shape == (1, 28, 28)
    assert "scale" not in server.body(2)
    assert [len(x) for x in server.body(3)["instances"]] == [784, 28]
    assert server.body(4) == {"instances": [list(range(8))] * 2}
    assert server.requests[4].url.params["digits"] == "one"  # a query parameter only
    with server.client() as client:
        for bad in (["a.png", 3], [{"glucose": 1}, 2], [b"x"], 3):
            with pytest.raises(ClientError, match="unsupported input"):
                client.predict("mnist", bad)  # type: ignore[arg-type]
        with pytest.raises(ClientError, match="empty list: nothing to predict"):
            client.predict("mnist", [])
        row = ["6", "148", "72", "35", "0", "33.6", "0.627", "50"]
        for text in (row, [row, row], [tuple(row)]):
            with pytest.raises(ClientError, match=r"numbers written as text .*float\(\)"):
                client.predict("pima", text)  # type: ignore[arg-type]
        with pytest.raises(ClientError, match="mixes true/false with numbers"):
            client.predict("pima", [6, True, 72, 35, 0, 33.6, 0.627, 50])  # numpy: a 1


def test_explain_sends_what_predict_sends_to_the_explain_route(tmp_path: Path) -> None:
    server = Recorder(httpx.Response(200, json={"method": "occlusion", "explanations": []}))
    png = tmp_path / "d.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n0")
    with server.client() as client:
        assert client.explain("mnist", png, target=7)["method"] == "occlusion"
        client.explain("pima", {"glucose": 148.0}, version="baseline")
        client.explain("mnist", np.zeros((2, 28, 28), np.float32), target=np.int64(3))
        with pytest.raises(ClientError, match="explain takes one image file"):
            client.explain("mnist", [png, png])
    first = server.requests[0]
    assert first.url.path == "/models/mnist/explain" and first.url.params["target"] == "7"
    assert first.headers["content-type"] == "image/png"
    assert server.requests[1].url.path == "/models/pima/versions/baseline/explain"
    assert server.body(1) == {"instances": [{"glucose": 148.0}]}
    assert server.body(2)["target"] == 3


def test_overloaded_answers_are_retried_after_retry_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(client_module, "_sleep", waits.append)
    busy = httpx.Response(503, json={"error": "queue full"}, headers={"Retry-After": "1"})
    ok = httpx.Response(200, json={"models": []})
    server = Recorder(busy, busy, ok)
    with server.client() as client:
        assert client.models() == []
    assert waits == [1.0, 1.0] and len(server.requests) == 3

    # still busy after the retries: the error carries the status and the Retry-After
    waits.clear()
    limited = httpx.Response(429, json={"error": "slow down"}, headers={"Retry-After": "2"})
    server = Recorder(limited)
    with server.client(retries=1) as client, pytest.raises(ClientError) as info:
        client.models()
    assert (info.value.status_code, info.value.retry_after) == (429, 2.0)
    assert "after 2 attempts, retry after 2 s" in info.value.message
    assert waits == [2.0] and len(server.requests) == 2

    # a 429 without Retry-After: a short growing pause; a wait beyond max_retry_wait is not waited
    waits.clear()
    server = Recorder(httpx.Response(429, json={"error": "slow down"}))
    with server.client(retries=5, max_retry_wait=2.0) as client, pytest.raises(ClientError):
        client.models()
    assert waits == [0.5, 1.0] and len(server.requests) == 3

    # a 503 without Retry-After (a version that failed to load) cannot get better by waiting
    waits.clear()
    failed = "model mnist version 3 is failed: golden outputs differ"
    server = Recorder(httpx.Response(503, json={"error": failed}))
    with server.client(retries=5) as client, pytest.raises(ClientError) as info:
        client.models()
    assert (info.value.status_code, info.value.retry_after) == (503, None)
    assert info.value.message.endswith(failed) and "retried" not in info.value.message
    assert waits == [] and len(server.requests) == 1
    waits.clear()
    server = Recorder(httpx.Response(503, json={"error": "x"}, headers={"Retry-After": "60"}))
    with server.client() as client, pytest.raises(ClientError, match="not retried"):
        client.models()
    assert waits == [] and len(server.requests) == 1

    # off on request, and never for a readiness probe, which wants the 503 itself
    server = Recorder(httpx.Response(503, json={"error": "loading"}, headers={"Retry-After": "1"}))
    with server.client(retries=0) as client, pytest.raises(ClientError):
        client.models()
    with server.client() as client:
        assert client.ready() is False
    assert waits == [] and len(server.requests) == 2


def test_retry_after_as_a_date() -> None:
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    response = httpx.Response(503, headers={"Retry-After": later})
    assert 25 < (client_module._retry_after(response) or 0) <= 30
    assert client_module._retry_after(httpx.Response(503, headers={"Retry-After": "soon"})) is None


def test_a_missing_key_says_how_to_give_one() -> None:
    missing = "missing credentials: send an API key as 'Authorization: Bearer <key>'"
    server = Recorder(httpx.Response(401, json={"error": missing}))
    with server.client(api_key="") as client, pytest.raises(ClientError) as info:
        client.models()
    assert info.value.status_code == 401
    assert "Client(api_key=...) or in $SERVE_API_KEY" in info.value.message
    assert info.value.detail.endswith(missing)


# -- the command, against the fake server -------------------------------------------------------


@pytest.fixture
def fake_cli(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """``cli.main`` talks to a Recorder (answers set by the test) instead of the network."""
    server = Recorder()

    def client(*args: Any, **kwargs: Any) -> Client:
        kwargs["transport"] = httpx.MockTransport(server)
        return Client(*args, **kwargs)

    monkeypatch.setattr(cli, "Client", client)
    return server


def _image(path: Path, width: int, height: int) -> Path:
    from PIL import Image

    Image.new("L", (width, height)).save(path)
    return path


DIGITS = {str(d): 0.01 for d in range(10)} | {"0": 0.91}
FLAGGED: dict[str, Any] = {
    "model": "mnist",
    "version": 3,
    "alpha": 0.01,
    "predictions": [
        {
            "label": "0",
            "probabilities": DIGITS,
            "out_of_distribution": True,
            "prediction_set": [],
        }
    ],
}


def test_cli_marks_an_out_of_distribution_answer_and_says_what_it_means(
    fake_cli: Recorder, tmp_path: Path
) -> None:
    fake_cli.answers = [httpx.Response(200, json=FLAGGED)]
    picture = _image(tmp_path / "shirt.png", 150, 150)
    out = io.StringIO()
    assert cli.main(["mnist", str(picture)], out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[1].split()[-1] == "note" and lines[3].endswith("OOD, set {}")
    assert lines[4].startswith("OOD: out of distribution: the input does not look like")
    assert lines[5].startswith("set {}: empty prediction set: no label is likely enough at alpha")
    assert not any(line.startswith("hint:") for line in lines)  # square: not a number

    wide = _image(tmp_path / "year.png", 320, 160)
    out = io.StringIO()
    assert cli.main(["mnist", str(wide)], out=out) == 0
    assert out.getvalue().splitlines()[-1] == (
        f"hint: {wide} is 320x160 px, wider than tall: if it holds a number of several digits, "
        "read each one with --digits many"
    )
    # items are no digits: no hint whatever the width
    clothing = {"Shirt": 0.6, "Bag": 0.4}
    items = {**FLAGGED, "model": "fashion_mnist"}
    items["predictions"] = [{**FLAGGED["predictions"][0], "probabilities": clothing}]
    assert cli.wide_picture_hint(items, str(wide)) is None


def test_format_result_marks_sets_and_abstentions() -> None:
    result = {
        "model": "fashion_mnist",
        "version": 1,
        "alpha": 0.1,
        "predictions": [
            {
                "label": "Shirt",
                "probabilities": {"Shirt": 0.5, "Coat": 0.4},
                "prediction_set": ["Shirt", "Coat"],
                "abstained": True,
                "abstain_reason": "several_labels",
            },
            {"label": "Bag", "probabilities": {"Bag": 0.99}, "prediction_set": ["Bag"]},
        ],
    }
    lines = cli.format_result(result, ["a.png", "b.png"], 1).splitlines()
    assert lines[3].endswith("set {Shirt, Coat}, abstained")
    assert lines[4].split()[-1] == "█" * 24  # an ordinary answer: no mark
    assert "the right one is among them (90% confidence)" in lines[5]
    assert lines[6] == "abstained: the server abstains (several_labels): do not rely on the label"
    pima = {
        "model": "pima",
        "version": 1,
        "threshold": 0.5,
        "alpha": 0.1,
        "predictions": [
            {
                "probability": 0.6,
                "outcome": "diabetes",
                "threshold": 0.5,
                "prediction_set": ["diabetes", "no diabetes"],
            }
        ],
    }
    text = cli.format_result(pima, [], 1)
    assert text.splitlines()[3].endswith("set {diabetes, no diabetes}")
    assert "set {a, b}: the prediction set holds several labels" in text


def test_cli_digits_many_reads_a_number(fake_cli: Recorder, tmp_path: Path) -> None:
    digit = {"probabilities": {"2": 0.99, "7": 0.01}, "prediction_set": ["2"]}
    number = {
        "model": "mnist",
        "version": 1,
        "number": "22",
        "digits": [{**digit, "box": [20, 43, 70, 82]}, {**digit, "box": [100, 47, 59, 82]}],
    }
    fake_cli.answers = [httpx.Response(200, json=number)]
    picture = _image(tmp_path / "year.png", 320, 160)
    out = io.StringIO()
    assert cli.main(["mnist", str(picture), "--digits", "many", "--alpha", "0.05"], out=out) == 0
    params = fake_cli.requests[0].url.params
    assert (params["digits"], params["alpha"]) == ("many", "0.05")
    lines = out.getvalue().splitlines()
    assert lines[0] == "mnist version 1, number 22"
    assert lines[3].split()[:6] == ["1", "at", "20,43", "70x82", "1", "2"]
    assert len(lines) == 5
    word = {**number, "number": "606", "out_of_distribution": True}
    assert cli.format_result(word, [], 1).splitlines()[0] == (
        "mnist version 1, number 606 (does not look like a number)"
    )


def test_cli_digits_many_takes_one_file_and_the_servers_hint_is_put_in_its_terms(
    fake_cli: Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["mnist", "a.png", "b.png", "--digits", "many"])
    assert info.value.code == 2 and "give one image file" in capsys.readouterr().err
    refusal = "the picture holds 4 digits side by side: send it with ?digits=many to read each"
    fake_cli.answers = [httpx.Response(422, json={"error": refusal})]
    picture = _image(tmp_path / "year.png", 320, 160)
    assert cli.main(["mnist", str(picture)]) == 1
    assert capsys.readouterr().err.rstrip().endswith("(with this command: --digits many)")
    # with two files the hint would lead to the usage error above: not given
    fake_cli.answers = [httpx.Response(422, json={"error": refusal})]
    assert cli.main(["mnist", str(picture), str(picture)]) == 1
    assert "--digits many" not in capsys.readouterr().err


def test_cli_a_bad_key_is_blamed_on_where_it_came_from(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SERVE_API_KEY", "abc\tdef")
    with pytest.raises(SystemExit) as info:
        cli.main(["--list"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "the API key (--api-key or $SERVE_API_KEY)" in err
    assert "abc" not in err


def test_cli_a_bad_serve_url_is_blamed_on_the_variable_not_on_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SERVE_URL", "127.0.0.1:8741")
    with pytest.raises(SystemExit) as info:
        cli.main(["mnist", "a.png"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "error: $SERVE_URL: not a server URL: '127.0.0.1:8741'" in err
    assert "--url" not in err.splitlines()[-1]


def test_a_tls_handshake_with_a_plain_http_server_is_said_so() -> None:
    from service.client.client import connect_failure

    exc = httpx.ConnectError("[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1000)")
    said = connect_failure("https://127.0.0.1:8741", exc)
    assert "TLS handshake failed" in said and "use http://127.0.0.1:8741" in said
    exc = httpx.ConnectError("[Errno -2] Name or service not known")
    assert "host name does not resolve" in connect_failure("http://nowhere.invalid", exc)
    assert "is it running?" in connect_failure("http://h", httpx.ConnectError("refused"))


def test_cli_api_key_option_and_what_to_do_on_401_or_403(
    fake_cli: Recorder,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SERVE_API_KEY", raising=False)
    missing = "missing credentials: send an API key as 'Authorization: Bearer <key>'"
    fake_cli.answers = [httpx.Response(401, json={"error": missing})]
    assert cli.main(["--list"]) == 1
    err = capsys.readouterr().err
    assert err.rstrip().endswith(f"{missing}; give the key with --api-key KEY or $SERVE_API_KEY")
    assert "authorization" not in fake_cli.requests[-1].headers

    fake_cli.answers = [httpx.Response(403, json={"error": "invalid credentials"})]
    assert cli.main(["--list", "--api-key", "k3"]) == 1
    assert fake_cli.requests[-1].headers["authorization"] == "Bearer k3"
    assert "check the key given with --api-key or $SERVE_API_KEY" in capsys.readouterr().err

    monkeypatch.setenv("SERVE_API_KEY", "k1")  # the default, read when the parser is built
    fake_cli.answers = [httpx.Response(200, json={"models": []})]
    assert cli.main(["--list"], out=io.StringIO()) == 0
    assert fake_cli.requests[-1].headers["authorization"] == "Bearer k1"


def test_cli_list_names_one_model_or_refuses_more(
    fake_cli: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    one = {
        "name": "mnist",
        "default_version": 1,
        "labels": {},
        "versions": [{"version": 1, "state": "available"}],
        "metadata": {"name": "mnist"},
    }
    fake_cli.answers = [httpx.Response(200, json=one)]
    out = io.StringIO()
    assert cli.main(["--list", "mnist"], out=out) == 0
    assert fake_cli.requests[-1].url.path == "/models/mnist"
    assert out.getvalue().splitlines()[2].split()[:3] == ["mnist", "1", "available"]
    with pytest.raises(SystemExit) as info:
        cli.main(["--list", "mnist", "pima"])
    assert info.value.code == 2 and "--list takes at most one model name" in capsys.readouterr().err


def test_cli_list_refuses_a_predictions_options_it_would_ignore(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv, said in (
        (["--list", "--version", "1", "--top-k", "3"], "--version, --top-k"),
        (["--list", "mnist", "--digits", "many"], "--digits"),
        (["--list", "--glucose", "3", "--abstain"], "--abstain, --glucose"),
    ):
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        err = capsys.readouterr().err
        assert (
            info.value.code == 2 and f"--list takes none of a prediction's options: {said}" in err
        )


def test_an_empty_file_is_refused_before_it_is_sent(tmp_path: Path) -> None:
    empty = tmp_path / "digit.png"
    empty.write_bytes(b"")
    server = Recorder()
    with server.client() as client, pytest.raises(ClientError, match=r"digit\.png is empty"):
        client.predict("mnist", empty)
    assert server.requests == []


def test_cli_table_aligns_wide_and_combining_characters() -> None:
    text = cli.table(
        ["file", "p"], [["二二.png", "0.9"], ["e\u0301.png", "0.1"], ["ab.png", "1"]], {1}
    )
    header, rule, *rows = text.splitlines()
    assert header == "file        p"
    # each character of 二 takes two terminal columns, the combining accent none
    assert rule == "--------  ---"
    assert rows == ["二二.png  0.9", "e\u0301.png     0.1", "ab.png      1"]


@pytest.mark.parametrize(
    "answer",
    [
        {"model": "pima", "version": 1, "predictions": [{"probability": "high", "outcome": "x"}]},
        {"model": "mnist", "version": 1, "predictions": [{"probabilities": {"7": "0.9"}}]},
        {"model": "mnist", "version": 1, "predictions": "oops"},
        {},
        ["not", "an", "object"],
    ],
)
def test_cli_an_answer_that_is_not_a_prediction_is_one_line_and_exit_1(
    fake_cli: Recorder, capsys: pytest.CaptureFixture[str], tmp_path: Path, answer: Any
) -> None:
    fake_cli.answers = [httpx.Response(200, json=answer)]
    picture = _image(tmp_path / "digit.png", 28, 28)
    for json_flag in ([], ["--json"]):
        out = io.StringIO()
        assert cli.main(["mnist", str(picture), *json_flag], out=out) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("predict: error: "), err
        assert "not a prediction" in err or "expected a JSON object" in err
        assert out.getvalue() == ""


def test_cli_a_listing_that_is_not_a_model_list_is_one_line_and_exit_1(
    fake_cli: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    for answer, shown in (
        ({}, "{}"),
        ({"models": "oops"}, '{"models": "oops"}'),
        ({"models": [{"name": "m", "versions": "1"}]}, '[{"name": "m", "versions": "1"}]'),
    ):
        fake_cli.answers = [httpx.Response(200, json=answer)]
        assert cli.main(["--list"], out=io.StringIO()) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("predict: error: "), err
        assert f"not a model list: {shown}" in err


def test_cli_ctrl_c_is_one_line_and_exit_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(request: httpx.Request) -> httpx.Response:
        raise KeyboardInterrupt

    def client(*args: Any, **kwargs: Any) -> Client:
        return Client(*args, transport=httpx.MockTransport(interrupted), **kwargs)

    monkeypatch.setattr(cli, "Client", client)
    try:
        code = cli.main(["--list"])
    except KeyboardInterrupt:  # let out, it would stop the whole test session
        pytest.fail("Ctrl-C got out of the command, which prints its stack")
    assert code == 130
    assert capsys.readouterr().err == "predict: interrupted\n"


def test_the_servers_list_of_keys_in_the_environment_sends_its_first_key(
    fake_cli: Recorder, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the variable as docs/security.md sets it up for the server, in the same shell
    monkeypatch.setenv("SERVE_API_KEY", " k1 , k2")
    fake_cli.answers = [httpx.Response(200, json={"models": []})]
    assert cli.main(["--list"], out=io.StringIO()) == 0
    assert fake_cli.requests[-1].headers["authorization"] == "Bearer k1"
    server = Recorder(httpx.Response(200, json={"models": []}))
    with server.client() as client:
        client.models()
    assert server.requests[-1].headers["authorization"] == "Bearer k1"

    # a key given outright is one key: a list there is refused, without showing it
    with pytest.raises(SystemExit) as info:
        cli.main(["--list", "--api-key", "secret1,secret2"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "holds a comma: give one key" in err
    assert "secret" not in err
    with pytest.raises(ClientError, match="holds a comma: give one key") as raised:
        server.client(api_key="secret1,secret2")
    assert "secret" not in raised.value.message


def test_replay_sends_the_first_key_of_the_servers_list(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from service.client import replay

    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"predictions": [[0.25]]})

    real = httpx.Client

    def client(*args: Any, **kwargs: Any) -> httpx.Client:
        return real(*args, transport=httpx.MockTransport(answer), **kwargs)

    monkeypatch.setattr(replay.httpx, "Client", client)
    log = tmp_path / "log.jsonl"
    record = {"model": "pima", "version": 1, "outputs": [[0.25]], "inputs": [[0.0] * 8]}
    log.write_text(json.dumps(record) + "\n")
    monkeypatch.setenv("SERVE_API_KEY", "k1,k2")
    assert replay.main([str(log)], out=io.StringIO()) == 0
    assert sent[-1].headers["authorization"] == "Bearer k1"
    with pytest.raises(SystemExit) as info:
        replay.main([str(log), "--api-key", "k1,k2"])
    assert info.value.code == 2 and "holds a comma" in capsys.readouterr().err


def test_messages_name_the_callers_own_way_to_the_server_and_never_its_password(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    port = _closed_port()
    picture = _image(tmp_path / "digit.png", 28, 28)
    assert cli.main(["mnist", str(picture), "--url", f"http://user:pw@127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err
    assert f"cannot connect to the server at http://***@127.0.0.1:{port}" in err
    assert err.rstrip().endswith("Start it with `serve`, or point --url or $SERVE_URL at it.")
    assert "pw" not in err and "Client(" not in err

    with Client(f"http://user:pw@127.0.0.1:{port}") as client, pytest.raises(ClientError) as info:
        client.models()
    said = info.value.message
    assert said.endswith("point Client(base_url=...) or $SERVE_URL at it.")
    assert "pw" not in said and "--url" not in said

    answers = iter(
        [
            httpx.Response(404, json={"error": "no such model"}),
            httpx.Response(200, text="<html>a proxy</html>"),
            httpx.Response(307, headers={"location": "http://admin:pw2@elsewhere/models"}),
        ]
    )
    transport = httpx.MockTransport(lambda request: next(answers))
    with Client("https://user:pw@h", transport=transport) as client:
        for call in (client.models, client.models, client.models):
            with pytest.raises(ClientError) as info:
                call()
            assert "***@h" in info.value.message or "***@elsewhere" in info.value.message
            assert "pw" not in info.value.message, info.value.message

    with pytest.raises(SystemExit):
        cli.main(["--list", "--url", "user:pw@127.0.0.1:8000"])
    err = capsys.readouterr().err
    assert "not a server URL: '***@127.0.0.1:8000'" in err and "pw" not in err


def test_replay_never_shows_the_password_in_the_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from service.client import replay

    log = tmp_path / "log.jsonl"
    record = {"model": "pima", "version": 1, "outputs": [[0.25]], "inputs": [[0.0] * 8]}
    log.write_text(json.dumps(record) + "\n")
    url = f"http://user:pw@127.0.0.1:{_closed_port()}"
    assert replay.main([str(log), "--url", url], out=io.StringIO()) == 1
    err = capsys.readouterr().err
    assert "cannot connect to the server at http://***@127.0.0.1" in err and "pw" not in err


def test_cli_list_shows_every_version_the_server_reports_with_its_state(
    fake_cli: Recorder,
) -> None:
    # /models as a server answers with mnist's version 5 still being written, a zero-padded
    # folder beside, and every version of pima unloaded by an admin request
    mnist = {
        "name": "mnist",
        "default_version": 1,
        "labels": {"baseline": 1},
        "versions": [
            {"version": 1, "state": "available", "recipe": "tutorial", "accuracy": 0.9781},
            {"version": 3, "state": "failed", "reason": "golden outputs differ"},
        ],
        "unfinished_versions": [5],
        "unloaded_versions": [2],
        "ignored_folders": [{"name": "018", "reason": "not a version: leading zeros (name it 18)"}],
    }
    pima = {
        "name": "pima",
        "default_version": None,
        "labels": {},
        "versions": [],
        "unfinished_versions": [],
        "unloaded_versions": [1],
        "ignored_folders": [],
    }
    fake_cli.answers = [httpx.Response(200, json={"models": [mnist, pima]})]
    out = io.StringIO()
    assert cli.main(["--list"], out=out) == 0
    lines = out.getvalue().splitlines()
    rows = [line.split()[:3] for line in lines[2:7]]
    assert rows == [
        ["mnist", "1", "available"],
        ["mnist", "2", "unloaded"],
        ["mnist", "3", "failed"],
        ["mnist", "5", "unfinished"],
        ["pima", "1", "unloaded"],
    ]
    assert lines[3].endswith("unloaded by an admin request")
    assert lines[5].endswith("its metadata.json is not there yet")
    assert lines[7] == "mnist: ignored 018: not a version: leading zeros (name it 18)"
    assert len(lines) == 8

    fake_cli.answers = [httpx.Response(200, json={"models": []})]
    out = io.StringIO()
    assert cli.main(["--list"], out=out) == 0
    assert out.getvalue().splitlines()[-1] == "no models served"


def test_a_retry_after_date_is_said_as_the_seconds_until_then() -> None:
    import re
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    def said(retry_after: str) -> str:
        headers = {"Retry-After": retry_after}
        busy = httpx.Response(429, json={"error": "slow down"}, headers=headers)
        with Recorder(busy).client(retries=0) as client, pytest.raises(ClientError) as info:
            client.models()
        return info.value.message

    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert re.search(r"\(not retried, retry after (29|30) s\)$", said(soon)), said(soon)
    far = said("Wed, 21 Oct 2099 07:28:00 GMT")
    assert re.search(r"retry after \d+ s \(about \d+ days\)\)$", far) and "e+" not in far, far
    assert said("1.5").endswith("retry after 1.5 s)")
