"""Optional peer servers for a side-by-side run (``python -m benchmarks.run --peers``).

Each peer serves the same MNIST model through the same LiteRT (TFLite) runtime that the service
uses, so the comparison measures the serving framework, not the model runtime:

- ``litserve``: LitServe with batching off and on (``litserve_server.py``), answering the TF
  Serving JSON request on the same path;
- ``mlserver``: MLServer with adaptive batching and ``parallel_workers=0`` (``mlserver_runtime.py``
  plus settings written at start), answering the V2 JSON request.

They are not project dependencies and never run in CI. Install them into any Python 3.11
environment that also has ``numpy`` and ``ai-edge-litert``, and point the benchmark at it with
``BENCH_LITSERVE_PYTHON`` / ``BENCH_MLSERVER_PYTHON`` (default: the current interpreter). A peer
whose package is missing is skipped with a note.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
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


def mlserver_spec(tflite: Path, *, batch: int, cpus: str | None) -> ServerSpec:
    """MLServer on a settings folder written to a temporary directory (one model: mnist)."""
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="bench-mlserver-"))
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
        "parameters": {"uri": str(tflite)},
    }
    (folder / "model-settings.json").write_text(json.dumps(model))
    argv = [peer_python("mlserver"), "-m", "mlserver.cli.main", "start", str(folder)]
    env = {"PYTHONPATH": str(REPO_ROOT)}
    return ServerSpec("mlserver", argv, port, env, cpus, ready_path="/v2/health/ready")
