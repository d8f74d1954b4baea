"""The markdown tables and the goal verdicts of the benchmark report."""

from __future__ import annotations

import pytest

from benchmarks.report import (
    evaluate_goals,
    find,
    fmt,
    fmt_ms,
    markdown_table,
    ratio,
    render,
    share_of_floor,
)
from benchmarks.stats import RunResult

TUT = "tutorial mnist, 1 image TF Serving JSON"


def run(
    server: str,
    scenario: str,
    c: int,
    rps: float,
    p50: float = 0.5,
    p99: float = 5.0,
    items: int = 1,
) -> RunResult:
    seconds = 2.0
    return RunResult(
        server,
        scenario,
        c,
        requests=int(rps * seconds),
        errors=0,
        seconds=seconds,
        p50_ms=p50,
        p99_ms=p99,
        p999_ms=p99 * 1.5,
        mean_ms=p50,
        items_per_request=items,
    )


def test_markdown_table_aligns_numbers_right_and_text_left() -> None:
    table = markdown_table(["name", "req/s"], [["floor", "6,500"], ["naive", "24.5"]])
    lines = table.splitlines()
    assert lines[0] == "| name | req/s |"
    assert lines[1] == "|---|---:|"
    assert lines[2] == "| floor | 6,500 |"
    assert len(lines) == 4


def test_markdown_table_rejects_ragged_rows() -> None:
    with pytest.raises(ValueError, match="2 cells"):
        markdown_table(["a", "b", "c"], [["1", "2"]])


def test_number_formatting() -> None:
    assert fmt(123456.7) == "123,457"
    assert fmt(2.345, 1) == "2.3"
    assert fmt(None) == "-" and fmt(float("nan")) == "-"
    assert fmt_ms(0.4567) == "0.46" and fmt_ms(123.45) == "123.5"
    assert ratio(10.0, 4.0) == 2.5 and ratio(1.0, 0.0) is None and ratio(None, 1.0) is None


def test_find_picks_the_matching_run() -> None:
    results = [run("service", "json-1", 1, 900), run("service", "json-1", 16, 5000)]
    found = find(results, "service", "json-1", 16)
    assert found is not None and found.concurrency == 16
    assert find(results, "floor", "json-1", 16) is None


def test_goals_met_and_missed_follow_the_figures() -> None:
    results = [
        run("service", "json-1", 16, 5600, p99=8.0),
        run("service", "json-1", 1, 1500, p50=0.6),
        run("floor", "json-1", 16, 6000),
        run("naive", "json-1", 16, 25),
        run("service", "v2bin-1024", 4, 100, items=1024),  # 102,400 img/s: missed
        run("service", "json-1024", 2, 20, items=1024),  # 20,480 img/s
        run("service", "v2json-1024", 2, 40, items=1024),  # 40,960 img/s: the better JSON
    ]
    goals = {g.name: g for g in evaluate_goals(results, {"service": 4.0}, {"service": 800.0})}
    assert goals[TUT + ", c=16: share of FastAPI floor req/s"].met is True
    assert goals[TUT + ", c=16: share of FastAPI floor req/s"].measured == "93%"
    assert goals[TUT + ", c=16: times naive req/s"].met is True
    assert goals[TUT + ", c=16: p99"].met is True
    assert goals[TUT + ", c=1: p50"].met is True
    assert goals["tutorial mnist, 1024 images, V2 binary"].met is False
    assert goals["tutorial mnist, 1024 images, JSON"].met is True
    assert goals["tutorial mnist, 1024 images, JSON"].measured == "40,960 img/s (V2 JSON)"
    assert goals["start-up to /readyz, 3 models (every version)"].met is True
    assert goals["service RSS after the load"].met is False


def test_goals_without_measurements_are_not_judged() -> None:
    goals = evaluate_goals([], {}, {})
    assert goals and all(g.met is None and g.measured == "-" for g in goals)


