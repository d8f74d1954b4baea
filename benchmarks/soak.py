"""``python -m benchmarks.soak`` (``make soak``): a bounded soak run with the service's RSS sampled.

The service (one process, as deployed by default) takes a steady closed-loop load of mixed
requests (TF Serving JSON, PNG upload, Pima records, V2 binary and JSON batches) from wrk, or from
the httpx load generator without wrk, for ``--minutes``. RSS is sampled every ``--interval``
seconds. The drift is the RSS at the end minus the RSS once the warm-up is over; the goal is under
20 MB. Results go to ``benchmarks/results/soak.json`` and ``soak.md``.

``--operations`` soaks with everything of docs/operations.md on, at the settings that hold the
most in memory: the payload log at rate 1.0 with inputs in full, feedback (a side client posts
the label of every prediction it makes), drift on every version, and every mnist prediction
shadowed on another version. Versions without a drift reference get one in a copy of the
repository, from the same real test inputs the load sends (it sizes the windows; its statistics
are not the point here). Results go to ``soak_operations.{json,md}``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

from benchmarks.loadgen import run_load
from benchmarks.payloads import ModelVersionInfo, build_requests, find_versions, mnist_images
from benchmarks.report import markdown_table
from benchmarks.servers import LOG_DIR, ServerProcess, service_spec
from benchmarks.stats import RunResult
from benchmarks.wrk import lua_mixed_script, parse_output, wrk_path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
GOAL_MB = 20.0
MIX = ("json-1", "png-1", "pima-1", "json-1", "v2bin-1024", "json-1", "png-1", "v2json-1024")
REFERENCE_IMAGES = 2000
FEEDBACK_PAUSE_S = 0.05  # between the side client's predict-and-label rounds


def operations_env(log_dir: Path, versions: dict[str, ModelVersionInfo]) -> dict[str, str]:
    """Everything on: payload log (inputs in full, rotating), feedback, drift, shadow."""
    env = {
        "SERVE_PAYLOAD_LOG_RATE": "1.0",
        "SERVE_PAYLOAD_LOG_REDACT": "{}",
        "SERVE_PAYLOAD_LOG_PATH": str(log_dir / "payloads.jsonl"),
        "SERVE_PAYLOAD_LOG_MAX_BYTES": str(16 * 1024 * 1024),
        "SERVE_PAYLOAD_LOG_BACKUPS": "1",
        "SERVE_FEEDBACK_WINDOW": "10000",
        "SERVE_DRIFT_WINDOW": "1000",
    }
    mnist = versions["mnist"].version
    env["SERVE_SHADOW"] = f"mnist={1 if mnist != 1 else 2}:1.0"
    return env


def with_drift_references(models_dir: Path, into: Path) -> Path:
    """A copy of the repository in which every finished version has a drift reference."""
    from service.serving.drift import REFERENCE_FILE, image_reference, record_reference

    root = into / "models"
    shutil.copytree(models_dir, root)
    for meta_path in root.glob("*/*/metadata.json"):
        meta = json.loads(meta_path.read_text())
        if "drift" in meta:
            continue
        if meta["task"] == "image_classification":
            name = "fashion_mnist" if meta_path.parent.parent.name == "fashion_mnist" else "mnist"
            images = mnist_images(REFERENCE_IMAGES, name)
            reference = image_reference(images, None, len(meta["labels"]))
        else:
            rows = np.asarray(meta["golden"]["inputs"], np.float64)
            reference = record_reference(rows, [f["name"] for f in meta["input"]["features"]])
        data = json.dumps(reference).encode()
        (meta_path.parent / REFERENCE_FILE).write_bytes(data)
        meta["files"][REFERENCE_FILE] = hashlib.sha256(data).hexdigest()
        meta["drift"] = {"file": REFERENCE_FILE}
        meta_path.write_text(json.dumps(meta))
    return root


def feedback_loop(base_url: str, body: bytes, stop: threading.Event, tally: dict[str, int]) -> None:
    """Predict one image and post its label, until ``stop``: keeps feedback and quality busy."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        while not stop.wait(FEEDBACK_PAUSE_S):
            try:
                r = client.post(
                    "/models/mnist/predict",
                    content=body,
                    headers={"content-type": "application/json"},
                )
                rid = r.headers.get("x-request-id", "")
                fb = client.post("/models/mnist/feedback", json={"request_id": rid, "label": 7})
                tally["sent" if fb.status_code == 200 else "failed"] += 1
            except httpx.HTTPError:
                tally["failed"] += 1


