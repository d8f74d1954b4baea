"""Settings: from the environment, defaults, validation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.__main__ import load_settings
from service.settings import Settings


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SERVE_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("SERVE_PORT", "9001")
    monkeypatch.setenv("SERVE_VERSION_POLICY", "specific")
    monkeypatch.setenv("SERVE_VERSIONS", '{"mnist": [1, 2]}')
    monkeypatch.setenv("SERVE_VERSION_LABELS", '{"mnist": {"stable": 1}}')
    monkeypatch.setenv("SERVE_CORS_ORIGINS", "http://a.example, http://b.example")
    monkeypatch.setenv("SERVE_API_KEY", "s3cret")
    monkeypatch.setenv("SERVE_LOG_LEVEL", "DEBUG")
    s = Settings()
    assert (s.models_dir, s.port, s.version_policy) == (tmp_path, 9001, "specific")
    assert s.versions == {"mnist": [1, 2]}
    assert s.version_labels == {"mnist": {"stable": 1}}
    assert s.cors_origins == ["http://a.example", "http://b.example"]
    assert s.api_key is not None and "s3cret" not in repr(s)
    assert s.log_level == "debug"


def test_shadow_pairs_are_read_without_the_spaces_around_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SERVE_SHADOW", " mnist = baseline : 0.1 , pima=2:1")
    assert Settings().shadow == {"mnist": "baseline:0.1", "pima": "2:1"}


def test_settings_defaults_and_validation() -> None:
    s = Settings()
    assert (s.host, s.port, s.version_policy, s.runtime) == ("127.0.0.1", 8000, "latest", "auto")
    assert s.max_instances == 4096 and s.max_body_bytes == 32 * 1024 * 1024
    with pytest.raises(ValueError):
        Settings(version_policy="newest")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Settings(max_batch_size=0)
    assert s.queue_size >= s.max_instances
    with pytest.raises(ValueError, match="queue_size"):
        Settings(queue_size=100, max_instances=101)
    assert Settings(queue_size=101, max_instances=101).queue_size == 101
    assert s.body_bytes_in_flight == 8 * s.max_body_bytes  # unset: follows the body limit
    assert Settings(max_body_bytes=2048).body_bytes_in_flight == 8 * 2048
    with pytest.raises(ValueError, match="a body of max_body_bytes could never be received"):
        Settings(max_body_bytes=4096, max_body_bytes_in_flight=2048)
    assert Settings(max_body_bytes_in_flight=2 * 32 * 1024 * 1024).body_bytes_in_flight == 64 << 20


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("SERVE_PORT", "abc", "invalid setting SERVE_PORT (--port): Input should be a valid"),
        ("SERVE_SHADOW", "{bad", "invalid setting SERVE_SHADOW"),
        (
            "SERVE_SHADOW",
            "mnist",
            "invalid setting SERVE_SHADOW (--shadow): Value error, shadow 'mnist': expected "
            "<model>=<version or label>:<fraction in [0, 1]>",
        ),
        (
            "SERVE_SHADOW",
            '{"mnist": "1:0.1", "mnist ": "2:0.2"}',
            "invalid setting SERVE_SHADOW (--shadow): Value error, shadow: model 'mnist' is named "
            "twice",
        ),
        (
            "SERVE_SHADOW",
            '{"mnist": "1:0.1", "mnist": "2:0.2"}',
            "invalid setting SERVE_SHADOW (--shadow): Value error, shadow: model 'mnist' is named "
            "twice",
        ),
        (
            "SERVE_SHADOW",
            "=baseline:0.1",
            "invalid setting SERVE_SHADOW (--shadow): Value error, shadow 'baseline:0.1': no model",
        ),
        (
            "SERVE_SHADOW",
            "mnist=baseline:0.1,mnist=1:0.5",
            "invalid setting SERVE_SHADOW (--shadow): Value error, shadow: model 'mnist' is named "
            "twice",
        ),
        ("SERVE_FEEDBACK_WINDOW", "-1", "invalid setting SERVE_FEEDBACK_WINDOW"),
        # inf is above every lower bound, yet no duration: the start would end in a traceback
        (
            "SERVE_REQUEST_TIMEOUT_S",
            "inf",
            "invalid setting SERVE_REQUEST_TIMEOUT_S (--request-timeout-s): Input should be a "
            "finite number",
        ),
        # an empty path is the working folder: an unset shell variable in SERVE_MODELS_DIR=$DIR
        (
            "SERVE_MODELS_DIR",
            "",
            "invalid setting SERVE_MODELS_DIR (--models-dir): Value error, is empty",
        ),
        ("SERVE_MAX_WAIT_MS", "inf", "invalid setting SERVE_MAX_WAIT_MS (--max-wait-ms): Input"),
        ("SERVE_FEEDBACK_TTL_S", "Infinity", "invalid setting SERVE_FEEDBACK_TTL_S"),
        ("SERVE_LATENCY_BUDGET_US", "inf", "invalid setting SERVE_LATENCY_BUDGET_US"),
        ("SERVE_POLL_INTERVAL_S", "inf", "invalid setting SERVE_POLL_INTERVAL_S"),
        # a percentage no version can reach would move every default without a word
        (
            "SERVE_ACCURACY_TARGETS",
            '{"mnist": 99.5}',
            "invalid setting SERVE_ACCURACY_TARGETS (--accuracy-targets): Value error, "
            "target 99.5 of model mnist: a test accuracy is a fraction from 0 to 1",
        ),
        ("SERVE_QUEUE_SIZE", "2", "invalid settings: Value error, queue_size (2) must be"),
        # the default latest policy would ignore the pinned version without a word
        (
            "SERVE_VERSIONS",
            '{"mnist": [1]}',
            "invalid settings: Value error, SERVE_VERSIONS lists versions, but version_policy "
            "latest ignores them",
        ),
        # the specific policy without versions would serve nothing, readiness saying why not
        (
            "SERVE_VERSION_POLICY",
            "specific",
            "invalid settings: Value error, version_policy specific serves the versions "
            "SERVE_VERSIONS lists, and it lists none",
        ),
        # an unset shell variable in SERVE_API_KEY=$KEY would turn the check off silently
        (
            "SERVE_API_KEY",
            " , ",
            "invalid setting SERVE_API_KEY (--api-key): Value error, holds no",
        ),
        ("SERVE_ADMIN_KEY", "", "invalid setting SERVE_ADMIN_KEY (--admin-key): Value error, hol"),
        # a header carries latin-1 at most: such a key could never match
        (
            "SERVE_API_KEY",
            "ok,cl\u00e9",
            "invalid setting SERVE_API_KEY (--api-key): Value error, key 2",
        ),
    ],
)
def test_a_bad_setting_stops_the_start_with_one_line_and_status_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
    said: str,
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as stop:
        load_settings()
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(said) and "Traceback" not in err and len(err.splitlines()) == 1, err


def test_the_readme_configuration_table_lists_every_setting_once() -> None:
    """The README's table is what operators read: a setting added or renamed in ``Settings``
    without it, or a row for one that is gone, fails here."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    rows = re.findall(r"^\| `(SERVE_[A-Z0-9_]+)` \|", readme, flags=re.MULTILINE)
    fields = sorted(f"SERVE_{name.upper()}" for name in Settings.model_fields)
    assert sorted(rows) == fields


