"""Numeric tensors from decoded JSON: long lists are read in chunks, with the same results and
the same messages as one read."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from service.codecs import tensors
from service.codecs.tensors import json_numbers, numeric_array
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


@pytest.mark.parametrize(
    "data",
    [
        [[1, 2], [3, 4], [5, "6"], [7, 8]],
        [[1, 2], [3, 4], [5], [7, 8]],
        [[1, 2], [3, 4], [5, 6], [7, [8]]],
        [[[1], [2]], [[3], [4]], [[5], [None]]],
        [[True, False], [1.5, 2], ["a", 1]],
        [1, 2, 3, 4, 5, [6]],
        [[1, 2], [3, 4], [5, 6], 7],
    ],
)
def test_chunks_give_the_same_message_as_one_read(
    data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = message(data)
    monkeypatch.setattr(tensors, "CHUNK_VALUES", 2)  # every other element starts a chunk
    assert message(data) == whole


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
