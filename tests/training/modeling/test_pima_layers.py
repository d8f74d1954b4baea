"""PimaFeatures: the Pima preprocessing that lives inside the exported model."""

from __future__ import annotations

import numpy as np
import pytest

from training.modeling.pima_layers import MISSING_IF_ZERO, PimaFeatures
from training.specs import PIMA_FEATURE_NAMES


def _pima_rows(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.column_stack(
        [
            rng.integers(0, 10, n),
            rng.normal(120, 30, n),
            rng.normal(70, 12, n),
            rng.normal(29, 10, n),
            rng.normal(150, 80, n).clip(15),
            rng.normal(32, 7, n),
            rng.lognormal(-0.8, 0.6, n),
            rng.integers(21, 80, n),
        ]
    ).astype(np.float32)
    for j in MISSING_IF_ZERO:
        x[rng.random(n) < 0.2, j] = 0.0
    return x


def test_pima_features_impute_zeros_with_training_medians() -> None:
    x = _pima_rows(300)
    layer = PimaFeatures(keep=PIMA_FEATURE_NAMES, log=(), indicators=("insulin",))
    layer.adapt(x)
    out = np.asarray(layer(x))
    assert out.shape == (300, 9) and layer.output_width == 9
    for j in MISSING_IF_ZERO:
        measured = x[x[:, j] != 0, j]
        expected = (np.median(measured) - layer.mean.numpy()[j]) / layer.std.numpy()[j]
        np.testing.assert_allclose(out[x[:, j] == 0, j], expected, rtol=1e-4, atol=1e-4)
    # "pregnant" is not a missing-if-zero column: zeros stay zeros (before scaling).
    zero_preg = x[:, 0] == 0
    assert zero_preg.any()
    np.testing.assert_allclose(
        out[zero_preg, 0], -layer.mean.numpy()[0] / layer.std.numpy()[0], rtol=1e-5
    )
    np.testing.assert_array_equal(out[:, 8], (x[:, 4] == 0).astype(np.float32))


def test_pima_features_standardise_log_and_hinge() -> None:
    x = _pima_rows(400, seed=1)
    layer = PimaFeatures(keep=("glucose", "pedigree"), log=("pedigree",), hinges=("age",), knots=3)
    layer.adapt(x)
    out = np.asarray(layer(x))
    assert out.shape == (400, 5)
    np.testing.assert_allclose(out[:, :2].mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(out[:, :2].std(axis=0), 1.0, atol=1e-3)
    z_ped = (np.log(x[:, 6]) - np.log(x[:, 6]).mean()) / np.log(x[:, 6]).std()
    np.testing.assert_allclose(out[:, 1], z_ped, atol=1e-3)
    hinges = out[:, 2:]
    assert np.all(hinges >= 0)
    # Knots at the quartiles: each hinge is active for roughly 3/4, 1/2 and 1/4 of the rows.
    np.testing.assert_allclose((hinges > 0).mean(axis=0), [0.75, 0.5, 0.25], atol=0.05)


def test_pima_features_reject_unknown_names_and_bad_shapes() -> None:
    with pytest.raises(ValueError, match="unknown Pima feature"):
        PimaFeatures(keep=("glucose", "height"))
    with pytest.raises(ValueError, match=r"\[N, 8\]"):
        PimaFeatures().adapt(np.zeros((5, 7), dtype=np.float32))
