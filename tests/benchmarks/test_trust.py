"""benchmarks.trust: set figures and abstention through a version's task, and the page shows
every version, alpha and input it measured."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from benchmarks import trust
from benchmarks.trust_report import markdown
from service.serving import conformal


class _Task:
    """What trust needs of a task: sets from sorted scores, abstention without OOD."""

    def __init__(self, scores: np.ndarray) -> None:
        self.conformal = conformal.Conformal(np.sort(scores).astype(np.float32))

    def set_masks(self, probs: np.ndarray, alpha: float) -> np.ndarray:
        return self.conformal.mask(probs, alpha)

    def abstain_reasons(
        self, x: np.ndarray, probs: np.ndarray, mask: np.ndarray
    ) -> list[str | None]:
        return conformal.abstentions(mask, None)


def test_set_figures_and_abstention_follow_the_sets() -> None:
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4) * 0.3, 2000)
    y = (p.cumsum(axis=1) > rng.random((2000, 1))).argmax(axis=1)
    task = _Task(conformal.scores(p[:1000], y[:1000]))
    figures = trust._sets(task, p[1000:], y[1000:], 0.1, 1000)
    mask = task.set_masks(p[1000:], 0.1)
    assert figures["coverage"] == pytest.approx(mask[np.arange(1000), y[1000:]].mean(), abs=1e-4)
    assert figures["bound_with_draw"] < figures["bound"] < 0.9
    assert figures["met"] == (figures["coverage"] >= figures["bound"])
    out = trust._abstention(task, p[1000:], p[1000:], 0.1)
    sizes = mask.sum(axis=1)
    assert out["abstained"] == pytest.approx((sizes != 1).mean(), abs=1e-4)
    assert sum(out["reasons"].values()) == pytest.approx(out["abstained"], abs=2e-4)


def _ece(value: float) -> dict[str, Any]:
    return {
        "bins": 15,
        "scheme": "width",
        "ece": value,
        "interval": [value / 2, value * 2],
        "floor_mean": 0.05,
        "floor_p95": 0.08,
        "p_value": 0.4,
    }


def test_the_page_lists_each_version_alpha_and_input() -> None:
    row = {
        "model": "mnist",
        "version": 7,
        "accuracy": 0.99,
        "calibration": {
            "method": "temperature",
            "before": {"ece": [_ece(0.0123)], "brier": 0.02},
            "after": {"ece": [_ece(0.0045)], "brier": 0.01},
        },
        "conformal": {
            "default_alpha": 0.02,
            "rule_alpha": 0.02,
            "delta": 0.1,
            "n": 5000,
            "max_score_gap": 1e-6,
            "calibration_accuracy": 0.99,
            "calibration_coverage": 0.981,
        },
        "sets": [
            {
                "alpha": a,
                "coverage": 1 - a,
                "bound": 1 - a - 0.01,
                "met": True,
                "bound_with_draw": 1 - a - 0.02,
                "mean_set_size": 1.0,
                "single_label": 0.97,
                "empty": 0.0,
            }
            for a in (0.1, 0.02)
        ],
        "abstention": {
            "noise": {"0.02": {"examples": 9, "abstained": 1.0, "reasons": {"no_label": 1.0}}}
        },
    }
    page = markdown({"models_dir": "m", "created_at": "now", "versions": [row], "pima_oof": None})
    assert "| mnist | 7 | temperature | 15 width | 0.0123 [0.006, 0.025] | 0.0045" in page
    assert "| 0.02 (default, rule) | 0.9800 |" in page
    assert "| noise | 0.02 (default, rule) | 1.0000 |" in page
    assert "out-of-fold" not in page