def drift(samples: list[tuple[float, float]], warmup_s: float) -> dict[str, float]:
    """RSS once warm and at the end, their difference, the peak and the slope (MB/min).

    Large requests make RSS swing by tens of MB from one sample to the next, so "once warm" is the
    median of the first quarter of the samples after the warm-up and "at the end" the median of
    the last quarter.
    """
    steady = [(t, mb) for t, mb in samples if t >= warmup_s]
    if len(steady) < 2:
        raise ValueError("not enough samples after the warm-up to measure a drift")
    quarter = max(1, len(steady) // 4)
    first = statistics.median(mb for _, mb in steady[:quarter])
    last = statistics.median(mb for _, mb in steady[-quarter:])
    mean_t = sum(t for t, _ in steady) / len(steady)
    mean_m = sum(m for _, m in steady) / len(steady)
    var = sum((t - mean_t) ** 2 for t, _ in steady)
    slope = sum((t - mean_t) * (m - mean_m) for t, m in steady) / var if var else 0.0
    return {
        "rss_after_warmup_mb": round(first, 1),
        "rss_end_mb": round(last, 1),
        "drift_mb": round(last - first, 1),
        "peak_mb": round(max(m for _, m in steady), 1),
        "slope_mb_per_min": round(slope * 60.0, 2),
        "steady_seconds": round(steady[-1][0] - steady[0][0], 1),
    }


def operations_state(base_url: str, versions: dict[str, ModelVersionInfo]) -> dict[str, Any]:
    """What the operations did during the soak: lines logged or dropped, rows labelled, inputs
    in the drift window, shadow runs and drops (from /metrics and the per-version routes)."""
    out: dict[str, Any] = {}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        text = client.get("/metrics").text
        for line in text.splitlines():
            name = line.split("{")[0].split(" ")[0]
            if name.startswith(("serve_payload_log_", "serve_shadow_runs_total")):
                key = line.rsplit(" ", 1)[0]
                out[key] = float(line.rsplit(" ", 1)[1])
        mnist = versions["mnist"].version
        quality = client.get(f"/models/mnist/versions/{mnist}/quality").json()["quality"]
        out["quality_rows"] = quality["rows"] if quality else 0
        drift = client.get(f"/models/mnist/versions/{mnist}/drift").json()["drift"]
        out["drift_inputs_total"] = drift["inputs_total"] if drift else 0
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=5.0, help="total length, warm-up included")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the baseline")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument(
        "--connections",
        type=int,
        default=4,
        help="closed-loop connections",
    )
    parser.add_argument(
        "--models-dir", type=Path, default=Path(os.environ.get("SERVE_MODELS_DIR", "models"))
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--operations",
        action="store_true",
        help="payload log, feedback, drift and shadow all on (results: soak_operations.*)",
    )
    args = parser.parse_args(argv)
    models_dir = args.models_dir.resolve()
    versions = find_versions(models_dir, ("mnist", "fashion_mnist", "pima"))
    if "mnist" not in versions:
        print(f"no finished mnist version in {models_dir}: run `make train` first", file=sys.stderr)
        return 2
    requests = build_requests(versions)
    mix = [requests[name] for name in MIX if name in requests]
    total_s = args.minutes * 60.0
    cpus = sorted(os.sched_getaffinity(0))
    # The mix holds 1024-row requests: with the default 2,048-row queue, two of them queued make
    # the service shed the next request with 503 (by design). The soak measures memory, not
    # shedding, so its queue holds eight.
    env = {"SERVE_QUEUE_SIZE": str(8 * 1024)}
    args.out.mkdir(parents=True, exist_ok=True)
    samples: list[tuple[float, float]] = []
    result: RunResult | None = None
    stem = "soak_operations" if args.operations else "soak"
    feedback: dict[str, int] = {"sent": 0, "failed": 0}
    operations: dict[str, Any] = {}
    stop_feedback = threading.Event()
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-soak-"))
        served = models_dir
        if args.operations:
            served = with_drift_references(models_dir, Path(tmp))
            env.update(operations_env(Path(tmp) / "logs", versions))
        spec = service_spec(stem, served, versions, cpus=str(cpus[-1]), extra_env=env)
        proc = stack.enter_context(ServerProcess(spec, LOG_DIR))
        print(f"service ready in {proc.startup_s:.2f} s; soaking {args.minutes:g} min", flush=True)
        if args.operations:
            side = threading.Thread(
                target=feedback_loop,
                args=(spec.base_url, requests["json-1"].body, stop_feedback, feedback),
                daemon=True,
            )
            side.start()
        holder: dict[str, Any] = {}
        exe = wrk_path()
        if exe is not None:
            files = []
            for i, request in enumerate(mix):
                path = Path(tmp) / f"body{i}.bin"
                path.write_bytes(request.body)
                files.append((request, path))
            script = Path(tmp) / "mix.lua"
            script.write_text(lua_mixed_script(files))
            cmd = [
                "taskset",
                "-c",
                str(cpus[0]),
                exe,
                "-t1",
                f"-c{args.connections}",
                f"-d{round(total_s)}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                spec.base_url + mix[0].path,
            ]
            load = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        else:

            def httpx_load() -> None:
                holder["result"] = run_load(
                    spec.base_url,
                    requests["json-1"],
                    concurrency=args.connections,
                    duration=total_s,
                    warmup=0.0,
                    server="service",
                )

            thread = threading.Thread(target=httpx_load, daemon=True)
            thread.start()
        started = time.perf_counter()
        while (now := time.perf_counter() - started) < total_s:
            samples.append((round(now, 1), round(proc.rss_mb(), 1)))
            print(f"  t={now:6.0f} s  RSS {samples[-1][1]:7.1f} MB", flush=True)
            time.sleep(args.interval)
        if exe is not None:
            stdout, _ = load.communicate(timeout=60)
            result = parse_output(
                stdout, server="service", scenario="mix", concurrency=args.connections, items=1
            )
        else:
            thread.join(timeout=60)
            result = holder.get("result")
        samples.append((round(time.perf_counter() - started, 1), round(proc.rss_mb(), 1)))
        stop_feedback.set()
        if args.operations:
            operations = operations_state(spec.base_url, versions)
    summary = drift(samples, args.warmup)
    report = {
        "minutes": args.minutes,
        "warmup_s": args.warmup,
        "connections": args.connections,
        "mix": list(MIX),
        "requests": result.requests if result else None,
        "errors": result.errors if result else None,
        "rps": round(result.rps, 1) if result else None,
        "p99_ms": round(result.p99_ms, 2) if result else None,
        **summary,
        "goal_mb": GOAL_MB,
        "met": abs(summary["drift_mb"]) < GOAL_MB,
        "operations": operations if args.operations else None,
        "feedback_posted": feedback["sent"] if args.operations else None,
        "feedback_failed": feedback["failed"] if args.operations else None,
        "samples": samples,
    }
    (args.out / f"{stem}.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    rows = [
        [k, str(report[k])]
        for k in (
            "minutes",
            "requests",
            "errors",
            "rps",
            "p99_ms",
            "rss_after_warmup_mb",
            "rss_end_mb",
            "drift_mb",
            "peak_mb",
            "slope_mb_per_min",
            "met",
        )
    ]
    if args.operations:
        rows += [["feedback_posted", str(feedback["sent"])]]
        rows += [[k, str(v)] for k, v in operations.items()]
    title = "Soak, payload log, feedback, drift and shadow on" if args.operations else "Soak"
    markdown = f"### {title}\n\n" + markdown_table(["figure", "value"], rows) + "\n"
    (args.out / f"{stem}.md").write_text(markdown)
    print(markdown)
    return 0 if report["met"] and not report["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
