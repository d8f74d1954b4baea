"""``python -m benchmarks.operations_cost``: the CPU each operation adds per request, in-process.

The service's ASGI app (real models, the batcher's thread and the operations thread included) is
called directly with one-image TF Serving requests and one-record Pima requests from 16
concurrent tasks, as in ``benchmarks.hotpath``, once per setting: everything off, then each of
payload log (answers only, and inputs in full), feedback, drift and shadow alone, then all at
once. The figure is the process CPU time (all threads) per request, counted until the
operations thread has written and computed what the requests left it; CPU time is far less
noisy than latency on a shared machine. Versions without a drift reference get one in a copy of
the repository (``benchmarks.soak.with_drift_references``). Results:
``benchmarks/results/operations_cost.{json,md}``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from benchmarks.hotpath import measure
from benchmarks.payloads import build_requests, find_versions
from benchmarks.report import markdown_table
from benchmarks.soak import with_drift_references

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SCENARIOS = ("json-1", "pima-1")
CONCURRENCY = 16
SETTLE_S = 0.5  # more than the operations thread's tick, so its work is counted


def modes(log_dir: Path, shadow_target: str) -> dict[str, dict[str, Any]]:
    """Setting name -> the settings it overrides."""
    log = {"payload_log_rate": 1.0, "payload_log_path": log_dir / "payloads.jsonl"}
    feedback = {"feedback_window": 10_000}
    drift = {"drift_window": 1000}
    shadow = {"shadow": {"mnist": shadow_target}}
    return {
        "off": {},
        "payload log, answers": log,
        "payload log, inputs": {**log, "payload_log_redact": {}},
        "feedback": feedback,
        "drift": drift,
        "shadow (every mnist request)": shadow,
        "all on (inputs logged)": {**log, "payload_log_redact": {}, **feedback, **drift, **shadow},
    }


async def cost(app: Any, request: Any, n: int) -> dict[str, float]:
    """CPU microseconds per request, with the operations thread's deferred work."""
    await measure(app, request, CONCURRENCY, 50)  # warm
    cpu, wall = time.process_time(), time.perf_counter()
    result = await measure(app, request, CONCURRENCY, n)
    await asyncio.sleep(SETTLE_S)
    total = max(1, n // CONCURRENCY) * CONCURRENCY
    return {
        "cpu_us": (time.process_time() - cpu) / total * 1e6,
        "wall_us": (time.perf_counter() - wall - SETTLE_S) / total * 1e6,
        "errors": result["errors"],
    }


async def run(models_dir: Path, n: int) -> list[dict[str, Any]]:
    from asgi_lifespan import LifespanManager

    from service.app import create_app
    from service.observability.logs import configure_logging
    from service.settings import Settings

    versions = find_versions(models_dir, ("mnist", "pima"))
    requests = build_requests(versions, photos=False)
    mnist = versions["mnist"].version
    others = sorted(int(p.parent.name) for p in (models_dir / "mnist").glob("*/metadata.json"))
    other = next((v for v in others if v != mnist), None)
    if other is None:
        raise SystemExit("shadow needs a second mnist version")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ops-") as tmp:
        served = with_drift_references(models_dir, Path(tmp))
        for mode, overrides in modes(Path(tmp) / "logs", f"{other}:1.0").items():
            settings = Settings(
                models_dir=served, version_policy="all", models=list(versions), **overrides
            )
            with open(os.devnull, "w") as devnull:
                app = create_app(settings, configure_logging(settings, devnull))
                async with LifespanManager(app, startup_timeout=120) as manager:
                    for name in SCENARIOS:
                        figures = await cost(manager.app, requests[name], n)
                        rows.append({"mode": mode, "scenario": name, **figures})
                        print(mode, name, f"{figures['cpu_us']:.0f} us CPU", flush=True)
    return rows


def markdown(rows: list[dict[str, Any]], n: int) -> str:
    off = {r["scenario"]: r["cpu_us"] for r in rows if r["mode"] == "off"}
    table = [
        [
            r["mode"],
            r["scenario"],
            f"{r['cpu_us']:.0f}",
            f"{r['cpu_us'] - off[r['scenario']]:+.0f}",
            f"{100 * (r['cpu_us'] / off[r['scenario']] - 1):+.0f}%",
            str(r["errors"]),
        ]
        for r in rows
    ]
    head = ["setting", "request", "CPU us/req", "over off", "over off %", "non-200"]
    return (
        f"### Operations: CPU per request, in-process ({n} requests, {CONCURRENCY} tasks)\n\n"
        + markdown_table(head, table)
        + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.operations_cost")
    parser.add_argument(
        "--models-dir", type=Path, default=Path(os.environ.get("SERVE_MODELS_DIR", "models"))
    )
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    rows = asyncio.run(run(args.models_dir.resolve(), args.requests))
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"requests": args.requests, "concurrency": CONCURRENCY, "rows": rows}
    (args.out / "operations_cost.json").write_bytes(
        orjson.dumps(report, option=orjson.OPT_INDENT_2)
    )
    text = markdown(rows, args.requests)
    (args.out / "operations_cost.md").write_text(text)
    print(text)
    return 0 if not any(r["errors"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
