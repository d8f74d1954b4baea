"""Load one model version (in a worker thread): read and validate metadata, verify checksums,
load the runtime, warm it up and reproduce the golden sample, then take the version's latency
(from its metadata, or a short timing loop). Any failure raises with the reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from service.repository.disk import Repository, RepositoryError, listed_file_stats
from service.runtimes import ModelRuntime, create_runtime
from service.serving import latency
from service.serving.model import ModelVersion
from service.serving.tasks import Task

# Load-time timing loop for versions without a ``latency`` block: short, so loading stays quick.
LOAD_PROBE_S = 0.05


def load_version(repository: Repository, mv: ModelVersion, runtime: str = "auto") -> None:
    """Fill ``mv.metadata``, ``mv.task`` and ``mv.runtime`` (loaded and self-tested)."""
    meta = repository.read_metadata(mv.name, mv.version)
    mv.metadata = meta
    # taken before the checksums: a file changed while they are read is seen as changed
    mv.files_loaded = listed_file_stats(mv.path, meta["files"])
    mv.files_mismatched = {}
    repository.verify_files(mv.name, mv.version, meta)
    mv.task = Task.from_metadata(meta, mv.path)
    mv.runtime = create_runtime(mv.path, meta, runtime)
    mv.runtime.load()
    self_test(mv.runtime, meta)
    mv.latency = version_latency(mv.runtime, meta)
    b1, b16 = latency.per_image_us(mv.latency, 1), latency.per_image_us(mv.latency, 16)
    if b1 is not None and b16 is not None:
        mv.runtime.plan_batches(b1, b16)


def version_latency(runtime: ModelRuntime, meta: dict[str, Any]) -> dict[str, Any]:
    """The metadata's latency when it describes this runtime; else measured now, briefly."""
    stored = meta.get("latency")
    if runtime.kind == "tflite" and isinstance(stored, dict) and latency.batch1_us(stored):
        return {**stored, "source": "metadata"}
    sample = np.asarray(meta["golden"]["inputs"], dtype=np.float32)
    measured = latency.measure(runtime.predict, sample, budget_s=LOAD_PROBE_S)
    return {**measured, "source": "measured at load"}


def self_test(runtime: ModelRuntime, meta: dict[str, Any]) -> None:
    """Warm up, then reproduce the metadata's golden outputs within its atol."""
    golden = meta["golden"]
    try:
        inputs = np.asarray(golden["inputs"], dtype=np.float32)
        expected = np.asarray(golden["outputs"], dtype=np.float32)
        atol = float(golden.get("atol", 1e-4))
    except (TypeError, ValueError) as exc:
        raise RepositoryError(f"golden sample is malformed: {exc}") from exc
    shape = tuple(meta["input"]["shape"])
    if inputs.shape[1:] != shape or len(inputs) != len(expected):
        raise RepositoryError(f"golden inputs have shape {inputs.shape}, expected (n, {shape})")
    runtime.predict(inputs[:1])  # warm-up
    actual = runtime.predict(inputs)
    expected = expected.reshape(actual.shape) if expected.size == actual.size else expected
    if actual.shape != expected.shape or not np.allclose(actual, expected, atol=atol):
        diff = (
            float(np.max(np.abs(actual - expected))) if actual.shape == expected.shape else "shape"
        )
        raise RepositoryError(
            f"self-test failed: golden outputs differ (max abs diff {diff}, atol {atol})"
        )
