"""CPU cost per request of the app itself, in-process, without the network or the load generator.

``python -m benchmarks.hotpath [--profile json-1]`` calls the bare-ASGI floor's app, the FastAPI
floor's app and the service's ASGI app (lifespan run, real models, the batcher's inference thread
included, the access log written as ``python -m service`` writes it, to ``/dev/null``) directly
with the benchmark's requests, from 1 and 16 concurrent tasks, and reports the process CPU time
per request (all threads). This is far less noisy than req/s on a shared machine, and it shows
what the service adds on top of the floors (the HTTP server's own cost, the same for all three,
is not in these figures). ``--profile`` prints a cProfile of
the event-loop thread for one scenario. ``--ablate`` measures the single TF Serving JSON image
with one part of the service's per-request work switched off at a time (the access log, the
metrics, the JSON decode, the model path, the request edge): what each part costs, without a
profiler's own overhead. Results: ``benchmarks/results/hotpath.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import orjson

from benchmarks.payloads import Request, build_requests, find_versions
from benchmarks.report import markdown_table

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ASGIApp = Callable[..., Awaitable[None]]
SCENARIOS = ("json-1", "v2json-1", "pima-1", "png-1", "json-1024", "v2json-1024", "v2bin-1024")


def scope_for(request: Request) -> dict[str, Any]:
    headers = [(b"host", b"bench"), (b"content-length", str(len(request.body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in request.all_headers().items()]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": request.path,
        "raw_path": request.path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }


async def call(app: ASGIApp, request: Request, scope: dict[str, Any]) -> int:
    """One request through the ASGI app; returns the status."""
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": request.body, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    await app(dict(scope), receive, send)
    return status


async def measure(app: ASGIApp, request: Request, concurrency: int, n: int) -> dict[str, float]:
    scope = scope_for(request)
    for _ in range(min(50, n)):
        status = await call(app, request, scope)
        if status != 200:
            raise RuntimeError(f"{request.name}: HTTP {status}")
    per_task = max(1, n // concurrency)
    errors = 0

    async def worker() -> None:
        nonlocal errors
        for _ in range(per_task):
            if await call(app, request, scope) != 200:
                errors += 1

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    total = per_task * concurrency
    return {
        "cpu_us": (time.process_time() - cpu) / total * 1e6,
        "wall_us": (time.perf_counter() - wall) / total * 1e6,
        "errors": errors,
    }


def concurrencies(request: Request) -> tuple[int, ...]:
    """1 and 16 tasks; 1 and 2 for batch requests (16 x 1024 rows overflow the queue: 503)."""
    return (1, 16) if request.items == 1 else (1, 2)


THREAD_ONLY = "service-thread"  # the same service with every model call handed to the thread


def batchers(app: Any) -> list[Any]:
    """The batchers of every loaded version of a service app."""
    registry = app.state.registry
    return [
        mv.batcher
        for name in registry.model_names()
        for mv in registry.versions(name)
        if mv.batcher is not None
    ]


ABLATE_SCENARIO = "json-1"
# What each ablation switches off, in the order measured ("" is the service as it runs).
ABLATIONS = ("", "access log", "metrics", "JSON decode", "model path", "request edge")


@contextmanager
def ablated(part: str, request: Request) -> Iterator[None]:
    """The service with ``part`` of its per-request work (see :data:`ABLATIONS`) switched off.

    The JSON decode returns the request decoded once beforehand; the model path (validation,
    batcher, runtime) answers a constant of the model's output shape; the request edge only
    matches the route and dispatches it (no request id, keys, limits, deadline, log or metrics).
    """
    from service.api import tfserving
    from service.http.edge import Edge
    from service.observability.access_log import AccessLog
    from service.observability.metrics import Metrics

    with ExitStack() as stack:
        if part == "access log":
            stack.enter_context(mock.patch.object(AccessLog, "__call__", lambda self, f: None))
        elif part == "metrics":
            stack.enter_context(
                mock.patch.object(Metrics, "observe_request", lambda self, **k: None)
            )
        elif part == "JSON decode":
            decoded = tfserving.tfs_codec.decode_predict_request(request.body)
            stack.enter_context(
                mock.patch.object(
                    tfserving.tfs_codec, "decode_predict_request", lambda body: decoded
                )
            )
        elif part == "model path":
            import numpy as np

            out = np.full((1, 10), 0.1, np.float32)

            async def predict(mv: Any, x: Any, **kwargs: Any) -> Any:
                return out

            stack.enter_context(mock.patch.object(tfserving.inference, "predict", predict))
        elif part == "request edge":

            async def dispatch(self: Edge, scope: Any, receive: Any, send: Any) -> None:
                found = self.routes.match(scope["method"], scope["path"])
                assert found is not None and found[0].hot is not None and self.fast is not None
                scope["app"] = self.app
                await self.fast.dispatch(found[0].hot, found[1].groupdict(), scope, receive, send)

            stack.enter_context(mock.patch.object(Edge, "__call__", dispatch))
        yield


async def measure_ablations(
    app: ASGIApp, request: Request, n: int, rounds: int
) -> list[dict[str, Any]]:
    """CPU per request at 16 tasks with each of :data:`ABLATIONS` in turn (alternating rounds,
    every other one in reverse order; each row the median round)."""
    samples: dict[str, list[float]] = {part: [] for part in ABLATIONS}
    for i in range(rounds):
        for part in ABLATIONS if i % 2 == 0 else ABLATIONS[::-1]:
            with ablated(part, request):
                samples[part].append((await measure(app, request, 16, n))["cpu_us"])
    rows = []
    for part, runs in samples.items():
        median = sorted(runs)[(len(runs) - 1) // 2]
        rows.append({"off": part, "cpu_us": median, "rounds_cpu_us": [round(r, 1) for r in runs]})
    return rows


def render_ablations(rows: list[dict[str, Any]]) -> str:
    full = rows[0]["cpu_us"]
    table = [
        [
            r["off"] or "nothing (the service as it runs)",
            f"{r['cpu_us']:.0f}",
            f"{full - r['cpu_us']:.0f}" if r["off"] else "-",
        ]
        for r in rows
    ]
    headers = ["switched off", "service CPU us/req", "so that part costs us/req"]
    return (
        f"### Where a single TF Serving JSON image's CPU goes ({ABLATE_SCENARIO}, 16 tasks)\n\n"
        + markdown_table(headers, table)
        + "\n"
    )


async def run(
    models_dir: Path,
    n: int,
    profile: str | None,
    scenarios: tuple[str, ...] = SCENARIOS,
    rounds: int = 3,
    ablate: bool = False,
) -> dict[str, Any]:
    """Every app on every scenario, in alternating rounds (see :func:`measure_rounds`): the two
    floors, the service, and the service with every model call on the inference thread."""
    from asgi_lifespan import LifespanManager

    from benchmarks.bare_floor import app as bare_app
    from benchmarks.floor_server import create_app as floor_app
    from service.app import create_app
    from service.observability.logs import configure_logging
    from service.settings import Settings

    versions = find_versions(models_dir, ("mnist", "fashion_mnist", "pima"))
    requests = build_requests(versions)
    settings = Settings(
        models_dir=models_dir,
        version_policy="specific",
        models=list(versions),
        versions={name: [info.version] for name, info in versions.items()},
    )
    report: dict[str, Any] = {"rounds": rounds, "profile": None}
    with open(os.devnull, "w") as devnull:
        sink = configure_logging(settings, devnull)
        service, thread_only = create_app(settings, sink), create_app(settings, sink)
        async with (
            LifespanManager(service, startup_timeout=120) as running,
            LifespanManager(thread_only, startup_timeout=120) as running_thread_only,
        ):
            for batcher in batchers(thread_only):
                batcher.inline_max_s = 0.0
            apps: dict[str, ASGIApp] = {
                "bare-floor": bare_app,
                "floor": floor_app(),
                "service": running.app,
                THREAD_ONLY: running_thread_only.app,
            }
            report["rows"] = await measure_rounds(apps, requests, scenarios, n, rounds)
            if ablate:
                report["ablations"] = await measure_ablations(
                    running.app, requests[ABLATE_SCENARIO], n, rounds
                )
            if profile:
                profiler = cProfile.Profile()
                profiler.enable()
                await measure(running.app, requests[profile], 16, n)
                profiler.disable()
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
                report["profile"] = out.getvalue()
    return report


async def measure_rounds(
    apps: dict[str, ASGIApp],
    requests: dict[str, Request],
    scenarios: tuple[str, ...],
    n: int,
    rounds: int,
) -> list[dict[str, Any]]:
    """Per scenario and concurrency, each app in turn (in reverse order every other round), so a
    drift of the shared machine's speed hits every app alike; each row is the median round.
    Batch requests get one round."""
    rows: list[dict[str, Any]] = []
    for name in scenarios:
        request = requests[name]
        count = n if request.items == 1 else max(20, n // 100)
        # a batch request's cost is the model's and the codec's, not the per-request path's: one
        # round is enough, and keeps the run short
        todo = rounds if request.items == 1 else 1
        for c in concurrencies(request):
            samples: dict[str, list[dict[str, float]]] = {app: [] for app in apps}
            for i in range(todo):
                order = list(apps) if i % 2 == 0 else list(apps)[::-1]
                for app in order:
                    samples[app].append(await measure(apps[app], request, c, count))
            for app, runs in samples.items():
                ordered = sorted(runs, key=lambda r: r["cpu_us"])
                rows.append(
                    {
                        "app": app,
                        "scenario": name,
                        "concurrency": c,
                        **ordered[(len(ordered) - 1) // 2],
                        "rounds_cpu_us": [round(r["cpu_us"], 1) for r in runs],
                    }
                )
    return rows


def render(report: dict[str, Any]) -> str:
    rows = report["rows"]
    cpu = {(r["app"], r["scenario"], r["concurrency"]): r["cpu_us"] for r in rows}
    table = []
    for r in rows:
        if r["app"] != "service":
            continue
        key = (r["scenario"], r["concurrency"])
        bare, base = cpu.get(("bare-floor", *key)), cpu.get(("floor", *key))
        thread_only = cpu.get((THREAD_ONLY, *key))
        table.append(
            [
                r["scenario"],
                str(r["concurrency"]),
                f"{bare:.0f}" if bare else "-",
                f"{base:.0f}" if base else "-",
                f"{r['cpu_us']:.0f}",
                f"{r['cpu_us'] - base:+.0f}" if base else "-",
                f"{thread_only:.0f}" if thread_only else "-",
                str(r["errors"]),
            ]
        )
    headers = [
        "request",
        "tasks",
        "bare floor CPU us/req",
        "floor CPU us/req",
        "service CPU us/req",
        "extra over floor",
        "service, calls on the thread only",
        "non-200",
    ]
    rounds = report.get("rounds", 1)
    note = (
        f"Median of {rounds} alternating rounds. The service runs a model call on the event loop "
        "when its measured time is short (`service.serving.batcher`); the thread-only column is "
        "the same service with every call handed to the inference thread.\n\n"
    )
    return (
        "### In-process CPU per request (app only)\n\n"
        + note
        + markdown_table(headers, table)
        + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hotpath", description=__doc__)
    parser.add_argument(
        "--models-dir", type=Path, default=Path(os.environ.get("SERVE_MODELS_DIR", "models"))
    )
    parser.add_argument("--requests", type=int, default=3000, help="single-item requests per row")
    parser.add_argument("--profile", choices=SCENARIOS, default=None)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per row")
    parser.add_argument(
        "--ablate",
        action="store_true",
        help=f"also measure {ABLATE_SCENARIO} with each part of the service switched off in turn",
    )
    parser.add_argument(
        "--scenarios",
        type=lambda text: tuple(text.split(",")),
        default=SCENARIOS,
        help=f"comma-separated subset of {','.join(SCENARIOS)}",
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[-1]})  # one core, as the service gets in the benchmark
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    report = asyncio.run(
        run(
            args.models_dir.resolve(),
            args.requests,
            args.profile,
            args.scenarios,
            args.rounds,
            args.ablate,
        )
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hotpath.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    markdown = render(report)
    if report.get("ablations"):
        markdown += "\n" + render_ablations(report["ablations"])
    (args.out / "hotpath.md").write_text(markdown)
    print(markdown)
    if report["profile"]:
        print(report["profile"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
