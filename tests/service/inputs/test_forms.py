"""A form's printed boxes and rules around handwritten digits."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from service.inputs.forms import without_form_lines
from service.inputs.numbers import digits_pil


def _boxed_row(digits: int, joined: bool) -> Image.Image:
    """A row of printed boxes, a ring (a written "0") in each."""
    img = Image.new("L", (80 + digits * 70, 160), 245)
    draw = ImageDraw.Draw(img)
    x = 40
    for _ in range(digits):
        draw.rectangle((x, 40, x + 60, 120), outline=40, width=2)
        draw.ellipse((x + 16, 55, x + 44, 105), outline=20, width=6)
        x += 60 if joined else 70
    return img


def test_a_row_of_boxes_is_not_read_as_ones() -> None:
    """Each digit is its ring alone: neither a box's side on its own nor a box around it."""
    for joined in (True, False):
        digits = digits_pil(_boxed_row(4, joined))
        assert len(digits) == 4
        assert all(50 <= d.box[3] <= 56 for d in digits)


def test_a_digit_on_an_underline_keeps_its_strokes() -> None:
    ink = np.zeros((100, 300), np.float32)
    ink[80:83, 10:290] = 1.0  # the printed line
    ink[20:80, 100:106] = 1.0  # a "1" standing on it
    out = without_form_lines(ink)
    assert not out[81, 20:90].any()
    assert out[20:78, 100:106].all()


def test_a_lone_straight_stroke_stays() -> None:
    ink = np.zeros((60, 60), np.float32)
    ink[10:50, 28:32] = 1.0
    assert np.array_equal(without_form_lines(ink), ink)


def test_a_digits_own_small_box_stays() -> None:
    """Short straight pieces meeting at corners (a "0" or a "4" drawn square) are no printed box:
    a box's sides are as tall as the writing it holds."""
    ink = np.zeros((100, 200), np.float32)
    ink[20:80, 20:24] = 1.0  # a "1" as tall as the writing
    ink[50, 40:57] = ink[66, 40:57] = 1.0  # a small square loop of thin strokes
    ink[50:67, 40] = ink[50:67, 56] = 1.0
    assert np.array_equal(without_form_lines(ink), ink)


def test_the_slanting_bottoms_of_touching_digits_stay() -> None:
    """Digits written touching along a slant make one long straight band, but a form's lines
    are level."""
    ink = np.zeros((240, 400), np.float32)
    for x in range(60, 220):
        y = 126 + round(0.14 * (x - 60))
        ink[y : y + 9, x] = 1.0  # the band along the digits' bottoms
    ink[60:130, 250:258] = 1.0  # a digit beside it, as tall as the writing
    assert np.array_equal(without_form_lines(ink), ink)


def test_a_rule_along_the_pictures_top_edge_is_taken_out_within_the_picture() -> None:
    """A row of boxes cut by the picture's top edge, its rule leaning a little: the rule's band,
    fitted as a line, reaches above the first row, and reading it there failed (a 500)."""
    img = Image.new("F", (200, 90), 0.0)
    draw = ImageDraw.Draw(img)
    draw.line([(5, 0.9), (195, 3.2)], fill=1.0, width=3)
    draw.line([(5, 70), (195, 70)], fill=1.0, width=2)
    for x in (5, 65, 125, 195):
        draw.line([(x, 0), (x, 70)], fill=1.0, width=2)
    for x in (20, 80, 140):
        draw.ellipse((x, 15, x + 28, 60), outline=1.0, width=5)
    ink = np.asarray(img, np.float32)
    out = without_form_lines(ink)
    assert out.shape == ink.shape
    assert out[20:55, 20:50].sum() == ink[20:55, 20:50].sum()  # the rings stay


def test_a_row_of_boxes_across_a_photo_is_not_read_as_ones() -> None:
    """A row of boxes as wide as a photographed page: its level lines reach both edges and the
    ink map takes them out as the page's rules, leaving the boxes' sides standing alone; they
    are known as printed by the rules they end on (they were read as "1"s)."""
    width = 6 + 5 * 70
    img = Image.new("L", (width, 160), 235)
    draw = ImageDraw.Draw(img)
    for y in (40, 120):
        draw.line([(0, y), (width, y)], fill=60, width=2)
    for x in range(3, width, 70):
        draw.line([(x, 40), (x, 120)], fill=60, width=2)
        if x + 70 < width:
            draw.ellipse((x + 18, 55, x + 46, 105), outline=20, width=6)
    grain = np.random.default_rng(0).normal(0, 6, (160, width))  # a photo, not a drawing
    photo = Image.fromarray((np.asarray(img, np.float64) + grain).clip(0, 255).astype(np.uint8))
    digits = digits_pil(photo)
    assert len(digits) == 5
    assert all(45 <= d.box[3] <= 56 for d in digits)


def test_a_boxs_lines_under_bold_strokes_are_found() -> None:
    """Digits filling their boxes lie along the box's top and bottom over most of their length,
    thickening most of the line's columns: the line is as thick as its bare columns, and a
    stroke ending on it (a column's middle moved) does not make it a wavering one."""
    ink = np.zeros((120, 330), np.float32)
    ink[20:22, 10:321] = ink[100:102, 10:321] = 1.0  # the boxes' top and bottom
    for x in (10, 110, 210, 319):
        ink[20:102, x : x + 2] = 1.0  # their sides
    for x0 in (30, 130, 230):  # a bold stroke along the top and the bottom of each box
        ink[22:28, x0 - 5 : x0 + 55] = 1.0
        ink[94:100, x0 - 5 : x0 + 55] = 1.0
        ink[34:88, x0 + 20 : x0 + 26] = 1.0  # and a stem between them
    ink[14:20, 50:52] = ink[14:20, 150:152] = 1.0  # stroke ends poking above the top
    out = without_form_lines(ink)
    for x in (10, 110, 210, 319):
        assert not out[40:80, x : x + 2].any()  # the sides are gone
    assert out[40:80, 50:56].all() and out[40:80, 250:256].all()  # the stems stay
    assert out[24:27, 30:80].all()  # and so do the strokes along the lines
