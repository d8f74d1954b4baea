"""The drift window's statistics (the references' making is tested with the trainer)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from service.serving.drift import DriftWindow, load_reference, record_reference


def _window(tmp_path: Path, rows: np.ndarray, names: list[str]) -> DriftWindow:
    """A window of 200 rows (alarm from 100, alpha 0.01) against a reference of ``rows``."""
    (tmp_path / "ref.json").write_text(json.dumps(record_reference(rows, names)))
    meta = {"drift": {"file": "ref.json"}, "files": {"ref.json": ""}}
    reference = load_reference(meta, tmp_path)
    assert reference is not None
    return DriftWindow(reference, size=200, alpha=0.01, min_rows=100)


def test_a_reference_feature_the_server_does_not_compute_is_untested(tmp_path: Path) -> None:
    """A reference may name a feature this server does not compute: it gets no statistic, no
    alarm and no share of alpha, instead of a window of zeros tested against its quantiles."""
    rng = np.random.default_rng(0)
    rows = np.column_stack([rng.normal(120, 30, 800), rng.normal(1000, 200, 800)])
    window = _window(tmp_path, rows, ["glucose", "bmi_sq"])
    window.add({"glucose": rng.normal(120, 30, 200)})
    report = window.report()
    unknown = report["features"]["bmi_sq"]
    assert unknown == {
        "kind": "continuous",
        "ks": None,
        "psi": None,
        "p_value": None,
        "computed": False,
    }
    assert report["alarm"] is False and report["features"]["glucose"]["ks"] is not None
    assert report["threshold"]["p_value_per_feature"] == 0.01  # one feature tested


def test_an_empty_window_gives_the_threshold_its_first_inputs_will_have(tmp_path: Path) -> None:
    """The p-value threshold (in the report and its gauge) does not jump from alpha to
    alpha / features when the first input arrives."""
    rng = np.random.default_rng(0)
    rows = np.column_stack([rng.normal(120, 30, 800), rng.normal(30, 5, 800)])
    window = _window(tmp_path, rows, ["glucose", "mass"])
    empty = window.report()["threshold"]["p_value_per_feature"]
    window.add({"glucose": rng.normal(120, 30, 5), "mass": rng.normal(30, 5, 5)})
    assert empty == window.report()["threshold"]["p_value_per_feature"] == 0.01 / 2
