"""images_from_json: layouts, the scale rule, limits and every error message."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from service.errors import InvalidInput
from service.inputs.arrays import images_from_json

RNG = np.random.default_rng(7)
BYTES = RNG.integers(0, 256, size=(3, 28, 28))  # int pixels 0-255, max > 1
UNIT = RNG.random((3, 28, 28))  # floats in [0, 1)
EXP = "expected 784 values or a 28x28 array"


def decode(instances: object, **kw: object) -> np.ndarray:
    kw.setdefault("max_instances", 16)
    kw.setdefault("side", 28)
    return images_from_json(instances, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("instances", "count"),
    [(UNIT[0].tolist(), 1), (UNIT[0].ravel().tolist(), 1), (UNIT.tolist(), 3),
     (UNIT.reshape(3, 784).tolist(), 3), ([UNIT[0].tolist(), UNIT[1].ravel().tolist()], 2),
     (UNIT[:1].tolist(), 1), (UNIT[:1].reshape(1, 784).tolist(), 1)],
)  # fmt: skip
def test_layouts_one_or_many_nested_or_flat(instances: list, count: int) -> None:
    out = decode(instances)
    assert out.shape == (count, 28, 28) and out.dtype == np.float32
    np.testing.assert_allclose(out, UNIT[:count].astype(np.float32), rtol=0, atol=1e-7)


def test_28_flat_images_are_not_mistaken_for_one_image() -> None:
    out = decode(RNG.random((28, 784)).tolist(), max_instances=28)
    assert out.shape == (28, 28, 28)


def test_ndarray_input_is_accepted() -> None:
    assert decode(UNIT).shape == (3, 28, 28)


def test_auto_scale_bytes_when_any_value_above_one() -> None:
    out = decode(BYTES.tolist())
    np.testing.assert_allclose(out, BYTES / 255.0, rtol=1e-6)
    assert out.max() <= 1.0


def test_auto_scale_unit_when_all_values_at_most_one() -> None:
    ones = np.zeros((28, 28))
    ones[3, 4] = 1  # integers 0/1: unit scale, a full-intensity pixel
    assert decode(ones.astype(int).tolist())[0, 3, 4] == 1.0


def test_auto_scale_is_decided_once_per_request() -> None:
    faint = np.full((28, 28), 1)  # alone it would be unit scale
    out = decode([faint.tolist(), BYTES[0].tolist()])
    assert out[0].max() == pytest.approx(1 / 255)


def test_rounding_just_outside_the_unit_range_is_the_unit_range() -> None:
    data = UNIT[:2].copy()
    data[1, 3, 4], data[0, 0, 0] = 1 + 2**-23, -1e-9  # float32 rounding, resampling
    out = decode(data.tolist())
    np.testing.assert_allclose(out, data.astype(np.float32), rtol=0, atol=1e-7)  # not / 255


@pytest.mark.parametrize("peak", [1.047, 1.5, 1.99])
def test_a_unit_image_that_overshot_is_refused_not_read_as_bytes(peak: float) -> None:
    data = UNIT[:3].copy()
    data[2, 6, 7] = peak  # one image of three: on the 0-255 scale all three would be black
    with pytest.raises(InvalidInput, match=r"instances\[2\]: value .* is above 1, and no value"):
        decode(data.tolist())
    assert decode(data.tolist(), scale="byte").max() == pytest.approx(peak / 255)


def test_explicit_byte_scale_divides_even_small_values() -> None:
    out = decode(UNIT[0].tolist(), scale="byte")
    np.testing.assert_allclose(out[0], UNIT[0] / 255, rtol=1e-6)


def test_explicit_unit_scale_rejects_values_above_one() -> None:
    data = UNIT[0].copy()
    data[2, 5] = 3
    with pytest.raises(InvalidInput, match=r"instances: value 3.0 at row 2, column 5 is above 1"):
        decode(data.tolist(), scale="unit")


@pytest.mark.parametrize(
    ("value", "scale", "match"),
    [(-0.5, "auto", "is negative"), (-1, "byte", "is negative"), (256, "auto", "is above 255"),
     (300.5, "byte", "is above 255 \\(scale 'byte'")],
)  # fmt: skip
def test_out_of_range_names_image_and_pixel(value: float, scale: str, match: str) -> None:
    data = BYTES.astype(float).copy()
    data[2, 10, 11] = value
    with pytest.raises(InvalidInput, match=match) as info:
        decode(data.tolist(), scale=scale)
    assert info.value.message.startswith("instances[2]: value")
    assert "row 10, column 11" in info.value.message


def test_out_of_range_in_flat_images_gives_the_index() -> None:
    data = BYTES.reshape(3, 784).copy()
    data[1, 300] = 999
    with pytest.raises(InvalidInput, match=r"instances\[1\]: value 999 at index 300"):
        decode(data.tolist())


def test_unknown_scale_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="scale must be one of auto, unit, byte"):
        decode(UNIT[0].tolist(), scale="percent")


@pytest.mark.parametrize(
    ("instances", "message"),
    [
        (UNIT[0, :27].tolist(), f"instances: {EXP}, got 27x28"),
        (UNIT[:, :27].tolist(), f"instances[0]: {EXP}, got 27x28"),
        ([UNIT[0].tolist(), UNIT[1, :27].tolist()], f"instances[1]: {EXP}, got 27x28"),
        ([0.5] * 783, f"instances: {EXP}, got 783 values"),
        ([[0.5] * 783] * 2, f"instances[0]: {EXP}, got 783 values"),
        ([UNIT[0].ravel().tolist(), [0.5] * 10],
         f"instances[1]: {EXP}, got 10 values"),
        ([UNIT[0].tolist(), 0.5], f"instances[1]: {EXP}, got a single number"),
        (np.zeros((2, 28, 28, 2)).tolist(),
         f"instances[0]: {EXP}, got 28x28x2"),
        (np.zeros((28, 28, 3)).tolist(),
         "instances: a 28x28x3 array has colour channels: the model reads grey images"),
        (np.zeros((2, 28, 28, 4)).tolist(),
         "instances[0]: a 28x28x4 array has colour channels"),
        ([UNIT[0].tolist(), np.zeros((28, 28, 3)).tolist()],
         "instances[1]: a 28x28x3 array has colour channels"),
        ([], "instances: no images: the list is empty"),
        ([[]], f"instances[0]: {EXP}, got 0 values"),
        ("pixels", "instances: expected an image (784 values or a 28x28 array) or a list of "
         "images, got string"),
        ({"b64": "xx"}, "got object"),
        (0.5, "got number"),
        (None, "got null"),
        ([[[True] * 28] * 28], "instances[0][0][0]: expected a number, got boolean"),
        ([["1"] * 784], "instances[0][0]: expected a number, got string"),
        ([[0.5] * 783 + [None]], "instances[0][783]: expected a number, got null"),
        ([UNIT[0].tolist(), [[0.5] * 28] * 27 + [[0.5] * 27 + ["x"]]],
         "instances[1][27][27]: expected a number, got string"),
    ],
)  # fmt: skip
def test_shape_and_type_errors_say_what_and_where(instances: object, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        decode(instances)
    assert message in info.value.message
    assert info.value.status_code == 422


@pytest.mark.parametrize(
    "layout",
    [
        lambda x: x[..., None].tolist(),  # (n, 28, 28, 1): a Keras model's input
        lambda x: x[0, ..., None].tolist(),  # one (28, 28, 1) image
        lambda x: [x[0, ..., None].tolist(), x[1].ravel().tolist(), x[2].tolist()],  # mixed
        lambda x: x[:, None].tolist(),  # (n, 1, 28, 28): PyTorch's layout, the channel first
        lambda x: [x[0, None].tolist(), x[1].tolist(), x[2, None].tolist()],  # mixed, too
    ],
)
def test_a_trailing_grey_channel_is_one_value_per_pixel(layout: Any) -> None:
    got = decode(layout(UNIT))
    want = UNIT[:1] if got.shape[0] == 1 else UNIT
    np.testing.assert_allclose(got, want.astype(np.float32), rtol=0, atol=1e-7)


def test_a_batch_of_side_many_images_is_not_one_image_with_channels() -> None:
    images = RNG.random((28, 28, 28))
    got = decode(images.tolist(), max_instances=28)
    np.testing.assert_allclose(got, images.astype(np.float32), rtol=0, atol=1e-7)
    with pytest.raises(InvalidInput, match="28 images is more than the limit of 27"):
        decode(images.tolist(), max_instances=27)


def test_non_finite_values_are_rejected() -> None:
    data = UNIT.copy()
    data[1, 0, 2] = np.nan
    with pytest.raises(InvalidInput, match=r"instances\[1\]: value nan at row 0, column 2 is not"):
        decode(data)
    data[1, 0, 2] = -np.inf
    with pytest.raises(InvalidInput, match="not finite"):
        decode(data)


@pytest.mark.parametrize("layout", ["nested", "flat"])
def test_too_many_instances(layout: str) -> None:
    data = np.zeros((5, 28, 28)) if layout == "nested" else np.zeros((5, 784))
    with pytest.raises(InvalidInput, match="instances: 5 images is more than the limit of 4"):
        decode(data.tolist(), max_instances=4)
    assert decode(data.tolist(), max_instances=5).shape == (5, 28, 28)


def test_one_image_counts_as_one_instance() -> None:
    assert decode(UNIT[0].tolist(), max_instances=1).shape == (1, 28, 28)
    assert decode(UNIT[0].ravel().tolist(), max_instances=1).shape == (1, 28, 28)


def test_where_prefix_is_used_in_messages() -> None:
    with pytest.raises(InvalidInput, match=r"^inputs\[0\]\.data: no images"):
        images_from_json([], side=28, max_instances=4, where="inputs[0].data")


def test_result_is_a_fresh_float32_array() -> None:
    source = UNIT.astype(np.float32)
    out = decode(source)
    out[0, 0, 0] = 42
    assert source[0, 0, 0] != 42


@pytest.mark.parametrize(
    ("instances", "where"),
    [
        ([{"glucose": 148.0}], "instances[0]"),
        ({"glucose": 148.0}, "instances"),
        ([[0.0] * 784, {"glucose": 148.0}], "instances[1]"),
    ],
)
def test_a_record_sent_to_an_image_model_is_named_as_such(instances: Any, where: str) -> None:
    with pytest.raises(InvalidInput) as info:
        images_from_json(instances, side=28, max_instances=8)
    assert info.value.message == (
        f"{where}: an object of named values is a record, as a model of named features takes; "
        "this model takes images: 28x28 arrays of numbers, or the image file itself"
    )
