"""benchmarks.servers: CPU time of a process from /proc, moving a running server to other CPUs."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from benchmarks.servers import ServerProcess, ServerSpec, cpu_seconds


def test_cpu_seconds_grow_while_the_process_works() -> None:
    before = cpu_seconds(os.getpid())
    end = time.process_time() + 0.1
    while time.process_time() < end:
        pass
    assert cpu_seconds(os.getpid()) - before >= 0.05
    assert cpu_seconds(2**22 + 12345) == 0.0  # no such process


def test_pin_moves_every_thread_of_a_running_server(tmp_path: Path) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    server = ServerProcess(ServerSpec("sleeper", ["sleep"], 1, cpus=None), tmp_path)
    server.proc = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        assert server.pin(str(cpus[0]))
        assert os.sched_getaffinity(server.proc.pid) == {cpus[0]}
        assert not server.pin(str(cpus[0]))  # already there
        assert server.pin(",".join(map(str, cpus)))
        assert os.sched_getaffinity(server.proc.pid) == set(cpus)
    finally:
        server.stop()
