"""Wall and CPU time of a fit, with the machine's load, so a training time can be read honestly.

The machine is shared: a fit that took long because other processes held the cores shows it here
(``cpu_per_wall`` well under the core count, a high load average), and one that was slow by itself
does not.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover - platforms without a load average
        return None


@dataclass(frozen=True)
class FitClock:
    wall: float
    cpu: float
    load_before: float | None

    @classmethod
    def start(cls) -> FitClock:
        return cls(time.perf_counter(), time.process_time(), _load_average())

    def stop(self) -> dict[str, Any]:
        """The block stored under ``metrics.fit_timing``."""
        wall = time.perf_counter() - self.wall
        cpu = time.process_time() - self.cpu
        return {
            "wall_seconds": round(wall, 1),
            "process_cpu_seconds": round(cpu, 1),
            # at most the core count; lower when other processes held the cores
            "cpu_per_wall": round(cpu / wall, 2) if wall > 0 else None,
            "cores": os.cpu_count(),
            "load_average_1m": {"before": self.load_before, "after": _load_average()},
        }
