"""Settings, repository scanning and metadata checks, runtimes, and the inference helpers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from service.errors import InvalidInput
from service.repository.disk import (
    Repository,
    RepositoryError,
    listed_path,
    parse_version,
    valid_name,
)
from service.runtimes import SavedModelRuntime, TFLiteRuntime, create_runtime
from service.serving.inference import validate
from service.serving.tasks import Task
from service.settings import Settings


# --- settings -----------------------------------------------------------------------------
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


# --- repository ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "a1_"])
def test_valid_names(name: str) -> None:
    assert valid_name(name)


@pytest.mark.parametrize("name", ["", "MNIST", "../x", "a/b", "a" * 65, "mnist\n", "é"])
def test_invalid_names(name: str) -> None:
    assert not valid_name(name)


def test_parse_version() -> None:
    assert parse_version("12") == 12 and parse_version(3) == 3
    for bad in ("", "-1", "1.0", "1e3", "1234567890", " 1", "١"):
        assert parse_version(bad) is None, bad


def test_scan_reports_unfinished_and_ignores_junk(repo_copy: Path) -> None:
    (repo_copy / "mnist" / "notes").mkdir()
    (repo_copy / "mnist" / "007").mkdir()  # not canonical: ignored
    (repo_copy / "Bad-Name").mkdir()
    (repo_copy / "file.txt").write_text("x")
    scan = Repository(repo_copy).scan()
    assert "Bad-Name" not in scan.models
    assert [f.version for f in scan.finished("mnist")] == [1, 2]
    assert scan.unfinished("mnist") == [3]


def test_metadata_validation_errors(repo_copy: Path) -> None:
    repo = Repository(repo_copy)
    meta_path = repo_copy / "mnist" / "1" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    assert repo.read_metadata("mnist", 1)["version"] == 1
    for change, message in [
        (lambda m: m.pop("files"), "lacks files"),
        (lambda m: m.update(version=2), "do not match"),
        (lambda m: m["output"].update(kind="relu"), "output.kind"),
        (lambda m: m.update(labels=[]), "labels"),
        (lambda m: m["files"].update({"x": "nothex"}), "SHA-256"),
    ]:
        broken = json.loads(json.dumps(meta))
        change(broken)
        meta_path.write_text(json.dumps(broken))
        with pytest.raises(RepositoryError, match=message):
            repo.read_metadata("mnist", 1)
    with pytest.raises(RepositoryError, match="missing"):
        repo.read_metadata("mnist", 3)


def test_verify_files_and_listed_paths(repo_copy: Path) -> None:
    repo = Repository(repo_copy)
    meta = repo.read_metadata("mnist", 1)
    repo.verify_files("mnist", 1, meta)
    (repo_copy / "mnist" / "1" / "report" / "report.md").write_text("tampered")
    with pytest.raises(RepositoryError, match=r"checksum mismatch for report/report\.md"):
        repo.verify_files("mnist", 1, meta)
    vdir = repo_copy / "mnist" / "1"
    for rel in ("../2/metadata.json", "/etc/passwd", ""):
        with pytest.raises(RepositoryError):
            listed_path(vdir, rel)
    with pytest.raises(RepositoryError):
        repo.version_dir("../mnist", 1)


# --- runtimes -----------------------------------------------------------------------------
def _golden(path: Path) -> tuple[dict, np.ndarray, np.ndarray]:
    meta = json.loads((path / "metadata.json").read_text())
    return (
        meta,
        np.asarray(meta["golden"]["inputs"], np.float32),
        np.asarray(meta["golden"]["outputs"]),
    )


def test_runtimes_reproduce_golden_outputs_for_any_batch_size(tiny_repo: Path) -> None:
    path = tiny_repo / "mnist" / "1"
    meta, x, y = _golden(path)
    tflite = create_runtime(path, meta)
    assert isinstance(tflite, TFLiteRuntime)
    tflite.load()
    saved = create_runtime(path, meta, "savedmodel")
    assert isinstance(saved, SavedModelRuntime)
    saved.load()
    for n in (1, 3, len(x), 1):
        np.testing.assert_allclose(tflite.predict(x[:n]), y[:n], atol=1e-5)
        np.testing.assert_allclose(saved.predict(x[:n]), y[:n], atol=1e-5)
    tflite.unload()
    assert not tflite.ready
    with pytest.raises(RuntimeError):
        tflite.predict(x)


def test_unlisted_savedmodel_file_is_refused(repo_copy: Path) -> None:
    path = repo_copy / "fashion_mnist" / "1"
    meta, _, _ = _golden(path)
    shutil.copy(path / "saved_model.pb", path / "variables" / "extra.bin")
    with pytest.raises(RepositoryError, match="not listed"):
        SavedModelRuntime(path, meta).load()


# --- inference helpers --------------------------------------------------------------------
def _image_task() -> Task:
    from tests.service.conftest import image_metadata

    return Task.from_metadata(image_metadata(list("abcdefghij"), "tutorial"))


def test_validate() -> None:
    task = _image_task()
    x = np.zeros((2, 28, 28), np.float64)
    out = validate(task, x, 4)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    cases = [
        (np.zeros((2, 28, 27)), "shape"),
        (np.zeros((0, 28, 28)), "no instances"),
        (np.zeros((5, 28, 28)), "too many"),
        (np.full((1, 28, 28), np.nan), "NaN"),
        (np.full((1, 28, 28), 2.0), "outside the range"),
        (np.array([["a"] * 28] * 28)[None], "numeric"),
    ]
    for bad, message in cases:
        with pytest.raises(InvalidInput, match=message):
            validate(task, bad, 4)


def test_tflite_padded_buckets_and_chunks_match_row_by_row(tiny_repo: Path) -> None:
    path = tiny_repo / "mnist" / "2"
    meta, _, _ = _golden(path)
    runtime = TFLiteRuntime(path, meta)
    runtime.load()
    big = np.random.default_rng(3).random((TFLiteRuntime.CHUNK + 37, 28, 28), dtype=np.float32)
    rows = np.concatenate([runtime.predict(big[i : i + 1]) for i in range(len(big))])
    for n in (3, 5, 64, 100, len(big)):  # padded to 4, 8, exact 64, 128; then chunked
        np.testing.assert_allclose(runtime.predict(big[:n]), rows[:n], atol=1e-6)


@pytest.mark.parametrize("status", [200, 422])
def test_json_bytes_response_sends_what_starlettes_response_sends(status: int) -> None:
    import asyncio

    from starlette.responses import Response

    from service.api.common import JSONBytesResponse, json_response

    body = b'{"predictions":[[0.25,0.75]]}'

    def sent(response: Response) -> list[dict[str, object]]:
        messages: list[dict[str, object]] = []

        async def send(message: dict[str, object]) -> None:
            messages.append(message)

        async def receive() -> dict[str, object]:
            return {"type": "http.disconnect"}

        scope = {"type": "http", "method": "POST", "headers": []}
        asyncio.run(response(scope, receive, send))  # type: ignore[arg-type]
        return messages

    expected = sent(Response(body, status_code=status, media_type="application/json"))
    assert sent(JSONBytesResponse(body, status)) == expected
    fast = json_response({"predictions": [[0.25, 0.75]]}, status)
    assert isinstance(fast, JSONBytesResponse) and sent(fast) == expected
    assert fast.headers["content-type"] == "application/json"
