"""benchmarks.numbers: the scenes' pictures hold what they say (synthetic strokes, no models)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from benchmarks.numbers import DIGIT_PX, PHONE, render_number


def strokes(count: int) -> list[np.ndarray]:
    """``count`` upright bars, 28x28 uint8."""
    out = []
    for _ in range(count):
        a = np.zeros((28, 28), np.uint8)
        a[4:24, 12:16] = 255
        out.append(a)
    return out


def dark_columns(data: bytes) -> np.ndarray:
    grey = np.asarray(Image.open(io.BytesIO(data)).convert("L"), np.float32)
    return np.flatnonzero((grey < grey.mean() - 60).any(axis=0))


def test_a_time_has_a_colon_between_its_digits_and_the_same_boxes() -> None:
    plain, boxes = render_number(strokes(4), np.random.default_rng(1), gap=0.3)
    timed, timed_boxes = render_number(strokes(4), np.random.default_rng(1), gap=0.3, colon_after=2)
    assert len(timed_boxes) == 4
    second, third = timed_boxes[1], timed_boxes[2]
    between = [c for c in dark_columns(timed) if second[0] + second[2] < c < third[0]]
    assert between, "no ink between the second and third digits"
    assert not [c for c in dark_columns(plain) if boxes[1][0] + boxes[1][2] < c < boxes[2][0]]
    assert third[0] - second[0] > boxes[2][0] - boxes[1][0]  # room made for the colon


def test_a_phone_photo_is_the_canvas_with_the_number_in_its_boxes() -> None:
    data, boxes = render_number(strokes(3), np.random.default_rng(2), "JPEG", canvas=PHONE)
    img = Image.open(io.BytesIO(data))
    assert img.size == PHONE
    width = boxes[-1][0] + boxes[-1][2] - boxes[0][0]
    assert 0.1 * PHONE[0] < width < 0.3 * PHONE[0]
    for x, y, w, h in boxes:
        assert x > 0 and x + w < PHONE[0] and y > 0 and y + h < PHONE[1]
        assert h > DIGIT_PX  # scaled up with the number
    cols = dark_columns(data)
    assert boxes[0][0] - 5 <= cols.min() and cols.max() <= boxes[-1][0] + boxes[-1][2] + 5
