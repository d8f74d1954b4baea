"""The fit clock measures wall and CPU time of the work between start and stop."""

from __future__ import annotations

import time

from training.modeling.fit_clock import FitClock


def test_busy_work_counts_as_cpu_and_sleep_only_as_wall() -> None:
    clock = FitClock.start()
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    time.sleep(0.1)
    block = clock.stop()
    assert block["wall_seconds"] >= 0.1
    assert 0.04 <= block["process_cpu_seconds"] < block["wall_seconds"]
    assert 0 < block["cpu_per_wall"] < 1
    assert set(block["load_average_1m"]) == {"before", "after"}
