"""parse_json and to_array: every rule and every error."""

from __future__ import annotations

import json

import numpy as np
import pytest

from service.codecs.jsonbody import parse_json
from service.errors import BadRequest, InvalidInput
from service.inputs.arrays import to_array


def test_parse_json_returns_orjson_values() -> None:
    assert parse_json(b'{"instances": [[1, 2.5]], "scale": "byte"}') == {
        "instances": [[1, 2.5]],
        "scale": "byte",
    }


@pytest.mark.parametrize("body", [b"", b"   ", b"\n\t"])
def test_parse_json_empty_body_is_400(body: bytes) -> None:
    with pytest.raises(BadRequest, match="empty"):
        parse_json(body)


@pytest.mark.parametrize(
    ("body", "where"),
    [(b'{"instances": [1, 2', "line 1 column"), (b"[1, 2] x", "line 1"), (b"{'a': 1}", "line 1"),
     (b'"\xff\xfe"', "line 1"), (b"[1,\n 2,,]", "line 2")],
)  # fmt: skip
def test_parse_json_malformed_is_400_with_position(body: bytes, where: str) -> None:
    with pytest.raises(BadRequest, match="malformed JSON") as info:
        parse_json(body)
    assert where in info.value.message
    assert info.value.status_code == 400


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "-2e999"])
def test_parse_json_non_finite_numbers_are_422(literal: str) -> None:
    body = f'{{"instances": [[0.5, {literal}]]}}'.encode()
    with pytest.raises(InvalidInput, match="non-finite") as info:
        parse_json(body)
    assert literal in info.value.message
    assert info.value.status_code == 422


def test_parse_json_python_json_dumps_nan_is_422() -> None:
    with pytest.raises(InvalidInput):
        parse_json(json.dumps({"instances": [float("nan")]}).encode())


def test_parse_json_nan_inside_otherwise_malformed_body_is_400() -> None:
    with pytest.raises(BadRequest):
        parse_json(b'{"a": NaN, ')


# ------------------------------------------------------------------- to_array


def test_to_array_nested_lists_to_dtype() -> None:
    arr = to_array([[1, 2.5], [3, 4]], dtype=np.float32, shape=(None, 2), where="x")
    assert arr.dtype == np.float32 and arr.shape == (2, 2)
    np.testing.assert_array_equal(arr, [[1, 2.5], [3, 4]])


def test_to_array_integer_dtypes() -> None:
    arr = to_array([[0, 255], [7.0, 8]], dtype=np.uint8, shape=(2, 2), where="x")
    assert arr.dtype == np.uint8
    np.testing.assert_array_equal(arr, [[0, 255], [7, 8]])
    assert to_array([-(2**40)], dtype=np.int64, shape=None, where="x")[0] == -(2**40)


def test_to_array_accepts_ndarray() -> None:
    arr = to_array(np.arange(6, dtype=np.float64).reshape(2, 3), dtype=np.float32,
                   shape=(2, None), where="x")  # fmt: skip
    assert arr.dtype == np.float32 and arr.shape == (2, 3)


def test_to_array_shape_none_accepts_any_shape() -> None:
    assert to_array(5, dtype=np.float32, shape=None, where="x").shape == ()
    assert to_array([[[1]]], dtype=np.float32, shape=None, where="x").shape == (1, 1, 1)


@pytest.mark.parametrize(
    ("data", "shape", "message"),
    [
        ([[1, 2], [3, 4]], (None, 3), "inputs: expected shape [?, 3], got [2, 2]"),
        ([1, 2, 3], (None, 3), "inputs: expected shape [?, 3], got [3]"),
        ([[[1, 2, 3]]], (None, 3), "expected shape [?, 3], got [1, 1, 3]"),
        ([], (None, 3), "inputs: the array is empty"),
        ([[]], None, "inputs: the array is empty"),
        ([[1, 2], [3]], None, "inputs[1]: ragged array: it has shape [1] but inputs[0] has"),
        ([[1, 2], 3], None, "inputs[1]: ragged array"),
        ([[1, "2"]], None, "inputs[0][1]: expected a number, got string"),
        ([[1, None]], None, "inputs[0][1]: expected a number, got null"),
        ([True, False], None, "inputs[0]: expected a number, got boolean"),
        ([{"a": 1}], None, "inputs[0]: expected a number, got object"),
        ({"a": [1]}, None, "inputs: expected an array of numbers, got object"),
        ("1.5", None, "inputs: expected an array of numbers, got string"),
        (None, None, "inputs: expected an array of numbers, got null"),
    ],
)  # fmt: skip
def test_to_array_errors_name_the_place(data: object, shape: tuple | None, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        to_array(data, dtype=np.float32, shape=shape, where="inputs")
    assert message in info.value.message
    assert info.value.status_code == 422


def test_to_array_rejects_non_finite_ndarray_values() -> None:
    data = np.array([[1.0, 2.0], [np.inf, 0.0]])
    with pytest.raises(InvalidInput, match=r"x\[1\]\[0\]: inf is not a finite number"):
        to_array(data, dtype=np.float32, shape=None, where="x")
    with pytest.raises(InvalidInput, match="nan"):
        to_array(np.array([np.nan]), dtype=np.float64, shape=None, where="x")


def test_to_array_rejects_float32_overflow() -> None:
    with pytest.raises(InvalidInput, match=r"x\[1\]: 1e\+300 overflows float32"):
        to_array([1.0, 1e300], dtype=np.float32, shape=None, where="x")
    assert to_array([1e300], dtype=np.float64, shape=None, where="x")[0] == 1e300


def test_to_array_integer_dtype_errors() -> None:
    with pytest.raises(InvalidInput, match=r"x\[1\]: 1.5 is not an integer \(int64\)"):
        to_array([1, 1.5], dtype=np.int64, shape=None, where="x")
    with pytest.raises(InvalidInput, match=r"x\[0\]\[1\]: 256 does not fit uint8"):
        to_array([[0, 256]], dtype=np.uint8, shape=None, where="x")
    with pytest.raises(InvalidInput, match="does not fit uint8"):
        to_array([-1], dtype=np.uint8, shape=None, where="x")


def test_to_array_rejects_deep_nesting() -> None:
    data: list = [1.0]
    for _ in range(70):
        data = [data]
    with pytest.raises(InvalidInput):
        to_array(data, dtype=np.float32, shape=None, where="x")
