"""The runtimes (LiteRT and SavedModel, chosen by create_runtime) against the golden outputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.repository.disk import RepositoryError
from service.runtimes import SavedModelRuntime, TFLiteRuntime, create_runtime


def _golden(path: Path) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    meta = json.loads((path / "metadata.json").read_text())
    return (
        meta,
        np.asarray(meta["golden"]["inputs"], np.float32),
        np.asarray(meta["golden"]["outputs"]),
    )


def test_runtimes_reproduce_golden_outputs_for_any_batch_size(tiny_repo: Path) -> None:
    path = tiny_repo / "mnist" / "1"
    meta, x, y = _golden(path)
    tflite = create_runtime(path, meta)
    assert isinstance(tflite, TFLiteRuntime)
    tflite.load()
    saved = create_runtime(path, meta, "savedmodel")
    assert isinstance(saved, SavedModelRuntime)
    saved.load()
    for n in (1, 3, len(x), 1):
        np.testing.assert_allclose(tflite.predict(x[:n]), y[:n], atol=1e-5)
        np.testing.assert_allclose(saved.predict(x[:n]), y[:n], atol=1e-5)
    tflite.unload()
    assert not tflite.ready
    with pytest.raises(RuntimeError):
        tflite.predict(x)


def test_unlisted_savedmodel_file_is_refused(repo_copy: Path) -> None:
    path = repo_copy / "fashion_mnist" / "1"
    meta, _, _ = _golden(path)
    shutil.copy(path / "saved_model.pb", path / "variables" / "extra.bin")
    with pytest.raises(RepositoryError, match="not listed"):
        SavedModelRuntime(path, meta).load()


def test_tflite_padded_buckets_and_chunks_match_row_by_row(tiny_repo: Path) -> None:
    path = tiny_repo / "mnist" / "2"
    meta, _, _ = _golden(path)
    runtime = TFLiteRuntime(path, meta)
    runtime.load()
    big = np.random.default_rng(3).random((TFLiteRuntime.CHUNK + 37, 28, 28), dtype=np.float32)
    rows = np.concatenate([runtime.predict(big[i : i + 1]) for i in range(len(big))])
    for n in (3, 5, 64, 100, len(big)):  # padded to 4, 8, exact 64, 128; then chunked
        np.testing.assert_allclose(runtime.predict(big[:n]), rows[:n], atol=1e-6)


@pytest.mark.parametrize(("threads", "xnnpack"), [(2, True), (1, False)])
def test_litert_options_give_the_same_outputs(tiny_repo: Path, threads: int, xnnpack: bool) -> None:
    path = tiny_repo / "mnist" / "1"
    meta, x, y = _golden(path)
    runtime = TFLiteRuntime(path, meta, threads=threads, xnnpack=xnnpack)
    runtime.load()
    for n in (1, len(x)):
        np.testing.assert_allclose(runtime.predict(x[:n]), y[:n], atol=1e-5)
    assert runtime.threads == threads and runtime.xnnpack is xnnpack
