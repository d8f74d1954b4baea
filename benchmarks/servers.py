"""Start a server under test as its own process (pinned with taskset), time it to ready, stop it.

A running server can be moved to other CPUs (:meth:`ServerProcess.pin`): every thread of the
process and of its descendants, as taskset would have placed them.

The start-up time is measured from just before the process is spawned to the first 200 from its
readiness URL. RSS is the sum over the process and all its descendants (uvicorn workers), read
from ``/proc``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks.payloads import ModelVersionInfo

REPO_ROOT = Path(__file__).resolve().parents[1]
LOG_DIR = Path(tempfile.gettempdir()) / "digitserve-bench-logs"  # server logs: not committed


@dataclass
class ServerSpec:
    name: str
    argv: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    cpus: str | None = None  # taskset CPU list, e.g. "1"
    ready_path: str = "/readyz"
    ready_timeout: float = 180.0
    settle_s: float = 0.0  # extra wait after ready (other uvicorn workers still starting)
    cwd: Path | None = None  # where it runs (a worktree of another commit); the repository's own

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class ServerProcess:
    """A running server; use as a context manager so it is always stopped."""

    def __init__(self, spec: ServerSpec, log_dir: Path) -> None:
        self.spec = spec
        self.log_path = log_dir / f"{spec.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s: float | None = None
        self.cpus = spec.cpus

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        spec = self.spec
        prefix = ["taskset", "-c", spec.cpus] if spec.cpus and shutil.which("taskset") else []
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **spec.env}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [*prefix, *spec.argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: stop() reaches uvicorn's workers
            cwd=spec.cwd or REPO_ROOT,
        )
        log.close()
        self.startup_s = self._wait_ready(started)
        time.sleep(self.spec.settle_s)

    def _wait_ready(self, started: float) -> float:
        assert self.proc is not None
        deadline = started + self.spec.ready_timeout
        url = self.spec.base_url + self.spec.ready_path
        with httpx.Client(timeout=2.0) as client:
            while time.perf_counter() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"{self.spec.name} exited with {self.proc.returncode} before it was "
                        f"ready; see {self.log_path}:\n{tail(self.log_path)}"
                    )
                try:
                    if client.get(url).status_code == 200:
                        return time.perf_counter() - started
                except httpx.HTTPError:
                    pass
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{self.spec.name} not ready after {self.spec.ready_timeout:.0f} s")

    def pin(self, cpus: str | None) -> bool:
        """Move the server (each thread of it and of its children) to ``cpus`` ("0,1"); True
        when that changed its CPUs. Threads and processes started later inherit them."""
        if self.proc is None or cpus is None or cpus == self.cpus:
            return False
        allowed = {int(cpu) for cpu in cpus.split(",")}
        for pid in process_tree(self.proc.pid):
            with contextlib.suppress(OSError):  # a thread that ended meanwhile
                for tid in os.listdir(f"/proc/{pid}/task"):
                    with contextlib.suppress(OSError):
                        os.sched_setaffinity(int(tid), allowed)
        self.cpus = cpus
        return True

    def rss_mb(self) -> float:
        """Resident memory of the server and all its descendants, in MiB."""
        if self.proc is None:
            return 0.0
        return sum(rss_kib(pid) for pid in process_tree(self.proc.pid)) / 1024.0

    def cpu_s(self) -> float:
        """CPU seconds (user and system) the server and its descendants have used so far."""
        if self.proc is None:
            return 0.0
        return sum(cpu_seconds(pid) for pid in process_tree(self.proc.pid))

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (ProcessLookupError, PermissionError):
            return
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def process_tree(root: int) -> list[int]:
    """``root`` and every descendant pid, from ``/proc/<pid>/stat``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of ``pid``, all its threads, from ``/proc/<pid>/stat``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_spec(
    name: str,
    models_dir: Path,
    versions: dict[str, ModelVersionInfo],
    *,
    workers: int = 1,
    cpus: str | None = None,
    extra_env: dict[str, str] | None = None,
    source: Path | None = None,
) -> ServerSpec:
    """``python -m service`` serving every finished version of the models under test.

    Every version, so that the version-less paths hit the default version users get while the
    tutorial version stays reachable by number. Logging stays at the service's defaults: the
    access log is on, as in production. ``source`` runs the ``service`` package of another
    checkout (a worktree of an older commit) with this venv.
    """
    port = free_port()
    env = {
        "SERVE_HOST": "127.0.0.1",
        "SERVE_PORT": str(port),
        "SERVE_MODELS_DIR": str(models_dir),
        "SERVE_MODELS": ",".join(versions),
        "SERVE_VERSION_POLICY": "all",
        "SERVE_WORKERS": str(workers),
        "SERVE_LOG_LEVEL": "info",  # the access log on, whatever the caller's environment says
        **(extra_env or {}),
    }
    if source is not None:
        env["PYTHONPATH"] = str(source)
    settle = 5.0 if workers > 1 else 0.0  # /readyz answers once the first worker is ready
    argv = [sys.executable, "-m", "service"]
    return ServerSpec(name, argv, port, env, cpus, settle_s=settle, cwd=source)


def default_versions(base_url: str) -> dict[str, int | None]:
    """Each model's default version as the server reports it (``GET /models``); {} if it can't."""
    try:
        response = httpx.get(base_url + "/models", timeout=10)
        models = response.json()["models"] if response.status_code == 200 else []
        return {str(m["name"]): m.get("default_version") for m in models}
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return {}


@contextlib.contextmanager
def worktree(rev: str) -> Iterator[Path]:
    """A detached ``git worktree`` of ``rev`` in a temporary directory, removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-reference-"))
    path = tmp / "src"
    git = ["git", "-C", str(REPO_ROOT)]
    subprocess.run([*git, "worktree", "add", "--detach", str(path), rev], check=True,
                   capture_output=True, text=True)  # fmt: skip
    try:
        yield path
    finally:
        subprocess.run([*git, "worktree", "remove", "--force", str(path)], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def bare_floor_spec(cpus: str | None = None) -> ServerSpec:
    port = free_port()
    argv = [sys.executable, "-m", "benchmarks.bare_floor", "--port", str(port)]
    return ServerSpec("bare-floor", argv, port, cpus=cpus)


def floor_spec(cpus: str | None = None) -> ServerSpec:
    port = free_port()
    argv = [sys.executable, "-m", "benchmarks.floor_server", "--port", str(port)]
    return ServerSpec("floor", argv, port, cpus=cpus)


def naive_spec(models_dir: Path, cpus: str | None = None) -> ServerSpec:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "benchmarks.naive_server",
        "--models-dir",
        str(models_dir),
        "--port",
        str(port),
    ]
    return ServerSpec("naive", argv, port, cpus=cpus)
