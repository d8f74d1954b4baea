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
NAIVE = "naive"
SINGLE = ("json-1", "png-1", "pima-1")
BATCHES = ("json-1024", "v2json-1024", "v2bin-1024")
LABELS = {
    "json-1": "1 image, TF Serving JSON",
    "png-1": "1 image, PNG upload (own API)",
    "pima-1": "1 Pima record (own API)",
    "v2json-1": "1 image, V2 JSON",
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
    """The service's req/s as a share of the floor's, measured in the same run.

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
    results: Sequence[RunResult], startup_s: dict[str, float], rss_mb: dict[str, float]
) -> list[Goal]:
    svc16, floor16, naive16 = (find(results, s, "json-1", 16) for s in (SERVICE, FLOOR, NAIVE))
    svc1 = find(results, SERVICE, "json-1", 1)
    binary = find(results, SERVICE, "v2bin-1024")
    json_batch = find(results, SERVICE, "json-1024")
    goals: list[Goal] = []

    def add(name: str, target: str, value: float | None, text: str, ok: bool) -> None:
        goals.append(
            Goal(
                name, target, text if value is not None else "-", ok if value is not None else None
            )
        )

    r_floor = share_of_floor(svc16, floor16)
    add(
        "1 image, c=16: share of floor req/s",
        ">= 85%",
        r_floor,
        f"{(r_floor or 0):.0%}",
        (r_floor or 0) >= 0.85,
    )
    r_naive = ratio(svc16.rps if svc16 else None, naive16.rps if naive16 else None)
    add(
        "1 image, c=16: times naive req/s",
        ">= 200x",
        r_naive,
        f"{(r_naive or 0):,.0f}x",
        (r_naive or 0) >= 200,
    )
    p99 = svc16.p99_ms if svc16 else None
    add("1 image, c=16: p99", "<= 10 ms", p99, f"{fmt_ms(p99)} ms", (p99 or 1e9) <= 10.0)
    p50 = svc1.p50_ms if svc1 else None
    add("1 image, c=1: p50", "<= 1 ms", p50, f"{fmt_ms(p50)} ms", (p50 or 1e9) <= 1.0)
    b = binary.items_per_s if binary else None
    add("1024 images, V2 binary", ">= 150,000 img/s", b, f"{fmt(b)} img/s", (b or 0) >= 150_000)
    jsons = [r for r in (json_batch, find(results, SERVICE, "v2json-1024")) if r is not None]
    best_json = max(jsons, key=lambda r: r.items_per_s) if jsons else None
    j = best_json.items_per_s if best_json else None
    where = LABELS[best_json.scenario].split(", ")[1] if best_json else ""
    add("1024 images, JSON", ">= 30,000 img/s", j, f"{fmt(j)} img/s ({where})", (j or 0) >= 30_000)
    s = startup_s.get(SERVICE)
    add("start-up to /readyz, 3 models", "<= 6 s", s, f"{(s or 0):.2f} s", (s or 1e9) <= 6.0)
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
        f"ahead of best peer, req/s ({where})",
        target_rps,
        rps,
        f"{fmt(rps)} req/s",
        (rps or 0) > peer_rps,
    )
    add(
        f"ahead of best peer, p99 ({where})",
        target_p99,
        p99,
        f"{fmt_ms(p99)} ms",
        (p99 or 1e9) < peer_p99,
    )
    return goals


def _single_rows(results: Sequence[RunResult]) -> list[list[str]]:
    rows = []
    for scenario in SINGLE:
        for c in sorted({r.concurrency for r in results if r.scenario == scenario}):
            svc = find(results, SERVICE, scenario, c)
            flo = find(results, FLOOR, scenario, c)
            nai = find(results, NAIVE, scenario, c)
            if svc is None:
                continue
            r_floor = share_of_floor(svc, flo)
            r_naive = ratio(svc.rps, nai.rps if nai else None)
            rows.append(
                [
                    LABELS[scenario],
                    str(c),
                    fmt(svc.rps),
                    fmt_ms(svc.p50_ms),
                    fmt_ms(svc.p99_ms),
                    fmt_ms(svc.p999_ms),
                    fmt(flo.rps) if flo else "-",
                    fmt(nai.rps, 1) if nai else "-",
                    f"{r_floor:.0%}" if r_floor is not None else "-",
                    f"{r_naive:,.0f}x" if r_naive is not None else "-",
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
    """The markdown report: headline table, batches, workers, start-up and memory, goals."""
    out = [f"# Benchmark results ({report['created_at']})", ""]
    machine = report["machine"]
    out.append(
        f"Machine: {machine['cpu_model']}, {machine['cpus']} cores, Python {machine['python']}; "
        f"load generator: {report['tool']} on CPU {report['loadgen_cpus']}, one-worker servers "
        f"on CPU {report['server_cpus']}; {report['duration_s']:g} s per run after "
        f"{report['warmup_s']:g} s warm-up. Command: `{report['command']}`."
    )
    rounds = report.get("rounds", 1)
    if rounds > 1:
        out.append(
            f"\nThe floor and the service ran side by side in {rounds} alternating rounds of "
            f"{report['round_s']:g} s per run: each shows its median round, and **of floor** is "
            "the median of the per-round ratios (the rounds' req/s are in `latest.json`)."
        )
    out += ["", "## Single requests (service vs the floor and naive servers)", ""]
    out.append(
        markdown_table(
            [
                "request",
                "conns",
                "req/s",
                "p50 ms",
                "p99 ms",
                "p99.9 ms",
                "floor req/s",
                "naive req/s",
                "of floor",
                "x naive",
            ],
            _single_rows(results),
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
    out += ["", "## Goals", ""]
    goal_rows = [
        [g["name"], g["target"], g["measured"], _verdict(g["met"])] for g in report["goals"]
    ]
    out.append(markdown_table(["goal", "target", "measured", "met"], goal_rows))
    if report.get("notes"):
        out += ["", *[f"- {note}" for note in report["notes"]]]
    return "\n".join(out) + "\n"


def _verdict(met: bool | None) -> str:
    return "not measured" if met is None else ("yes" if met else "NO")
