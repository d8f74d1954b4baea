"""The load generators against the floor server (about 1 s of load each; no timing asserted)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest

from benchmarks.loadgen import run_load
from benchmarks.payloads import Request, tfs_json, v2_binary
from benchmarks.run import check
from benchmarks.servers import ServerProcess, floor_spec
from benchmarks.wrk import run_wrk


@pytest.fixture(scope="module")
def floor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(floor_spec(), tmp_path_factory.mktemp("logs")) as proc:
        yield proc


def image_request() -> Request:
    image = np.linspace(0.0, 1.0, 784, dtype=np.float32).reshape(1, 28, 28)
    return Request("json-1", "/v1/models/mnist:predict", tfs_json(image), "application/json")


def test_floor_answers_every_request_format(floor: ServerProcess) -> None:
    assert floor.startup_s is not None and floor.startup_s > 0
    assert check(floor.spec.base_url, image_request()) is None
    body, head = v2_binary(np.zeros((2, 28, 28), np.float32), "pixels", "probabilities")
    binary = Request(
        "v2bin",
        "/v2/models/mnist/infer",
        body,
        "application/octet-stream",
        2,
        {"Inference-Header-Content-Length": str(head)},
    )
    assert check(floor.spec.base_url, binary) is None
    broken = Request("bad", "/v1/models/mnist:predict", b"{not json", "application/json")
    assert check(floor.spec.base_url, broken) is not None  # the floor does parse the body
    assert floor.rss_mb() > 10


def test_httpx_loadgen_counts_requests_and_latencies(floor: ServerProcess) -> None:
    result = run_load(
        floor.spec.base_url,
        image_request(),
        concurrency=4,
        duration=1.0,
        warmup=0.2,
        server="floor",
    )
    assert result.tool == "httpx" and result.server == "floor" and result.concurrency == 4
    assert result.requests > 0 and result.errors == 0
    assert 0 < result.p50_ms <= result.p99_ms <= result.p999_ms
    assert result.rps == pytest.approx(result.requests / result.seconds)


def test_httpx_loadgen_counts_failures_as_errors(floor: ServerProcess) -> None:
    broken = Request("bad", "/v1/models/mnist:predict", b"[1, 2", "application/json")
    result = run_load(floor.spec.base_url, broken, concurrency=2, duration=0.5, warmup=0.0)
    assert result.requests > 0 and result.errors == result.requests and result.rps == 0


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_wrk_driver_reports_percentiles(floor: ServerProcess) -> None:
    result = run_wrk(
        floor.spec.base_url,
        image_request(),
        concurrency=2,
        duration=1,
        warmup=0,
        server="floor",
        cpus="0",
    )
    assert result.tool == "wrk" and result.requests > 0 and result.errors == 0
    assert 0 < result.p50_ms <= result.p99_ms <= result.p999_ms


def test_wrk_output_is_parsed_from_the_done_hook() -> None:
    from benchmarks.wrk import parse_output

    line = (
        "BENCH_JSON "
        + orjson.dumps(
            {
                "requests": 1000,
                "duration_us": 2_000_000,
                "connect": 0,
                "read": 0,
                "write": 0,
                "status": 5,
                "timeout": 1,
                "p50_us": 500.0,
                "p99_us": 2500.0,
                "p999_us": 4000.0,
                "mean_us": 700.0,
                "max_us": 9000.0,
            }
        ).decode()
    )
    result = parse_output(
        f"Running 2s test\n{line}\n", server="s", scenario="x", concurrency=16, items=1024
    )
    assert result.errors == 6 and result.seconds == 2.0
    assert (result.p50_ms, result.p99_ms, result.p999_ms) == (0.5, 2.5, 4.0)
    assert result.items_per_s == pytest.approx(994 / 2.0 * 1024)
    with pytest.raises(RuntimeError, match="BENCH_JSON"):
        parse_output("nothing", server="s", scenario="x", concurrency=1, items=1)


def test_lua_script_reads_the_body_file_and_sets_headers(tmp_path: Path) -> None:
    from benchmarks.wrk import lua_mixed_script, lua_script

    req = Request(
        "v2",
        "/v2/x",
        b"\x00\x01",
        "application/octet-stream",
        1,
        {"Inference-Header-Content-Length": "12"},
    )
    script = lua_script(req, tmp_path / "body.bin")
    assert f"io.open(\"{tmp_path / 'body.bin'}\", 'rb')" in script
    assert 'wrk.headers["Inference-Header-Content-Length"] = "12"' in script
    assert "latency:percentile(99.9)" in script
    mixed = lua_mixed_script([(req, tmp_path / "a.bin"), (image_request(), tmp_path / "b.bin")])
    assert mixed.count("wrk.format('POST'") == 2 and "request = function()" in mixed
