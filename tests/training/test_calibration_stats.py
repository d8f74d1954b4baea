"""ECE figures with their uncertainty: the binned ECE matches the metadata's, the noise floor is
what a calibrated model shows at that size, and the bootstrap interval holds the measured ECE."""

from __future__ import annotations

import numpy as np
import pytest

from training import calibration_stats as stats
from training.metrics import expected_calibration_error


def _binary(n: int, seed: int, sharpness: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Sigmoid probabilities, and labels drawn from them made ``sharpness`` times less sharp
    (1: calibrated; above 1: the model is overconfident)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, n)
    p = 1 / (1 + np.exp(-z))
    y = (rng.random(n) < 1 / (1 + np.exp(-z / sharpness))).astype(np.int64)
    return p.reshape(-1, 1), y


def test_equal_width_ece_is_the_metadata_ece() -> None:
    p, y = _binary(500, 0, sharpness=2.0)
    assert stats.ece(y, p) == pytest.approx(expected_calibration_error(y, p), abs=1e-12)


def test_equal_mass_bins_hold_equal_counts() -> None:
    confidence = np.random.default_rng(1).random(103)
    counts = np.bincount(stats.bin_index(confidence, 10, "mass"), minlength=10)
    assert counts.max() - counts.min() <= 1
    with pytest.raises(ValueError, match="binning"):
        stats.bin_index(confidence, 10, "quantile")


def test_the_noise_floor_is_what_calibrated_models_show_and_shrinks_with_n() -> None:
    # Calibrated models of 150 examples: their measured ECEs average the simulated floor.
    p, _ = _binary(150, 2)
    floor = stats.noise_floor(p, draws=1000)
    rng = np.random.default_rng(3)
    confidence = np.maximum(p[:, 0], 1 - p[:, 0])
    measured = []
    for _ in range(300):
        y = (rng.random(150) < p[:, 0]).astype(np.int64)
        measured.append(stats.ece(y, p))
    assert np.mean(measured) == pytest.approx(floor.mean(), rel=0.1)
    assert floor.mean() > 0.03  # the chance ECE of 150 rows alone
    big, _ = _binary(5000, 4)
    assert stats.noise_floor(big, draws=200).mean() < floor.mean() / 3
    assert (confidence >= 0.5).all()


def test_the_report_flags_a_miscalibrated_model_and_not_a_calibrated_one() -> None:
    p, y = _binary(1000, 5, sharpness=2.0)
    bad = stats.ece_report(y, p, draws=300)
    assert bad.ece > bad.floor_p95 and bad.p_value < 0.01
    assert bad.interval[0] <= bad.ece <= bad.interval[1]
    p, y = _binary(1000, 6)
    good = stats.ece_report(y, p, bins=10, scheme="mass", draws=300)
    assert good.p_value > 0.01
    assert good.as_dict()["scheme"] == "mass" and len(good.as_dict()["interval"]) == 2
