"""Drive wrk (Debian's ``wrk`` package) with a POST body from a file, pinned to one core.

wrk sends the body that a generated Lua script reads from a file, and a ``done()`` hook prints one
line ``BENCH_JSON {...}`` with the request count, the errors and the p50/p99/p99.9 latency from
wrk's own histogram, which :func:`parse_output` turns into a :class:`RunResult`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from benchmarks.payloads import Request
from benchmarks.stats import RunResult

MARKER = "BENCH_JSON "

_DONE_HOOK = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, '
    .. '"status": %d, "timeout": %d, "p50_us": %.1f, "p99_us": %.1f, "p999_us": %.1f, '
    .. '"mean_us": %.1f, "max_us": %.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50.0), latency:percentile(99.0), latency:percentile(99.9),
    latency.mean, latency.max))
end
"""


def wrk_path() -> str | None:
    return shutil.which("wrk")


def lua_string(text: str) -> str:
    """A Lua string literal for ``text`` (JSON's escapes are valid in Lua for these strings)."""
    return json.dumps(text, ensure_ascii=True)


def lua_script(request: Request, body_file: Path) -> str:
    """The wrk script: method, headers, and the body read (bytes as they are) from ``body_file``."""
    lines = [
        f"local f = assert(io.open({lua_string(str(body_file))}, 'rb'))",
        "wrk.method = 'POST'",
        "wrk.body = f:read('*a')",
        "f:close()",
    ]
    for key, value in request.all_headers().items():
        lines.append(f"wrk.headers[{lua_string(key)}] = {lua_string(value)}")
    return "\n".join(lines) + "\n" + _DONE_HOOK


def lua_mixed_script(requests: list[tuple[Request, Path]]) -> str:
    """A wrk script that sends the given requests round-robin (bodies read from their files)."""
    lines = ["local reqs = {}", "local i = 0"]
    for request, body_file in requests:
        headers = ", ".join(
            f"[{lua_string(k)}] = {lua_string(v)}" for k, v in request.all_headers().items()
        )
        lines += [
            "do",
            f"  local f = assert(io.open({lua_string(str(body_file))}, 'rb'))",
            "  local body = f:read('*a')",
            "  f:close()",
            f"  local path = {lua_string(request.path)}",
            f"  reqs[#reqs + 1] = wrk.format('POST', path, {{{headers}}}, body)",
            "end",
        ]
    lines += ["request = function()", "  i = i % #reqs + 1", "  return reqs[i]", "end"]
    return "\n".join(lines) + "\n" + _DONE_HOOK


def parse_output(
    stdout: str, *, server: str, scenario: str, concurrency: int, items: int
) -> RunResult:
    """The :class:`RunResult` in wrk's output, from the line the ``done()`` hook printed."""
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            data = json.loads(line[len(MARKER) :])
            break
    else:
        raise RuntimeError(f"wrk printed no {MARKER.strip()} line; its output was:\n{stdout}")
    errors = sum(int(data[k]) for k in ("connect", "read", "write", "status", "timeout"))
    requests = int(data["requests"])
    return RunResult(
        server=server,
        scenario=scenario,
        concurrency=concurrency,
        requests=requests,
        errors=min(errors, requests) if requests else errors,
        seconds=int(data["duration_us"]) / 1e6,
        p50_ms=float(data["p50_us"]) / 1000.0,
        p99_ms=float(data["p99_us"]) / 1000.0,
        p999_ms=float(data["p999_us"]) / 1000.0,
        mean_ms=float(data["mean_us"]) / 1000.0,
        items_per_request=items,
        tool="wrk",
        extra={
            "errors_by_kind": {
                k: data[k] for k in ("connect", "read", "write", "status", "timeout")
            }
        },
    )


def run_wrk(
    base_url: str,
    request: Request,
    *,
    concurrency: int,
    duration: float,
    warmup: float = 1.0,
    server: str = "server",
    cpus: str | None = None,
    after_warmup: Callable[[], object] | None = None,
    cpu_probe: Callable[[], float] | None = None,
) -> RunResult:
    """Warm up, then measure ``duration`` seconds (rounded up to whole seconds, as wrk wants).

    ``after_warmup`` runs between the two, e.g. to wait until a slow server has finished the
    requests the warm-up left behind. ``cpu_probe`` (the server's CPU seconds so far), read
    around the measured run, gives ``extra["server_cpu_us_per_req"]``: what a request costs the
    server in CPU, which other load on a shared machine moves far less than req/s.
    """
    exe = wrk_path()
    if exe is None:
        raise RuntimeError("wrk is not installed")
    prefix = ["taskset", "-c", cpus] if cpus and shutil.which("taskset") else []
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        body_file = Path(tmp) / "body.bin"
        body_file.write_bytes(request.body)
        script = Path(tmp) / "request.lua"
        script.write_text(lua_script(request, body_file))
        url = base_url.rstrip("/") + request.path

        def wrk(seconds: float) -> str:
            cmd = [
                *prefix,
                exe,
                "-t1",
                f"-c{concurrency}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                url,
            ]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
            if done.returncode != 0:
                raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
            return done.stdout

        if warmup > 0:
            wrk(warmup)
            if after_warmup is not None:
                after_warmup()
        cpu_before = cpu_probe() if cpu_probe is not None else 0.0
        out = wrk(duration)
        cpu_used = cpu_probe() - cpu_before if cpu_probe is not None else None
    result = parse_output(
        out, server=server, scenario=request.name, concurrency=concurrency, items=request.items
    )
    answered = result.requests - result.errors
    if cpu_used is not None and answered > 0:
        result.extra["server_cpu_us_per_req"] = round(cpu_used / answered * 1e6, 1)
    return result
