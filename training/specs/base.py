"""The data set descriptor interface, and the prepared data it hands to the trainer.

A :class:`DatasetSpec` says everything the trainer, the exporter and the report need to know
about one data set: how to load and split it, its labels, the ``task`` the service dispatches on,
the ``input`` and ``output`` blocks of metadata.json, the decision threshold, and which test
inputs become the golden sample. Each kind of task is one subclass; each data set is one instance
of it (``training.specs.catalog``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

GOLDEN_COUNT = 8

# loader(data_dir=..., cache_dir=..., [allow_download=..., allow_mirrors=...]) -> raw data
Loader = Callable[..., Any]


@dataclass(frozen=True)
class Split:
    """Train and test arrays in the serving model's input format; labels are int64 indices."""

    dataset: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    labels: list[str]


@dataclass(frozen=True)
class Prepared:
    """A split plus what the metadata and the report need about the data it came from."""

    split: Split
    source: str
    sha256: dict[str, str]
    input: dict[str, Any]  # the ``input`` block of metadata.json
    samples: np.ndarray | None = None  # raw test images for the report's sample grid


def first(x: np.ndarray, n: int | None) -> np.ndarray:
    """The first ``n`` rows (all when ``n`` is None): ``--subset`` for smoke runs."""
    return x if n is None else x[:n]


@dataclass(frozen=True, kw_only=True)
class DatasetSpec(ABC):
    """One data set. Subclasses set ``task`` and implement loading and the metadata blocks."""

    task: ClassVar[str]

    name: str
    description: str
    labels: tuple[str, ...]
    loader: Loader
    golden_count: int = GOLDEN_COUNT

    @abstractmethod
    def load(
        self,
        *,
        data_dir: Path | None = None,
        cache_dir: Path | None = None,
        subset: int | None = None,
    ) -> Prepared:
        """Load through ``loader`` (checksums, cache) and split into the serving input format."""

    @abstractmethod
    def output_spec(self) -> dict[str, Any]:
        """The ``output`` block of metadata.json."""

    @abstractmethod
    def decision_threshold(self, chosen: float | None) -> float | None:
        """The threshold to record, given the one the recipe chose (None: it chose none)."""

    def golden_inputs(self, split: Split) -> np.ndarray:
        """The inputs whose outputs the service must reproduce at load time (its self-test)."""
        return split.x_test[: self.golden_count]

    def parity_inputs(self, split: Split) -> np.ndarray:
        """The inputs on which the TFLite copy must match the SavedModel."""
        return split.x_test

    def write_artifacts(self, split: Split, folder: Path) -> dict[str, Any]:
        """Write the files the service needs besides the model into the version ``folder``
        (before its checksums are taken) and return the metadata blocks that name them."""
        return {}

    def metadata(self, data: Prepared, threshold: float | None) -> dict[str, Any]:
        """The metadata.json fields that describe the data set and the model's contract."""
        return {
            "task": self.task,
            "description": self.description,
            "labels": list(self.labels),
            "input": data.input,
            "output": self.output_spec(),
            "threshold": threshold,
        }