def test_a_label_that_reads_as_a_number_is_refused() -> None:
    """``/versions/2`` is always version 2: a label "2" could never be reached."""
    for label in ("2", "", "a/b", "x" * 65):
        with pytest.raises(ValueError, match="a label is a name"):
            Settings(version_labels={"mnist": {label: 3}})
    assert Settings(version_labels={"mnist": {"Stable": 3}}).version_labels == {
        "mnist": {"Stable": 3}
    }
    for version in (0, -1, 10**9):  # no version could ever be reached by it
        with pytest.raises(ValueError, match=f"names version {version}: versions are numbered"):
            Settings(version_labels={"mnist": {"stable": version}})


def test_a_version_no_folder_can_have_is_refused_in_versions() -> None:
    """``SERVE_VERSIONS='{"mnist": [0]}'`` under the specific policy would serve no mnist version
    without a word of why."""
    for version in (0, -1, 10**9):
        with pytest.raises(ValueError, match=f"model mnist lists version {version}: versions are"):
            Settings(version_policy="specific", versions={"mnist": [1, version]})
    assert Settings(version_policy="specific", versions={"mnist": [1, 999_999_999]}).versions


def test_a_model_name_no_folder_can_have_is_refused() -> None:
    """``SERVE_MODELS=MNIST`` would keep /readyz at 503 for good ("not in the repository"); as a
    key of the other settings such a name would be ignored without a word."""
    for bad in ("MNIST", "../etc", "a b", "", "x" * 65):
        for field, value in (
            ("models", [bad]),
            ("versions", {bad: [1]}),
            ("version_labels", {bad: {"stable": 1}}),
            ("accuracy_targets", {bad: 0.9}),
            ("payload_log_redact", {bad: ["*"]}),
        ):
            with pytest.raises(ValueError, match="a model name is 1-64 of a-z, 0-9 and _"):
                Settings(**{field: value})
    with pytest.raises(ValueError, match="a model name is"):
        Settings(shadow="Mnist=baseline:0.1")
    for field, value in (  # "*" names the other models in the redaction only
        ("models", ["*"]),
        ("versions", {"*": [1]}),
        ("version_labels", {"*": {"stable": 1}}),
        ("accuracy_targets", {"*": 0.9}),
        ("shadow", {"*": "baseline:0.1"}),
    ):
        with pytest.raises(ValueError, match="a model name is 1-64 of a-z, 0-9 and _"):
            Settings(**{field: value})
    s = Settings(models=["mnist"], payload_log_redact={"*": ["*"], "pima": ["glucose"]})
    assert s.models == ["mnist"] and s.payload_log_redact["*"] == ["*"]


