"""Settings for a test app: the tiny repository, every version served, batches closed quickly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from service.settings import Settings


def make_settings(models_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"models_dir": models_dir, "version_policy": "all", "max_wait_ms": 0.5}
    # the tiny models are untrained: no accuracy target, so the newest version is the default
    values["accuracy_targets"] = {}
    values.update(overrides)
    return Settings(**values)
