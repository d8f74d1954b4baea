"""``python -m benchmarks.run`` (``make bench``): the service against the floors and naive servers.

One run starts the servers (pinned to one core with taskset; the load generator gets the other),
checks that every request is answered with 200, drives it with wrk (or the built-in httpx load
generator when wrk is missing) and writes ``benchmarks/results/latest.json`` and ``latest.md``.
The FastAPI floor, the bare-ASGI floor, the service and (with ``--reference REV``) the service of
another commit run side by side in alternating rounds. ``--quick`` is a short smoke run.

The photo rows are the exception to the pinning: for them every server of the side-by-side set
(floors, service, reference alike) is moved to both cores (``--photo-cpus all``, the default),
because using both cores for decoding and framing is part of what they measure; the load
generator stays on its core, which it then shares. ``--photo-cpus server`` keeps them pinned.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchmarks import report as rep
from benchmarks.loadgen import run_load
from benchmarks.payloads import (
    ModelVersionInfo,
    Request,
    build_requests,
    find_versions,
    finished_versions,
)
from benchmarks.peers import launch as peers
from benchmarks.servers import (
    LOG_DIR,
    REPO_ROOT,
    ServerProcess,
    ServerSpec,
    bare_floor_spec,
    default_versions,
    floor_spec,
    naive_spec,
    service_spec,
    worktree,
)
from benchmarks.stats import RunResult
from benchmarks.wrk import run_wrk, wrk_path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
MODELS = ("mnist", "fashion_mnist", "pima")
PHOTO_SETTLE_S = 3.0


@dataclass
class Plan:
    duration: float
    warmup: float
    concurrencies: tuple[int, ...]
    batch_concurrency: int
    naive_concurrencies: tuple[int, ...]
    worker_concurrencies: tuple[int, ...]
    tool: str
    loadgen_cpus: str
    server_cpus: str
    all_cpus: str
    rounds: int = 1  # floor and service: alternating rounds, median reported
    photo_cpus: str | None = None  # the side-by-side servers' CPUs for the photo rows
    # for the tutorial row the older goals were set on only: 64 connections doubles no goal, and
    # a run is long enough with four servers side by side
    json_only_concurrencies: tuple[int, ...] = ()


def make_plan(args: argparse.Namespace) -> Plan:
    cpus = sorted(os.sched_getaffinity(0))
    loadgen = str(cpus[0])
    server = str(cpus[1]) if len(cpus) > 1 else str(cpus[0])
    cpu_list = ",".join(map(str, cpus))
    tool = args.tool if args.tool != "auto" else ("wrk" if wrk_path() else "httpx")
    photo_cpus = cpu_list if getattr(args, "photo_cpus", "all") == "all" else server
    if args.quick:
        plan = Plan(1, 1, (1, 16), 2, (16,), (16,), tool, loadgen, server, cpu_list, 1, photo_cpus)
    else:
        plan = _full_plan(args, tool, loadgen, server, cpu_list, photo_cpus)
    connections = getattr(args, "connections", None)
    if connections:  # the single-request and photo rows at these instead
        plan = replace(plan, concurrencies=connections, json_only_concurrencies=())
    return plan


def _full_plan(
    args: argparse.Namespace, tool: str, loadgen: str, server: str, cpu_list: str, photo_cpus: str
) -> Plan:
    return Plan(
        args.duration,
        1,
        (1, 16),
        2,
        (1, 16, 64),
        (16, 64),
        tool,
        loadgen,
        server,
        cpu_list,
        args.rounds,
        photo_cpus,
        (64,),
    )


def drive(
    plan: Plan,
    base_url: str,
    request: Request,
    concurrency: int,
    server: str,
    seconds: float | None = None,
    cpu_probe: Callable[[], float] | None = None,
) -> RunResult:
    duration = plan.duration if seconds is None else seconds
    if plan.tool == "wrk":
        return run_wrk(
            base_url,
            request,
            concurrency=concurrency,
            duration=duration,
            warmup=plan.warmup,
            server=server,
            cpus=plan.loadgen_cpus,
            after_warmup=lambda: check(base_url, request),  # drain what the warm-up left
            cpu_probe=cpu_probe,
        )
    return run_load(
        base_url,
        request,
        concurrency=concurrency,
        duration=duration,
        warmup=plan.warmup,
        server=server,
    )


def check(base_url: str, request: Request) -> str | None:
    """Send the request once; None when it is answered with 200, else why not."""
    try:
        response = httpx.post(
            base_url + request.path, content=request.body, headers=request.all_headers(), timeout=30
        )
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    return None


def bench_server(
    spec: ServerSpec,
    work: list[tuple[str, int]],
    requests: dict[str, Request],
    plan: Plan,
    out: dict[str, Any],
) -> list[RunResult]:
    """Start ``spec``, run every (scenario, concurrency) in ``work``, record start-up and RSS."""
    return bench_servers([(spec, work)], requests, plan, out, rounds=1)


def bench_servers(
    servers: list[tuple[ServerSpec, list[tuple[str, int]]]],
    requests: dict[str, Request],
    plan: Plan,
    out: dict[str, Any],
    rounds: int,
) -> list[RunResult]:
    """Start every server at once and measure them in alternating rounds, each on its own work.

    This machine's speed drifts by about 10% from one minute to the next (the floor server alone
    measured 6,400-7,900 req/s in back-to-back runs), so a ratio between two servers measured
    minutes apart says as much about the drift as about the servers. Here, for each (scenario,
    concurrency) of single requests that more than one server answers, every round drives each
    server in turn (in reverse order every other round) for ``2 x duration / rounds`` seconds,
    whole, 1 at least; each server's reported run is its median round by req/s (the lower
    middle one for an even count), and every round's req/s is kept in ``extra["rounds_rps"]``.
    Everything else gets one run. Idle servers use no CPU meanwhile.
    """
    results: list[RunResult] = []
    seconds = round_seconds(plan.duration, rounds)
    todo = {spec.name: set(work) for spec, work in servers}
    items = list(dict.fromkeys(item for _, work in servers for item in work))
    with contextlib.ExitStack() as stack:
        procs = start_servers([spec for spec, _ in servers], stack, out)
        broken: set[tuple[str, str]] = set()
        for scenario, concurrency in items:
            request = requests.get(scenario)
            if request is None:
                continue
            cpus = plan.photo_cpus if scenario in rep.PHOTOS else None
            moved = [proc.pin(cpus or proc.spec.cpus) for proc in procs]
            live = [
                proc
                for proc in procs
                if (scenario, concurrency) in todo[proc.spec.name]
                and answers(proc.spec.name, proc.spec.base_url, request, broken, out)
            ]
            if cpus is not None and any(moved):
                # a server on more cores may start helpers at its first picture (the service's
                # decoding processes): the check request above did that, give them time
                time.sleep(PHOTO_SETTLE_S)
            # rounds pay off where two servers compare on single requests (the goals'
            # ratios); a batch request or a lone server gets one run of the full duration
            paired = len(live) > 1 and request.items == 1
            n, length = (rounds, seconds) if paired else (1, plan.duration)
            runs: dict[str, list[RunResult]] = {proc.spec.name: [] for proc in live}
            for i in range(n):
                # ABBA: every other round reverses the order, so neither server always goes
                # second (after the other's load, later in any drift)
                for proc in live if i % 2 == 0 else live[::-1]:
                    name, url = proc.spec.name, proc.spec.base_url
                    try:
                        runs[name].append(
                            drive(plan, url, request, concurrency, name, length, proc.cpu_s)
                        )
                    except RuntimeError as exc:  # wrk failed: noted; the rest is measured
                        out["notes"].append(f"{name} {scenario} c={concurrency}: {exc}")
                        print(f"   FAILED: {exc}".splitlines()[0], flush=True)
            for proc in live:
                if runs[proc.spec.name]:
                    result = median_run(runs[proc.spec.name])
                    results.append(result)
                    print_run(result, request)
        for proc in procs:
            out["rss_mb"][proc.spec.name] = round(proc.rss_mb(), 1)
    return results


def start_servers(
    specs: list[ServerSpec], stack: contextlib.ExitStack, out: dict[str, Any]
) -> list[ServerProcess]:
    """Start each server (stopped when ``stack`` closes); record start-up time and RSS."""
    procs = []
    for spec in specs:
        print(f"== {spec.name}: starting ({' '.join(spec.argv[-4:])}, cpus {spec.cpus})")
        try:
            proc = stack.enter_context(ServerProcess(spec, out["log_dir"]))
        except RuntimeError as exc:
            out["notes"].append(f"{spec.name}: {exc}".splitlines()[0])
            print(f"   FAILED: {exc}", flush=True)
            continue
        out["startup_s"][spec.name] = round(proc.startup_s or 0.0, 3)
        if spec.argv[-2:] == ["-m", "service"]:  # which version the version-less paths reach
            out["default_versions"][spec.name] = default_versions(spec.base_url)
        out["rss_ready_mb"][spec.name] = round(proc.rss_mb(), 1)
        print(f"   ready in {proc.startup_s:.2f} s, RSS {proc.rss_mb():.0f} MB", flush=True)
        procs.append(proc)
    return procs


def answers(
    name: str, base_url: str, request: Request, broken: set[tuple[str, str]], out: dict[str, Any]
) -> bool:
    """Whether the server answers ``request`` with 200 (once failed, a scenario stays skipped)."""
    if (name, request.name) in broken:
        return False
    problem = check(base_url, request)
    if problem is None:
        return True
    broken.add((name, request.name))
    note = f"{name} {request.name}: not measured, the check request failed: {problem}"
    out["notes"].append(note)
    print("   " + note, flush=True)
    return False


def print_run(result: RunResult, request: Request) -> None:
    extra = f", {result.items_per_s:,.0f} img/s" if request.items > 1 else ""
    rounds = result.extra.get("rounds_rps")
    spread = "  rounds " + "/".join(f"{r:,.0f}" for r in rounds) if rounds else ""
    print(
        f"   {result.server:8} {result.scenario:12} c={result.concurrency:<3} "
        f"{result.rps:9,.0f} req/s{extra}  p50 {result.p50_ms:.2f} p99 {result.p99_ms:.2f} "
        f"p99.9 {result.p999_ms:.2f} ms  errors {result.errors}{spread}",
        flush=True,
    )


def round_seconds(duration: float, rounds: int) -> float:
    """Seconds per run in alternating rounds: 2 x duration over the rounds, whole (wrk takes
    whole seconds), 1 at least."""
    return duration if rounds <= 1 else float(max(1, round(duration * 2 / rounds)))


def median_run(runs: list[RunResult]) -> RunResult:
    """The run with the median req/s (the lower middle one for an even count), rounds noted."""
    ordered = sorted(runs, key=lambda r: r.rps)
    chosen = ordered[(len(ordered) - 1) // 2]
    if len(runs) > 1:
        chosen.extra["rounds_rps"] = [round(r.rps, 1) for r in runs]
        cpu = [r.extra.get("server_cpu_us_per_req") for r in runs]
        if all(c is not None for c in cpu):
            chosen.extra["rounds_cpu_us"] = cpu
    return chosen


def peer_servers(
    models_dir: Path, versions: dict[str, ModelVersionInfo], plan: Plan, out: dict[str, Any]
) -> list[tuple[ServerSpec, list[tuple[str, int]]]]:
    """LitServe (batching off and on) and MLServer, each when its package is installed."""
    mnist = versions["mnist"]
    tflite = models_dir / "mnist" / str(mnist.version) / "model.tflite"
    path = f"/v1/models/mnist/versions/{mnist.version}:predict"
    single = [("json-1", c) for c in plan.concurrencies]
    found: list[tuple[ServerSpec, list[tuple[str, int]]]] = []
    if peers.available("litserve"):
        found.append((peers.litserve_spec(tflite, path, batch=1, cpus=plan.server_cpus), single))
        batched = peers.litserve_spec(
            tflite, path, batch=64, cpus=plan.server_cpus, name="litserve-batch"
        )
        found.append((batched, single))
    else:
        out["notes"].append("litserve: not installed, skipped (see benchmarks/peers)")
    if peers.available("mlserver"):
        v2 = [("v2json-1", c) for c in plan.concurrencies]
        found.append(
            (
                peers.mlserver_spec(
                    tflite,
                    str(mnist.version),
                    out["log_dir"] / "mlserver",
                    batch=64,
                    cpus=plan.server_cpus,
                ),
                v2,
            )
        )
    else:
        out["notes"].append("mlserver: not installed, skipped (see benchmarks/peers)")
    return found


def run_tool(
    module: str, options: list[str], models_dir: Path, out_dir: Path, out: dict[str, Any]
) -> dict[str, Any] | None:
    """``python -m benchmarks.<module>`` in its own process; the JSON it wrote, or None."""
    print(f"== {module}", flush=True)
    cmd = [sys.executable, "-m", f"benchmarks.{module}", "--models-dir", str(models_dir)]
    cmd += ["--out", str(out_dir), *options]
    done = subprocess.run(
        cmd,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    if done.returncode != 0:
        out["notes"].append(f"{module}: failed ({done.returncode}): {done.stderr[-300:]}")
        return None
    data: dict[str, Any] = orjson.loads((out_dir / f"{module}.json").read_bytes())
    return data


def quality_facts(models_dir: Path, defaults: dict[str, int | None]) -> dict[str, Any]:
    """What the metadata says about the goals' versions: each image model's default version
    (as the service reported it) with its test accuracy and the service's accuracy target, and
    the newest version of each timed model's ``best`` recipe with its training time."""
    from service.settings import Settings

    targets = Settings().accuracy_targets  # what the service under test was started with
    facts: dict[str, Any] = {"defaults": {}, "training": {}}
    for model in rep.DEFAULT_IMAGE_MODELS:
        by_version = {info.version: info for info in finished_versions(models_dir, model)}
        info = by_version.get(defaults.get(model) or -1)
        if info is None:
            continue
        facts["defaults"][model] = {
            "version": info.version,
            "recipe": info.recipe,
            "accuracy": (info.metadata.get("metrics") or {}).get("accuracy"),
            "target": targets.get(model),
        }
    for model, budget in rep.TRAINING_BUDGET_S.items():
        best = [info for info in finished_versions(models_dir, model) if info.recipe == "best"]
        if best:
            info = best[-1]
            facts["training"][model] = {
                "version": info.version,
                "recipe": info.recipe,
                "seconds": (info.metadata.get("training") or {}).get("seconds"),
                "budget_s": budget,
            }
    return facts


