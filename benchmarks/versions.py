"""Serving latency of every finished version, tutorial against improved.

Starts the service on the whole repository (``SERVE_VERSION_POLICY=all``), then for each model
version sends sequential single-instance requests to its own API (one connection, so the figure
is latency, not throughput) and times the version's runtime in-process at batch 1. Prints a
markdown table and writes ``benchmarks/results/versions.{json,md}``.

    python -m benchmarks.versions [--models-dir models] [--requests 300]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

from benchmarks.report import markdown_table
from benchmarks.servers import ServerProcess, ServerSpec, free_port
from benchmarks.stats import percentile
from service.runtimes import create_runtime

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _body(meta: dict[str, Any]) -> dict[str, Any]:
    """One real test input from the version's golden sample, in the own API's JSON format."""
    body: dict[str, Any] = {"instances": [meta["golden"]["inputs"][0]]}
    if not meta["input"].get("features"):
        body["scale"] = "unit"  # image models: the golden inputs are already in [0, 1]
    return body


def _runtime_us(version_dir: Path, meta: dict[str, Any], calls: int) -> float:
    runtime = create_runtime(version_dir, meta)
    runtime.load()
    x = np.asarray(meta["golden"]["inputs"][:1], dtype=np.float32)
    for _ in range(20):
        runtime.predict(x)
    started = time.perf_counter()
    for _ in range(calls):
        runtime.predict(x)
    elapsed = time.perf_counter() - started
    runtime.unload()
    return elapsed / calls * 1e6


def measure(models_dir: Path, requests: int) -> list[dict[str, Any]]:
    versions = sorted(
        (p.parent for p in models_dir.glob("*/*/metadata.json") if p.parent.name.isdigit()),
        key=lambda p: (p.parent.name, int(p.name)),
    )
    port = free_port()
    env = {
        "SERVE_HOST": "127.0.0.1",
        "SERVE_PORT": str(port),
        "SERVE_MODELS_DIR": str(models_dir),
        "SERVE_VERSION_POLICY": "all",
        "SERVE_LOG_LEVEL": "warning",
    }
    spec = ServerSpec("service-all-versions", [sys.executable, "-m", "service"], port, env)
    rows: list[dict[str, Any]] = []
    log_dir = Path(tempfile.gettempdir()) / "digitserve-bench-logs"
    with ServerProcess(spec, log_dir), httpx.Client(base_url=spec.base_url, timeout=10) as client:
        for vdir in versions:
            meta = json.loads((vdir / "metadata.json").read_text())
            name, version = vdir.parent.name, int(vdir.name)
            url = f"/models/{name}/versions/{version}/predict"
            content = orjson.dumps(_body(meta))
            headers = {"Content-Type": "application/json"}
            for _ in range(30):  # warm-up
                client.post(url, content=content, headers=headers).raise_for_status()
            latencies = []
            for _ in range(requests):
                started = time.perf_counter()
                client.post(url, content=content, headers=headers).raise_for_status()
                latencies.append((time.perf_counter() - started) * 1000)
            metrics = meta["metrics"]
            rows.append(
                {
                    "model": name,
                    "version": version,
                    "recipe": meta["recipe"]["name"],
                    "accuracy": metrics["accuracy"],
                    "roc_auc": metrics.get("roc_auc"),
                    "train_seconds": meta["training"]["seconds"],
                    "tflite_kb": (vdir / "model.tflite").stat().st_size / 1024
                    if (vdir / "model.tflite").exists()
                    else None,
                    "http_p50_ms": percentile(sorted(latencies), 50),
                    "http_p99_ms": percentile(sorted(latencies), 99),
                    "runtime_us": _runtime_us(vdir, meta, 2000),
                }
            )
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    def fmt(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    table = [
        [
            r["model"],
            str(r["version"]),
            r["recipe"],
            fmt(r["accuracy"], ".4f"),
            fmt(r["roc_auc"], ".4f"),
            fmt(r["train_seconds"], ".0f"),
            fmt(r["tflite_kb"], ".0f"),
            fmt(r["runtime_us"], ".1f"),
            fmt(r["http_p50_ms"], ".2f"),
            fmt(r["http_p99_ms"], ".2f"),
        ]
        for r in rows
    ]
    header = [
        "model",
        "version",
        "recipe",
        "test accuracy",
        "ROC-AUC",
        "training s",
        "TFLite KB",
        "runtime us/call",
        "HTTP p50 ms",
        "HTTP p99 ms",
    ]
    return markdown_table(header, table) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.versions", description=__doc__)
    parser.add_argument(
        "--models-dir", type=Path, default=Path(os.environ.get("SERVE_MODELS_DIR", "models"))
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    rows = measure(args.models_dir.resolve(), args.requests)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "versions.json").write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
    markdown = render(rows)
    (args.out / "versions.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
