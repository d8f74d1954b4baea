"""Model runtimes: load a version's model file(s) and run a batch through them.

A runtime is used from one thread at a time (its batcher's inference thread, or the loader before
the batcher starts). TFLite (LiteRT) is the fast path; the SavedModel is the portable fallback and
is the only reason this process ever imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from service.repository.disk import RepositoryError

TFLITE_FILE = "model.tflite"
_SAVEDMODEL_PREFIXES = ("saved_model.pb", "fingerprint.pb", "variables/", "assets/")


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

    def unload(self) -> None:
        self.ready = False


class _Slot:
    """One interpreter allocated for a fixed batch size, with its input/output tensor indices."""

    def __init__(self, interpreter: Any, size: int, input_shape: tuple[int, ...]) -> None:
        self.interpreter = interpreter
        self.input = interpreter.get_input_details()[0]["index"]
        self.output = interpreter.get_output_details()[0]["index"]
        interpreter.resize_tensor_input(self.input, [size, *input_shape], strict=False)
        interpreter.allocate_tensors()
        self.size = size
        self.buffer = np.zeros((size, *input_shape), np.float32)  # for padded batches


class TFLiteRuntime(ModelRuntime):
    """LiteRT interpreters (one thread each), one per power-of-two batch size up to ``CHUNK``.

    Re-allocating an interpreter for a new batch size costs far more than running a small batch,
    so a batch of n rows runs on the interpreter for the next power of two, padded; batches above
    ``CHUNK`` rows run in chunks of ``CHUNK``. Slots are created on first use.
    """

    kind = "tflite"
    CHUNK = 256

    def __init__(self, path: Path, metadata: dict[str, Any]) -> None:
        super().__init__(path, metadata)
        self._content: bytes | None = None
        self._slots: dict[int, _Slot] = {}
        self._lock = threading.Lock()

    def load(self) -> None:
        expected = self.metadata["files"].get(TFLITE_FILE)
        if expected is None:
            raise RepositoryError(f"{TFLITE_FILE} is not listed in metadata files")
        content = (self.path / TFLITE_FILE).read_bytes()
        if hashlib.sha256(content).hexdigest() != expected:
            raise RepositoryError(f"checksum mismatch for {TFLITE_FILE}")
        self._content = content  # the interpreters borrow this buffer
        self._slots = {}
        self._slot(1)
        self.ready = True

    def _slot(self, size: int) -> _Slot:
        slot = self._slots.get(size)
        if slot is None:
            from ai_edge_litert.interpreter import Interpreter

            interpreter = Interpreter(model_content=self._content, num_threads=1)
            slot = self._slots[size] = _Slot(interpreter, size, self.input_shape)
        return slot

    def _run(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        with self._lock:
            if n > self.CHUNK:
                parts = [self._run_one(x[i : i + self.CHUNK]) for i in range(0, n, self.CHUNK)]
                return np.concatenate(parts)
            return self._run_one(x)

    def _run_one(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        slot = self._slot(1 << (n - 1).bit_length())
        if n < slot.size:
            slot.buffer[:n] = x
            x = slot.buffer
        interp = slot.interpreter
        interp.set_tensor(slot.input, x)
        interp.invoke()
        return np.array(interp.get_tensor(slot.output)[:n], copy=True)

    def unload(self) -> None:
        super().unload()
        self._slots = {}
        self._content = None


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


def create_runtime(path: Path, metadata: dict[str, Any], preference: str = "auto") -> ModelRuntime:
    """Pick the runtime: ``auto`` prefers a listed ``model.tflite``, else the SavedModel."""
    has_tflite = TFLITE_FILE in metadata["files"]
    if preference == "tflite" or (preference == "auto" and has_tflite):
        return TFLiteRuntime(path, metadata)
    return SavedModelRuntime(path, metadata)
