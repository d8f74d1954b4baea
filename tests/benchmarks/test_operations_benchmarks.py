"""The operations benchmarks' own logic: the payload-log comparison within rounds, and the
repository copy the soak and the cost benchmark give drift references to."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks.payload_log import OFF, compare
from benchmarks.soak import with_drift_references
from benchmarks.stats import RunResult
from service.repository.disk import Repository
from service.serving.drift import load_reference
from tests.helpers.models import cached_tiny_repository


def _run(server: str, p99: float) -> RunResult:
    return RunResult(server, "json-1", 16, 1000, 0, 1.0, p99 / 4, p99, p99 * 2, p99 / 3)


def test_compare_takes_the_median_of_the_ratios_within_each_round() -> None:
    # the machine slows down in round 2: a ratio of medians would blame the logging server
    off = [_run(OFF, p) for p in (10.0, 100.0, 11.0)]
    on = [_run("log", p) for p in (11.0, 105.0, 12.0)]
    result = compare({OFF: off, "log": on})
    ratios = sorted([11.0 / 10.0, 105.0 / 100.0, 12.0 / 11.0])
    assert result["log"]["p99_ratio"] == pytest.approx(ratios[1], abs=1e-3)
    assert result[OFF]["p99_ratio"] == 1.0
    assert result["log"]["p99_ms"] == 12.0 and result["log"]["rounds_p99_ms"] == [11.0, 105.0, 12.0]


def test_drift_references_are_added_where_missing_and_pass_the_checksums(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = cached_tiny_repository(tmp_path / "staging")
    source = tmp_path / "source"
    for name in ("mnist", "pima"):
        shutil.copytree(tiny / name, source / name)
    # real test images are not needed to size a window: synthetic ones stand in
    monkeypatch.setattr(
        "benchmarks.soak.mnist_images",
        lambda n, _name: np.random.default_rng(0).random((n, 28, 28)).astype(np.float32),
    )
    root = with_drift_references(source, tmp_path / "copy")
    versions = list(root.glob("*/*/metadata.json"))
    assert versions
    for meta_path in versions:
        meta = json.loads(meta_path.read_text())
        name, version = meta_path.parent.parent.name, int(meta_path.parent.name)
        Repository(root).verify_files(name, version, meta)
        reference = load_reference(meta, meta_path.parent)
        assert reference is not None
    assert not any(source.glob("*/*/drift_reference.json"))  # the source is left alone
