"""parse_json: every rule and every error."""

from __future__ import annotations

import json

import pytest

from service.codecs.jsonbody import parse_json
from service.errors import BadRequest, InvalidInput


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


def test_parse_json_an_integer_beyond_a_double_is_422_and_not_called_non_finite() -> None:
    with pytest.raises(InvalidInput, match="too large for a double") as info:
        parse_json(b'{"top_k": ' + b"9" * 500 + b"}")
    assert "non-finite" not in info.value.message and info.value.status_code == 422


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
