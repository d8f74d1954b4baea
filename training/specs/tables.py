"""Binary classification of a row of named numeric features (a sigmoid output)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

# The service's own class: one feature is one concept, from the catalog to the served limits
from service.inputs.records import FeatureSpec
from training.drift_reference import write_record_reference
from training.specs.base import DatasetSpec, Prepared, Provenance, Split, first

# Explanations compare an input with this many training rows; more costs time per explanation.
BACKGROUND_FILE = "background.npy"
BACKGROUND_ROWS = 32
BACKGROUND_SEED = 42


def feature_entries(specs: tuple[FeatureSpec, ...], table: np.ndarray) -> list[dict[str, Any]]:
    """Feature objects with ``typical`` ranges from ``table`` (zeros skipped where missing), as
    the service reads them back (``service.inputs.records.features_from_metadata``): ``min`` and
    ``max`` are the hard limits it enforces."""
    entries = []
    for column, spec in enumerate(specs):
        values = np.asarray(table, dtype=np.float64)[:, column]
        if spec.missing_if_zero:
            values = values[values != 0]
        entries.append(
            {
                "name": spec.name,
                "unit": spec.unit,
                "description": spec.description,
                "min": spec.min,
                "max": spec.max,
                "typical": [float(np.round(values.min(), 4)), float(np.round(values.max(), 4))],
                "missing_if_zero": spec.missing_if_zero,
                "aliases": list(spec.aliases),
            }
        )
    return entries


class TableSource(Provenance, Protocol):
    """What a table loader returns: ``features`` ``[N, F]`` in the spec's order, 0/1 outcome."""

    @property
    def features(self) -> np.ndarray: ...
    @property
    def outcome(self) -> np.ndarray: ...


@dataclass(frozen=True, kw_only=True)
class BinaryClassificationSpec(DatasetSpec):
    """Raw feature values in (preprocessing lives in the model), P(positive label) out.

    The rows are split once, stratified, ``test_size`` of them for the test set, with a fixed
    ``split_seed``. Without a threshold from the recipe, ``default_threshold`` decides.
    """

    task = "binary_classification"
    calibration_method = "platt"

    features: tuple[FeatureSpec, ...]
    # the names of the table's outcome column: a record that carries it is still a record
    label_names: tuple[str, ...] = ()
    test_size: float
    split_seed: int
    default_threshold: float = 0.5

    def __post_init__(self) -> None:
        if len(self.labels) != 2:
            raise ValueError(f"{self.name}: binary classification needs two labels")

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.features)

    def load(
        self,
        *,
        data_dir: Path | None = None,
        cache_dir: Path | None = None,
        subset: int | None = None,
    ) -> Prepared:
        from sklearn.model_selection import train_test_split

        raw: TableSource = self.loader(data_dir=data_dir, cache_dir=cache_dir)
        table = np.asarray(raw.features)
        if table.ndim != 2 or table.shape[1] != len(self.features):
            expected = f"[N, {len(self.features)}]"
            raise ValueError(f"{self.name}: table is {list(table.shape)}, expected {expected}")
        x_train, x_test, y_train, y_test = train_test_split(
            table,
            raw.outcome,
            test_size=self.test_size,
            stratify=raw.outcome,
            random_state=self.split_seed,
        )
        split = Split(
            dataset=self.name,
            x_train=first(x_train, subset).astype(np.float32),
            y_train=first(y_train, subset).astype(np.int64),
            x_test=first(x_test, subset).astype(np.float32),
            y_test=first(y_test, subset).astype(np.int64),
            labels=list(self.labels),
        )
        return Prepared(split, raw.source, dict(raw.sha256), self.input_spec(table))

    def input_spec(self, table: np.ndarray) -> dict[str, Any]:
        """The ``input`` block; ``typical`` ranges come from the whole table."""
        return {
            "name": "features",
            "shape": [len(self.features)],
            "dtype": "float32",
            "range": None,
            "features": feature_entries(self.features, table),
            "label_names": list(self.label_names),
        }

    def output_spec(self) -> dict[str, Any]:
        return {"name": "probabilities", "kind": "sigmoid", "shape": [1]}

    def write_artifacts(self, split: Split, folder: Path) -> dict[str, Any]:
        """The background sample explanations are computed against: training rows, raw."""
        x = split.x_train
        rows = min(BACKGROUND_ROWS, len(x))
        chosen = np.random.default_rng(BACKGROUND_SEED).choice(len(x), rows, replace=False)
        np.save(folder / BACKGROUND_FILE, np.asarray(x[chosen], np.float32))
        return {
            **write_record_reference(folder, x, self.feature_names),
            "explain": {
                "background": {
                    "file": BACKGROUND_FILE,
                    "rows": int(rows),
                    "seed": BACKGROUND_SEED,
                    "source": "training split",
                }
            },
        }

    def decision_threshold(self, chosen: float | None) -> float | None:
        return self.default_threshold if chosen is None else chosen
