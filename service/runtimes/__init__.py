"""Model runtimes: one module per way of running a version's model file, behind the interface
in ``base``. :func:`create_runtime` picks one for a version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from service.runtimes.base import ModelRuntime
from service.runtimes.litert import TFLITE_FILE, TFLiteRuntime
from service.runtimes.savedmodel import SavedModelRuntime


def create_runtime(path: Path, metadata: dict[str, Any], preference: str = "auto") -> ModelRuntime:
    """Pick the runtime: ``auto`` prefers a listed ``model.tflite``, else the SavedModel."""
    has_tflite = TFLITE_FILE in metadata["files"]
    if preference == "tflite" or (preference == "auto" and has_tflite):
        return TFLiteRuntime(path, metadata)
    return SavedModelRuntime(path, metadata)


__all__ = ["ModelRuntime", "SavedModelRuntime", "TFLiteRuntime", "create_runtime"]