def test_feedback_with_several_workers_is_refused() -> None:
    """Each worker remembers only the predictions it answered: a label sent to another is lost."""
    with pytest.raises(ValueError, match="needs one worker process, and SERVE_WORKERS is 2"):
        Settings(feedback_window=100, workers=2)
    assert Settings(feedback_window=100, workers=1).feedback_window == 100
    assert Settings(workers=2).workers == 2


def test_a_drift_window_below_its_minimum_rows_is_refused() -> None:
    """The alarm needs drift_min_rows rows in the window: a smaller window could never raise it."""
    with pytest.raises(ValueError, match="the drift alarm could never rise"):
        Settings(drift_window=50)
    assert Settings(drift_window=50, drift_min_rows=50).drift_window == 50
    assert Settings(drift_window=0).drift_window == 0  # drift off


def test_the_specific_policy_without_versions_starts_when_models_names_the_models() -> None:
    """With SERVE_MODELS naming the models, the specific policy without versions selects none
    at start, but an admin load reaches each of them (readiness says no version is selected):
    a way to serve on demand, not a setting that serves nothing."""
    s = Settings(version_policy="specific", models=["mnist"])
    assert (s.version_policy, s.models, s.versions) == ("specific", ["mnist"], {})
    with pytest.raises(ValueError, match="version_policy specific serves the versions"):
        Settings(version_policy="specific")


def test_an_empty_payload_log_path_is_refused_only_with_the_log_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the log off the path is never used: an empty one (``SERVE_PAYLOAD_LOG_PATH=$UNSET``
    in a shared env file) must not stop the start; with the log on it names no file."""
    monkeypatch.setenv("SERVE_PAYLOAD_LOG_PATH", " ")
    assert load_settings().payload_log_path == Path("logs/payloads.jsonl")
    monkeypatch.setenv("SERVE_PAYLOAD_LOG_RATE", "0.5")
    with pytest.raises(SystemExit) as stop:
        load_settings()
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "invalid setting SERVE_PAYLOAD_LOG_PATH (--payload-log-path): Value error, is empty "
        "(an unset shell variable?) while the payload log is on"
    ), err
    assert len(err.splitlines()) == 1, err