def test_render_shows_ratios_and_goals() -> None:
    results = [
        run("service", "json-1", 16, 5000),
        run("floor", "json-1", 16, 6250),
        run("naive", "json-1", 16, 20),
    ]
    goals = evaluate_goals(results, {"service": 3.0}, {"service": 400.0})
    report = {
        "created_at": "2026-01-01 00:00 UTC",
        "machine": {"cpu_model": "Test CPU", "cpus": 2, "python": "3.11"},
        "tool": "wrk",
        "loadgen_cpus": "0",
        "server_cpus": "1",
        "duration_s": 5,
        "warmup_s": 1,
        "command": "make bench",
        "startup_s": {"service": 3.0},
        "rss_ready_mb": {"service": 390.0},
        "rss_mb": {"service": 400.0},
        "goals": [g.__dict__ for g in goals],
        "notes": ["a note"],
    }
    text = render(report, results)
    assert "Test CPU, 2 cores" in text and "`make bench`" in text
    assert "| service | mnist tutorial, 1 image, TF Serving JSON | 16 | 5,000 |" in text
    assert "| naive | mnist tutorial, 1 image, TF Serving JSON | 16 | 20.0 |" in text
    assert "| 80% | - |" in text  # of the FastAPI floor; no bare floor in this run
    assert f"| {TUT}, c=16: share of FastAPI floor req/s | >= 85% | 80% | NO |" in text
    assert "- a note" in text


def test_hotpath_table_subtracts_the_floor() -> None:
    from benchmarks.hotpath import render as render_hotpath

    rows = [
        {"app": "bare-floor", "scenario": "json-1", "concurrency": 16, "cpu_us": 15.0, "errors": 0},
        {"app": "floor", "scenario": "json-1", "concurrency": 16, "cpu_us": 60.0, "errors": 0},
        {"app": "service", "scenario": "json-1", "concurrency": 16, "cpu_us": 250.0, "errors": 0},
        {
            "app": "service-thread",
            "scenario": "json-1",
            "concurrency": 16,
            "cpu_us": 280.0,
            "errors": 0,
        },
        {"app": "service", "scenario": "png-1", "concurrency": 1, "cpu_us": 400.0, "errors": 2},
    ]
    text = render_hotpath({"rows": rows})
    assert "| json-1 | 16 | 15 | 60 | 250 | +190 | 280 | 0 |" in text
    assert "| png-1 | 1 | - | - | 400 | - | - | 2 |" in text


def test_share_of_floor_is_the_median_of_paired_round_ratios() -> None:
    service, floor = run("service", "json-1", 16, 6000), run("floor", "json-1", 16, 7000)
    assert share_of_floor(service, floor) == pytest.approx(6000 / 7000)  # no rounds: plain ratio
    # the machine slowed down in round 2: both servers dropped, their ratio did not
    service.extra["rounds_rps"] = [6000.0, 4500.0, 6300.0]
    floor.extra["rounds_rps"] = [7000.0, 5000.0, 7000.0]
    assert share_of_floor(service, floor) == pytest.approx(0.9)  # median of 0.857, 0.9, 0.9
    floor.extra["rounds_rps"] = [7000.0, 5000.0]  # rounds that do not pair up: plain ratio
    assert share_of_floor(service, floor) == pytest.approx(6000 / 7000)
    assert share_of_floor(service, None) is None
    goals = {g.name: g for g in evaluate_goals([service, run("floor", "json-1", 16, 7000)], {}, {})}
    assert goals[TUT + ", c=16: share of FastAPI floor req/s"].measured == "86%"


def _paired(result: RunResult, rounds: list[float]) -> RunResult:
    result.extra["rounds_rps"] = rounds
    return result


