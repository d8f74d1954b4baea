"""The simdjson tensor fast path: same numbers as orjson + numpy, or it declines.

Every test compares against the orjson path itself (``FAST_MIN_BYTES`` raised out of reach), never
against hard-coded results: the fast path must give bit-identical float32 arrays and, through its
fallback, the very same errors.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import numpy as np
import orjson
import pytest
import simdjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.codecs import fastjson, jsonbody
from service.codecs import tfserving as tfs
from service.codecs import v2 as v2
from service.errors import ServeError


@contextmanager
def fast(enabled: bool) -> Iterator[None]:
    """Force the fast path on for every body (enabled) or off."""
    with mock.patch.object(jsonbody, "FAST_MIN_BYTES", 0 if enabled else 1 << 62):
        yield


def outcome(call: Callable[[], np.ndarray]) -> tuple[str, Any]:
    """("ok", dtype, shape, bytes) or ("error", class, status, message)."""
    try:
        arr = call()
    except ServeError as exc:
        return ("error", (type(exc).__name__, exc.status_code, exc.message))
    return ("ok", (arr.dtype.str, arr.shape, arr.tobytes()))


def both_ways(call: Callable[[], np.ndarray]) -> tuple[tuple[str, Any], tuple[str, Any]]:
    with fast(True):
        got = outcome(call)
    with fast(False):
        want = outcome(call)
    return got, want


def tfs_call(body: bytes, shape: tuple[int, ...] = (28, 28)) -> Callable[[], np.ndarray]:
    return lambda: tfs.input_array(tfs.decode_predict_request(body), "pixels", shape)


def v2_call(body: bytes) -> Callable[[], np.ndarray]:
    return lambda: v2.decode_infer_request(body).inputs[0].array


def v2_body(data: Any, shape: list[int], datatype: str = "FP32", **extra: Any) -> bytes:
    item = {"name": "pixels", "shape": shape, "datatype": datatype, "data": data}
    return json.dumps({"inputs": [item], **extra}).encode()


def tfs_tensor_at(path: tuple[str | int, ...]) -> bool:
    return tfs._tensor_at(path)


def real_looking_images(n: int) -> list[Any]:
    """Images as nested lists mixing ints, negatives, exponents, -0.0 and float32 reprs."""
    rng = np.random.default_rng(n)
    x = (rng.random((n, 28, 28)) * (rng.random((n, 28, 28)) > 0.7)).astype(np.float32)
    images: list[Any] = x.tolist()
    images[0][0][:6] = [0, 1, -0.0, -3, 2.5e-3, 1e-7]
    images[-1][5][:4] = [255, -1.5e2, 7e1, 0.1]
    return images


# ---------------------------------------------------------------- happy path


def test_tfs_images_take_the_fast_path_and_match_bit_for_bit() -> None:
    body = json.dumps({"instances": real_looking_images(40)}).encode()
    doc = fastjson.parse_tensors(body, tfs_tensor_at)
    assert doc is not None and isinstance(doc["instances"], np.ndarray)
    assert doc["instances"].shape == (40, 28, 28)
    got, want = both_ways(tfs_call(body))
    assert got[0] == "ok" and got == want


def test_v2_flat_data_takes_the_fast_path_and_matches_bit_for_bit() -> None:
    data = np.asarray(real_looking_images(16)).ravel().tolist()
    body = v2_body(data, [16, 28, 28], id="r1", parameters={"timeout": 5})
    doc = fastjson.parse_tensors(body, v2._tensor_at, v2._float_tensors_only)
    assert doc is not None and isinstance(doc["inputs"][0]["data"], np.ndarray)
    assert doc["id"] == "r1" and doc["parameters"] == {"timeout": 5}
    got, want = both_ways(v2_call(body))
    assert got[0] == "ok" and got == want


@pytest.mark.parametrize(
    "doc",
    [{"inputs": real_looking_images(3)}, {"inputs": {"pixels": real_looking_images(3)}},
     {"signature_name": "serving_default", "instances": real_looking_images(3)},
     {"instances": np.asarray(real_looking_images(3)).reshape(3, 784).tolist()}],
)  # fmt: skip
def test_tfs_columnar_named_and_flat_forms_match(doc: dict[str, Any]) -> None:
    body = json.dumps(doc, indent=1).encode()  # whitespace and newlines everywhere
    got, want = both_ways(tfs_call(body))
    assert got[0] == "ok" and got == want


def test_all_integer_data_matches() -> None:
    x = np.random.default_rng(3).integers(-(2**31), 2**31, size=(4, 784)).tolist()
    got, want = both_ways(tfs_call(json.dumps({"instances": x}).encode()))
    assert got[0] == "ok" and got == want


def test_v2_nested_data_matching_the_shape_matches() -> None:
    body = v2_body(real_looking_images(2), [2, 28, 28])
    got, want = both_ways(v2_call(body))
    assert got[0] == "ok" and got == want


def test_fp64_input_keeps_float64() -> None:
    body = v2_body([0.1, 2, -3e-300], [1, 3], "FP64")
    got, want = both_ways(v2_call(body))
    assert got[0] == "ok" and got[1][0] == "<f8" and got == want


# ---------------------------------------------------------------- declines


@pytest.mark.parametrize(
    "body",
    [b'{"instances": [[0.5, 1.5], [3.0]]}', b'{"instances": [[1, 2, 3], [4]]}',
     b'{"instances": [[1, 2], [3, 4, 5], [6]]}', b'{"instances": [[1], 2]}',
     b'{"instances": [[], 1, 2, [3, 4]]}', b'{"instances": [[1, [2]], [3, 4]]}',
     b'{"instances": [1, true]}', b'{"instances": [1, null]}', b'{"instances": [1, "2"]}',
     b'{"instances": [{"pixels": [1]}]}', b'{"instances": []}', b'{"instances": [[]]}',
     b'{"instances": [9007199254740992]}', b'{"instances": [-9007199254740992.0]}',
     b'{"instances": [18446744073709551615]}', b'{"instances": [1e400]}',
     b'{"instances": [NaN]}', b'{"instances": [1], "instances": [2]}',
     b'\xef\xbb\xbf{"instances": [1]}', b'[1, 2]', b'{"instances": [1]} x',
     b'{"instances": [1], "signature_name": "a,b"}', b'{"instances": [1], "x[": 1}',
     b'{"instances": [1], "s": "\\u005b"}', b'{"instances": [1], "s": "\\""}',
     b'{"instances": [1, 2', b'{"instances": ' + b"[" * 40 + b"1" + b"]" * 40 + b"}"],
)  # fmt: skip
def test_declines_anything_not_provably_the_same(body: bytes) -> None:
    assert fastjson.parse_tensors(body, tfs_tensor_at) is None


@pytest.mark.parametrize(
    "data",
    ["[1, [2]]", "[[1], 2]", "[1, 2, [3, [[]]]]", "[1, [2, 3]]", "[[1, 2], [3]]", "[1, true]"],
)
def test_v2_declines_data_that_is_not_flat_or_regular(data: str) -> None:
    head = '{"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": '
    body = (head + data + "}]}").encode()
    assert fastjson.parse_tensors(body, v2._tensor_at, v2._float_tensors_only) is None
    got, want = both_ways(v2_call(body))
    assert got == want  # errors, except [1, true]: numpy reads the boolean as 1 (as today)


def test_declines_a_large_document_outside_the_tensors() -> None:
    small = {"instances": [[1.0, 2.0]], "x": list(range(100))}
    assert fastjson.parse_tensors(json.dumps(small).encode(), tfs_tensor_at) is not None
    for rest in (list(range(fastjson.MAX_OTHER_VALUES)), [[0] * 200] * 100):
        body = json.dumps({"instances": [[1.0, 2.0]], "x": rest}).encode()
        assert fastjson.parse_tensors(body, tfs_tensor_at) is None


def test_v2_integer_and_fp16_inputs_keep_the_orjson_path() -> None:
    for datatype in ("INT32", "UINT8", "FP16", "BOOL"):
        body = v2_body([1, 2, 70000], [1, 3], datatype)
        assert fastjson.parse_tensors(body, v2._tensor_at, v2._float_tensors_only) is None
        got, want = both_ways(v2_call(body))
        assert got == want


@pytest.mark.parametrize(
    "body",
    [b'{"instances": [[0.5, 1.5], [3.0]]}', b'{"instances": [[1], 2]}',
     b'{"instances": [[1, true], [0, 1]]}', b'{"instances": [[1, 2]], "instances": [[3]]}',
     b'{"instances": [[1, 2]], "extra": 1}', b'{"instances": [[1e400, 2]]}',
     b'\xef\xbb\xbf{"instances": [[1, 2]]}', b'{"instances": [[1, 2]]',
     b'{"instances": [[9007199254740993, 1]]}', b'{"instances": [[18014399583223809, 1]]}',
b'{"instances": [[1, 2]], "inputs": [[1, 2]]}'],
)  # fmt: skip
def test_bad_bodies_give_the_same_errors(body: bytes) -> None:
    got, want = both_ways(tfs_call(body, (2,)))
    assert got == want


def test_a_lingering_document_does_not_break_the_next_parse() -> None:
    parser = fastjson._parser()
    held = parser.parse(b'{"a": [1, 2]}')  # a proxy into the thread's parser
    assert isinstance(held, simdjson.Object)
    body = json.dumps({"instances": [[1.5, 2]]}).encode()
    doc = fastjson.parse_tensors(body, tfs_tensor_at)
    assert doc is not None and doc["instances"].tolist() == [[1.5, 2.0]]
    del held


def test_regular_skeleton() -> None:
    for shape in [(1,), (3,), (2, 3), (4, 1, 2)]:
        text = json.dumps(np.zeros(shape, dtype=int).tolist()).encode()
        assert text.translate(None, fastjson._DELETE) == fastjson.regular_skeleton(shape)


# ---------------------------------------------------------------- properties

numbers = st.one_of(
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=-1e-300, max_value=1e-300),
    st.sampled_from([0, -0.0, 0.0, 1, 255, 3.4028234663852886e38, 5e-324, 1.7976931348623157e308]),
)
leaves = st.one_of(numbers, numbers, numbers, st.booleans(), st.none(), st.text(max_size=2))


@st.composite
def tensors(draw: st.DrawFn) -> Any:
    """Mostly regular nested arrays of numbers, sometimes with a ragged or odd element."""
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    flat = draw(st.lists(numbers, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    value: Any = np.asarray(flat, dtype=object).reshape(shape).tolist()
    if draw(st.integers(0, 3)) == 0:  # break it somewhere
        node = value
        while isinstance(node[0], list) and draw(st.booleans()):
            node = node[0]
        spoil = st.one_of(leaves, st.lists(leaves, max_size=3), st.just([]))
        node[draw(st.integers(0, len(node) - 1))] = draw(spoil)
    return value


def shape_guess(value: Any) -> list[int]:
    """The regular shape of ``value``, or just its length when it is ragged or odd."""
    try:
        return list(np.asarray(value, dtype=float).shape)
    except (ValueError, TypeError):
        return [len(value)]


def dump(doc: Any, indent: int | None) -> bytes:
    return json.dumps(doc, indent=indent).encode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=tensors(), indent=st.sampled_from([None, 0, 2]))
def test_parse_tensors_equals_orjson_or_declines(value: Any, indent: int | None) -> None:
    body = dump({"instances": value, "signature_name": ""}, indent)
    doc = fastjson.parse_tensors(body, tfs_tensor_at)
    if doc is None:
        return
    want = orjson.loads(body)
    assert doc["signature_name"] == want["signature_name"]
    expected = np.asarray(want["instances"], dtype=np.float64)
    assert doc["instances"].shape == expected.shape
    assert doc["instances"].tobytes() == expected.tobytes()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=tensors(), indent=st.sampled_from([None, 2]), columnar=st.booleans())
def test_tfs_decoding_is_the_same_either_way(
    value: Any, indent: int | None, columnar: bool
) -> None:
    body = dump({"inputs" if columnar else "instances": value}, indent)
    instance = tuple(shape_guess(value)[1:]) or (1,)
    got, want = both_ways(tfs_call(body, instance))
    assert got == want


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=tensors(),
    datatype=st.sampled_from(["FP32", "FP32", "FP64", "FP16", "INT64"]),
    flat=st.booleans(),
    indent=st.sampled_from([None, 1]),
)
def test_v2_decoding_is_the_same_either_way(
    value: Any, datatype: str, flat: bool, indent: int | None
) -> None:
    shape = shape_guess(value)
    data = np.asarray(value, dtype=object).ravel().tolist() if flat and len(shape) > 1 else value
    item = {"name": "x", "shape": shape, "datatype": datatype, "data": data}
    body = dump({"id": "a", "inputs": [item]}, indent)
    got, want = both_ways(v2_call(body))
    assert got == want


json_leaf = st.one_of(st.none(), numbers, st.booleans(), st.sampled_from(["", "x", "FP32", "a,b"]))
json_value = st.recursive(
    json_leaf,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.sampled_from("xyz"), kids),
    max_leaves=12,
)
v2_item = st.fixed_dictionaries(
    {"name": st.sampled_from(["x", "pixels"]), "shape": st.one_of(st.just([2, 2]), json_value),
     "datatype": st.sampled_from(["FP32", "FP64", "INT8", "BYTES"]),
     "data": st.one_of(tensors(), json_value)},
    optional={"parameters": json_value},
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    doc=st.one_of(
        json_value,
        st.fixed_dictionaries({"inputs": st.one_of(json_value, st.lists(v2_item, max_size=2))}),
        st.fixed_dictionaries(
            {"inputs": st.lists(v2_item, min_size=1, max_size=2)},
            optional={"id": json_value, "parameters": json_value, "outputs": json_value},
        ),
    )
)
def test_any_v2_document_decodes_the_same_either_way(doc: Any) -> None:
    body = json.dumps(doc).encode()
    got, want = both_ways(lambda: np.stack([t.array for t in v2.decode_infer_request(body).inputs]))
    assert got == want


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    doc=st.one_of(
        json_value,
        st.fixed_dictionaries({"instances": st.one_of(tensors(), json_value)}),
        st.fixed_dictionaries(
            {
                "inputs": st.one_of(
                    tensors(), json_value, st.dictionaries(st.just("pixels"), tensors())
                )
            },
            optional={"signature_name": json_value, "instances": json_value},
        ),
    ),
    shape=st.sampled_from([(2,), (2, 2), (1, 3)]),
)
def test_any_tfs_document_decodes_the_same_either_way(doc: Any, shape: tuple[int, ...]) -> None:
    body = json.dumps(doc).encode()
    got, want = both_ways(tfs_call(body, shape))
    assert got == want


def test_only_small_skeletons_are_remembered() -> None:
    fastjson._cached_skeleton.cache_clear()
    assert fastjson.regular_skeleton((2, 3)) == b"[[,,],[,,]]"
    assert fastjson._cached_skeleton.cache_info().currsize == 1
    big = (64, 28, 28)  # 50,176 numbers: built each time, never kept
    assert fastjson.regular_skeleton(big) == fastjson._skeleton_of(big)
    assert fastjson._cached_skeleton.cache_info().currsize == 1


@pytest.mark.parametrize(
    "body",
    [b'{"instances": [[1, 2], [3, 4]]}', b'{"inputs": [1.5, -2]}', b'{ "instances" :[[[0.25]]] }'],
)
def test_a_lone_tensor_document_is_what_the_general_walk_gives(body: bytes) -> None:
    root = fastjson._parse(body)
    walked = fastjson._Converter(tfs_tensor_at).convert(root, ())
    del root
    doc = fastjson.parse_tensors(body, tfs_tensor_at)
    assert doc is not None and list(doc) == list(walked)
    (key,) = doc
    assert doc[key].dtype == walked[key].dtype and doc[key].shape == walked[key].shape
    assert np.array_equal(doc[key], walked[key])


@pytest.mark.parametrize(
    "body",
    [b'{"instances": [[1, 2], [3, [4]]]}', b'{"instances": [[1, 2], 3, 4]}', b'{"x[": [1]}'],
)
def test_a_lone_tensor_that_is_not_regular_declines(body: bytes) -> None:
    assert fastjson.parse_tensors(body, tfs_tensor_at) is None


def test_a_lone_key_holding_no_tensor_is_walked_as_before() -> None:
    assert fastjson.parse_tensors(b'{"examples": [1, 2]}', tfs_tensor_at) == {"examples": [1, 2]}
    assert fastjson.parse_tensors(b'{"instances": 1}', tfs_tensor_at) == {"instances": 1}
