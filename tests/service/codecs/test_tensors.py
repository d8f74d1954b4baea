"""Numeric tensors from decoded JSON: long lists are read in chunks, with the same results and
the same messages as one read."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from service.codecs import tensors
from service.codecs.tensors import json_kind, json_numbers, numeric_array, shape_text
from service.errors import InvalidInput

F32 = np.dtype(np.float32)


def images(n: int) -> list[Any]:
    return np.random.default_rng(0).random((n, 28, 28)).round(3).tolist()


def message(data: Any, dtype: np.dtype[Any] = F32) -> str:
    with pytest.raises(InvalidInput) as info:
        json_numbers(data, dtype, "instances")
    return info.value.message


def test_a_long_regular_list_reads_as_one_array_would() -> None:
    data = images(300)  # 235,200 values: four chunks
    assert np.array_equal(json_numbers(data, F32, "x"), np.asarray(data, dtype=F32))
    ints_then_floats = [[1] * 784] * 100 + [[0.5] * 784] * 100
    got = numeric_array(ints_then_floats)
    assert got is not None and got.dtype == np.float64
    assert np.array_equal(got, np.asarray(ints_then_floats))
    flags = [[True, False] * 392] * 200
    got = numeric_array(flags)
    assert got is not None and got.dtype == np.bool_ and got.shape == (200, 784)


@pytest.mark.parametrize(
    ("bad", "kind"),
    [("x", "string"), ("0.5", "string"), (None, "null"), ({"v": 1}, "object")],
)
def test_a_value_that_is_no_number_at_the_end_of_a_long_list_is_named(bad: Any, kind: str) -> None:
    data = images(300)
    data[-1][27][27] = bad
    assert numeric_array(data) is None
    assert message(data) == f"instances[299][27][27]: expected a number, got {kind}"
    flat = [0.5] * 200_000 + [bad]
    assert message(flat) == f"instances[200000]: expected a number, got {kind}"


def test_a_long_list_ragged_in_a_later_chunk_is_named() -> None:
    data = images(300)
    data[250] = data[250][:27]
    assert message(data) == (
        "instances[250]: ragged array: it has shape [27, 28] but instances[0] has shape [28, 28]"
    )
    data = images(300)
    data[250][3].append(0.5)
    assert message(data) == (
        "instances[250][3]: ragged array: it has shape [29] but instances[250][0] has shape [28]"
    )


def reference_shape(value: Any, path: str, depth: int = 0) -> tuple[int, ...] | str:
    """The walk of one element at a time, as the error path was before lists were chunked."""
    if json_kind(value) == "number":
        return ()
    if not isinstance(value, list):
        return f"{path}: expected a number, got {json_kind(value)}"
    if depth >= tensors.MAX_DEPTH:
        return f"{path}: arrays nested more than {tensors.MAX_DEPTH} levels deep"
    first: tuple[int, ...] | None = None
    for i, item in enumerate(value):
        sub = reference_shape(item, f"{path}[{i}]", depth + 1)
        if isinstance(sub, str):
            return sub
        if first is None:
            first = sub
        elif sub != first:
            return (
                f"{path}[{i}]: ragged array: it has shape {shape_text(sub)} "
                f"but {path}[0] has shape {shape_text(first)}"
            )
    return (len(value), *(first or ()))


def deep(levels: int) -> Any:
    value: Any = 1.0
    for _ in range(levels):
        value = [value]
    return value


ODD = [
    [[1, 2], [3, 4], [5, "6"], [7, 8]],
    [[1, 2], [3, 4], [5], [7, 8]],
    [[1, 2], [3, 4], [5, 6], [7, [8]]],
    [[[1], [2]], [[3], [4]], [[5], [None]]],
    [[True, False], [1.5, 2], ["a", 1]],
    [1, 2, 3, 4, 5, [6]],
    [[1, 2], [3, 4], [5, 6], 7],
    [[1, 2], [3, {"a": 1}]],
    [deep(35), "x"],
]


@pytest.mark.parametrize("data", ODD)
def test_a_long_list_read_in_chunks_names_what_the_plain_walk_names(
    data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tensors, "CHUNK_VALUES", 2)  # every list is long: chunks throughout
    assert tensors._shape_of(data, "x", 0) == reference_shape(data, "x")


@pytest.mark.parametrize("data", [*ODD, [[1, True], [2, 3], [4, "x"]], [1, True, *range(9), "s"]])
def test_a_short_list_is_walked_as_the_plain_walk_does(data: Any) -> None:
    """Below CHUNK_VALUES every element is looked at: a boolean among numbers is named first."""
    assert tensors._shape_of(data, "x", 0) == reference_shape(data, "x")


def test_a_long_list_with_a_string_is_never_read_whole_as_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """numpy would turn every number of such a list into text first (seconds for a large body)."""
    texts: list[int] = []
    real = np.asarray

    def asarray(data: Any, *args: Any, **kwargs: Any) -> Any:
        arr = real(data, *args, **kwargs)
        if arr.dtype.kind in "US":
            texts.append(arr.size)
        return arr

    monkeypatch.setattr(np, "asarray", asarray)
    data = images(300)
    data[-1][27][27] = "x"
    message(data)
    assert texts and max(texts) <= tensors.CHUNK_VALUES


@pytest.mark.parametrize("channels", [3, 4])
def test_a_colour_batch_is_told_to_go_grey_as_the_own_api_tells_it(channels: int) -> None:
    """TF Serving's and V2's shape error names the colour channels, as the own API's does, in
    place of only the shapes a client of an RGB model would not see its mistake in."""
    batch = np.zeros((2, 28, 28, channels), np.float32)
    with pytest.raises(InvalidInput) as info:
        tensors.fit_batch(batch, (28, 28), "input 'pixels'")
    assert info.value.message == (
        "input 'pixels': expected shape [-1, 28, 28], [-1, 28, 28, 1], [-1, 1, 28, 28] or "
        "[-1, 784], got "
        f"[2, 28, 28, {channels}] (a 28x28x{channels} array has colour channels: the model reads "
        "grey images, one value per pixel (28x28, or 28x28x1): convert it to grey, or upload it "
        "as a picture to the own API, POST /models/{name}/predict)"
    )


@pytest.mark.parametrize("shape", [(2, 28, 28, 2), (2, 28, 27, 3), (2, 8, 3)])
def test_other_shapes_keep_the_plain_shape_error(shape: tuple[int, ...]) -> None:
    instance = (8,) if len(shape) == 3 else (28, 28)
    with pytest.raises(InvalidInput) as info:
        tensors.fit_batch(np.zeros(shape, np.float32), instance, "instances")
    assert "colour" not in info.value.message


@pytest.mark.parametrize("layout", ["channel last", "channel first"])
def test_one_grey_channel_is_taken_last_or_first(layout: str) -> None:
    images = np.arange(2 * 28 * 28, dtype=np.float32).reshape(2, 28, 28)
    batch = images[..., None] if layout == "channel last" else images[:, None]
    np.testing.assert_array_equal(tensors.fit_batch(batch, (28, 28), "instances"), images)
