"""Shadow traffic: a fraction of a model's predictions run again on another version.

The shadow run is queued into the other version's batcher after the primary prediction has
finished, as a task of its own: the primary answer never waits for it and never sees its
errors. It is dropped, not queued, whenever the primary version's batch queue holds rows, the
shadow's holds more than a batch, or too many shadow runs are already in flight: under load
shadow work goes first, and the primary keeps its queue (and its 503s) to itself.
For each run: whether the two versions predict the same class, and the shadow version's latency.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from service.serving.quality import predicted_classes
from service.settings import shadow_target

if TYPE_CHECKING:
    from service.serving.model import ModelVersion
    from service.serving.registry import ModelRegistry

log = logging.getLogger("service.shadow")
MAX_IN_FLIGHT = 4  # shadow runs queued or running at once, all models together
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


@dataclass
class ShadowStats:
    """Counters of one (model, primary version, shadow version)."""

    runs: int = 0
    rows: int = 0
    agreed: int = 0
    dropped: int = 0
    errors: int = 0
    latency: list[float] = field(default_factory=lambda: [0.0] * (len(LATENCY_BUCKETS) + 2))

    def observe_latency(self, seconds: float) -> None:
        i = next((k for k, b in enumerate(LATENCY_BUCKETS) if seconds <= b), len(LATENCY_BUCKETS))
        self.latency[i] += 1
        self.latency[-1] += seconds

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "runs": self.runs,
            "rows": self.rows,
            "agreement": self.agreed / self.rows if self.rows else None,
            "dropped": self.dropped,
            "errors": self.errors,
            "mean_latency_s": self.latency[-1] / self.runs if self.runs else None,
        }


class Shadow:
    def __init__(self, registry: ModelRegistry, targets: dict[str, str]) -> None:
        self.registry = registry
        self.targets = {name: shadow_target(spec) for name, spec in targets.items()}
        self.stats: dict[tuple[str, int, int], ShadowStats] = {}
        # (model, version) -> requests whose shadow target was not served; the models that said so
        self.no_target: dict[tuple[str, int], int] = {}
        self._warned: set[str] = set()
        self.in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def check_targets(self) -> None:
        """Warn about every target that names nothing served now (a typo, or not loaded yet);
        requests to a model whose target is not served are counted (``no_target``)."""
        for name, (target, _) in self.targets.items():
            try:
                self.registry.resolve(name, target)
            except Exception as exc:
                self._warned.add(name)
                log.warning("shadow target %r of %s is not served: %s", target, name, exc)

    def maybe_run(self, mv: ModelVersion, x: np.ndarray, out: np.ndarray) -> None:
        """Called on the event loop after ``mv`` answered ``out`` for ``x``."""
        target = self.targets.get(mv.name)
        if target is None or random.random() >= target[1]:
            return
        try:
            other = self.registry.resolve(mv.name, target[0])
        except Exception as exc:  # not served (yet, or any more), or a typo: nothing to compare
            key = (mv.name, mv.version)
            self.no_target[key] = self.no_target.get(key, 0) + 1
            if mv.name not in self._warned:
                self._warned.add(mv.name)
                log.warning("shadow target %r of %s is not served: %s", target[0], mv.name, exc)
            return
        self._warned.discard(mv.name)  # warn again if it goes away
        if other is mv or other.batcher is None:
            return
        stats = self.stats.get((mv.name, mv.version, other.version))
        if stats is None:
            stats = self.stats[(mv.name, mv.version, other.version)] = ShadowStats()
        busy = mv.batcher is not None and mv.batcher.queued_rows > 0
        full = other.batcher.queued_rows > other.batcher.max_batch_size  # not this request's rows
        if busy or full or self.in_flight >= MAX_IN_FLIGHT:
            stats.dropped += 1
            return
        self.in_flight += 1
        task = asyncio.get_running_loop().create_task(self._run(mv, other, x, out, stats))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(
        self,
        mv: ModelVersion,
        other: ModelVersion,
        x: np.ndarray,
        out: np.ndarray,
        stats: ShadowStats,
    ) -> None:
        try:
            await asyncio.sleep(0)  # let the primary's answer go out first
            started = time.perf_counter()
            assert other.batcher is not None
            shadow_out = await other.batcher.submit(x, mv.timeout_s)
            seconds = time.perf_counter() - started
            # each version's class at its own decision threshold, as each would answer
            ours = predicted_classes(out, getattr(mv.task, "threshold", 0.5))
            theirs = predicted_classes(shadow_out, getattr(other.task, "threshold", 0.5))
            agree = ours == theirs
            stats.runs += 1
            stats.rows += len(x)
            stats.agreed += int(agree.sum())
            stats.observe_latency(seconds)
        except Exception as exc:  # overloaded, unloaded, failed: the primary never knows
            stats.errors += 1
            log.debug("shadow run on %s/%s failed: %s", other.name, other.version, exc)
        finally:
            self.in_flight -= 1

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