def test_new_goals_on_default_models_bare_floor_and_reference() -> None:
    results = [
        run("service", "json-1-default", 16, 5400, p99=4.0),
        run("floor", "json-1-default", 16, 6000),
        run("service", "fashion-json-1-default", 16, 3000, p99=12.0),
        run("floor", "fashion-json-1-default", 16, 6000),
        _paired(run("service", "json-1", 16, 5000), [5000.0, 4000.0, 6000.0]),
        _paired(run("bare-floor", "json-1", 16, 12000), [12000.0, 10000.0, 11000.0]),
        run("service", "photo-png", 16, 900),
        run("reference", "photo-png", 16, 250),
        run("service", "phone-jpeg", 1, 8, p50=60.0),
        run("reference", "phone-jpeg", 1, 4, p50=240.0),
    ]
    hit = {"json-1-default": "v2", "fashion-json-1-default": "v4", "json-1": "v1"}
    goals = {g.name: g for g in evaluate_goals(results, {}, {}, hit)}
    mnist = "mnist default (v2), 1 image TF Serving JSON, c=16"
    assert goals[f"{mnist}: share of FastAPI floor req/s"].measured == "90%"
    assert goals[f"{mnist}: share of FastAPI floor req/s"].met is True
    assert goals[f"{mnist}: p99"].met is True
    fashion = "fashion_mnist default (v4), 1 image TF Serving JSON, c=16"
    assert goals[f"{fashion}: share of FastAPI floor req/s"].met is False
    assert goals[f"{fashion}: p99"].met is False
    tut = "tutorial mnist (v1), 1 image TF Serving JSON"
    bare = goals[f"MLP JSON path ({tut}), c=16, access log on: share of bare-ASGI floor"]
    assert bare.measured == "42%" and bare.met is False  # median of 42%, 40%, 55%
    photo = goals["316x239 PNG photo, c=16: times the reference req/s"]
    assert photo.met is True and photo.measured.startswith("3.60x")
    phone = goals["3000x4000 phone JPEG, c=1: p50 against the reference"]
    assert phone.met is True and phone.measured.startswith("25%")


def test_reference_goals_are_not_judged_without_a_reference() -> None:
    results = [run("service", "photo-png", 16, 900), run("service", "phone-jpeg", 1, 8)]
    goals = {g.name: g for g in evaluate_goals(results, {}, {})}
    assert goals["316x239 PNG photo, c=16: times the reference req/s"].met is None
    assert goals["3000x4000 phone JPEG, c=1: p50 against the reference"].met is None


def test_render_names_the_version_each_row_hit_and_the_photo_ratios() -> None:
    results = [
        run("service", "json-1-default", 16, 5000),
        run("reference", "json-1-default", 16, 4000),
        run("floor", "json-1-default", 16, 6250),
        run("bare-floor", "json-1-default", 16, 12500),
        run("service", "pima-1", 1, 3000),
        run("service", "photo-png", 16, 900),
        run("reference", "photo-png", 16, 300),
        run("floor", "photo-png", 16, 9000),
        run("bare-floor", "photo-png", 16, 18000),
    ]
    report = {
        "created_at": "2026-01-01 00:00 UTC",
        "machine": {
            "cpu_model": "Test CPU",
            "cpus": 2,
            "python": "3.11",
            "loadavg_at_start": [1.5, 1.0, 0.5],
            "loadavg_at_end": [2.0, 1.2, 0.6],
        },
        "tool": "wrk",
        "loadgen_cpus": "0",
        "server_cpus": "1",
        "duration_s": 4,
        "warmup_s": 1,
        "rounds": 3,
        "round_s": 3,
        "command": "python -m benchmarks.run --reference abc123",
        "reference": "abc123",
        "versions": {"mnist": {"version": 1, "recipe": "tutorial"}},
        "default_versions": {"service": {"mnist": 2, "pima": 1}, "reference": {"mnist": 2}},
        "scenarios": {
            "json-1-default": {"model": "mnist", "version": "default"},
            "pima-1": {"model": "pima", "version": "1"},
            "photo-png": {"model": "mnist", "version": "default"},
        },
        "request_bytes": {"photo-png": 40960},
        "startup_s": {},
        "rss_ready_mb": {},
        "rss_mb": {},
        "goals": [],
        "notes": [],
    }
    text = render(report, results)
    assert "at the start: 1.50, 1.00, 0.50, at the end: 2.00, 1.20, 0.60." in text
    label = "mnist default, 1 image, TF Serving JSON [v2 (default)]"
    assert f"| service | {label} | 16 | 5,000 | 0.50 | 5.00 | 80% | 40% |" in text
    assert f"| reference | {label} | 16 | 4,000 |" in text
    assert "| floor | mnist default, 1 image, TF Serving JSON | 16 | 6,250 |" in text
    assert "| service | pima tutorial, 1 record (own API) [v1] | 1 |" in text
    photo = "| mnist default, 316x239 PNG photo (own API) [v2 (default)] | 40.0 | 16 | 900 |"
    assert photo in text and "| 3.00x | 9,000 | 10% | 18,000 | 5% |" in text
    assert "commit `abc123`" in text


