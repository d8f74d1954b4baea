"""``serve`` / ``python -m service`` on the command line: every setting is also an option, and
anything else is a usage error."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from service.__main__ import cannot_listen, load_settings, parse_args
from service.settings import Settings


def test_an_option_is_read_as_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SERVE_PORT", "SERVE_VERSION_LABELS", "SERVE_MODELS"):
        monkeypatch.setenv(name, "")  # so the test leaves the environment as it found it
        monkeypatch.delenv(name)
    monkeypatch.setenv("SERVE_PORT", "9001")
    parse_args(["--port", "9002", "--version-labels", '{"mnist": {"stable": 1}}'])
    parse_args(["--models", "mnist,pima"])
    s = load_settings()
    assert s.port == 9002  # the option wins over the variable
    assert s.version_labels == {"mnist": {"stable": 1}}
    assert s.models == ["mnist", "pima"]
    assert os.environ["SERVE_PORT"] == "9002"  # what worker processes read


def test_a_bad_value_names_the_option_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SERVE_PORT", "")
    parse_args(["--port", "eighty"])
    with pytest.raises(SystemExit) as stop:
        load_settings()
    assert stop.value.code == 2
    assert capsys.readouterr().err.startswith("invalid setting SERVE_PORT (--port): ")


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--accuracy-targets", "mnist=0.9"], "SERVE_ACCURACY_TARGETS (--accuracy-targets): "
         "'mnist=0.9' is not JSON; it takes a JSON object such as its default {\"mnist\": 0.995"),
        (["--version-labels", "x"], "SERVE_VERSION_LABELS (--version-labels): 'x' is not JSON; "
         "it takes a JSON object (see --help)"),
    ],
)  # fmt: skip
def test_a_value_that_is_not_json_says_which_setting_and_what_it_takes(
    argv: list[str], said: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("SERVE_ACCURACY_TARGETS", "SERVE_VERSION_LABELS"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    parse_args(argv)
    with pytest.raises(SystemExit) as stop:
        load_settings()
    assert stop.value.code == 2
    assert capsys.readouterr().err.startswith(f"invalid setting {said}")


@pytest.mark.parametrize(
    "argv", [["--prot", "9000"], ["9000"], ["--port"], ["--request-timeout", "5"]]
)
def test_anything_else_is_a_usage_error(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SERVE_PORT", "8000")
    with pytest.raises(SystemExit) as stop:
        parse_args(argv)
    assert stop.value.code == 2 and "usage: serve" in capsys.readouterr().err
    assert os.environ["SERVE_PORT"] == "8000"


def test_help_lists_every_setting_and_starts_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "service", "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "Started server" not in done.stderr
    flat = " ".join(done.stdout.split())
    for name in Settings.model_fields:
        assert "--" + name.replace("_", "-") in done.stdout
        assert f"SERVE_{name.upper()}" in flat.replace(" ", "")
    # a setting with a fixed set of values lists them
    assert "One of: auto, tflite, savedmodel." in flat and "One of: json, text." in flat


def test_help_shows_a_dict_default_as_the_json_its_variable_takes() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "service", "--help"], capture_output=True, text=True, timeout=120
    )
    flat = " ".join(done.stdout.split())
    targets = json.dumps(
        Settings.model_fields["accuracy_targets"].get_default(call_default_factory=True)
    )
    assert f"default: {targets}]" in flat and "'mnist'" not in flat


def test_a_port_in_use_is_said_at_once_before_any_model_loads(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cannot_listen("127.0.0.1", port) is not None
        env = {**os.environ, "SERVE_PORT": str(port), "SERVE_MODELS_DIR": str(tmp_path)}
        done = subprocess.run(
            [sys.executable, "-m", "service"], capture_output=True, text=True, timeout=120, env=env
        )
    assert done.returncode == 1
    assert done.stderr.strip().endswith(
        "(another server is there?); choose another port with SERVE_PORT or --port"
    )
    assert f"cannot listen on 127.0.0.1:{port}: " in done.stderr
    assert cannot_listen("127.0.0.1", port) is None  # closed now


@pytest.mark.parametrize(
    ("host", "said"),
    [
        ("192.0.2.1", "192.0.2.1 is not an address of this machine; give one of this machine's"),
        ("digitserve.invalid", "give one of this machine's addresses with SERVE_HOST or --host"),
    ],
)
def test_a_host_that_is_not_this_machines_is_said_to_be_the_host_not_the_port(
    host: str, said: str
) -> None:
    """A host that does not resolve, or is not an address of this machine, is a SERVE_HOST to
    fix: the advice to choose another port would send the user the wrong way."""
    why = cannot_listen(host, 0)
    assert why is not None and said in why and "SERVE_PORT" not in why


def test_an_empty_host_is_every_address_as_uvicorn_listens_on_it() -> None:
    """SERVE_HOST= (empty) has uvicorn listen on every address, as it always did: it is no
    host name that fails to resolve. A port in use there is still said."""
    assert cannot_listen("", 0) is None
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        why = cannot_listen("", taken.getsockname()[1])
    assert why is not None and "choose another port" in why
