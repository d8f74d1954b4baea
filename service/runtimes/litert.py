"""LiteRT (TFLite): the fast runtime, used when a version ships ``model.tflite``."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
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


_DELEGATE_NOTICE = b"Created TensorFlow Lite XNNPACK delegate"
_first_delegate = threading.Lock()  # held while fd 2 is caught; then the flag below is set
_first_delegate_done = False


@contextlib.contextmanager
def _without_delegate_notice() -> Iterator[None]:
    """Keep LiteRT's ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` off the
    process's stderr, where it would be the one line of the JSON log that is not JSON.

    LiteRT prints it from C++ (no log level reaches it), once per process, at the first
    interpreter with the delegate that allocates. So only until one has (or the notice was seen)
    is stderr (fd 2) caught in a file; whatever else was written to it meanwhile, by LiteRT or
    another thread, is written back unchanged. When stderr cannot be caught (no temporary
    file, fd 2 closed), the interpreter is made all the same, notice and all.
    """
    global _first_delegate_done
    if _first_delegate_done:
        yield
        return
    with _first_delegate:
        if _first_delegate_done:
            yield
            return
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):
            saved = -1
        with contextlib.ExitStack() as stack:
            try:
                caught = stack.enter_context(tempfile.TemporaryFile()) if saved >= 0 else None
            except OSError:
                caught = None
            if caught is None:
                if saved >= 0:
                    os.close(saved)
                yield
                return
            os.dup2(caught.fileno(), 2)
            allocated = False
            try:
                yield
                allocated = True
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                caught.seek(0)
                for line in caught.read().splitlines(keepends=True):
                    if _DELEGATE_NOTICE in line:
                        allocated = True  # said: it is not said again in this process
                    else:
                        os.write(2, line)
                _first_delegate_done = allocated


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


def split_plan(rows: int, call_us: float, row_us: float) -> tuple[int, ...]:
    """The power-of-two slot sizes whose calls cover ``rows`` rows at the least estimated cost.

    A call costs ``call_us + row_us * size``, padding rows included. Full slots are taken first and
    only the last one is padded: ``9`` rows are one padded call of 16, or 8 then 1. A model whose
    call is mostly fixed cost (a small MLP) pads; a compute-bound CNN, whose padding rows cost as
    much as real ones, splits. On equal cost the plan with fewer calls wins.
    """
    return _split_plans(call_us, row_us, TFLiteRuntime.CHUNK)[rows]


@functools.lru_cache(maxsize=64)
def _split_plans(call_us: float, row_us: float, largest: int) -> tuple[tuple[int, ...], ...]:
    cost = [0.0] * (largest + 1)
    plans: list[tuple[int, ...]] = [()]
    for n in range(1, largest + 1):
        pad = 1 << (n - 1).bit_length()
        best_cost = call_us + row_us * pad
        best_plan: tuple[int, ...] = (pad,)
        size = 1
        while size < n:
            split = call_us + row_us * size + cost[n - size]
            if split < best_cost - 1e-9:
                best_cost, best_plan = split, (size, *plans[n - size])
            size <<= 1
        cost[n] = best_cost
        plans.append(best_plan)
    return tuple(plans)


class TFLiteRuntime(ModelRuntime):
    """LiteRT interpreters (``threads`` each, XNNPACK or LiteRT's own kernels), one per
    power-of-two batch size up to ``CHUNK``.

    Re-allocating an interpreter for a new batch size costs far more than running a small batch,
    so a batch runs on interpreters for power-of-two sizes: by default the next power of two,
    padded; once the version's call cost is known (:meth:`plan_batches`), by :func:`split_plan`.
    Batches above ``CHUNK`` rows run in chunks of ``CHUNK``. Slots are created on first use.
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
        self._plans: tuple[tuple[int, ...], ...] | None = None  # split_plan by rows, once known

    def plan_batches(self, us_b1: float, us_b16: float) -> None:
        """Split batches by the version's measured µs per image at batch 1 and 16.

        A call of 16 costs ``call + 16 row`` and a call of 1 ``call + row``: both figures give the
        fixed and the per-row cost. Until they are given, batches stay padded to the next power
        of two.
        """
        if not (0 < us_b1 < 1e9 and 0 < us_b16 < 1e9):
            return
        row = max((16 * us_b16 - us_b1) / 15, 0.0)
        self._plans = _split_plans(max(us_b1 - row, 0.0), row, self.CHUNK)

    def load(self) -> None:
        expected = self.metadata["files"].get(TFLITE_FILE)
        if expected is None:
            raise RepositoryError(f"{TFLITE_FILE} is not listed in metadata files")
        content = (self.path / TFLITE_FILE).read_bytes()
        if hashlib.sha256(content).hexdigest() != expected:
            raise RepositoryError(f"checksum mismatch for {TFLITE_FILE}")
        if not content:  # LiteRT would say "model_path or model_content must be specified"
            raise RepositoryError(f"{TFLITE_FILE} is empty (0 bytes)")
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
            # the delegate is applied, and announced, at the first allocation (in _Slot)
            with _without_delegate_notice() if self.xnnpack else contextlib.nullcontext():
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
        if self._plans is not None and n > 1:
            plan = self._plans[n]
            if len(plan) > 1:
                parts, start = [], 0
                for size in plan:
                    parts.append(self._run_slot(x[start : start + size], size))
                    start += size
                return np.concatenate(parts)
        return self._run_slot(x, 1 << (n - 1).bit_length())

    def _run_slot(self, x: np.ndarray, size: int) -> np.ndarray:
        n = x.shape[0]
        slot = self._slot(size)
        if n < slot.size:
            slot.buffer[:n] = x
            x = slot.buffer
        interp = slot.interpreter
        interp.set_tensor(slot.input, x)
        interp.invoke()
        out: np.ndarray = interp.get_tensor(slot.output)  # a copy already: the caller's own
        return out if n == slot.size else out[:n]

    def unload(self) -> None:
        super().unload()
        self._slots = {}
        self._content = None
