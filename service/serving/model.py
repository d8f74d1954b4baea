"""A served model version: its state, metadata, task, runtime and batcher."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from service.errors import NotReady
from service.repository.disk import FileStat, without_host_path
from service.runtimes.base import ModelRuntime
from service.serving.batcher import Batcher
from service.serving.tasks import Task

# metadata keys too large for status/metadata responses
LARGE_METADATA_KEYS = ("golden",)
_SERIALS = itertools.count(1)


class VersionState(StrEnum):
    LOADING = "loading"
    AVAILABLE = "available"
    FAILED = "failed"
    UNLOADING = "unloading"


@dataclass(eq=False)
class ModelVersion:
    """One version of one model, as the registry tracks it."""

    name: str
    version: int
    path: Path
    state: VersionState = VersionState.LOADING
    reason: str | None = None
    # Tells this load from another under the same number (a version deleted and republished):
    # what was recorded about one must not be credited to the other.
    serial: int = field(default_factory=lambda: next(_SERIALS))
    fingerprint: tuple[int, int] | None = None
    refused: bool = False  # failed because a file could not be read: tried again at each rescan
    changed_on_disk: tuple[int, int] | None = None  # a later metadata.json fingerprint, warned of
    files_loaded: dict[str, FileStat | None] = field(default_factory=dict)  # listed, at load
    files_warning: str | None = None  # what became of them on disk since, said once (watcher)
    # the stat at which a listed file was hashed and did not match, so it is hashed once
    files_mismatched: dict[str, FileStat] = field(default_factory=dict)
    metadata: dict[str, Any] | None = None
    task: Task | None = None
    runtime: ModelRuntime | None = None
    batcher: Batcher | None = None
    timeout_s: float = 10.0
    max_instances: int = 4096
    load_seconds: float | None = None
    latency: dict[str, Any] | None = None  # µs per image at batch 1 and 16, see serving.latency

    @property
    def available(self) -> bool:
        return self.state is VersionState.AVAILABLE

    @property
    def settling(self) -> bool:
        """Loading or unloading: it, or the version taking its place, serves shortly."""
        return self.state in (VersionState.LOADING, VersionState.UNLOADING)

    def not_ready(self, why: str = "", rescan_s: float = 0.0) -> NotReady:
        """The 503 for a request this version cannot serve, with ``Retry-After`` only when asking
        again may help: while it is settling, or (``rescan_s``: the repository is rescanned this
        often) when it failed for a file it could not read, which each rescan tries again. Any
        other failed version serves again only once its files change."""
        message = f"model {self.name} version {self.version} is {self.state.value}{why}"
        if self.settling:
            return NotReady(message, retry_after=1.0)
        return NotReady(message, retry_after=rescan_s if self.refused and rescan_s > 0 else None)

    @property
    def accuracy(self) -> float | None:
        meta = self.metadata or {}
        metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
        accuracy = metrics.get("accuracy") if metrics else None
        return accuracy if isinstance(accuracy, float) and math.isfinite(accuracy) else None

    @property
    def recipe(self) -> str | None:
        recipe = (self.metadata or {}).get("recipe")
        return recipe.get("name") if isinstance(recipe, dict) else None

    def public_metadata(self) -> dict[str, Any]:
        """metadata.json without the large golden arrays, and without the trainer's host's
        paths in where its data came from (versions trained before the trainer left them out)."""
        meta = self.metadata or {}
        public = {k: v for k, v in meta.items() if k not in LARGE_METADATA_KEYS}
        data = public.get("data")
        if isinstance(data, dict) and isinstance(data.get("source"), str):
            public["data"] = {**data, "source": without_host_path(data["source"])}
        return public

    def status(self) -> dict[str, Any]:
        meta = self.metadata or {}
        return {
            "version": self.version,
            "state": self.state.value,
            "reason": self.reason,
            "runtime": self.runtime.kind if self.runtime is not None else None,
            "recipe": self.recipe,
            "accuracy": self.accuracy,
            "created_at": meta.get("created_at"),
            "load_seconds": self.load_seconds,
            "latency": self.latency,
            "warning": self.files_warning,
        }
