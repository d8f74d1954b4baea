"""Hypothesis properties: every decoder either returns a valid array or raises a 4xx ServeError.

Never any other exception, never an array of the wrong shape, dtype or range.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from service.codecs.jsonbody import parse_json
from service.errors import InvalidInput, ServeError
from service.inputs.arrays import RANGE_SLACK, images_from_json
from service.inputs.images import decode_image
from service.inputs.preprocess import NoInkFound
from service.inputs.records import FeatureSpec, records_from_json

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MAX_INSTANCES = 4

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-2, max_value=300),
    st.text(max_size=5),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=40,
)


def expect_client_error(call: Callable[[], Any]) -> Any:
    """Run ``call``; a ServeError must be a 4xx with a message. Returns the result or None."""
    try:
        return call()
    except ServeError as exc:
        assert 400 <= exc.status_code < 500, exc
        assert exc.message
        return None


def check_images(out: np.ndarray | None, max_instances: int) -> None:
    if out is not None:
        assert out.dtype == np.float32 and out.ndim == 3 and out.shape[1:] == (28, 28)
        assert 1 <= out.shape[0] <= max_instances
        # a value within RANGE_SLACK of [0, 1] is rounding and passes as it is (-1e-42 is 0)
        assert np.isfinite(out).all()
        assert out.min() >= -RANGE_SLACK and out.max() <= 1 + RANGE_SLACK


# ------------------------------------------------------------------ parse_json


@SETTINGS
@given(st.binary(max_size=200) | json_values.map(lambda v: repr(v).encode()))
def test_parse_json_any_bytes(body: bytes) -> None:
    expect_client_error(lambda: parse_json(body))


finite_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False,
    allow_infinity=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=6)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=40,
)  # fmt: skip


@SETTINGS
@given(finite_json)
def test_parse_json_round_trips_valid_json(value: Any) -> None:
    assert parse_json(orjson.dumps(value)) == value


@SETTINGS
@given(finite_json, st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999"]))
def test_parse_json_non_finite_literal_is_422(value: Any, literal: str) -> None:
    body = b"[" + orjson.dumps(value) + b", " + literal.encode() + b"]"
    with pytest.raises(InvalidInput):
        parse_json(body)


# ------------------------------------------------------------------ images_from_json

pixel_values = st.integers(0, 255) | st.floats(0, 255) | st.floats(0, 1)  # out of range: corrupt
image_arrays = arrays(
    np.float64,
    st.sampled_from(
        [
            (28, 28),
            (784,),
            (1, 28, 28),
            (3, 28, 28),
            (2, 784),
            (5, 784),
            (27, 28),
            (28, 27),
            (1, 783),
            (0, 784),
            (28, 28, 1),
            (2, 2),
        ]
    ),
    elements=pixel_values.map(float),
    fill=st.sampled_from([0.0, 1.0, 255.0]),
).map(lambda a: a.tolist())


def corrupt(data: Any, path: list[int], value: Any) -> Any:
    """Put ``value`` at an index path inside nested lists (if the path exists)."""
    node = data
    for depth, i in enumerate(path):
        if not isinstance(node, list) or not node:
            return data
        i %= len(node)
        if depth == len(path) - 1 or not isinstance(node[i], list):
            node[i] = value
            return data
        node = node[i]
    return data


images_input = st.one_of(
    image_arrays,
    st.builds(
        corrupt,
        image_arrays,
        st.lists(st.integers(0, 800), min_size=1, max_size=3),
        st.floats(-2, 400) | scalars | st.lists(scalars, max_size=3),
    ),
    st.lists(image_arrays, max_size=3),
    json_values,
)


@SETTINGS
@given(images_input, st.sampled_from(["auto", "unit", "byte"]) | st.text(max_size=4))
@example([[[-1.6e-42] * 28] * 28], "auto")  # within the slack below 0: passes as it is
def test_images_from_json_any_value(instances: Any, scale: Any) -> None:
    out = expect_client_error(
        lambda: images_from_json(instances, side=28, scale=scale, max_instances=MAX_INSTANCES)
    )
    check_images(out, MAX_INSTANCES)


# ------------------------------------------------------------------ records_from_json

LIMITS = [("pregnant", 0, 30), ("glucose", 0, 300), ("pressure", 0, 200), ("triceps", 0, 100),
          ("insulin", 0, 1000), ("mass", 0, 80), ("pedigree", 0, 3), ("age", 0, 120)]  # fmt: skip
FEATURES = [FeatureSpec(name, "u", name, lo, hi) for name, lo, hi in LIMITS]
NAMES = [f.name for f in FEATURES]
field_values = st.integers(0, 30) | st.floats(0, 3) | st.integers(-10, 1100) | scalars
records = st.one_of(
    st.dictionaries(st.sampled_from([*NAMES, "outcome", "Glucose"]), field_values, max_size=9),
    st.fixed_dictionaries({n: field_values for n in NAMES}),
    st.fixed_dictionaries(
        {n: st.floats(f.min, f.max) for n, f in zip(NAMES, FEATURES, strict=True)}
    ),
    st.lists(field_values, min_size=7, max_size=9),
    st.lists(st.floats(0, 30), min_size=8, max_size=8),
)
records_input = records | st.lists(records, max_size=6) | json_values


@SETTINGS
@given(records_input)
def test_records_from_json_any_value(instances: Any) -> None:
    out = expect_client_error(
        lambda: records_from_json(instances, FEATURES, max_instances=MAX_INSTANCES)
    )
    if out is not None:
        assert out.dtype == np.float32 and out.ndim == 2 and out.shape[1] == len(FEATURES)
        assert 1 <= out.shape[0] <= MAX_INSTANCES
        low = np.array([f.min for f in FEATURES], np.float32)
        high = np.array([f.max for f in FEATURES], np.float32)
        assert np.isfinite(out).all() and (out >= low).all() and (out <= high).all()


# ------------------------------------------------------------------ decode_image


def encoded(mode: str, size: tuple[int, int], fmt: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 4), dtype=np.uint8), "RGBA")
    img = img.convert(mode if not (fmt == "JPEG" and mode in ("RGBA", "LA", "P")) else "RGB")
    buffer = io.BytesIO()
    img.save(buffer, fmt)
    return buffer.getvalue()


valid_images = st.builds(
    encoded,
    st.sampled_from(["L", "RGB", "RGBA", "LA", "P", "1"]),
    st.tuples(st.integers(1, 64), st.integers(1, 64)),
    st.sampled_from(["PNG", "JPEG"]),
    st.integers(0, 2**32 - 1),
)


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    buf = bytearray(data)
    for pos, value in edits:
        buf[pos % len(buf)] = value
    return bytes(buf[:cut] if cut else buf)


image_bytes = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=200).map(lambda b: b"\x89PNG\r\n\x1a\n" + b),
    st.binary(max_size=200).map(lambda b: b"\xff\xd8\xff" + b),
    valid_images,
    st.builds(
        mutate,
        valid_images,
        st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6),
        st.none() | st.integers(1, 2000),
    ),
)
content_types = st.sampled_from([None, "image/png", "image/jpeg", "text/plain", "image/gif"])


@SETTINGS
@given(image_bytes, content_types, st.sampled_from(["digit", "item"]))
def test_decode_image_any_bytes(data: bytes, content_type: str | None, fit: Any) -> None:
    out = expect_client_error(
        lambda: decode_image(data, max_pixels=3000, content_type=content_type, fit=fit)
    )
    if out is not None:
        assert out.dtype == np.float32 and out.shape == (28, 28)
        # a value within RANGE_SLACK of [0, 1] is rounding and passes as it is (-1e-42 is 0)
        assert np.isfinite(out).all()
        assert out.min() >= -RANGE_SLACK and out.max() <= 1 + RANGE_SLACK


@pytest.mark.parametrize("seed", range(3))
def test_encoded_images_strategy_decodes(seed: int) -> None:
    # guards the strategy itself: valid files must really decode, or the property is vacuous
    try:  # a valid file decodes: into a frame, or to "nothing stands out" (random pixels)
        out = decode_image(encoded("RGB", (20, 30), "PNG", seed), max_pixels=3000)
    except NoInkFound:
        return
    assert out.shape == (28, 28)
