"""Find the peers' interpreters and build their server specs (see the package docstring)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.servers import REPO_ROOT, ServerSpec, free_port


def peer_python(peer: str) -> str:
    return os.environ.get(f"BENCH_{peer.upper()}_PYTHON", sys.executable)


def available(peer: str) -> bool:
    """Whether the peer's interpreter can import the peer's package."""
    module = {"litserve": "litserve", "mlserver": "mlserver"}[peer]
    try:
        done = subprocess.run(
            [peer_python(peer), "-c", f"import {module}, ai_edge_litert"],
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def litserve_spec(
    tflite: Path, api_path: str, *, batch: int, cpus: str | None, name: str = "litserve"
) -> ServerSpec:
    port = free_port()
    argv = [
        peer_python("litserve"),
        str(REPO_ROOT / "benchmarks" / "peers" / "litserve_server.py"),
        "--model-file",
        str(tflite),
        "--port",
        str(port),
        "--api-path",
        api_path,
        "--max-batch-size",
        str(batch),
    ]
    env = {"PYTHONPATH": str(REPO_ROOT)}
    return ServerSpec(name, argv, port, env, cpus, ready_path="/health")


def mlserver_spec(
    tflite: Path, version: str, folder: Path, *, batch: int, cpus: str | None
) -> ServerSpec:
    """MLServer on a settings folder written to ``folder`` (one model: mnist)."""
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    settings = {
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "parallel_workers": 0,
        "host": "127.0.0.1",
        "debug": False,
    }
    (folder / "settings.json").write_text(json.dumps(settings))
    model = {
        "name": "mnist",
        "implementation": "benchmarks.peers.mlserver_runtime.TFLiteModel",
        "max_batch_size": batch,
        "max_batch_time": 0.002,
        "parameters": {"uri": str(tflite), "version": version},
    }
    (folder / "model-settings.json").write_text(json.dumps(model))
    argv = [peer_python("mlserver"), "-m", "mlserver.cli.main", "start", str(folder)]
    env = {"PYTHONPATH": str(REPO_ROOT)}
    ready = f"/v2/models/mnist/versions/{version}/ready"  # /v2/health/ready ignores failed models
    return ServerSpec("mlserver", argv, port, env, cpus, ready_path=ready)