def machine() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="~1 minute smoke run: 1 s runs at 1 and 16 connections, floor, service and naive only",
    )
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per measured run")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="alternating rounds of the floor and service runs (each 2 x duration / rounds s); "
        "the median is reported",
    )
    parser.add_argument("--tool", choices=["auto", "wrk", "httpx"], default="auto")
    parser.add_argument(
        "--photo-cpus",
        choices=["all", "server"],
        default="all",
        help="the side-by-side servers' CPUs on the photo rows: all of them (decoding uses both "
        "cores; the load generator shares its core) or the one server CPU",
    )
    parser.add_argument(
        "--models-dir", type=Path, default=Path(os.environ.get("SERVE_MODELS_DIR", "models"))
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="where latest.json/.md go")
    parser.add_argument(
        "--name",
        default="latest",
        help="file name of the results in --out, without .json/.md (a partial run kept beside "
        "the full one)",
    )
    parser.add_argument(
        "--servers",
        default="floor,bare-floor,service,naive,service-1w-both-cpus,service-2w",
        help="comma-separated subset of the servers to run",
    )
    parser.add_argument(
        "--scenarios",
        type=lambda text: frozenset(s.strip() for s in text.split(",") if s.strip()),
        default=None,
        help="comma-separated subset of the scenarios (for a quick A/B): "
        + ",".join((*rep.SINGLE, *rep.PHOTOS, *rep.BATCHES)),
    )
    parser.add_argument(
        "--connections",
        type=lambda text: tuple(int(c) for c in text.split(",") if c.strip()),
        default=None,
        help="comma-separated connection counts for the single-request and photo rows instead "
        "of 1 and 16 (the goals are set at 1 and 16), e.g. 6,12 to see batches that are not a "
        "power of two",
    )
    parser.add_argument("--no-naive", action="store_true", help="skip the slow naive server")
    parser.add_argument(
        "--no-runtimes",
        action="store_true",
        help="skip the in-process measurements (runtimes, hot path)",
    )
    parser.add_argument(
        "--reference",
        metavar="REV",
        help="also run the service of this commit (a detached git worktree, same venv) side by "
        "side with the service on the single-request and photo rows, e.g. the last commit "
        "before a change under test",
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also run LitServe and MLServer side by side when installed (see benchmarks/peers)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.ExitStack() as stack:
        source = None
        if args.reference:
            try:
                source = stack.enter_context(worktree(args.reference))
            except subprocess.CalledProcessError as exc:
                print(f"--reference {args.reference}: {exc.stderr.strip()}", file=sys.stderr)
                return 2
        return benchmark(args, source)


def work_lists(plan: Plan, only: frozenset[str] | None = None) -> dict[str, list[tuple[str, int]]]:
    """(scenario, connections) per kind of row: single requests, photos, batches; with ``only``,
    just those scenarios."""
    single = [(s, c) for s in rep.SINGLE for c in plan.concurrencies]
    single += [("json-1", c) for c in plan.json_only_concurrencies]
    rows = {
        "single": single,
        "photos": [(s, c) for s in rep.PHOTOS for c in plan.concurrencies],
        "batches": [(s, plan.batch_concurrency) for s in rep.BATCHES],
    }
    if only is None:
        return rows
    return {kind: [(s, c) for s, c in work if s in only] for kind, work in rows.items()}


def benchmark(args: argparse.Namespace, source: Path | None) -> int:
    plan = make_plan(args)
    models_dir = args.models_dir.resolve()
    versions = find_versions(models_dir, MODELS)
    if "mnist" not in versions:
        print(f"no finished mnist version in {models_dir}: run `make train` first", file=sys.stderr)
        return 2
    requests = build_requests(versions)
    wanted = {s.strip() for s in args.servers.split(",") if s.strip()}
    if args.no_naive:
        wanted.discard("naive")
    if args.quick:  # a smoke run: the worker comparison and in-process tools only in full runs
        wanted -= {"service-1w-both-cpus", "service-2w"}
    if source is not None:
        wanted.add(rep.REFERENCE)
    args.out.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {
        "log_dir": LOG_DIR,
        "startup_s": {},
        "rss_ready_mb": {},
        "rss_mb": {},
        "default_versions": {},
        "notes": [],
    }
    rows = work_lists(plan, args.scenarios)
    single, photos, batches = rows["single"], rows["photos"], rows["batches"]
    workers = [("json-1", c) for c in plan.worker_concurrencies] + [
        ("v2bin-1024", plan.batch_concurrency)
    ]
    paired: list[tuple[ServerSpec, list[tuple[str, int]]]] = [
        (floor_spec(plan.server_cpus), single + photos + batches),
        (bare_floor_spec(plan.server_cpus), single + photos),
        (
            service_spec("service", models_dir, versions, cpus=plan.server_cpus),
            single + photos + batches,
        ),
    ]
    if source is not None:
        ref = service_spec(
            rep.REFERENCE, models_dir, versions, cpus=plan.server_cpus, source=source
        )
        paired.append((ref, single + photos))
    alone: list[tuple[ServerSpec, list[tuple[str, int]]]] = [
        (
            naive_spec(models_dir, plan.server_cpus),
            [(s, c) for s in ("json-1", "pima-1") for c in plan.naive_concurrencies],
        ),
        (service_spec("service-1w-both-cpus", models_dir, versions, cpus=plan.all_cpus), workers),
        (service_spec("service-2w", models_dir, versions, workers=2, cpus=plan.all_cpus), workers),
    ]
    if args.peers:
        alone += peer_servers(models_dir, versions, plan, out)
        wanted |= {spec.name for spec, _ in alone if spec.name in rep.PEERS}
        paired[2][1].extend(("v2json-1", c) for c in plan.concurrencies)
    if plan.tool == "httpx":  # pin this process (the load generator) to its core
        os.sched_setaffinity(0, {int(plan.loadgen_cpus)})
    info = machine()  # the load average before this run adds its own
    started = time.perf_counter()
    results: list[RunResult] = []
    together = [(spec, work) for spec, work in paired if spec.name in wanted]
    if together:
        results += bench_servers(together, requests, plan, out, plan.rounds)
    for spec, work in alone:
        if spec.name in wanted:
            results += bench_server(spec, work, requests, plan, out)
    tools: dict[str, dict[str, Any] | None] = {}
    if not (args.no_runtimes or args.quick):
        tools["runtimes"] = run_tool("runtimes", [], models_dir, args.out, out)
        tools["hotpath"] = run_tool("hotpath", ["--requests", "3000"], models_dir, args.out, out)
    options = [
        *(["--quick"] if args.quick else []),
        *(["--scenarios", ",".join(sorted(args.scenarios))] if args.scenarios else []),
        *(["--peers"] if args.peers else []),
        *(["--reference", args.reference] if args.reference else []),
    ]
    info["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report: dict[str, Any] = {
        "created_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "make bench"
        if not options
        else " ".join(["python -m benchmarks.run", shlex.join(options)]),
        "argv": " ".join(["python -m benchmarks.run", shlex.join(sys.argv[1:])]),
        "machine": info,
        "tool": plan.tool,
        "loadgen_cpus": plan.loadgen_cpus,
        "server_cpus": plan.server_cpus,
        "photo_cpus": plan.photo_cpus,
        "duration_s": plan.duration,
        "rounds": plan.rounds,
        "round_s": round_seconds(plan.duration, plan.rounds),
        "warmup_s": plan.warmup,
        "wall_s": round(time.perf_counter() - started, 1),
        "reference": args.reference,
        "versions": {n: {"version": v.version, "recipe": v.recipe} for n, v in versions.items()},
        "default_versions": out["default_versions"],
        "scenarios": {
            name: {
                "model": r.model,
                "version": r.version,
                "path": r.path,
                "content_type": r.content_type,
                "items": r.items,
            }
            for name, r in requests.items()
        },
        "request_bytes": {name: len(r.body) for name, r in requests.items()},
        "startup_s": out["startup_s"],
        "rss_ready_mb": out["rss_ready_mb"],
        "rss_mb": out["rss_mb"],
        "notes": out["notes"],
        "results": [r.to_dict() for r in results],
        **tools,
    }
    # "v2 (default)" -> "v2": the goals' names already say which rows are the default ones
    hit = {name: rep.version_hit(report, rep.SERVICE, name).split(" ")[0] for name in requests}
    quality = quality_facts(models_dir, out["default_versions"].get(rep.SERVICE, {}))
    report["quality"] = quality
    goals = rep.evaluate_goals(results, out["startup_s"], out["rss_mb"], hit, quality)
    report["goals"] = [asdict(g) for g in goals]
    markdown = rep.render(report, results)
    for name, data in tools.items():
        if data is not None:
            markdown += "\n" + (args.out / f"{name}.md").read_text()
    (args.out / f"{args.name}.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    (args.out / f"{args.name}.md").write_text(markdown)
    print()
    print(markdown)
    print(f"wrote {args.out / args.name}.json and .md in {report['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
