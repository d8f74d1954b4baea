"""The attribution math: exact Shapley values (efficiency, symmetry, dummy, known linear and
logistic answers) and occlusion maps (shape, coverage, a deletion test on a synthetic model)."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from service.serving.attribution import (
    Occlusion,
    coalition_inputs,
    coalitions,
    load_background,
    logit,
    shapley_matrix,
    shapley_values,
)

rng = np.random.default_rng(3)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def brute_force(v: dict[frozenset[int], float], n: int) -> np.ndarray:
    """Shapley values by the textbook formula over explicit sets."""
    phi = np.zeros(n)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for size in range(n):
            w = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for s in itertools.combinations(others, size):
                phi[i] += w * (v[frozenset(s) | {i}] - v[frozenset(s)])
    return phi


def test_coalitions_enumerate_every_subset_once() -> None:
    masks = coalitions(8)
    assert masks.shape == (256, 8)
    assert len({tuple(m) for m in masks}) == 256
    assert not masks[0].any() and masks[-1].all()


def test_the_matrix_matches_the_textbook_formula() -> None:
    n = 5
    values = rng.normal(size=2**n)
    by_set = {frozenset(np.flatnonzero(m).tolist()): values[s] for s, m in enumerate(coalitions(n))}
    np.testing.assert_allclose(shapley_matrix(n) @ values, brute_force(by_set, n), atol=1e-12)


def test_linear_model_gets_weight_times_distance_from_the_background_mean() -> None:
    w = rng.normal(size=8)
    x = rng.normal(size=8).astype(np.float32)
    background = rng.normal(size=(32, 8)).astype(np.float32)
    inputs = coalition_inputs(x, background)
    assert inputs.shape == (256 * 32, 8) and inputs.dtype == np.float32
    result = shapley_values(inputs.astype(np.float64) @ w, 8)
    expected = w * (x.astype(np.float64) - background.astype(np.float64).mean(axis=0))
    np.testing.assert_allclose(result.values, expected, atol=1e-9)


def test_logistic_model_in_log_odds_is_linear_again() -> None:
    """For f = sigmoid(w.x + c), log-odds attributions are exactly w_i (x_i - mean b_i)."""
    w, c = rng.normal(size=8), 0.3
    x = rng.normal(size=8)
    background = rng.normal(size=(16, 8))
    f = sigmoid(coalition_inputs(x, background).astype(np.float64) @ w + c)
    result = shapley_values(f, 8, "logit")
    xs, bs = x.astype(np.float32).astype(np.float64), background.astype(np.float32)
    np.testing.assert_allclose(result.values, w * (xs - bs.mean(axis=0)), atol=1e-6)


@pytest.mark.parametrize("link", ["identity", "logit"])
def test_efficiency_the_values_add_up_to_the_difference(link: str) -> None:
    background = rng.random((24, 8)).astype(np.float32)
    x = rng.random(8).astype(np.float32)
    w1, w2 = rng.normal(size=(8, 6)), rng.normal(size=6)
    inputs = coalition_inputs(x, background).astype(np.float64)
    f = sigmoid(np.tanh(inputs @ w1) @ w2)  # a small non-linear network
    result = shapley_values(f, 8, link)
    g = logit(f) if link == "logit" else f
    g = g.reshape(256, -1)
    assert result.full == pytest.approx(g[-1].mean()) and result.base == pytest.approx(g[0].mean())
    assert abs(result.values.sum() - (result.full - result.base)) < 1e-5


def test_symmetry_and_dummy() -> None:
    """Features the model treats alike get equal values; a feature it ignores gets zero."""
    background = rng.random((8, 4)).astype(np.float32)
    x = np.array([1.0, 1.0, 0.5, 0.7], np.float32)
    background[:, 1] = background[:, 0]  # features 0 and 1 are interchangeable
    inputs = coalition_inputs(x, background).astype(np.float64)
    f = sigmoid(inputs[:, 0] * inputs[:, 1] + inputs[:, 2])  # feature 3 is ignored
    result = shapley_values(f, 4)
    assert result.values[0] == pytest.approx(result.values[1], abs=1e-12)
    assert result.values[3] == pytest.approx(0.0, abs=1e-12)


def test_background_from_the_version_folder_or_the_golden_rows(tmp_path: Path) -> None:
    rows = rng.random((32, 8)).astype(np.float32)
    np.save(tmp_path / "background.npy", rows)
    meta = {
        "files": {"background.npy": "x"},
        "explain": {"background": {"file": "background.npy", "rows": 32}},
        "golden": {"inputs": rows[:2].tolist()},
    }
    loaded, source = load_background(meta, tmp_path, 8)
    np.testing.assert_array_equal(loaded, rows)
    assert source == "training sample (32 rows)"
    del meta["explain"]
    loaded, source = load_background(meta, tmp_path, 8)
    assert loaded.shape == (2, 8) and source == "golden sample (2 rows)"


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"background": {"file": "other.npy"}}, "metadata files"),
        ({"background": {"file": "background.npy", "rows": 5}}, "metadata says 5"),
        ({"background": "background.npy"}, "must be an object"),
    ],
)
def test_a_broken_background_fails_the_load(tmp_path: Path, block: object, message: str) -> None:
    np.save(tmp_path / "background.npy", np.zeros((4, 8), np.float32))
    meta = {"files": {"background.npy": "x"}, "explain": block}
    with pytest.raises(ValueError, match=message):
        load_background(json.loads(json.dumps(meta)), tmp_path, 8)


def test_a_background_of_the_wrong_width_or_with_nan_is_refused(tmp_path: Path) -> None:
    meta = {"files": {"background.npy": "x"}, "explain": {"background": {"file": "background.npy"}}}
    np.save(tmp_path / "background.npy", np.zeros((4, 7), np.float32))
    with pytest.raises(ValueError, match="rows of 8 features"):
        load_background(meta, tmp_path, 8)
    np.save(tmp_path / "background.npy", np.full((4, 8), np.nan, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        load_background(meta, tmp_path, 8)


# --- occlusion --------------------------------------------------------------------------------
def test_patches_cover_every_pixel() -> None:
    occ = Occlusion(28, patch=4, stride=2)
    assert occ.starts[-1] == 24 and occ.copies == 13 * 13
    assert occ.masks.any(axis=0).all()
    odd = Occlusion(28, patch=5, stride=4)
    assert odd.starts[-1] == 23 and odd.masks.any(axis=0).all()


def test_inputs_are_the_image_then_one_occluded_copy_per_patch() -> None:
    occ = Occlusion(28, patch=4, stride=2)
    image = rng.random((28, 28)).astype(np.float32)
    batch = occ.inputs(image)
    assert batch.shape == (1 + occ.copies, 28, 28) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch[0], image)
    assert (batch[1][:4, :4] == 0).all() and (batch[1][4:, 4:] == image[4:, 4:]).all()


def test_a_linear_model_gets_its_weights_on_the_ink() -> None:
    """For score = sum(w * x), a pixel's occlusion attribution is w * x: every patch's drop is
    shared in proportion to ink, and a pixel at the baseline gets nothing."""
    occ = Occlusion(28, patch=4, stride=2)
    w = np.full((28, 28), 0.01)
    image = np.zeros((28, 28), np.float32)
    image[6:22, 12:16] = 1.0
    scores = (occ.inputs(image).astype(np.float64) * w).sum(axis=(1, 2))
    attribution = occ.attribution(image, scores)
    assert attribution.shape == (28, 28)
    np.testing.assert_allclose(attribution, w * image, atol=1e-7)


def test_deletion_on_a_synthetic_model() -> None:
    """A model that looks only at the left half of the image: the top-attributed pixels are there
    (to within a patch), and removing them lowers the score more than as many random pixels."""
    occ = Occlusion(28, patch=4, stride=2)
    w = np.zeros((28, 28))
    w[:, :14] = 1.0

    def model(batch: np.ndarray) -> np.ndarray:
        return sigmoid((batch * w).sum(axis=(1, 2)) / 10.0 - 2.0)  # type: ignore[no-any-return]

    wins = 0
    for trial in range(50):
        image = np.zeros((28, 28), np.float32)
        top_row, col = 4 + trial % 10, 8 + trial % 4  # the ink straddles the middle
        image[top_row : top_row + 14, col : col + 8] = rng.random((14, 8)) * 0.5 + 0.5
        attribution = occ.attribution(image, model(occ.inputs(image)))
        k = 20
        top = np.argsort(-attribution.ravel())[:k]
        random = rng.choice(784, k, replace=False)
        removed_top, removed_random = image.ravel().copy(), image.ravel().copy()
        removed_top[top] = 0.0
        removed_random[random] = 0.0
        base = model(image[None])[0]
        drop_top = base - model(removed_top.reshape(1, 28, 28))[0]
        drop_random = base - model(removed_random.reshape(1, 28, 28))[0]
        wins += drop_top > drop_random
        assert (np.unravel_index(top, (28, 28))[1] < 14 + occ.patch).all()  # blurred by a patch
    assert wins / 50 >= 0.9
