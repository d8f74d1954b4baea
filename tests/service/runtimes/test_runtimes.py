"""The runtimes (LiteRT and SavedModel, chosen by create_runtime) against the golden outputs."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.repository.disk import RepositoryError
from service.runtimes import SavedModelRuntime, TFLiteRuntime, create_runtime
from service.runtimes.litert import split_plan


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


def test_an_empty_tflite_file_is_named_as_such(repo_copy: Path) -> None:
    """A broken export can write 0 bytes and checksum them: LiteRT's own message ("model_path
    or model_content must be specified") says nothing about the file."""
    path = repo_copy / "mnist" / "1"
    meta, _, _ = _golden(path)
    (path / "model.tflite").write_bytes(b"")
    meta["files"]["model.tflite"] = hashlib.sha256(b"").hexdigest()
    with pytest.raises(RepositoryError, match=r"model\.tflite is empty \(0 bytes\)"):
        TFLiteRuntime(path, meta).load()


def test_tflite_padded_buckets_and_chunks_match_row_by_row(tiny_repo: Path) -> None:
    path = tiny_repo / "mnist" / "2"
    meta, _, _ = _golden(path)
    runtime = TFLiteRuntime(path, meta)
    runtime.load()
    big = np.random.default_rng(3).random((TFLiteRuntime.CHUNK + 37, 28, 28), dtype=np.float32)
    rows = np.concatenate([runtime.predict(big[i : i + 1]) for i in range(len(big))])
    for n in (3, 5, 64, 100, len(big)):  # padded to 4, 8, exact 64, 128; then chunked
        np.testing.assert_allclose(runtime.predict(big[:n]), rows[:n], atol=1e-6)


def test_tflite_split_batches_match_row_by_row_and_use_full_slots(tiny_repo: Path) -> None:
    path = tiny_repo / "mnist" / "2"
    meta, _, _ = _golden(path)
    runtime = TFLiteRuntime(path, meta)
    runtime.load()
    runtime.plan_batches(30.0, 22.0)  # a CNN's shape
    big = np.random.default_rng(4).random((TFLiteRuntime.CHUNK + 9, 28, 28), dtype=np.float32)
    rows = np.concatenate([runtime.predict(big[i : i + 1]) for i in range(len(big))])
    for n in (3, 9, 12, 100, len(big)):
        np.testing.assert_allclose(runtime.predict(big[:n]), rows[:n], atol=1e-6)
    assert 16 not in runtime._slots  # 9 and 12 rows ran as 8 + 1 and 8 + 4, not padded to 16


def test_tflite_without_call_costs_pads_to_the_next_power_of_two(tiny_repo: Path) -> None:
    path = tiny_repo / "mnist" / "2"
    meta, _, _ = _golden(path)
    runtime = TFLiteRuntime(path, meta)
    runtime.load()
    runtime.plan_batches(float("nan"), 22.0)  # ignored
    runtime.predict(np.zeros((9, 28, 28), np.float32))
    assert sorted(runtime._slots) == [1, 16]


@pytest.mark.parametrize(("call_us", "row_us"), [(10.0, 22.0), (6.4, 0.4), (0.0, 1.0), (5.0, 0.0)])
def test_split_plan_covers_the_rows_and_costs_no_more_than_padding(
    call_us: float, row_us: float
) -> None:
    for rows in range(1, TFLiteRuntime.CHUNK + 1):
        plan = split_plan(rows, call_us, row_us)
        assert all(size & (size - 1) == 0 for size in plan)  # powers of two: allocated slots
        assert sum(plan[:-1]) < rows <= sum(plan)  # only the last call is padded
        padded = 1 << (rows - 1).bit_length()
        cost = len(plan) * call_us + row_us * sum(plan)
        assert cost <= call_us + row_us * padded + 1e-9


def test_split_plan_splits_compute_bound_models_and_pads_call_bound_ones() -> None:
    assert sorted(split_plan(9, 10.0, 22.0)) == [1, 8]
    assert sorted(split_plan(12, 10.0, 22.0)) == [4, 8]
    assert split_plan(9, 6.4, 0.4) == (16,)  # 7 padding rows cost less than a second call
    assert split_plan(16, 10.0, 22.0) == (16,)


@pytest.mark.parametrize(("threads", "xnnpack"), [(2, True), (1, False)])
def test_litert_options_give_the_same_outputs(tiny_repo: Path, threads: int, xnnpack: bool) -> None:
    path = tiny_repo / "mnist" / "1"
    meta, x, y = _golden(path)
    runtime = TFLiteRuntime(path, meta, threads=threads, xnnpack=xnnpack)
    runtime.load()
    for n in (1, len(x)):
        np.testing.assert_allclose(runtime.predict(x[:n]), y[:n], atol=1e-5)
    assert runtime.threads == threads and runtime.xnnpack is xnnpack


LOAD_AND_WRITE = """
import json, os, sys
from pathlib import Path
from service.runtimes import TFLiteRuntime
path = Path(sys.argv[1])
os.write(2, b"before\\n")
broken = TFLiteRuntime(path, json.loads((path / "metadata.json").read_text()))
broken._content = b"not a flatbuffer"  # the first interpreter fails: the next one still hides it
try:
    broken._slot(1)
except ValueError:
    pass
for xnnpack in (True, True, False):
    TFLiteRuntime(path, json.loads((path / "metadata.json").read_text()), xnnpack=xnnpack).load()
os.write(2, b"after\\n")
"""


def test_the_delegate_notice_stays_off_stderr_and_the_rest_gets_through(tiny_repo: Path) -> None:
    """The notice would be the one line of the JSON log on stderr that is not JSON."""
    done = subprocess.run(
        [sys.executable, "-c", LOAD_AND_WRITE, str(tiny_repo / "mnist" / "2")],
        capture_output=True,
        timeout=120,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert done.stderr.decode().splitlines() == ["before", "after"]
