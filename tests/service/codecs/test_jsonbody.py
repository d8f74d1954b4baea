"""parse_json: every rule and every error."""

from __future__ import annotations

import json
import sys
import tracemalloc
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.codecs import jsonbody
from service.codecs.jsonbody import boolean_among_numbers, duplicate_key, parse_json
from service.errors import BadRequest, DuplicateKey, InvalidInput


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


def test_a_byte_that_is_not_utf8_is_placed_where_it_is() -> None:
    with pytest.raises(BadRequest) as info:
        parse_json(b'{"instances":\n  [[1, "\xc3"]]}')
    assert info.value.message == "malformed JSON: byte 0xc3 is not UTF-8 at line 2 column 9"
    with pytest.raises(BadRequest) as info:
        parse_json('{"a": "é", "b": "'.encode() + b"\xff" + b'"}')
    assert info.value.message == "malformed JSON: byte 0xff is not UTF-8 at line 1 column 18"


def test_binary_tensor_data_after_json_names_the_v2_route() -> None:
    head = (
        b'{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32",'
        b'"parameters":{"binary_data_size":8}}]}'
    )
    for data in (b"\x00" * 8, b"\xff\xfe\x00\x00\x80\x3f\x00\x00"):
        with pytest.raises(BadRequest) as info:
            parse_json(head + data)
        assert info.value.message == (
            f"binary data follows the request's JSON (from byte {len(head)}): binary tensor "
            "data is the V2 protocol's, POST /v2/models/{name}/infer with "
            "Inference-Header-Content-Length"
        )


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_parse_json_non_finite_numbers_are_422(literal: str) -> None:
    body = f'{{"instances": [[0.5, {literal}]]}}'.encode()
    with pytest.raises(InvalidInput, match="non-finite") as info:
        parse_json(body)
    assert literal in info.value.message
    assert info.value.status_code == 422


@pytest.mark.parametrize(
    ("number", "shown"),
    [("1e400", "'1e400'"), ("-2e999", "'-2e999'"), ("9" * 500, f"'{'9' * 20}...'"),
     ("1." + "0" * 30 + "e999", "'1.000000000000000000...'")],
)  # fmt: skip
def test_parse_json_a_number_beyond_a_double_is_422_and_not_called_non_finite(
    number: str, shown: str
) -> None:
    """The client sent a finite number: "no NaN or Infinity" would not say what is wrong."""
    with pytest.raises(InvalidInput) as info:
        parse_json(f'{{"top_k": {number}}}'.encode())
    assert info.value.message == f"request contains the number {shown}, too large for a double"
    assert info.value.status_code == 422


def test_parse_json_a_shortened_example_says_what_the_dots_are() -> None:
    with pytest.raises(BadRequest) as info:
        parse_json(b'{"instances": [[0, 0, 0, ..., 255, 0]]}')
    assert info.value.message.startswith("malformed JSON: ")
    assert info.value.message.endswith("(the body holds '...': send every value)")
    with pytest.raises(BadRequest) as info:  # "..." elsewhere is not what is wrong
        parse_json(b'{"note": "to be continued...", "instances": [1, 2')
    assert "'...'" not in info.value.message


def test_parse_json_python_json_dumps_nan_is_422() -> None:
    with pytest.raises(InvalidInput):
        parse_json(json.dumps({"instances": [float("nan")]}).encode())


def test_parse_json_nan_inside_otherwise_malformed_body_is_400() -> None:
    with pytest.raises(BadRequest):
        parse_json(b'{"a": NaN, ')


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", "png"),
        (b"\xff\xd8\xff\xe0\x00", "jpeg"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "webp"),
    ],
)
def test_parse_json_of_an_image_says_to_send_its_content_type(body: bytes, kind: str) -> None:
    with pytest.raises(BadRequest, match=f"Content-Type: image/{kind}"):
        parse_json(body)


def test_parse_json_of_an_unsupported_image_names_what_is_taken() -> None:
    with pytest.raises(BadRequest, match=r"a GIF image, not JSON \(.*PNG, JPEG or WebP images\)"):
        parse_json(b"GIF89a\x01\x00\x01\x00")


def _instances(path: tuple[str | int, ...]) -> bool:
    return path == ("instances",)


