"""A served model version: its state, metadata, parsed input/output spec, runtime and batcher."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np

from service.runtimes.base import ModelRuntime
from service.serving.batcher import Batcher

# metadata keys too large for status/metadata responses
LARGE_METADATA_KEYS = ("golden",)


class VersionState(StrEnum):
    LOADING = "loading"
    AVAILABLE = "available"
    FAILED = "failed"
    UNLOADING = "unloading"


@dataclass(frozen=True)
class ModelSpec:
    """What the prediction path needs to know about a version, parsed once from its metadata."""

    kind: Literal["classifier", "binary"]
    labels: tuple[str, ...]
    input_name: str
    input_shape: tuple[int, ...]
    input_range: tuple[float, float] | None
    features: list[Any] | None  # decoding.FeatureSpec list for record inputs
    threshold: float
    output_name: str
    output_shape: tuple[int, ...]

    @cached_property
    def feature_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-feature (min, max) limits as float32 arrays, for vectorised range checks."""
        features = self.features or []
        lows = np.array([float(f.min) for f in features], np.float32)
        highs = np.array([float(f.max) for f in features], np.float32)
        return lows, highs

    @property
    def is_image(self) -> bool:
        return self.features is None and len(self.input_shape) == 2

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> ModelSpec:
        inp, out = meta["input"], meta["output"]
        rng = inp.get("range")
        input_range = (
            (float(rng[0]), float(rng[1])) if isinstance(rng, list) and len(rng) == 2 else None
        )
        features = None
        if inp.get("features"):
            from service.inputs.records import features_from_metadata

            features = list(features_from_metadata(inp))
        threshold = meta.get("threshold")
        if not isinstance(threshold, int | float) or not 0.0 <= threshold <= 1.0:
            threshold = 0.5
        return cls(
            kind="classifier" if out["kind"] == "softmax" else "binary",
            labels=tuple(meta["labels"]),
            input_name=str(inp.get("name") or "input"),
            input_shape=tuple(inp["shape"]),
            input_range=input_range,
            features=features,
            threshold=float(threshold),
            output_name=str(out.get("name") or "output"),
            output_shape=tuple(out["shape"]),
        )


@dataclass(eq=False)
class ModelVersion:
    """One version of one model, as the registry tracks it."""

    name: str
    version: int
    path: Path
    state: VersionState = VersionState.LOADING
    reason: str | None = None
    fingerprint: tuple[int, int] | None = None
    metadata: dict[str, Any] | None = None
    spec: ModelSpec | None = None
    runtime: ModelRuntime | None = None
    batcher: Batcher | None = None
    timeout_s: float = 10.0
    max_instances: int = 4096
    load_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        return self.state is VersionState.AVAILABLE

    @property
    def recipe(self) -> str | None:
        recipe = (self.metadata or {}).get("recipe")
        return recipe.get("name") if isinstance(recipe, dict) else None

    def public_metadata(self) -> dict[str, Any]:
        """metadata.json without the large golden arrays."""
        meta = self.metadata or {}
        return {k: v for k, v in meta.items() if k not in LARGE_METADATA_KEYS}

    def status(self) -> dict[str, Any]:
        meta = self.metadata or {}
        metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
        accuracy = metrics.get("accuracy") if metrics else None
        return {
            "version": self.version,
            "state": self.state.value,
            "reason": self.reason,
            "runtime": self.runtime.kind if self.runtime is not None else None,
            "recipe": self.recipe,
            "accuracy": accuracy
            if isinstance(accuracy, float) and math.isfinite(accuracy)
            else None,
            "created_at": meta.get("created_at"),
            "load_seconds": self.load_seconds,
        }
