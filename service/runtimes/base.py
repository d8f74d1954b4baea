"""The runtime interface: load a version's model file(s) and run a batch through them.

A runtime is used from one thread at a time (its batcher's inference thread, or the loader before
the batcher starts).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np


class ModelRuntime(ABC):
    """load() -> predict(x)* -> unload(). ``ready`` is true between load and unload."""

    kind: str = "abstract"

    def __init__(self, path: Path, metadata: dict[str, Any]) -> None:
        self.path = path
        self.metadata = metadata
        self.input_shape: tuple[int, ...] = tuple(metadata["input"]["shape"])
        self.output_shape: tuple[int, ...] = tuple(metadata["output"]["shape"])
        self.ready = False

    @abstractmethod
    def load(self) -> None: ...

    @abstractmethod
    def _run(self, x: np.ndarray) -> np.ndarray: ...

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Run a float32 batch ``(n, *input_shape)``; returns ``(n, *output_shape)`` float32."""
        if not self.ready:
            raise RuntimeError(f"{self.kind} runtime is not loaded")
        out = np.asarray(self._run(np.ascontiguousarray(x, dtype=np.float32)), dtype=np.float32)
        expected = (x.shape[0], *self.output_shape)
        if out.shape != expected:
            raise RuntimeError(f"model returned shape {out.shape}, expected {expected}")
        return out

    def plan_batches(self, us_b1: float, us_b16: float) -> None:
        """The version's measured µs per image at batch 1 and 16 (``serving.latency``), for
        runtimes that plan their calls by it."""
        del us_b1, us_b16  # this runtime runs every batch as one call

    def unload(self) -> None:
        self.ready = False
