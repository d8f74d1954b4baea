"""A frame drawn around the writing goes; a digit made of rings, or holding a speck, stays."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from service.inputs.frames import without_frame


@pytest.mark.parametrize(
    "ellipses",
    [
        [[56, 20, 144, 104], [40, 96, 160, 184]],  # a bold "8"
        [[30, 20, 170, 180], [36, 24, 172, 184]],  # a "0" whose stroke thickens and thins
        [[30, 20, 170, 180], [40, 40, 160, 180]],  # a "0" gone over twice
        [[30, 20, 170, 180], [30, 12, 170, 188]],  # thicker at the top and the bottom
    ],
)
def test_digits_made_of_rings_are_no_frame(ellipses: list[list[int]]) -> None:
    """Peeling a stroke's width off the outside of a 0 or an 8 leaves at most a crossing or
    a ragged inner edge, nothing a frame would hold."""
    img = Image.new("F", (200, 200), 0.0)
    for box in ellipses:
        ImageDraw.Draw(img).ellipse(box, outline=1.0, width=8)
    ink = np.asarray(img, np.float32)
    assert np.array_equal(without_frame(ink), ink)


@pytest.mark.parametrize(
    ("box", "start", "end"),
    [
        ([40, 20, 160, 180], 120, 260),
        ([42, 20, 158, 180], 130, 270),
        ([44, 28, 156, 180], 140, 260),
    ],
)
def test_a_0_whose_stroke_doubles_back_inside_its_ring_is_no_frame(
    box: list[int], start: int, end: int
) -> None:
    """A 0 drawn on past where it started, the second stroke inside the first: peeled off as
    a frame, the ring left that inner stroke alone, a sliver along it read "1"."""
    img = Image.new("F", (200, 200), 0.0)
    draw = ImageDraw.Draw(img)
    draw.ellipse([30, 20, 170, 180], outline=1.0, width=8)
    draw.arc(box, start, end, fill=1.0, width=8)
    ink = np.asarray(img, np.float32)
    assert np.array_equal(without_frame(ink), ink)


@pytest.mark.parametrize("x", [70, 85, 100, 115, 130])
@pytest.mark.parametrize("speck", [False, True])
def test_a_thin_stroke_anywhere_in_a_frame_is_found_and_the_frame_dropped(
    x: int, speck: bool
) -> None:
    """A "1" between the lines the quick look used to sample, or dust beside the frame, left
    the frame in: read "0" at full confidence."""
    img = Image.new("F", (200, 200), 0.0)
    draw = ImageDraw.Draw(img)
    draw.ellipse([30, 20, 170, 180], outline=1.0, width=8)
    draw.line([(x, 50), (x, 150)], fill=1.0, width=5)
    if speck:
        draw.rectangle([190, 190, 192, 192], fill=1.0)
    ink = np.asarray(img, np.float32)
    kept = without_frame(ink)
    assert kept[:, :60].sum() == 0 and kept[50:151, x - 1 : x + 2].min() == 1.0


def test_a_loop_with_a_speck_in_it_is_a_digit_not_a_frame() -> None:
    """A 0 (or a 6's loop) holding a dot keeps its loop; one holding a stroke half as tall as
    itself is a frame around a "1"."""
    img = Image.new("F", (100, 120), 0.0)
    draw = ImageDraw.Draw(img)
    draw.ellipse([10, 10, 90, 110], outline=1.0, width=8)
    draw.rectangle([45, 55, 55, 65], fill=1.0)  # a dot, a tenth of the loop's height
    ink = np.asarray(img, np.float32)
    assert np.array_equal(without_frame(ink), ink)
    draw.rectangle([45, 35, 55, 85], fill=1.0)
    ink = np.asarray(img, np.float32)
    kept = without_frame(ink)
    assert kept[:, :30].sum() == 0 and kept[35:86, 45:56].min() == 1.0