@pytest.mark.parametrize(
    ("doc", "found"),
    [
        ({"instances": [[1, 2.5], [True, 3]]}, "instances[1][0]"),
        ({"instances": [[True, False], [1, 2]]}, "instances[0][0]"),  # numpy: an int array
        ({"instances": [1, [2, False]]}, "instances[1][1]"),  # ragged: walked item by item
        ({"instances": [{"a": 1, "b": True}]}, None),  # a record's fields: its model checks
        ({"instances": [{"x": [1, True]}]}, "instances[0].x[1]"),  # an instance's tensor
        ({"instances": {"a": 1, "b": True}}, None),  # not an array: the caller says why
        ({"instances": [[True, False]]}, None),  # booleans alone: the caller's message
        ({"instances": [[1, 2]], "abstain": True}, None),  # not where numbers go
        ({"instances": "true"}, None),
    ],
)
def test_boolean_among_numbers_names_the_first_one(doc: Any, found: str | None) -> None:
    assert boolean_among_numbers(doc, _instances) == found


def test_parse_json_refuses_a_boolean_among_numbers_where_numbers_go() -> None:
    body = b'{"instances": [[0.5, true]], "abstain": true}'
    with pytest.raises(InvalidInput, match=r"instances\[0\]\[1\]: expected a number, got boolean"):
        parse_json(body, numbers_at=_instances)
    with pytest.raises(InvalidInput, match="got boolean"):
        parse_json(body, tensor_at=_instances)  # numbers go where tensors go, unless told
    assert parse_json(body) == {"instances": [[0.5, True]], "abstain": True}  # no positions
    assert parse_json(b'{"instances": [[0.5, 1]], "abstain": true}', numbers_at=_instances)


