"""The benchmark driver: floor and service measured in alternating rounds, medians reported."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

import pytest

from benchmarks import run
from benchmarks.payloads import Request
from benchmarks.servers import ServerSpec
from benchmarks.stats import RunResult


def _result(server: str, scenario: str, concurrency: int, rps: float) -> RunResult:
    return RunResult(server, scenario, concurrency, int(rps), 0, 1.0, 1.0, 2.0, 3.0, 1.0)


class _Proc:
    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self.cpus = spec.cpus
        self.pinned: list[str | None] = []

    def pin(self, cpus: str | None) -> bool:
        if cpus == self.cpus:
            return False
        self.cpus = cpus
        self.pinned.append(cpus)
        return True

    def rss_mb(self) -> float:
        return 100.0

    def cpu_s(self) -> float:
        return 1.0


def test_median_run_picks_the_middle_round_and_keeps_every_round() -> None:
    runs = [_result("s", "json-1", 16, rps) for rps in (5000.0, 7000.0, 6000.0)]
    chosen = run.median_run(runs)
    assert chosen.rps == 6000.0
    assert chosen.extra["rounds_rps"] == [5000.0, 7000.0, 6000.0]  # in the order they ran
    assert run.median_run(runs[:2]).rps == 5000.0  # even count: the lower middle one
    single = run.median_run([_result("s", "json-1", 1, 10.0)])
    assert "rounds_rps" not in single.extra


def test_servers_are_driven_in_alternating_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str, int, float]] = []
    speeds = iter([100.0, 50.0, 300.0, 60.0, 200.0, 70.0, 9.0, 8.0, 7.0, 1.0, 2.0, 3.0])

    def drive(
        plan: Any, url: str, request: Request, c: int, server: str, seconds: float, cpu: Any
    ) -> Any:
        calls.append((server, request.name, c, seconds))
        return _result(server, request.name, c, next(speeds))

    def start(specs: list[ServerSpec], stack: contextlib.ExitStack, out: Any) -> list[Any]:
        return [_Proc(spec) for spec in specs]

    monkeypatch.setattr(run, "drive", drive)
    monkeypatch.setattr(run, "start_servers", start)
    monkeypatch.setattr(run, "check", lambda url, request: None)
    floor = ServerSpec("floor", ["x"], 1)
    service = ServerSpec("service", ["x"], 2)
    requests = {
        name: Request(name, "/p", b"{}", "application/json") for name in ("json-1", "v2json-1")
    }
    args = argparse.Namespace(quick=False, tool="httpx", duration=3.0, rounds=3)
    plan = run.make_plan(args)
    out: dict[str, Any] = {"log_dir": Path("."), "startup_s": {}, "rss_ready_mb": {}}
    out.update(rss_mb={}, notes=[])
    results = run.bench_servers(
        [(floor, [("json-1", 16)]), (service, [("json-1", 16), ("v2json-1", 1)])],
        requests,
        plan,
        out,
        rounds=3,
    )
    order = ["floor", "service", "service", "floor", "floor", "service"]
    assert [c[0] for c in calls[:6]] == order  # alternating, every other round reversed
    assert all(c[3] == 2.0 for c in calls[:6])  # 2 x 3 s over 3 rounds
    assert [c[:2] for c in calls[6:]] == [("service", "v2json-1")]  # its own work, alone: 1 run
    assert calls[6][3] == 3.0  # of the full duration
    by_key = {(r.server, r.scenario): r for r in results}
    assert by_key[("floor", "json-1")].rps == 100.0  # median of 100, 60, 200
    assert by_key[("service", "json-1")].rps == 70.0  # median of 50, 300, 70
    assert "rounds_rps" not in by_key[("service", "v2json-1")].extra
    assert out["rss_mb"] == {"floor": 100.0, "service": 100.0}


def test_a_failed_run_is_noted_and_the_rest_still_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    def drive(
        plan: Any, url: str, request: Request, c: int, server: str, seconds: float, cpu: Any
    ) -> Any:
        if server == "service" and c == 1:
            raise RuntimeError("wrk failed (1): boom")
        return _result(server, request.name, c, 100.0)

    monkeypatch.setattr(run, "drive", drive)
    monkeypatch.setattr(run, "start_servers", lambda specs, stack, out: [_Proc(s) for s in specs])
    monkeypatch.setattr(run, "check", lambda url, request: None)
    work = [("json-1", 1), ("json-1", 16)]
    servers = [(ServerSpec("floor", ["x"], 1), work), (ServerSpec("service", ["x"], 2), work)]
    requests = {"json-1": Request("json-1", "/p", b"{}", "application/json")}
    plan = run.make_plan(argparse.Namespace(quick=False, tool="httpx", duration=2.0, rounds=3))
    out: dict[str, Any] = {"log_dir": Path("."), "startup_s": {}, "rss_ready_mb": {}}
    out.update(rss_mb={}, notes=[])
    results = run.bench_servers(servers, requests, plan, out, rounds=3)
    measured = sorted((r.server, r.concurrency) for r in results)
    assert measured == [("floor", 1), ("floor", 16), ("service", 16)]
    assert len(out["notes"]) == 3 and "boom" in out["notes"][0]  # one per failed round


def test_work_lists_cover_both_connection_counts_and_json_1_at_64() -> None:
    plan = run.make_plan(argparse.Namespace(quick=False, tool="httpx", duration=4.0, rounds=3))
    rows = run.work_lists(plan)
    assert ("json-1-default", 1) in rows["single"] and ("pima-1-default", 16) in rows["single"]
    assert ("json-1", 64) in rows["single"] and ("json-1-default", 64) not in rows["single"]
    assert sorted(rows["photos"]) == sorted(
        (s, c) for s in ("photo-png", "photo-jpeg", "phone-jpeg") for c in (1, 16)
    )
    quick = run.work_lists(run.make_plan(argparse.Namespace(quick=True, tool="httpx")))
    assert ("json-1", 64) not in quick["single"]


def test_connections_replace_the_single_and_photo_rows_connection_counts() -> None:
    args = run.parse_args(["--connections", "6,12"])
    rows = run.work_lists(run.make_plan(args))
    assert {c for _, c in rows["single"]} == {6, 12}  # no json-1 at 64 either
    assert {c for _, c in rows["photos"]} == {6, 12}
    assert run.parse_args([]).connections is None


def test_service_serves_every_version_with_the_access_log_on(tmp_path: Path) -> None:
    from benchmarks.servers import service_spec

    spec = service_spec("service", tmp_path, {})
    assert spec.env["SERVE_VERSION_POLICY"] == "all"
    assert spec.env["SERVE_LOG_LEVEL"] == "info"  # info: the access log writes every request
    assert spec.cwd is None and "PYTHONPATH" not in spec.env
    ref = service_spec("reference", tmp_path, {}, source=tmp_path / "old")
    assert ref.cwd == tmp_path / "old" and ref.env["PYTHONPATH"] == str(tmp_path / "old")


def test_quality_facts_read_the_default_versions_metadata(tmp_path: Path) -> None:
    import json

    from benchmarks.run import quality_facts

    def version(model: str, number: int, recipe: str, accuracy: float, seconds: float) -> None:
        folder = tmp_path / model / str(number)
        folder.mkdir(parents=True)
        meta = {
            "recipe": {"name": recipe},
            "metrics": {"accuracy": accuracy},
            "training": {"seconds": seconds},
        }
        (folder / "metadata.json").write_text(json.dumps(meta))

    version("mnist", 1, "tutorial", 0.98, 90.0)
    version("mnist", 2, "best", 0.996, 1500.0)
    version("fashion_mnist", 2, "best", 0.934, 1800.0)
    version("fashion_mnist", 3, "best+dynamic", 0.933, 1800.0)
    facts = quality_facts(tmp_path, {"mnist": 1, "fashion_mnist": 3})
    assert facts["defaults"]["mnist"] == {
        "version": 1,
        "recipe": "tutorial",
        "accuracy": 0.98,
        "target": 0.995,
    }
    assert facts["defaults"]["fashion_mnist"]["version"] == 3
    assert facts["training"]["fashion_mnist"] == {
        "version": 2,
        "recipe": "best",
        "seconds": 1800.0,
        "budget_s": 900.0,
    }


def test_photo_rows_move_the_side_by_side_servers_to_both_cpus(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    procs: list[_Proc] = []

    def start(specs: list[ServerSpec], stack: contextlib.ExitStack, out: Any) -> list[Any]:
        procs.extend(_Proc(spec) for spec in specs)
        return procs

    monkeypatch.setattr(run, "drive", lambda *a: _result(a[4], a[2].name, a[3], 10.0))
    monkeypatch.setattr(run, "start_servers", start)
    monkeypatch.setattr(run, "check", lambda url, request: None)
    monkeypatch.setattr(run, "PHOTO_SETTLE_S", 0.0)
    names = ("json-1", "photo-png", "json-1024")
    requests = {n: Request(n, "/p", b"{}", "application/json") for n in names}
    plan = run.make_plan(argparse.Namespace(quick=False, tool="httpx", duration=1.0, rounds=1))
    plan.server_cpus, plan.photo_cpus = "1", "0,1"
    work = [("json-1", 1), ("photo-png", 1), ("json-1024", 2)]
    servers = [(ServerSpec(n, ["x"], 1, cpus="1"), work) for n in ("floor", "service")]
    out: dict[str, Any] = {"log_dir": Path("."), "startup_s": {}, "rss_ready_mb": {}}
    out.update(rss_mb={}, notes=[])
    run.bench_servers(servers, requests, plan, out, rounds=1)
    assert [p.pinned for p in procs] == [["0,1", "1"], ["0,1", "1"]]  # photos, then back
    server_only = run.make_plan(
        argparse.Namespace(quick=False, tool="httpx", duration=1.0, rounds=1, photo_cpus="server")
    )
    assert server_only.photo_cpus == server_only.server_cpus
