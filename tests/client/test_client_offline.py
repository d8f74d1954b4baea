"""Client and CLI behaviour that needs no model server: inputs, CSV, usage errors, server down."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path

import httpx
import numpy as np
import pytest

from service.client import Client, ClientError, cli
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


def test_array_payload_adds_batch_and_scale() -> None:
    one = _array_payload(np.full((28, 28), 255, dtype=np.uint8))
    assert np.asarray(one["instances"]).shape == (1, 28, 28)
    assert one["scale"] == "byte"
    floats = _array_payload(np.zeros((3, 784), dtype=np.float32))
    assert np.asarray(floats["instances"]).shape == (3, 784)
    assert "scale" not in floats
    record = _array_payload(np.arange(8))
    assert record["instances"] == [list(range(8))]
    assert "scale" not in record


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
    with pytest.raises(ClientError, match="must be ASCII"):
        Client("http://127.0.0.1:9", api_key="cl\u00e9")
    for timeout in (0.0, -1.0, float("nan")):
        with pytest.raises(ClientError, match="positive number of seconds"):
            Client("http://127.0.0.1:9", timeout=timeout)
    with pytest.raises(ClientError, match="not a usable server URL"):
        Client("http://[::1")


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
        assert "not a finite number" in err or "more than 0 seconds" in err, err


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
