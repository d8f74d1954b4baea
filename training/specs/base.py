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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

GOLDEN_COUNT = 8

# loader(data_dir=..., cache_dir=..., [allow_download=..., allow_mirrors=...]) -> raw data
Loader = Callable[..., Any]


class Provenance(Protocol):
    """What every loader's result says about where its data came from (for the metadata)."""

    @property
    def source(self) -> str: ...
    @property
    def sha256(self) -> dict[str, str]: ...


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
    calibration_method: ClassVar[str]  # training.calibration: "temperature" or "platt"

    name: str
    description: str
    labels: tuple[str, ...]
    loader: Loader
    golden_count: int = GOLDEN_COUNT
    # The calibration split: held out from the training split before the recipe sees it (never
    # from the test set). A count of rows, or a share of the training split; a fixed seed.
    calibration_size: float | int = 0.1
    calibration_seed: int = 11

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

    def hold_out_calibration(self, split: Split) -> tuple[Split, np.ndarray, np.ndarray]:
        """The training split without the calibration rows, and those rows (x, y): stratified
        by label when every label has two rows or more, with ``calibration_seed``."""
        from sklearn.model_selection import train_test_split

        n = len(split.y_train)
        size = self.calibration_size
        count = int(size) if isinstance(size, int) else round(n * size)
        # A count larger than a quarter of a (--subset) training split takes a quarter of it.
        count = min(max(count, 1), max(1, n // 4)) if isinstance(size, int) else max(count, 1)
        _, counts = np.unique(split.y_train, return_counts=True)
        classes = len(counts)
        stratify = split.y_train if counts.min() >= 2 and classes <= count <= n - classes else None
        rows = np.arange(n)
        kept, held = train_test_split(
            rows, test_size=count, stratify=stratify, random_state=self.calibration_seed
        )
        kept, held = np.sort(kept), np.sort(held)
        rest = replace(split, x_train=split.x_train[kept], y_train=split.y_train[kept])
        return rest, split.x_train[held], split.y_train[held]

    def calibration_spec(self) -> dict[str, Any]:
        """How the calibration split is made, for metadata.calibration.split."""
        return {
            "from": "training split",
            "size": self.calibration_size,
            "seed": self.calibration_seed,
            "stratified": "by label, when every label has two rows or more",
        }

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
