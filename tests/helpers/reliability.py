"""Helpers for the reliability tests: publish versions, break them, run a real server, load it.

Versions are published the way the exporter does it: files first, ``metadata.json`` last and
atomically, with the name and version fields rewritten for the new folder. Breakers turn a good
published version into each kind of broken version the registry must survive.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI

from tests.helpers.live_server import Server, free_port, launch

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = Path(__file__).with_name("launcher.py")


# --- publishing ---------------------------------------------------------------------------------
def write_json_atomically(path: Path, payload: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".metadata.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(payload, fh)
    os.replace(tmp, path)


def read_meta(vdir: Path) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((vdir / "metadata.json").read_text())
    return meta


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def publish(
    source: Path,
    models_dir: Path,
    name: str,
    version: int,
    *,
    mutate: Callable[[Path, dict[str, Any]], None] | None = None,
    finish: bool = True,
) -> Path:
    """Copy ``source`` (a version folder) to ``models_dir/name/version``; metadata last.

    ``mutate(folder, metadata)`` may change files and metadata before metadata is written.
    With ``finish=False`` the folder is left half-written (no metadata.json).
    """
    target = models_dir / name / str(version)
    assert not target.exists(), f"versions only grow: {target} exists"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("metadata.json"))
    meta = read_meta(source)
    meta["name"], meta["version"] = name, version
    if mutate is not None:
        mutate(target, meta)
    if finish:
        write_json_atomically(target / "metadata.json", meta)
    return target


def copy_files(source: Path, target: Path) -> None:
    """Copy everything but metadata.json (the rest of a copy that wrote metadata first)."""
    for item in source.iterdir():
        if item.name == "metadata.json":
            continue
        if item.is_dir():
            shutil.copytree(item, target / item.name)
        else:
            shutil.copy2(item, target / item.name)


def finish_version(source: Path, target: Path, name: str, version: int) -> None:
    meta = read_meta(source)
    meta["name"], meta["version"] = name, version
    write_json_atomically(target / "metadata.json", meta)


# --- breakers: each makes one kind of broken version ---------------------------------------------
def break_checksum(folder: Path, meta: dict[str, Any]) -> None:
    """A model file changed after its checksum was recorded."""
    rel = "model.tflite" if "model.tflite" in meta["files"] else "saved_model.pb"
    with (folder / rel).open("ab") as fh:
        fh.write(b"\0")


def break_selftest(folder: Path, meta: dict[str, Any]) -> None:
    """The model does not reproduce its golden outputs."""
    meta["golden"]["outputs"] = [[0.1] * len(row) for row in meta["golden"]["outputs"]]


def break_tflite_content(folder: Path, meta: dict[str, Any]) -> None:
    """A corrupt model file whose checksum matches (so the runtime itself must refuse it)."""
    path = folder / "model.tflite"
    data = bytearray(path.read_bytes())
    data[: min(len(data), 4096)] = b"\xa5" * min(len(data), 4096)
    path.write_bytes(bytes(data))
    meta["files"]["model.tflite"] = sha256(path)


def break_savedmodel(folder: Path, meta: dict[str, Any]) -> None:
    """A SavedModel-only version whose saved_model.pb is garbage (checksums match)."""
    (folder / "model.tflite").unlink(missing_ok=True)
    meta["files"].pop("model.tflite", None)
    meta.setdefault("artifacts", {})["tflite"] = None
    path = folder / "saved_model.pb"
    path.write_bytes(b"\x08\x01garbage, not a protobuf" * 64)
    meta["files"]["saved_model.pb"] = sha256(path)


def break_missing_file(folder: Path, meta: dict[str, Any]) -> None:
    """A file listed in metadata is not there."""
    (folder / "variables" / "variables.index").unlink()


def break_metadata_keys(folder: Path, meta: dict[str, Any]) -> None:
    """metadata.json without the fields the service relies on."""
    for key in ("golden", "files", "output"):
        meta.pop(key, None)


def write_invalid_metadata(folder: Path) -> None:
    """metadata.json that is not JSON at all."""
    (folder / "metadata.json").write_text('{"name": "mnist", "version": ')


# --- a real server process ----------------------------------------------------------------------
@contextmanager
def run_server(
    models_dir: Path,
    log_path: Path,
    env: dict[str, str] | None = None,
    *,
    slow_ms: float = 0.0,
    wait_ready: str = "/readyz",
    timeout: float = 120.0,
) -> Iterator[Server]:
    """``python -m service`` on a free loopback port (through the test launcher when
    ``slow_ms`` > 0, which adds that much time to every inference call)."""
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SERVE_")}
    full_env = {
        **inherited,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "SERVE_VERSION_POLICY": "latest",
        # lifecycle tests publish untrained tiny models: the newest is the default, as they expect
        "SERVE_DEFAULT_POLICY": "newest",
        "SERVE_MODELS_DIR": str(models_dir),
        "SERVE_HOST": "127.0.0.1",
        "SERVE_PORT": str(port),
        "SERVE_LOG_FORMAT": "json",
        "RELIABILITY_SLOW_MS": str(slow_ms),
        **(env or {}),
    }
    cmd = [sys.executable, str(LAUNCHER)] if slow_ms > 0 else [sys.executable, "-m", "service"]
    url = f"http://127.0.0.1:{port}"
    with launch(cmd, full_env, log_path, url, wait_ready=wait_ready, timeout=timeout) as server:
        yield server


# --- load ---------------------------------------------------------------------------------------
@dataclass
class Tally:
    """Outcome of every request a load loop sent."""

    sent: int = 0
    ok: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    transport_errors: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    versions: dict[int, int] = field(default_factory=dict)

    def failures(self) -> int:
        return self.sent - self.ok

    def summary(self) -> str:
        return (
            f"sent={self.sent} ok={self.ok} statuses={self.by_status} "
            f"transport_errors={len(self.transport_errors)} wrong={len(self.wrong)} "
            f"versions={dict(sorted(self.versions.items()))} "
            f"first problems={(self.transport_errors + self.wrong)[:5]}"
        )


def close_to(a: np.ndarray, b: np.ndarray, atol: float = 1e-4) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, atol=atol))


# --- slowing an in-process app ----------------------------------------------------------------
BODY = {"instances": [np.zeros((28, 28)).tolist()]}


def slow_down(app: FastAPI, seconds: float, model: str = "mnist") -> Callable[[], int]:
    """Make every inference call of the model's default version take ``seconds`` longer;
    returns a counter of the rows actually run."""
    mv = app.state.registry.resolve(model)
    batcher = mv.batcher
    inner = batcher._predict
    rows = [0]

    def slow(x: np.ndarray) -> np.ndarray:
        time.sleep(seconds)
        rows[0] += len(x)
        return inner(x)

    batcher._predict = slow
    return lambda: rows[0]
