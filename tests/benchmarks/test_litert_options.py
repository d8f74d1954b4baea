"""benchmarks.litert_options: every option set is timed on the version and rendered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import litert_options


def test_each_option_set_gets_a_row_with_its_timings(
    tiny_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    monkeypatch.setattr(
        litert_options, "mnist_images", lambda count, dataset="mnist": np.zeros((count, 28, 28))
    )
    path = tiny_repo / "mnist" / "1"
    meta = json.loads((path / "metadata.json").read_text())
    rows = litert_options.measure_version("mnist", 1, path, meta, rounds=2, budget_s=0.001)
    assert [(r["threads"], r["xnnpack"]) for r in rows] == [
        (o.threads, o.xnnpack) for o in litert_options.OPTION_SETS
    ]
    for row in rows:
        assert row["us_per_image_b1"] > 0 and row["us_per_image_b16"] > 0
        assert len(row["rounds_us_b16"]) == 2
        assert row["max_abs_diff"] < 1e-4
    text = litert_options.render(
        {"rounds": 2, "loadavg_at_start": [1.0], "loadavg_at_end": [2.0], "rows": rows}
    )
    assert text.count("| mnist v1 (") == len(litert_options.OPTION_SETS)
