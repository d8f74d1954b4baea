"""LiteRT (TFLite): the fast runtime, used when a version ships ``model.tflite``."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import numpy as np

from service.repository.disk import RepositoryError
from service.runtimes.base import ModelRuntime

TFLITE_FILE = "model.tflite"
# One interpreter thread: the service runs one inference thread per version beside the event
# loop, and on one core (the benchmark's, or a container's one CPU) a second interpreter thread only
# competes with the loop. With a second core free, two threads cut a float CNN's wall time for the
# same CPU, but slow the dynamic-range quantised versions down. XNNPACK on: LiteRT's own kernels
# are several times slower for every version measured, at batch 1 and 16. Measured with
# ``python -m benchmarks.litert_options``.
THREADS = 1
XNNPACK = True


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
    """LiteRT interpreters (``threads`` each, XNNPACK or LiteRT's own kernels), one per
    power-of-two batch size up to ``CHUNK``.

    Re-allocating an interpreter for a new batch size costs far more than running a small batch,
    so a batch of n rows runs on the interpreter for the next power of two, padded; batches above
    ``CHUNK`` rows run in chunks of ``CHUNK``. Slots are created on first use.
    """

    kind = "tflite"
    CHUNK = 256

    def __init__(
        self,
        path: Path,
        metadata: dict[str, Any],
        *,
        threads: int = THREADS,
        xnnpack: bool = XNNPACK,
    ) -> None:
        super().__init__(path, metadata)
        self.threads = threads
        self.xnnpack = xnnpack
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
            from ai_edge_litert.interpreter import Interpreter, OpResolverType

            resolver = (
                OpResolverType.AUTO
                if self.xnnpack
                else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            )
            interpreter = Interpreter(
                model_content=self._content,
                num_threads=self.threads,
                experimental_op_resolver_type=resolver,
            )
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
