"""``python -m benchmarks.payload_log``: what the payload log costs in p99 latency.

Three copies of the service run side by side, pinned to the same core: the payload log off, on
at rate 1.0 with the default redaction (answers only), and on at rate 1.0 with inputs in full
(``SERVE_PAYLOAD_LOG_REDACT={}``, what replay needs). For each scenario every round drives each
server in turn (in reverse order every other round, so neither always goes second), and a
server's figure is its median p99 over the rounds: this machine's speed drifts by about 10% from
one minute to the next, so only interleaved runs compare; the ratio to off is the median over the
rounds of the ratio within a round. The goal: p99 with logging at rate 1.0 at most 10% above off.
Results: ``benchmarks/results/payload_log.{json,md}``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from benchmarks.payloads import build_requests, find_versions
from benchmarks.report import markdown_table
from benchmarks.run import check, drive, make_plan, start_servers
from benchmarks.servers import LOG_DIR, ServerSpec, service_spec
from benchmarks.stats import RunResult

RESULTS_DIR = Path(__file__).resolve().parent / "results"
GOAL_RATIO = 1.10  # p99 with logging over p99 without
# (scenario, concurrency): one image over TF Serving JSON and one Pima record, alone and under
# a closed loop of 16 connections
WORK = (("json-1", 1), ("json-1", 16), ("pima-1", 16))
OFF = "log-off"
# name -> the payload-log settings of that server
MODES: dict[str, dict[str, str]] = {
    OFF: {"SERVE_PAYLOAD_LOG_RATE": "0"},
    "log-answers": {"SERVE_PAYLOAD_LOG_RATE": "1.0"},
    "log-inputs": {"SERVE_PAYLOAD_LOG_RATE": "1.0", "SERVE_PAYLOAD_LOG_REDACT": "{}"},
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.payload_log", description=__doc__)
    parser.add_argument(
        "--models-dir", type=Path, default=Path(os.environ.get("SERVE_MODELS_DIR", "models"))
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--duration", type=float, default=20.0, help="seconds per server and scenario"
    )
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per scenario")
    parser.add_argument("--tool", choices=("auto", "wrk", "httpx"), default="auto")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    return parser.parse_args(argv)


def compare(runs: dict[str, list[RunResult]]) -> dict[str, Any]:
    """Per server: median p99, p50 and req/s over the rounds, and the median over the rounds of
    its p99 over the log-off p99 of the same round (neighbours in time share the machine's
    state, so their ratio is steadier than a ratio of medians)."""
    off = runs[OFF]
    out: dict[str, Any] = {}
    for name, results in runs.items():
        ratios = [r.p99_ms / o.p99_ms for r, o in zip(results, off, strict=True) if o.p99_ms > 0]
        out[name] = {
            "p99_ms": round(statistics.median(r.p99_ms for r in results), 3),
            "p50_ms": round(statistics.median(r.p50_ms for r in results), 3),
            "rps": round(statistics.median(r.rps for r in results), 1),
            "errors": sum(r.errors for r in results),
            "rounds_p99_ms": [round(r.p99_ms, 3) for r in results],
            "p99_ratio": round(statistics.median(ratios), 3) if ratios else None,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = make_plan(args)
    rounds = 2 if args.quick else max(2, args.rounds)
    seconds = 1.0 if args.quick else max(1.0, round(args.duration / rounds))
    models_dir = args.models_dir.resolve()
    versions = find_versions(models_dir, ("mnist", "pima"))
    if set(versions) != {"mnist", "pima"}:
        print(f"no finished mnist and pima versions in {models_dir}", file=sys.stderr)
        return 2
    requests = build_requests(versions, photos=False)
    out: dict[str, Any] = {
        "log_dir": LOG_DIR,
        "notes": [],
        "startup_s": {},
        "default_versions": {},
        "rss_ready_mb": {},
    }
    report: dict[str, Any] = {
        "tool": plan.tool,
        "rounds": rounds,
        "seconds_per_round": seconds,
        "server_cpus": plan.server_cpus,
        "goal_p99_ratio": GOAL_RATIO,
        "scenarios": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-payload-") as tmp, contextlib.ExitStack() as st:
        specs: list[ServerSpec] = []
        for name, env in MODES.items():
            log_env = {**env, "SERVE_PAYLOAD_LOG_PATH": str(Path(tmp) / name / "payloads.jsonl")}
            spec = service_spec(
                name, models_dir, versions, cpus=plan.server_cpus, extra_env=log_env
            )
            specs.append(spec)
        procs = start_servers(specs, st, out)
        if len(procs) != len(specs):
            print("a server did not start: " + "; ".join(out["notes"]), file=sys.stderr)
            return 1
        for scenario, concurrency in WORK:
            request = requests[scenario]
            for proc in procs:
                problem = check(proc.spec.base_url, request)
                if problem is not None:
                    print(f"{proc.spec.name} {scenario}: {problem}", file=sys.stderr)
                    return 1
            runs: dict[str, list[RunResult]] = {p.spec.name: [] for p in procs}
            for i in range(rounds):
                for proc in procs if i % 2 == 0 else procs[::-1]:
                    name = proc.spec.name
                    runs[name].append(
                        drive(plan, proc.spec.base_url, request, concurrency, name, seconds)
                    )
            key = f"{scenario} c={concurrency}"
            report["scenarios"][key] = compare(runs)
            print(key, orjson.dumps(report["scenarios"][key]).decode(), flush=True)
        logged = sum(f.stat().st_size for f in (Path(tmp) / "log-inputs").glob("payloads.jsonl*"))
        report["log_inputs_bytes_on_disk"] = logged
    ratios = [
        s[name]["p99_ratio"] for s in report["scenarios"].values() for name in MODES if name != OFF
    ]
    errors = sum(s[name]["errors"] for s in report["scenarios"].values() for name in MODES)
    report["errors"] = errors
    report["worst_p99_ratio"] = max(r for r in ratios if r is not None)
    report["met"] = report["worst_p99_ratio"] <= GOAL_RATIO and errors == 0
    report["notes"] = out["notes"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "payload_log.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    (args.out / "payload_log.md").write_text(markdown(report))
    print(markdown(report))
    return 0 if report["met"] else 1


def markdown(report: dict[str, Any]) -> str:
    rows = [
        [
            key,
            name,
            f"{s[name]['p50_ms']:.2f}",
            f"{s[name]['p99_ms']:.2f}",
            f"{s[name]['p99_ratio']:.3f}",
            f"{s[name]['rps']:.0f}",
            str(s[name]["errors"]),
        ]
        for key, s in report["scenarios"].items()
        for name in MODES
    ]
    head = ["scenario", "server", "p50 ms", "p99 ms", "p99 / off", "req/s", "errors"]
    verdict = "met" if report["met"] else "not met"
    return (
        "### Payload log: p99 with logging at rate 1.0 against off\n\n"
        f"{report['tool']}, {report['rounds']} alternating rounds of "
        f"{report['seconds_per_round']:g} s per server, servers on CPU {report['server_cpus']}; "
        "each figure is the median over the rounds (p99 / off: of the ratio within a round).\n\n"
        + markdown_table(head, rows)
        + f"\n\nGoal: p99 at most {report['goal_p99_ratio']:.2f}x off; worst "
        f"{report['worst_p99_ratio']:.3f}x: {verdict}.\n"
    )


if __name__ == "__main__":
    sys.exit(main())
