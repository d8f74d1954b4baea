"""The SavedModel runtime: the portable fallback, and the only reason this process ever imports
TensorFlow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from service.repository.disk import RepositoryError
from service.runtimes.base import ModelRuntime

_SAVEDMODEL_PREFIXES = ("saved_model.pb", "fingerprint.pb", "variables/", "assets/")


class SavedModelRuntime(ModelRuntime):
    """``tf.saved_model.load(dir).serve`` wrapped in a ``tf.function`` with a fixed signature."""

    kind = "savedmodel"

    def __init__(self, path: Path, metadata: dict[str, Any]) -> None:
        super().__init__(path, metadata)
        self._loaded: Any = None
        self._fn: Any = None

    def load(self) -> None:
        check_savedmodel_listed(self.path, self.metadata)
        import tensorflow as tf  # lazily: only a SavedModel-served version pays for it

        loaded = tf.saved_model.load(str(self.path))
        serve = getattr(loaded, "serve", None)
        if serve is None:
            raise RepositoryError("the SavedModel has no 'serve' endpoint")
        spec = tf.TensorSpec([None, *self.input_shape], tf.float32)
        self._loaded = loaded
        self._fn = tf.function(lambda x: serve(x), input_signature=[spec])
        self.ready = True

    def _run(self, x: np.ndarray) -> np.ndarray:
        out = self._fn(x)
        if isinstance(out, dict):  # a signature returning named outputs
            out = next(iter(out.values()))
        return np.asarray(out.numpy())

    def unload(self) -> None:
        super().unload()
        self._fn = None
        self._loaded = None


def check_savedmodel_listed(path: Path, metadata: dict[str, Any]) -> None:
    """Every file TensorFlow would read from the SavedModel must be listed (and so verified)."""
    listed = metadata["files"]
    if "saved_model.pb" not in listed:
        raise RepositoryError("saved_model.pb is not listed in metadata files")
    for file in path.rglob("*"):
        rel = file.relative_to(path).as_posix()
        if file.is_file() and rel.startswith(_SAVEDMODEL_PREFIXES) and rel not in listed:
            raise RepositoryError(f"SavedModel file {rel} is not listed in metadata files")