def test_quality_goals_judge_accuracy_against_the_target_and_training_time() -> None:
    quality = {
        "defaults": {
            "mnist": {"version": 3, "recipe": "best+int8", "accuracy": 0.9951, "target": 0.995},
            "fashion_mnist": {"version": 2, "recipe": "best", "accuracy": 0.9336, "target": 0.935},
        },
        "training": {
            "fashion_mnist": {"version": 2, "recipe": "best", "seconds": 1811.9, "budget_s": 900}
        },
    }
    goals = {g.name: g for g in evaluate_goals([], {}, {}, None, quality)}
    mnist = goals["mnist default (v3, best+int8): test accuracy, full set"]
    assert (mnist.target, mnist.measured, mnist.met) == (">= 0.995", "0.9951", True)
    fashion = goals["fashion_mnist default (v2, best): test accuracy, full set"]
    assert (fashion.measured, fashion.met) == ("0.9336", False)
    timing = goals["fashion_mnist best recipe (v2): training time"]
    assert (timing.target, timing.measured, timing.met) == ("<= 900 s", "1,812 s", False)


def test_quality_goals_without_figures_are_not_judged() -> None:
    quality = {
        "defaults": {
            "mnist": {"version": 1, "recipe": "tutorial", "accuracy": 0.98, "target": None}
        },
        "training": {
            "fashion_mnist": {"version": 2, "recipe": "best", "seconds": None, "budget_s": 900}
        },
    }
    goals = evaluate_goals([], {}, {}, None, quality)
    assert [g.met for g in goals if "default (v1" in g.name or "training" in g.name] == [None, None]


def test_cpu_share_is_the_floor_cpu_over_the_service_cpu_per_round() -> None:
    from benchmarks.report import cpu_share

    service, bare = run("service", "json-1", 16, 5000), run("bare-floor", "json-1", 16, 10000)
    service.extra["server_cpu_us_per_req"], bare.extra["server_cpu_us_per_req"] = 200.0, 100.0
    assert cpu_share(service, bare) == pytest.approx(0.5)
    service.extra["rounds_cpu_us"] = [200.0, 180.0, 250.0]
    bare.extra["rounds_cpu_us"] = [100.0, 100.0, 100.0]
    assert cpu_share(service, bare) == pytest.approx(0.5)  # median of 0.5, 0.556, 0.4
    assert cpu_share(service, None) is None


def test_goal_shares_show_the_cpu_ratio_beside_req_s() -> None:
    service, bare = run("service", "json-1", 16, 6000), run("bare-floor", "json-1", 16, 12000)
    service.extra["server_cpu_us_per_req"], bare.extra["server_cpu_us_per_req"] = 130.0, 45.0
    goals = {g.name: g for g in evaluate_goals([service, bare], {}, {})}
    mlp = next(g for name, g in goals.items() if name.startswith("MLP JSON path"))
    assert mlp.measured == "50% (server CPU per request: 45 vs 130 µs, 35%)"
    assert mlp.met is True  # the goal is the req/s share; the CPU ratio is shown beside it
