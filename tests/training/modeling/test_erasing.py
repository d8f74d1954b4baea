"""Random erasing: identity at inference; in training, one noise rectangle in chosen images."""

from __future__ import annotations

import numpy as np
import pytest

from training.modeling.erasing import ERASE_DEFAULTS, RandomErasing, erase_params


def _items(batch: int = 64) -> np.ndarray:
    """A constant mid-grey frame, so any erased pixel shows as a change, [B, 28, 28, 1]."""
    return np.full((batch, 28, 28, 1), 0.5, dtype=np.float32)


def _run(params: dict[str, object], x: np.ndarray, seed: int = 0) -> np.ndarray:
    return np.asarray(RandomErasing(params, seed=seed)(x, training=True))


def test_inference_is_the_identity() -> None:
    x = _items()
    out = np.asarray(RandomErasing({"rate": 1.0}, seed=0)(x, training=False))
    np.testing.assert_array_equal(out, x)


def test_rate_zero_leaves_images_alone() -> None:
    x = _items()
    np.testing.assert_array_equal(_run({"rate": 0.0}, x), x)


def test_every_image_gets_one_noise_rectangle_of_the_drawn_size() -> None:
    x = _items()
    out = _run({"rate": 1.0, "area": [0.1, 0.2]}, x)
    assert out.shape == x.shape and out.min() >= 0.0 and out.max() <= 1.0
    changed = out[..., 0] != x[..., 0]
    for mask in changed:
        rows, cols = np.nonzero(mask)
        assert len(rows) > 0
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        # noise almost never lands on exactly 0.5, so the changed pixels fill their bounding box
        assert mask.sum() >= 0.95 * box
        assert 0.05 * 784 <= box <= 0.3 * 784


def test_about_rate_of_the_images_are_erased() -> None:
    out = _run({"rate": 0.5}, _items(400))
    erased = np.mean(np.any(out != 0.5, axis=(1, 2, 3)))
    assert 0.4 < erased < 0.6


def test_same_seed_same_erasing() -> None:
    x = _items(8)
    np.testing.assert_array_equal(_run({}, x, seed=3), _run({}, x, seed=3))


def test_settings_are_checked() -> None:
    assert erase_params(True) == ERASE_DEFAULTS
    with pytest.raises(ValueError, match="unknown"):
        erase_params({"size": 0.1})
    with pytest.raises(ValueError, match="invalid"):
        erase_params({"area": [0.3, 0.1]})
