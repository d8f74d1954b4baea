"""Turn the benchmark's results into markdown tables and a verdict against every goal."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.stats import RunResult

SERVICE = "service"
FLOOR = "floor"
BARE = "bare-floor"
REFERENCE = "reference"
NAIVE = "naive"
# single requests: each model's default version (version-less path) and its tutorial version
SINGLE = (
    "json-1-default",
    "json-1",
    "fashion-json-1-default",
    "fashion-json-1",
    "pima-1-default",
    "pima-1",
    "png-1",
)
PHOTOS = ("photo-png", "photo-jpeg", "phone-jpeg")
BATCHES = ("json-1024", "v2json-1024", "v2bin-1024")
# The training-time goal: a model's best recipe trains within this many seconds on this machine.
TRAINING_BUDGET_S = {"fashion_mnist": 900.0}
DEFAULT_IMAGE_MODELS = {"mnist": "json-1-default", "fashion_mnist": "fashion-json-1-default"}
LABELS = {
    "json-1-default": "mnist default, 1 image, TF Serving JSON",
    "json-1": "mnist tutorial, 1 image, TF Serving JSON",
    "fashion-json-1-default": "fashion_mnist default, 1 image, TF Serving JSON",
    "fashion-json-1": "fashion_mnist tutorial, 1 image, TF Serving JSON",
    "pima-1-default": "pima default, 1 record (own API)",
    "pima-1": "pima tutorial, 1 record (own API)",
    "png-1": "mnist tutorial, 28x28 PNG (own API)",
    "photo-png": "mnist default, 316x239 PNG photo (own API)",
    "photo-jpeg": "mnist default, 160x240 JPEG photo (own API)",
    "phone-jpeg": "mnist default, 3000x4000 phone JPEG (own API)",
    "v2json-1": "mnist tutorial, 1 image, V2 JSON",
    "json-1024": "1024 images, TF Serving JSON",
    "v2json-1024": "1024 images, V2 JSON",
    "v2bin-1024": "1024 images, V2 binary",
}
# The best peer in the side-by-side runs: MLServer with adaptive batching for req/s,
# MLServer without batching for p99 (both at 16 connections, one process).
PEER_BEST_RPS = 1301.0
PEER_BEST_P99_MS = 26.0
PEERS = ("litserve", "litserve-batch", "mlserver")


def fmt(value: float | None, digits: int = 0) -> str:
    """A number for a table: thousands separators, ``-`` for missing or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def fmt_ms(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0 or math.isnan(a) or math.isnan(b):
        return None
    return a / b


def share_of_floor(service: RunResult | None, floor: RunResult | None) -> float | None:
    """The service's req/s as a share of the floor's (or any server's), measured in the same run.

    When both ran in alternating rounds (``extra["rounds_rps"]``, see ``benchmarks.run``), it is
    the median of the per-round ratios (the lower middle one for an even count): each round's
    two runs are seconds apart, so the machine's drift cancels out of each ratio. Otherwise the
    ratio of the two runs.
    """
    if service is None or floor is None:
        return None
    ours, theirs = service.extra.get("rounds_rps"), floor.extra.get("rounds_rps")
    if ours and theirs and len(ours) == len(theirs) and all(f > 0 for f in theirs):
        ratios = [s / f for s, f in zip(ours, theirs, strict=True)]
        return float(statistics.median_low(ratios))  # as median_run picks its round
    return ratio(service.rps, floor.rps)


def cpu_share(service: RunResult | None, floor: RunResult | None) -> float | None:
    """The floor's server CPU per request over the service's: the share of the floor's req/s
    the service would reach if CPU were all that counted (1.0: it costs what the floor costs).
    The median of the per-round ratios when both ran in rounds, else the ratio of the runs."""
    if service is None or floor is None:
        return None
    ours, theirs = service.extra.get("rounds_cpu_us"), floor.extra.get("rounds_cpu_us")
    if ours and theirs and len(ours) == len(theirs) and all(s > 0 for s in ours):
        return float(statistics.median_low([f / s for s, f in zip(ours, theirs, strict=True)]))
    return ratio(
        floor.extra.get("server_cpu_us_per_req"), service.extra.get("server_cpu_us_per_req")
    )


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GitHub markdown table; numeric-looking columns are right-aligned."""
    body = [list(map(str, row)) for row in rows]
    for row in body:
        if len(row) != len(headers):
            raise ValueError(f"row has {len(row)} cells, expected {len(headers)}: {row}")
    numeric = [bool(body) and all(_numeric(row[i]) for row in body) for i in range(len(headers))]
    align = ["---:" if n else "---" for n in numeric]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def _numeric(cell: str) -> bool:
    text = cell.replace(",", "").replace("x", "").replace("%", "").strip()
    if text in ("-", ""):
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def find(
    results: Sequence[RunResult], server: str, scenario: str, concurrency: int | None = None
) -> RunResult | None:
    """The result for (server, scenario[, concurrency]); the best req/s when several match."""
    matches = [
        r
        for r in results
        if r.server == server
        and r.scenario == scenario
        and (concurrency is None or r.concurrency == concurrency)
    ]
    return max(matches, key=lambda r: r.rps) if matches else None


@dataclass(frozen=True)
class Goal:
    name: str
    target: str
    measured: str
    met: bool | None  # None: not measured in this run


def evaluate_goals(
    results: Sequence[RunResult],
    startup_s: dict[str, float],
    rss_mb: dict[str, float],
    hit: dict[str, str] | None = None,
    quality: dict[str, Any] | None = None,
) -> list[Goal]:
    """Every goal's verdict. ``hit`` names the version each scenario reached (e.g. "v2");
    ``quality`` is what the versions' metadata says (see :func:`quality_goals`).

    The first goals were set on the tutorial MLP (one image, TF Serving JSON, ``json-1``) and are
    evaluated on that row; the newer ones on each model's default version, the bare-ASGI floor
    and, when a reference commit ran beside the service, the photo rows against it.
    """
    hit = hit or {}
    svc16, floor16, naive16 = (find(results, s, "json-1", 16) for s in (SERVICE, FLOOR, NAIVE))
    svc1 = find(results, SERVICE, "json-1", 1)
    binary = find(results, SERVICE, "v2bin-1024")
    json_batch = find(results, SERVICE, "json-1024")
    tut = f"tutorial mnist{_at(hit.get('json-1'))}, 1 image TF Serving JSON"
    goals: list[Goal] = []

    def add(name: str, target: str, value: float | None, text: str, ok: bool) -> None:
        goals.append(
            Goal(
                name, target, text if value is not None else "-", ok if value is not None else None
            )
        )

    r_floor = share_of_floor(svc16, floor16)
    add(
        f"{tut}, c=16: share of FastAPI floor req/s",
        ">= 85%",
        r_floor,
        f"{(r_floor or 0):.0%}",
        (r_floor or 0) >= 0.85,
    )
    r_naive = ratio(svc16.rps if svc16 else None, naive16.rps if naive16 else None)
    add(
        f"{tut}, c=16: times naive req/s",
        ">= 200x",
        r_naive,
        f"{(r_naive or 0):,.0f}x",
        (r_naive or 0) >= 200,
    )
    p99 = svc16.p99_ms if svc16 else None
    add(f"{tut}, c=16: p99", "<= 10 ms", p99, f"{fmt_ms(p99)} ms", (p99 or 1e9) <= 10.0)
    p50 = svc1.p50_ms if svc1 else None
    add(f"{tut}, c=1: p50", "<= 1 ms", p50, f"{fmt_ms(p50)} ms", (p50 or 1e9) <= 1.0)
    b = binary.items_per_s if binary else None
    add(
        "tutorial mnist, 1024 images, V2 binary",
        ">= 150,000 img/s",
        b,
        f"{fmt(b)} img/s",
        (b or 0) >= 150_000,
    )
    jsons = [r for r in (json_batch, find(results, SERVICE, "v2json-1024")) if r is not None]
    best_json = max(jsons, key=lambda r: r.items_per_s) if jsons else None
    j = best_json.items_per_s if best_json else None
    where = LABELS[best_json.scenario].split(", ")[1] if best_json else ""
    add(
        "tutorial mnist, 1024 images, JSON",
        ">= 30,000 img/s",
        j,
        f"{fmt(j)} img/s ({where})",
        (j or 0) >= 30_000,
    )
    s = startup_s.get(SERVICE)
    add(
        "start-up to /readyz, 3 models (every version)",
        "<= 6 s",
        s,
        f"{(s or 0):.2f} s",
        (s or 1e9) <= 6.0,
    )
    m = rss_mb.get(SERVICE)
    add("service RSS after the load", "<= 700 MB", m, f"{fmt(m)} MB", (m or 1e9) <= 700.0)
    rps = svc16.rps if svc16 else None
    peers = [r for r in results if r.server in PEERS and r.concurrency == 16 and r.errors == 0]
    if peers:  # side by side in this run
        best_rps = max(peers, key=lambda r: r.rps)
        best_p99 = min(peers, key=lambda r: r.p99_ms)
        target_rps = f"> {fmt(best_rps.rps)} req/s ({best_rps.server})"
        target_p99 = f"< {fmt_ms(best_p99.p99_ms)} ms ({best_p99.server})"
        peer_rps, peer_p99, where = best_rps.rps, best_p99.p99_ms, "side by side"
    else:
        target_rps = f"> {fmt(PEER_BEST_RPS)} req/s"
        target_p99 = f"< {PEER_BEST_P99_MS:g} ms"
        peer_rps, peer_p99, where = PEER_BEST_RPS, PEER_BEST_P99_MS, "issue's figures"
    add(
        f"{tut}: ahead of best peer, req/s ({where})",
        target_rps,
        rps,
        f"{fmt(rps)} req/s",
        (rps or 0) > peer_rps,
    )
    add(
        f"{tut}: ahead of best peer, p99 ({where})",
        target_p99,
        p99,
        f"{fmt_ms(p99)} ms",
        (p99 or 1e9) < peer_p99,
    )
    for model, scenario in DEFAULT_IMAGE_MODELS.items():
        svc = find(results, SERVICE, scenario, 16)
        floor = find(results, FLOOR, scenario, 16)
        name = f"{model} default{_at(hit.get(scenario))}, 1 image TF Serving JSON, c=16"
        share = share_of_floor(svc, floor)
        add(
            f"{name}: share of FastAPI floor req/s",
            ">= 85%",
            share,
            f"{(share or 0):.0%}{_cpu_note(svc, floor)}",
            (share or 0) >= 0.85,
        )
        p99 = svc.p99_ms if svc else None
        add(f"{name}: p99", "<= 10 ms", p99, f"{fmt_ms(p99)} ms", (p99 or 1e9) <= 10.0)
    goals += quality_goals(quality or {})
    bare16 = find(results, BARE, "json-1", 16)
    bare = share_of_floor(svc16, bare16)
    add(
        f"MLP JSON path ({tut}), c=16, access log on: share of bare-ASGI floor",
        ">= 50%",
        bare,
        f"{(bare or 0):.0%}{_cpu_note(svc16, bare16)}",
        (bare or 0) >= 0.5,
    )
    photo = find(results, SERVICE, "photo-png", 16)
    times = share_of_floor(photo, find(results, REFERENCE, "photo-png", 16))
    add(
        f"316x239 PNG photo{_at(hit.get('photo-png'))}, c=16: times the reference req/s",
        ">= 3x",
        times,
        f"{(times or 0):.2f}x ({fmt(photo.rps if photo else None)} req/s)",
        (times or 0) >= 3.0,
    )
    phone = find(results, SERVICE, "phone-jpeg", 1)
    ref_phone = find(results, REFERENCE, "phone-jpeg", 1)
    cut = ratio(phone.p50_ms if phone else None, ref_phone.p50_ms if ref_phone else None)
    add(
        f"3000x4000 phone JPEG{_at(hit.get('phone-jpeg'))}, c=1: p50 against the reference",
        "< 100%",
        cut,
        f"{(cut or 0):.0%} ({fmt_ms(phone.p50_ms if phone else None)} vs "
        f"{fmt_ms(ref_phone.p50_ms if ref_phone else None)} ms)",
        (cut or 1e9) < 1.0,
    )
    return goals


def quality_goals(quality: dict[str, Any]) -> list[Goal]:
    """The goals the versions' metadata decides: each default image model's test accuracy
    against its target, and the training time of a model's newest version of its best recipe.

    ``quality["defaults"]``: per model, ``{"version", "recipe", "accuracy", "target"}`` of the
    version the service reported as its default; ``quality["training"]``: per model,
    ``{"version", "recipe", "seconds", "budget_s"}``.
    """
    goals = []
    for model in DEFAULT_IMAGE_MODELS:
        info = quality.get("defaults", {}).get(model)
        if info is None:
            continue
        accuracy, target = info.get("accuracy"), info.get("target")
        name = f"{model} default (v{info['version']}, {info['recipe']}): test accuracy, full set"
        if accuracy is None or target is None:
            goals.append(Goal(name, f">= {target}" if target else "-", "-", None))
            continue
        goals.append(Goal(name, f">= {target:.3f}", f"{accuracy:.4f}", accuracy >= target))
    for model, info in quality.get("training", {}).items():
        seconds, budget = info.get("seconds"), info["budget_s"]
        name = f"{model} {info['recipe']} recipe (v{info['version']}): training time"
        if seconds is None:
            goals.append(Goal(name, f"<= {budget:g} s", "-", None))
            continue
        goals.append(Goal(name, f"<= {budget:g} s", f"{seconds:,.0f} s", seconds <= budget))
    return goals


def _cpu_note(service: RunResult | None, floor: RunResult | None) -> str:
    """`` (server CPU per request: floor vs service µs, share)``, or nothing unmeasured."""
    by_cpu = cpu_share(service, floor)
    if by_cpu is None or service is None or floor is None:
        return ""
    return (
        f" (server CPU per request: {fmt(floor.extra.get('server_cpu_us_per_req'))} vs "
        f"{fmt(service.extra.get('server_cpu_us_per_req'))} µs, {by_cpu:.0%})"
    )


def _at(version: str | None) -> str:
    return f" ({version})" if version else ""


def version_hit(report: dict[str, Any], server: str, scenario: str) -> str:
    """The version ``scenario`` reached on ``server``: "v3", "v3 (default)", or "" for a floor."""
    info = report.get("scenarios", {}).get(scenario)
    if info is None or server not in report.get("default_versions", {}):
        return ""
    if info["version"] != "default":
        return f"v{info['version']}"
    found = report["default_versions"][server].get(info["model"])
    return f"v{found} (default)" if found is not None else "default (unknown)"


def _single_rows(report: dict[str, Any], results: Sequence[RunResult]) -> list[list[str]]:
    rows = []
    order = {name: i for i, name in enumerate(SINGLE)}
    # the one-core servers only: the worker comparison runs on both cores and has its own table
    singles = [r for r in results if r.scenario in order and r.server in _RANKS]
    singles.sort(key=lambda r: (order[r.scenario], r.concurrency, _server_rank(r.server)))
    for r in singles:
        flo = find(results, FLOOR, r.scenario, r.concurrency)
        bare = find(results, BARE, r.scenario, r.concurrency)
        r_floor = share_of_floor(r, flo)
        r_bare = share_of_floor(r, bare)
        hit = version_hit(report, r.server, r.scenario)
        rows.append(
            [
                r.server,
                LABELS.get(r.scenario, r.scenario) + (f" [{hit}]" if hit else ""),
                str(r.concurrency),
                fmt(r.rps, 1 if r.rps < 100 else 0),
                fmt_ms(r.p50_ms),
                fmt_ms(r.p99_ms),
                f"{r_floor:.0%}" if r_floor is not None else "-",
                f"{r_bare:.0%}" if r_bare is not None else "-",
                fmt(r.extra.get("server_cpu_us_per_req")),
            ]
        )
    return rows


_RANKS = {SERVICE: 0, REFERENCE: 1, FLOOR: 2, BARE: 3, NAIVE: 4}


def _server_rank(server: str) -> int:
    return _RANKS.get(server, len(_RANKS))


def _photo_rows(report: dict[str, Any], results: Sequence[RunResult]) -> list[list[str]]:
    rows = []
    for scenario in PHOTOS:
        for c in sorted({r.concurrency for r in results if r.scenario == scenario}):
            svc = find(results, SERVICE, scenario, c)
            if svc is None:
                continue
            ref = find(results, REFERENCE, scenario, c)
            flo = find(results, FLOOR, scenario, c)
            bare = find(results, BARE, scenario, c)
            times = share_of_floor(svc, ref)
            share = share_of_floor(svc, flo)
            share_bare = share_of_floor(svc, bare)
            hit = version_hit(report, SERVICE, scenario)
            size = report.get("request_bytes", {}).get(scenario)
            rows.append(
                [
                    LABELS[scenario] + (f" [{hit}]" if hit else ""),
                    fmt(size / 1024, 1) if size else "-",
                    str(c),
                    fmt(svc.rps, 1 if svc.rps < 100 else 0),
                    fmt_ms(svc.p50_ms),
                    fmt_ms(svc.p99_ms),
                    fmt(ref.rps, 1 if ref.rps < 100 else 0) if ref else "-",
                    fmt_ms(ref.p50_ms) if ref else "-",
                    fmt_ms(ref.p99_ms) if ref else "-",
                    f"{times:.2f}x" if times is not None else "-",
                    fmt(flo.rps, 1 if flo.rps < 100 else 0) if flo else "-",
                    f"{share:.0%}" if share is not None else "-",
                    fmt(bare.rps, 1 if bare.rps < 100 else 0) if bare else "-",
                    f"{share_bare:.0%}" if share_bare is not None else "-",
                ]
            )
    return rows


def _runs_rows(results: Sequence[RunResult]) -> list[list[str]]:
    return [
        [
            r.server,
            LABELS.get(r.scenario, r.scenario),
            str(r.concurrency),
            fmt(r.rps),
            fmt(r.items_per_s) if r.items_per_request > 1 else "-",
            fmt_ms(r.p50_ms),
            fmt_ms(r.p99_ms),
            fmt_ms(r.p999_ms),
            str(r.errors),
            r.tool,
        ]
        for r in results
    ]


def render(report: dict[str, Any], results: Sequence[RunResult]) -> str:
    """The markdown report: single requests, goals, photos, peers, every run, start-up, memory."""
    out = [f"# Benchmark results ({report['created_at']})", ""]
    machine = report["machine"]
    load = machine.get("loadavg_at_start")
    load_end = machine.get("loadavg_at_end")
    out.append(
        f"Machine: {machine['cpu_model']}, {machine['cpus']} cores, Python {machine['python']}; "
        f"load generator: {report['tool']} on CPU {report['loadgen_cpus']}, one-worker servers "
        f"on CPU {report['server_cpus']}; {report['duration_s']:g} s per run after "
        f"{report['warmup_s']:g} s warm-up. Command: `{report['command']}`"
        + (f" (exactly: `{report['argv']}`)." if report.get("argv") else ".")
        + (f" Load average (1, 5, 15 min) at the start: {_load(load)}" if load else "")
        + (f", at the end: {_load(load_end)}." if load_end else ".")
    )
    served = report.get("default_versions", {})
    tutorial = report.get("versions", {})
    if tutorial:
        parts = [f"{name} v{info['version']} ({info['recipe']})" for name, info in tutorial.items()]
        out.append(f"\nTutorial versions (the `/versions/{{n}}` rows): {', '.join(parts)}.")
    for server, models in served.items():
        parts = [f"{name} v{v}" for name, v in models.items()]
        out.append(
            f"Default versions {server} reported (`GET /models`, the version-less rows): "
            + (", ".join(parts) or "none reported")
            + "."
        )
    if report.get("reference"):
        out.append(
            f"\n**reference** is `python -m service` of commit `{report['reference']}` (a "
            "detached git worktree, same venv, same models and settings)."
        )
    rounds = report.get("rounds", 1)
    if rounds > 1:
        out.append(
            f"\nServers that share a single-request row (the floors, the service, the reference) "
            f"ran side by side in {rounds} alternating rounds of {report['round_s']:g} s per run "
            "(every other round in reverse order): each shows its median round, and every share "
            "or ratio is the median of the per-round ratios (the rounds' req/s are in "
            "`latest.json`)."
        )
    out.append(
        "\n**server CPU µs/req** is the server's CPU time (every thread) during the measured run "
        "over the requests it answered. Other load on a shared machine moves it far less than "
        "req/s, and it does not depend on the load generator keeping up; a goal's ratio in CPU "
        "terms (floor's CPU per request over the service's) is shown beside its req/s share."
    )
    out += ["", "## Single requests", ""]
    out.append(
        markdown_table(
            [
                "server",
                "scenario [version hit]",
                "conns",
                "req/s",
                "p50 ms",
                "p99 ms",
                "of FastAPI floor",
                "of bare floor",
                "server CPU µs/req",
            ],
            _single_rows(report, results),
        )
    )
    out += ["", "## Goals", ""]
    goal_rows = [
        [g["name"], g["target"], g["measured"], _verdict(g["met"])] for g in report["goals"]
    ]
    out.append(markdown_table(["goal", "target", "measured", "met"], goal_rows))
    photo_rows = _photo_rows(report, results)
    if photo_rows:
        out += ["", "## Photos and drawings (raw image bodies, own API)", ""]
        photo_cpus = report.get("photo_cpus")
        where = (
            f"Every server of these rows (floors, service and reference alike) ran on CPUs "
            f"{photo_cpus}, the load generator on CPU {report['loadgen_cpus']}. "
            if photo_cpus and photo_cpus != report.get("server_cpus")
            else ""
        )
        out.append(
            where + "Both floors read the same bytes (the whole body) and answer a constant; the "
            "service decodes, frames and classifies the picture.\n"
        )
        out.append(
            markdown_table(
                [
                    "scenario [version hit]",
                    "KiB",
                    "conns",
                    "req/s",
                    "p50 ms",
                    "p99 ms",
                    "reference req/s",
                    "ref p50 ms",
                    "ref p99 ms",
                    "x reference",
                    "FastAPI floor req/s",
                    "of FastAPI floor",
                    "bare floor req/s",
                    "of bare floor",
                ],
                photo_rows,
            )
        )
    peer_rows = [
        [
            r.server,
            LABELS.get(r.scenario, r.scenario),
            str(r.concurrency),
            fmt(r.rps),
            fmt_ms(r.p50_ms),
            fmt_ms(r.p99_ms),
            str(r.errors),
        ]
        for r in results
        if (r.server in PEERS or r.server == SERVICE) and r.scenario in ("json-1", "v2json-1")
    ]
    if any(r.server in PEERS for r in results):
        out += ["", "## Side by side with the peers (same TFLite model)", ""]
        out.append(
            markdown_table(
                ["server", "request", "conns", "req/s", "p50 ms", "p99 ms", "errors"], peer_rows
            )
        )
    out += ["", "## Every run", ""]
    out.append(
        markdown_table(
            [
                "server",
                "request",
                "conns",
                "req/s",
                "images/s",
                "p50 ms",
                "p99 ms",
                "p99.9 ms",
                "errors",
                "tool",
            ],
            _runs_rows(results),
        )
    )
    out += ["", "## Start-up and memory", ""]
    rows = [
        [
            name,
            f"{report['startup_s'].get(name, math.nan):.2f}",
            fmt(report["rss_ready_mb"].get(name)),
            fmt(report["rss_mb"].get(name)),
        ]
        for name in report["startup_s"]
    ]
    out.append(
        markdown_table(["server", "start to ready s", "RSS ready MB", "RSS after load MB"], rows)
    )
    if report.get("notes"):
        out += ["", *[f"- {note}" for note in report["notes"]]]
    return "\n".join(out) + "\n"


def _load(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def _verdict(met: bool | None) -> str:
    return "not measured" if met is None else ("yes" if met else "NO")
