"""Whether a version's OOD score weighs its classifier's doubt: chosen on synthetic outliers
against the calibration split, with its own threshold; a confidently wrong classifier keeps the
density score alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.serving import ood
from training import ood_confidence

SIDE = 28


def _bars(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Two classes: a vertical or a horizontal bar, each somewhere in the frame, with noise."""
    x = np.zeros((n, SIDE, SIDE), np.float32)
    y = rng.integers(0, 2, n)
    for i, label in enumerate(y):
        at = int(rng.integers(6, 22))
        if label:
            x[i, 4:24, at : at + 2] = 1.0
        else:
            x[i, at : at + 2, 4:24] = 1.0
    return np.clip(x + rng.normal(0, 0.05, x.shape).astype(np.float32), 0, 1), y


def _density(tmp_path: Path) -> tuple[ood.OodModel, dict, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x, y = _bars(rng, 1500)
    arrays = ood.fit(x, y, components=8)
    held, _ = _bars(rng, 600)
    model = ood.from_arrays(arrays, 0.0)
    threshold = ood.choose_threshold(model, held, 0.02)
    ood.save(arrays, tmp_path / "ood.npz")
    block = {"method": ood.METHOD, "file": "ood.npz", "threshold": threshold}
    test, _ = _bars(rng, 400)
    return ood.from_arrays(arrays, threshold), block, held, test


def _faint_bars(shape: tuple[int, ...], n: int, seed: int) -> dict[str, np.ndarray]:
    """Outliers the density cannot tell from bars: bars at 85% ink (and no noise)."""
    x, _ = _bars(np.random.default_rng(seed), n)
    return {"faint bar": np.clip(x, 0.0, 0.85)}


def _bar_reader(x: np.ndarray) -> np.ndarray:
    """A classifier sure of a full-ink bar and unsure of a faint one."""
    full = x.reshape(len(x), -1).max(axis=1) > 0.9
    p = np.where(full, 0.999, 0.6)
    return np.stack([p, 1 - p], axis=1)


def _always_sure(x: np.ndarray) -> np.ndarray:
    """A classifier certain of class 0 whatever it sees."""
    return np.tile(np.array([[0.9999, 0.0001]], np.float32), (len(x), 1))


def test_a_classifier_unsure_on_outliers_gets_the_weighed_score(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ood_confidence, "synthetic_outliers", _faint_bars)
    model, block, held, test = _density(tmp_path)
    out = ood_confidence.with_confidence(
        block, tmp_path, _bar_reader, held, 0.02, 0.95, (test, _bar_reader(test))
    )
    confidence = out["confidence"]
    assert out["threshold"] == block["threshold"]  # the density block itself is unchanged
    mean = confidence["mean_auroc_synthetic"]
    assert confidence["weighed"] is True and mean["weighed"] > mean["density"]
    # the threshold leaves above it as many held-out images as the bound allows
    weighed = ood.weigh_by_doubt(model.input_scores(held) / model.threshold, _bar_reader(held))
    above = int(np.sum(weighed > confidence["threshold"]))
    assert above == ood.bounded_count(len(held), 0.02, 0.05) > 0
    assert confidence["flagged_confidence"] == 0.95
    assert 0 <= confidence["test_flagged"] < 0.06
    # and the service reads it back as the version's score
    meta = {"ood": out, "files": {"ood.npz": "listed"}}
    served = ood.OodModel.from_metadata(meta, tmp_path)
    assert served is not None and served.confidence_threshold == confidence["threshold"]


def test_a_confidently_wrong_classifier_keeps_the_density_score(tmp_path: Path) -> None:
    _, block, held, test = _density(tmp_path)
    confidence = ood_confidence.with_confidence(
        block, tmp_path, _always_sure, held, 0.02, 0.95, (test, _always_sure(test))
    )["confidence"]
    assert confidence["weighed"] is False and "threshold" not in confidence
    assert set(confidence["auroc_synthetic"]) == {"noise", "near-blank", "single stroke"}
    meta = {"ood": {**block, "confidence": confidence}, "files": {"ood.npz": "listed"}}
    served = ood.OodModel.from_metadata(meta, tmp_path)
    assert served is not None and served.confidence_threshold is None


def test_synthetic_outliers_have_the_input_shape_and_are_seeded() -> None:
    a = ood_confidence.synthetic_outliers((SIDE, SIDE), 20, seed=3)
    b = ood_confidence.synthetic_outliers((SIDE, SIDE), 20, seed=3)
    assert set(a) == {"noise", "near-blank", "single stroke"}
    for kind, x in a.items():
        assert x.shape == (20, SIDE, SIDE) and x.dtype == np.float32
        assert x.min() >= 0 and x.max() <= 1
        np.testing.assert_array_equal(x, b[kind])
    assert (a["near-blank"].reshape(20, -1).sum(axis=1) < 0.02 * SIDE * SIDE).all()
    assert (a["single stroke"].reshape(20, -1).max(axis=1) == 1.0).all()
