"""The Pima bag's decision threshold rules."""

from __future__ import annotations

import numpy as np
import pytest

from training.modeling import pima_bag


def test_choose_threshold_maximises_accuracy_in_range() -> None:
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.35, 0.4, 0.8, 0.9])
    assert pima_bag.choose_threshold(y, p, 0.3, 0.7) == pytest.approx(0.4)  # ties: nearest 0.5
    assert pima_bag.choose_threshold(y, p, 0.5, 0.7) == pytest.approx(0.5)


def test_platt_threshold_finds_the_calibrated_midpoint() -> None:
    rng = np.random.default_rng(0)
    # True P(y=1) = sigmoid(2 * logit(p) - 1): calibrated 0.5 sits at logit(p) = 0.5.
    p = rng.uniform(0.02, 0.98, 20000)
    logit = np.log(p / (1 - p))
    y = (rng.random(p.size) < 1 / (1 + np.exp(-(2 * logit - 1)))).astype(int)
    expected = 1 / (1 + np.exp(-0.5))
    assert pima_bag.platt_threshold(y, p, 0.0, 1.0) == pytest.approx(expected, abs=0.02)
    assert pima_bag.platt_threshold(y, p, 0.0, 0.55) == pytest.approx(0.55)
    assert pima_bag.platt_threshold(1 - y, p, 0.0, 1.0) == 0.5  # inverted ranking: no threshold