def test_a_boolean_option_does_not_make_the_parse_walk_the_numbers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ "include_input": true follows a colon, not "[" or ",": a large batch with it is not walked
    value by value (that costs a third of the parse)."""
    from service.codecs import jsonbody

    def walked(*_: Any) -> None:
        raise AssertionError("walked")

    monkeypatch.setattr(jsonbody, "boolean_among_numbers", walked)
    body = b'{"instances": [[0.5, 1]], "include_input": true, "abstain" :false}'
    assert parse_json(body, numbers_at=_instances)["include_input"] is True
    with pytest.raises(AssertionError, match="walked"):
        parse_json(b'{"instances": [[0.5, 1], [ true]]}', numbers_at=_instances)


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (b'{"instances": [[1, 2]], "instances": [[3, 4]]}', "instances"),
        (b'{"instances": [{"glucose": 148, "mass": 33.6, "glucose": 85}]}', "glucose"),
        (b'{"a": {"b": {"c": 1, "c": 2}}}', "c"),
        (b'[1, {"a": 1, "a": 2}]', "a"),  # an object behind a plain value
        (b'{"a": "x:y", "b": 1, "b": 2}', "b"),  # a ":" in a string does not hide it
        (b'{"inputs": [{"name": "x", "data": [1], "name": "y"}]}', "name"),
    ],
)
def test_a_key_given_twice_is_400_naming_it(body: bytes, key: str) -> None:
    with pytest.raises(DuplicateKey, match=f"malformed JSON: the key '{key}' is given twice"):
        parse_json(body)
    assert issubclass(DuplicateKey, BadRequest) and DuplicateKey.status_code == 400


def test_a_key_given_twice_in_a_large_body_is_400_too() -> None:
    """The fast parse declines the body: orjson's document is checked like a small one's."""
    rows = json.dumps([[0.5] * 28] * 28)
    body = f'{{"instances": [{rows}], "instances": [{rows}]}}'.encode()
    assert len(body) >= jsonbody.FAST_MIN_BYTES
    with pytest.raises(DuplicateKey, match="'instances'"):
        parse_json(body, tensor_at=lambda path: path == ("instances",))


def test_many_records_with_objects_inside_are_counted_in_a_large_body() -> None:
    records = [{"a": 1, "b": {"c": 2, "d": [{"e": 3}]}}] * 400
    body = json.dumps({"instances": records}).encode()
    assert len(body) > jsonbody._NUMPY_COUNT_BYTES and duplicate_key(body, json.loads(body)) is None
    twice = body.replace(b'"e": 3}]}}]}', b'"e": 3, "e": 4}]}}]}')
    assert twice != body and duplicate_key(twice, orjson.loads(twice)) == "e"


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1, "b": {"a": 2}}',  # the same key in two objects
        b'{"a": "{:}", "b": ["{", ":"]}',  # structural bytes inside strings
        b'[{"a": 1}, {"a": 2}, [{"a": 3}]]',
        b"[1, 2, 3]",
    ],
)
def test_keys_once_per_object_pass(body: bytes) -> None:
    assert parse_json(body) == json.loads(body)
    assert duplicate_key(body, json.loads(body)) is None


def test_a_body_whose_counts_agree_is_never_parsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(body: bytes) -> None:
        raise AssertionError("the counts agree: no second parse")

    monkeypatch.setattr(jsonbody, "_first_duplicate", slow)
    records = [{"pregnant": 6, "glucose": 148}] * 50
    for doc in (
        {"instances": [[0.0] * 28] * 28},
        {"instances": records, "threshold": 0.3},
        {"id": "12:00:01", "inputs": [{"name": "x", "data": [1.0]}]},  # a ":" in a value
    ):
        parse_json(json.dumps(doc).encode())


class Obj(list):  # type: ignore[type-arg]
    """An object as its (key, value) pairs, so that a key may be given twice."""


def _text(value: object) -> str:
    if isinstance(value, Obj):
        return "{" + ", ".join(f"{json.dumps(k)}: {_text(v)}" for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return json.dumps(value)


def _twice(value: object) -> bool:
    if isinstance(value, Obj):
        keys = [k for k, _ in value]
        return len(set(keys)) != len(keys) or any(_twice(v) for _, v in value)
    return isinstance(value, list) and any(_twice(v) for v in value)


# structural bytes inside strings, a quote before a colon too
_strings = st.sampled_from(["", ":", "{", "a:{b", "x", 'q":', 'q" :'])
_leaf = st.one_of(st.integers(-5, 5), st.floats(-2, 2), _strings)
_tree = st.recursive(
    _leaf,
    lambda kids: (
        st.lists(kids, max_size=4)
        | st.lists(st.tuples(st.sampled_from(["a", "b", "c:", "{"]), kids), max_size=4).map(Obj)
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(tree=_tree)
def test_a_key_twice_is_found_exactly_when_there_is_one(tree: object) -> None:
    """The counting shortcut never misses a key given twice, nor sees one that is not there."""
    body = _text(tree).encode()
    assert (duplicate_key(body, orjson.loads(body)) is not None) == _twice(tree)


def test_nested_arrays_do_not_make_the_count_quadratic(monkeypatch: pytest.MonkeyPatch) -> None:
    """A "{" and a ":" in a string make the deep pass walk the nested arrays: the body's "{" are
    counted once for the walk, not once per array (each a scan of the body: quadratic)."""
    scans = 0
    at_most = jsonbody._at_most

    def counted(body: bytes, byte: bytes, n: int) -> bool:
        nonlocal scans
        scans += 1
        return at_most(body, byte, n)

    monkeypatch.setattr(jsonbody, "_at_most", counted)
    body = b'{"instances": [' + b",".join([b"[[0]]"] * 2000) + b'], "s": "{:"}'
    assert parse_json(body)["s"] == "{:" and scans <= 4


@pytest.mark.parametrize("depth", [985, 1000, 1022])
def test_a_key_twice_deeper_than_pythons_stack_is_found(depth: int) -> None:
    """orjson parses 1024 levels; the standard library's second look must reach them too."""
    body = b"[" * depth + b'{"a": 1, "a": 2}' + b"]" * depth
    limit = sys.getrecursionlimit()
    with pytest.raises(DuplicateKey, match="'a'"):
        parse_json(body)
    assert sys.getrecursionlimit() == limit
    deep_ok = b"[" * depth + b'{"a":"x:y"}' + b"]" * depth
    assert type(parse_json(deep_ok)) is list  # a ":" in a string, each key once: no 400


@pytest.mark.parametrize(
    "body",
    [
        b'{"s": "' + b'\\":' * 100_000 + b'"}',  # a quote and a colon, again and again
        b'{"s": "\\":", "r": [' + b'{"a":0},' * 40_000 + b'{"a":0}]}',  # many objects, parsed again
    ],
)
def test_the_second_look_costs_no_copy_of_the_document(body: bytes) -> None:
    """Counting the key ends and parsing again hold about the body's size in memory at most: not
    a list of every match (some 50 bytes each) nor the standard library's copy of every object."""
    doc = orjson.loads(body)
    tracemalloc.start()
    try:
        assert duplicate_key(body, doc) is None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * len(body), (peak, len(body))
