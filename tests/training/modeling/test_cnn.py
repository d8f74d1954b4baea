"""The image recipes' CNN builder: block shapes, per-block padding, strides and kernels, and
the fast and lean shapes."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

from training.modeling import cnn
from training.recipes import get_recipe

BASE: dict[str, Any] = {"dropout": 0.0, "dense_units": 16, "padding": "valid"}


def _convs(model: keras.Model) -> list[keras.layers.Conv2D]:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def _conv_macs(model: keras.Model) -> int:
    """Multiply-accumulates of the convolutions for one image, from their output shapes."""
    total = 0
    for conv in _convs(model):
        _, h, w, out = conv.output.shape
        k1, k2, cin, _ = conv.kernel.shape
        total += h * w * out * k1 * k2 * cin
    return int(total)


def test_two_convolutions_per_block_unless_told() -> None:
    model = cnn.build_classifier({**BASE, "widths": [4, 8]})
    assert [c.filters for c in _convs(model)] == [4, 4, 8, 8]


def test_convs_sets_each_blocks_count() -> None:
    model = cnn.build_classifier({**BASE, "widths": [4, 8], "convs": [1, 3]})
    assert [c.filters for c in _convs(model)] == [4, 8, 8, 8]


def test_padding_per_block() -> None:
    hp = {**BASE, "widths": [4, 8], "convs": [1, 2], "padding": ["same", "valid"]}
    model = cnn.build_classifier(hp)
    assert [c.padding for c in _convs(model)] == ["same", "valid", "valid"]
    # 28 'same' -> pool 14 -> 12 -> 10 -> pool 5
    flatten = next(layer for layer in model.layers if isinstance(layer, keras.layers.Flatten))
    assert tuple(flatten.output.shape) == (None, 5 * 5 * 8)


def test_a_strided_block_halves_in_its_first_convolution_and_does_not_pool() -> None:
    hp = {**BASE, "widths": [4, 8], "convs": [1, 2], "padding": ["same", "valid"]}
    model = cnn.build_classifier({**hp, "strides": [2, 1], "kernels": [5, 3]})
    convs = _convs(model)
    assert [c.strides for c in convs] == [(2, 2), (1, 1), (1, 1)]
    assert [c.kernel_size for c in convs] == [(5, 5), (3, 3), (3, 3)]
    # 28 'same' stride 2 -> 14 -> 12 -> 10 -> pool 5: one pool, after the second block
    assert [tuple(c.output.shape[1:3]) for c in convs] == [(14, 14), (12, 12), (10, 10)]
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert len(pools) == 1


@pytest.mark.parametrize(
    "hp",
    [
        {**BASE, "widths": [4, 8], "convs": [1]},
        {**BASE, "widths": [4, 8], "padding": ["same"]},
        {**BASE, "widths": [4, 8], "strides": [2]},
        {**BASE, "widths": [4, 8], "kernels": [5, 3, 3]},
    ],
)
def test_a_per_block_list_of_the_wrong_length_is_refused(hp: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        cnn.build_classifier(hp)


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_fast_recipe_drops_the_second_full_resolution_convolution(dataset: str) -> None:
    best = cnn.build_classifier(get_recipe(dataset, "best").hyperparameters())
    fast = cnn.build_classifier(get_recipe(dataset, "fast").hyperparameters())
    full = [c for c in _convs(fast) if c.output.shape[1] >= 26]
    assert len(full) == 1
    assert _conv_macs(fast) < _conv_macs(best)
    assert fast.output_shape == best.output_shape == (None, 10)


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_lean_recipe_computes_nothing_at_full_resolution(dataset: str) -> None:
    fast = cnn.build_classifier(get_recipe(dataset, "fast").hyperparameters())
    lean = cnn.build_classifier(get_recipe(dataset, "lean").hyperparameters())
    assert max(c.output.shape[1] for c in _convs(lean)) == 14
    # the first convolution, on one channel, has too few weights to be quantised and runs in
    # float: the costly part of a quantised call, the more so the more values it writes
    first, fast_first = _convs(lean)[0], _convs(fast)[0]
    assert np.prod(first.output.shape[1:]) < np.prod(fast_first.output.shape[1:]) / 3
    assert lean.output_shape == (None, 10)
