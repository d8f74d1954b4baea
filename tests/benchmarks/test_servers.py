"""benchmarks.servers: CPU time of a process from /proc."""

from __future__ import annotations

import os
import time

from benchmarks.servers import cpu_seconds


def test_cpu_seconds_grow_while_the_process_works() -> None:
    before = cpu_seconds(os.getpid())
    end = time.process_time() + 0.1
    while time.process_time() < end:
        pass
    assert cpu_seconds(os.getpid()) - before >= 0.05
    assert cpu_seconds(2**22 + 12345) == 0.0  # no such process
