"""decode_digits: a number on paper comes out as its digits, left to right, with their boxes."""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from benchmarks.numbers import render_number
from service.inputs.images import decode_digits, decode_image, decode_readings
from service.inputs.numbers import (
    PART_WIDTHS,
    SHAPE_PREFERENCE,
    best_readings,
    digits_pil,
    readings_pil,
)
from service.inputs.preprocess import NoInkFound, preprocess_pil
from tests.helpers.inputs import encode

ToBytes = Callable[..., bytes]
MAX_PIXELS = 50_000_000


def overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (x, y, width, height) boxes."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("count", [2, 3, 4, 5])
def test_numbers_on_paper_split_into_their_digits(
    fmt: str, count: int, mnist_test_images: np.ndarray
) -> None:
    rng = np.random.default_rng(count * 10 + len(fmt))
    for trial in range(6):
        picks = rng.choice(len(mnist_test_images), count, replace=False)
        data, truth = render_number([mnist_test_images[i] for i in picks], rng, fmt)
        digits = decode_digits(data, max_pixels=MAX_PIXELS)
        assert len(digits) == count, (trial, truth, [d.box for d in digits])
        xs = [d.box[0] for d in digits]
        assert xs == sorted(xs)
        for got, want in zip(digits, truth, strict=True):
            assert overlap(got.box, want) > 0.6, (trial, got.box, want)
            assert got.image.shape == (28, 28) and got.image.dtype == np.float32


def test_each_digit_is_framed_as_a_single_digit_is(mnist_test_images: np.ndarray) -> None:
    """A digit of a number and the same digit alone on the same paper come out alike."""
    rng = np.random.default_rng(3)
    data, _ = render_number(list(mnist_test_images[:3]), rng, "PNG", gap=0.6)
    digits = decode_digits(data, max_pixels=MAX_PIXELS)
    alone = decode_image(
        render_number([mnist_test_images[1]], np.random.default_rng(3), "PNG")[0],
        max_pixels=MAX_PIXELS,
    )
    assert len(digits) == 3
    assert np.abs(digits[1].image - alone).mean() < 0.06
    for d in digits:
        ys, xs = np.nonzero(d.image > 0.05)
        assert max(np.ptp(ys), np.ptp(xs)) + 1 in range(18, 23)  # the 20-px box, as MNIST


def test_touching_digits_are_cut(mnist_test_images: np.ndarray) -> None:
    rng = np.random.default_rng(5)
    zeros = [img for img in mnist_test_images if (img > 128).sum(axis=0).astype(bool).sum() > 14]
    data, truth = render_number(zeros[:2], rng, "PNG", gap=-0.02)
    digits = decode_digits(data, max_pixels=MAX_PIXELS)
    assert len(digits) == 2
    for got, want in zip(digits, truth, strict=True):
        assert overlap(got.box, want) > 0.5


def test_specks_are_not_digits(mnist_test_images: np.ndarray) -> None:
    page = np.full((200, 400), 235, np.uint8)
    page[60:156:, 60:156] = 235 - (
        np.asarray(Image.fromarray(mnist_test_images[0]).resize((96, 96))).astype(np.int32) * 0.8
    ).astype(np.uint8)
    page[100:103, 300:303] = 40  # a speck of dirt
    page[20:22, 380:382] = 40
    digits = digits_pil(Image.fromarray(page))
    assert len(digits) == 1


def page_with_digits(images: list[np.ndarray], lefts: list[int]) -> np.ndarray:
    page = np.full((200, 520), 235, np.uint8)
    for image, left in zip(images, lefts, strict=True):
        ink = np.asarray(Image.fromarray(image).resize((96, 96))).astype(np.int32)
        page[60:156, left : left + 96] = np.minimum(
            page[60:156, left : left + 96], 235 - (ink * 0.8).astype(np.uint8)
        )
    return page


def test_a_times_colon_is_not_a_digit(mnist_test_images: np.ndarray) -> None:
    """The two dots of "19:50", one above the other, span a column as tall as a short digit:
    read as a "1" they added a digit. A "1" of the same height, or one broken in two, stays."""
    page = page_with_digits(list(mnist_test_images[:2]), [40, 220])
    page[95:105, 168:178] = 40  # dots about a tenth of the digits' height (96 px), 40 px apart
    page[135:145, 168:178] = 40
    assert [d.box[0] < 200 for d in digits_pil(Image.fromarray(page))] == [True, False]
    page[95:145, 168:173] = 40  # joined into a short bar: a digit
    assert len(digits_pil(Image.fromarray(page))) == 3
    page[60:156, 168:178] = 40  # a "1" broken in the middle, two pieces of half a digit
    page[105:111, 168:178] = 235
    assert len(digits_pil(Image.fromarray(page))) == 3
    page[60:156, 168:178] = 235  # a dashed "1": three dashes a quarter of a digit tall
    for top in (60, 98, 136):
        page[top : top + 20, 168:174] = 40
    assert len(digits_pil(Image.fromarray(page))) == 3


def test_a_short_narrow_fragment_far_from_every_digit_is_not_a_digit(
    mnist_test_images: np.ndarray,
) -> None:
    """A stroke's end standing apart, or a mark on the paper, that is both shorter and narrower
    than a digit: read as one more digit (a "0" after "5435"), it made the number wrong."""
    page = page_with_digits(list(mnist_test_images[:2]), [40, 180])
    page[62:76, 330:358] = 60  # a bar 14 x 28 px (digits 96 tall), 50+ px from the last digit
    digits = digits_pil(Image.fromarray(page))
    assert [d.box[0] < 300 for d in digits] == [True, True]
    page[62:140, 330:340] = 60  # tall, though narrow: a "1" stays a digit
    assert len(digits_pil(Image.fromarray(page))) == 3


def test_a_single_digit_is_one_digit(mnist_test_images: np.ndarray, to_bytes: ToBytes) -> None:
    img = Image.fromarray(mnist_test_images[0])
    digits = digits_pil(img)
    assert len(digits) == 1
    np.testing.assert_allclose(digits[0].image, preprocess_pil(img), atol=1e-6)


def test_blank_paper_has_no_digits(to_bytes: ToBytes) -> None:
    rng = np.random.default_rng(0)
    page = np.clip(230 + rng.normal(0, 2, (300, 600)), 0, 255).astype(np.uint8)
    with pytest.raises(NoInkFound):
        decode_digits(to_bytes(page), max_pixels=MAX_PIXELS)


def test_a_number_small_in_a_phone_photo_is_read_closer(mnist_test_images: np.ndarray) -> None:
    """Five digits across a fifth of a 3000x4000 photo are 7 working pixels tall, under the dust
    rule: they look like a number written, so that part of the file is read again at its own
    resolution, and the boxes are still in the file's pixels."""
    data, truth = render_number(
        list(mnist_test_images[5:10]), np.random.default_rng(1), "JPEG", canvas=(3000, 4000)
    )
    digits = decode_digits(data, max_pixels=MAX_PIXELS)
    assert len(digits) == 5
    for got, want in zip(digits, truth, strict=True):
        assert overlap(got.box, want) > 0.6, (got.box, want)


def blank_phone_page(rng: np.random.Generator, specks: list[tuple[float, float, float]]) -> bytes:
    """A blank 3000x4000 phone photo (light falling off, grain) with round dark specks at
    ``(x, y, radius)`` (shares of the width; radius in pixels) and a hair."""
    width, height = 3000, 4000
    light = np.linspace(1.0, 0.8, height // 8, dtype=np.float32)[:, None]
    small = np.repeat(light, width // 8, axis=1) * 225
    page = Image.fromarray(small, "F").resize((width, height), Image.Resampling.BILINEAR)
    grey = np.asarray(page) + rng.normal(0, 2.5, (height, width)).astype(np.float32)
    img = Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for x, y, r in specks:
        cx, cy = x * width, y * height
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=60)
    draw.line([(900, 3000), (1100, 3060), (1300, 3040)], fill=120, width=4)  # a hair
    return encode(img.filter(ImageFilter.GaussianBlur(0.8)), "JPEG", quality=85)


@pytest.mark.parametrize("radius", [6.0, 20.0, 40.0])
def test_a_blank_phone_page_with_specks_has_no_digits(radius: float) -> None:
    """Dust on a blank phone photo is no number, at any size, scattered or in a row of specks
    of one size (which is looked at closer: blots, not strokes)."""
    rng = np.random.default_rng(int(radius))
    scattered = [
        (float(x), float(y), radius * float(s)) for x, y, s in rng.uniform(0.1, 0.9, (8, 3))
    ]
    row = [(0.4 + k * 3 * radius / 3000, 0.5, radius) for k in range(5)]
    for specks in (scattered, row):
        data = blank_phone_page(rng, specks)
        with pytest.raises(NoInkFound):
            decode_digits(data, max_pixels=MAX_PIXELS)
        with pytest.raises(NoInkFound):
            decode_image(data, max_pixels=MAX_PIXELS)


def test_boxes_are_in_the_files_pixels_for_large_jpegs(mnist_test_images: np.ndarray) -> None:
    """A large JPEG is decoded at a fraction of its size: the boxes still use its pixels."""
    rng = np.random.default_rng(8)
    data, truth = render_number(list(mnist_test_images[:3]), rng, "PNG", gap=0.4)
    img = Image.open(io.BytesIO(data))
    big = img.resize((img.width * 6, img.height * 6), Image.Resampling.BILINEAR)

    digits = decode_digits(encode(big, "JPEG", quality=90), max_pixels=MAX_PIXELS)
    assert len(digits) == 3
    for got, want in zip(digits, truth, strict=True):
        scaled = tuple(v * 6 for v in want)
        assert overlap(got.box, scaled) > 0.6  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("ink", [(250, 235, 60), (235, 240, 120)])
def test_a_number_in_a_light_coloured_pen_is_read_in_its_colour_channels(
    mnist_test_images: np.ndarray, fmt: str, ink: tuple[int, int, int]
) -> None:
    """Yellow or pale lime gel ink is nearly as light as the paper in grey: a number's colour
    JPEG (decoded straight to grey at first) is read again in colour, as a single digit's is."""
    rng = np.random.default_rng(4)
    strokes = page_with_digits(list(mnist_test_images[:3]), [40, 180, 320]) < 200
    paper = np.array([248.0, 246.0, 240.0])
    pixels = np.where(strokes[..., None], np.array(ink, np.float64), paper)
    pixels += rng.normal(0, 2, (*strokes.shape, 1))
    photo = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    digits = decode_digits(encode(photo, fmt, quality=90), max_pixels=MAX_PIXELS)
    dark = digits_pil(Image.fromarray(np.where(strokes, 30, 246).astype(np.uint8)))
    assert len(digits) == len(dark) == 3
    for got, want in zip(digits, dark, strict=True):
        assert overlap(got.box, want.box) > 0.8
        assert np.abs(got.image - want.image).mean() < 0.08


def test_blank_colour_pages_and_colour_noise_have_no_digits() -> None:
    """The colour reading of a number finds no ink where a single digit's finds none."""
    rng = np.random.default_rng(6)
    noise = rng.integers(0, 256, (200, 500, 3), dtype=np.uint8)
    blank = np.clip(np.array([248.0, 246.0, 240.0]) + rng.normal(0, 2, (200, 500, 1)), 0, 255)
    for pixels in (noise, blank.astype(np.uint8)):
        with pytest.raises(NoInkFound):
            decode_digits(encode(pixels, "JPEG", quality=90), max_pixels=MAX_PIXELS)


def test_touching_digits_are_also_offered_cut_at_their_thin_columns(
    mnist_test_images: np.ndarray,
) -> None:
    """The split by shape comes first, its digits one after the other from cut 0 (cuts are
    numbered left to right); a piece wide enough to hold touching digits is also read between
    other cuts, in parts of a digit's width; a digit standing alone is read once."""
    rng = np.random.default_rng(5)
    wide = [img for img in mnist_test_images if (img > 128).sum(axis=0).astype(bool).sum() > 14]
    data = render_number(wide[:2], rng, "PNG", gap=-0.02)[0]
    readings = decode_readings(data, max_pixels=MAX_PIXELS)
    shape = [r for r in readings if r.shape]
    assert readings[: len(shape)] == shape
    assert shape[0].start == 0
    assert all(a.end == b.start for a, b in itertools.pairwise(shape))
    assert [r.digit.box for r in shape] == [
        d.box for d in decode_digits(data, max_pixels=MAX_PIXELS)
    ]
    others = readings[len(shape) :]
    assert others and all(0 <= r.start < r.end <= shape[-1].end for r in others)
    height = max(r.digit.box[3] for r in shape)
    for r in others:
        assert PART_WIDTHS[0] * height * 0.8 <= r.digit.box[2] <= PART_WIDTHS[1] * height * 1.2
    alone_split = decode_readings(data, max_pixels=MAX_PIXELS, others=False)
    assert [r.digit.box for r in alone_split] == [r.digit.box for r in shape]
    assert all(r.shape for r in alone_split)
    narrow = next(  # a digit much narrower than tall (a "1")
        img
        for img in mnist_test_images
        if (img > 128).any(axis=0).sum() < 0.6 * (img > 128).any(axis=1).sum()
    )
    alone = render_number([narrow], rng, "PNG")[0]
    assert [r.shape for r in decode_readings(alone, max_pixels=MAX_PIXELS)] == [True]


def test_the_split_read_most_surely_is_chosen() -> None:
    # cuts 0 to 3 left to right: by shape 0-2-3 (two digits); or 0-3 whole; or 0-1-3
    readings = [(0, 2, True), (2, 3, True), (0, 3, False), (0, 1, False), (1, 3, False)]
    cut_elsewhere = np.array([0.6, 0.6, 0.5, 0.99, 0.99])
    assert best_readings(readings, cut_elsewhere) == [3, 4]
    whole = np.array([0.6, 0.6, 0.9, 0.3, 0.3])
    assert best_readings(readings, whole) == [2]
    # another split must beat the split by shape by its margin per digit
    near = np.exp(SHAPE_PREFERENCE / 2)
    assert best_readings(readings, np.array([0.9, 0.9, 0.3, 0.9 * near, 0.9])) == [0, 1]
    assert best_readings(readings, np.array([0.9, 0.9, 0.3, 0.9 * near**5, 0.9])) == [3, 4]
    # a part that does not look like a digit counts less
    unlike = np.array([False, False, False, True, True])
    cut_elsewhere[2] = 0.3
    assert best_readings(readings, cut_elsewhere) == [3, 4]
    assert best_readings(readings, cut_elsewhere, unlike) == [0, 1]
    # pieces apart, each read once, are read as they are split
    chain = [(0, 1, True), (1, 2, True), (2, 3, True)]
    assert best_readings(chain, np.array([0.2, 0.99, 0.5])) == [0, 1, 2]


def test_a_broken_output_or_a_gap_in_the_cuts_falls_back_to_the_split_by_shape() -> None:
    readings = [(0, 1, True), (1, 2, True), (0, 2, False)]
    assert best_readings(readings, np.array([np.nan, np.nan, np.nan])) in ([0, 1], [2])
    assert best_readings(readings, np.array([0.5, np.nan, 0.9])) == [2]
    # a reading from a cut no path reaches (2) is never chosen
    stray = [(0, 1, True), (1, 3, True), (0, 1, False), (2, 3, False)]
    assert best_readings(stray, np.array([0.1, 0.1, 0.99, 0.99])) == [2, 1]
    # no path at all from the first cut to the last: the split by shape, as it is
    assert best_readings([(0, 1, True), (2, 3, True)], np.array([0.9, 0.9])) == [0, 1]


def test_a_light_coloured_number_beside_small_grey_marks_is_read_in_colour() -> None:
    """A yellow number hardly shows in grey, where a row of small printed marks (a perforation)
    looks like a number too small to read: the colours are read first, whole, and find it."""
    width, height = 3000, 4000
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:height, 0:width]
    grey = np.clip(222 + 10 * (xs / width) - 8 * (ys / height) + rng.normal(0, 3, xs.shape), 0, 255)
    photo = Image.fromarray(np.repeat(grey[..., None], 3, axis=2).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(photo)
    draw.text((700, 1500), "47", fill=(255, 215, 0), font=ImageFont.load_default(size=700))
    for x in range(600, 2400, 70):  # a perforation's slots, under the dust size
        draw.rectangle((x, 3500, x + 20, 3560), fill=(60, 60, 60))
    digits = decode_digits(encode(photo, "JPEG", quality=92), max_pixels=MAX_PIXELS)
    assert len(digits) == 2
    assert all(d.box[1] + d.box[3] < 3000 for d in digits)


def test_a_long_printed_row_of_small_marks_is_no_number() -> None:
    """A perforation across a blank phone photo is a row of small marks of one height, as a
    small number is, but longer than any number written by hand."""
    rng = np.random.default_rng(9)
    data = blank_phone_page(rng, [])
    img = Image.open(io.BytesIO(data))
    draw = ImageDraw.Draw(img)
    for x in range(500, 2500, 70):
        draw.rectangle((x, 1800, x + 20, 1860), fill=50)
    with pytest.raises(NoInkFound):
        decode_digits(encode(img, "JPEG", quality=90), max_pixels=MAX_PIXELS)


def test_two_digits_read_as_one_lose_to_the_split_that_looks_like_digits() -> None:
    """Touching digits framed as one are read surely (classifiers are sure of most things), but
    look like no digit: the density score decides, not the shape split's preference."""
    # cuts 0 to 2: by shape 0-2 whole (one "digit"), or 0-1-2 (two)
    readings = [(0, 2, True), (0, 1, False), (1, 2, False)]
    sure = np.array([0.999, 0.99, 0.99])
    assert best_readings(readings, sure) == [0]
    pair_unlike = np.array([1.5, 0.4, 0.5])  # the pair far from any digit, each part near one
    assert best_readings(readings, sure, density=pair_unlike) == [1, 2]
    # a wide digit is whole: its halves are no digit either
    halves_unlike = np.array([0.4, 1.2, 1.1])
    assert best_readings(readings, sure, density=halves_unlike) == [0]
    # a score that is not a number tells nothing: the model's reading decides, as without one
    broken = np.array([np.nan, 0.4, 0.5])
    assert best_readings(readings, sure, density=broken) == [0]


def test_a_part_much_shorter_than_the_digits_counts_as_unlike_one() -> None:
    """A "6" cut into its stem and its loop: framed to a digit's size, the loop looks like a
    plain "0" to the density model, and the whole, wide "6" less usual than either half. The
    loop is much shorter than the digits, which its framing hides: it counts as at the flag's
    threshold at least, and the whole stays."""
    readings = [(0, 2, True), (0, 1, False), (1, 2, False)]
    sure = np.array([0.999, 0.99, 0.99])
    density = np.array([0.83, 0.26, 0.28])
    assert best_readings(readings, sure, density=density) == [1, 2]
    heights = [40.0, 40.0, 22.0]  # the stem is as tall as the digit, the loop about half
    assert best_readings(readings, sure, density=density, heights=heights) == [0]
    # parts as tall as the digits (two digits that touch) are split as before
    assert best_readings(readings, sure, density=density, heights=[40.0, 38.0, 36.0]) == [1, 2]


def test_a_small_digit_the_split_by_shape_found_is_not_taken_for_a_piece_of_one() -> None:
    """ "174" with a small "4" written against the "7": the split by shape finds all three, and
    the one piece "74" make together is read "7" surely. The short "4" is a whole part of the
    split by shape, not a piece a cut left: it keeps its own density, and stays a digit."""
    readings = [(0, 1, True), (1, 2, True), (2, 3, True), (1, 3, False)]
    sure = np.array([0.99, 0.99, 0.99, 0.999])
    density = np.array([0.3, 0.3, 0.3, 0.7])
    heights = [40.0, 40.0, 28.0, 40.0]
    assert best_readings(readings, sure, density=density, heights=heights) == [0, 1, 2]


def page_with_lines(images: list[list[np.ndarray]], gap: int) -> np.ndarray:
    """Lines of MNIST digits (96 px tall, 110 px apart), ``gap`` px of paper between lines."""
    page = np.full((60 + 96 * len(images) + gap * (len(images) - 1) + 60, 520), 235, np.uint8)
    for row, line in enumerate(images):
        top = 60 + row * (96 + gap)
        for col, image in enumerate(line):
            left = 40 + col * 110 + 15 * row  # the second line starts a little to the right
            ink = np.asarray(Image.fromarray(image).resize((96, 96))).astype(np.int32)
            page[top : top + 96, left : left + 96] = np.minimum(
                page[top : top + 96, left : left + 96], 235 - (ink * 0.8).astype(np.uint8)
            )
    return page


def test_a_number_on_two_lines_is_read_line_after_line(mnist_test_images: np.ndarray) -> None:
    """A number written on two lines (a long number wrapped, a date under a year): its columns
    overlap from line to line, so split by columns alone each pair above one another was framed
    as one digit. Each line is split on its own, the top line first."""
    first, second = list(mnist_test_images[:3]), list(mnist_test_images[3:6])
    page = page_with_lines([first, second], gap=30)
    digits = digits_pil(Image.fromarray(page))
    assert len(digits) == 6
    tops = [d.box[1] for d in digits]
    assert max(tops[:3]) < 100 < min(tops[3:])
    lefts = [d.box[0] for d in digits]
    assert lefts[:3] == sorted(lefts[:3]) and lefts[3:] == sorted(lefts[3:])
    one = digits_pil(Image.fromarray(page_with_lines([first], gap=0)))
    for got, alone in zip(digits[:3], one, strict=True):  # framed as the line alone is
        assert np.abs(got.image - alone.image).mean() < 0.1
    # the other ways to split a line's touching digits are numbered along the whole number
    shape = [r for r in readings_pil(Image.fromarray(page)) if r.shape]
    assert [r.digit.box for r in shape] == [d.box for d in digits]
    assert shape[0].start == 0 and all(a.end == b.start for a, b in itertools.pairwise(shape))


def test_an_underline_or_a_digit_broken_across_a_row_is_no_second_line(
    mnist_test_images: np.ndarray,
) -> None:
    """A thin band under the number (an underline) belongs to its line, and a digit whose two
    pieces an empty row or two part stays one line: lines of writing are as tall as digits and
    further apart."""
    page = page_with_lines([list(mnist_test_images[:3])], gap=0)
    page[170:175, 40:360] = 60  # an underline 14 px below the digits
    assert len(digits_pil(Image.fromarray(page))) == 3
    page = page_with_lines([list(mnist_test_images[:3])], gap=0)
    page[60:156, 400:410] = 60  # a "1" broken in the middle by two rows of paper
    page[108:110, 400:410] = 235
    page[100:120, 40:360] = 235  # every other digit broken there too
    assert len(digits_pil(Image.fromarray(page))) == 4


def test_digits_broken_at_one_height_are_also_read_whole(mnist_test_images: np.ndarray) -> None:
    """Digits whose strokes all break at the same height (a dry pen, a seven-segment display)
    leave empty rows as two lines of writing do: the ink read as one line is offered too, its
    digits whole, on a path of its own from the first cut to the last, for the model to weigh
    against the halves (which look like no digit). The lines stay the split by shape."""
    page = page_with_lines([list(mnist_test_images[:3])], gap=0)
    page[104:112] = 235  # every digit broken across its middle by eight rows of paper
    readings = readings_pil(Image.fromarray(page))
    shape = [r for r in readings if r.shape]
    assert all(r.digit.box[3] < 50 for r in shape)  # the halves, as two lines
    # the model's choice between them: the whole digits when the halves are read less surely
    spans = [(r.start, r.end, r.shape) for r in readings]
    sure = np.array([0.99 if r.digit.box[3] > 60 else 0.6 for r in readings])
    whole = [readings[i] for i in best_readings(spans, sure)]
    assert len(whole) == 3 and all(r.digit.box[3] > 60 and not r.shape for r in whole)
    assert whole[0].start == 0 and whole[-1].end == max(r.end for r in readings)
    lefts = [r.digit.box[0] for r in whole]
    assert lefts == sorted(lefts) and lefts[-1] - lefts[0] > 200
    # and a number on two lines keeps its lines when they are read as surely
    page = page_with_lines([list(mnist_test_images[:3]), list(mnist_test_images[3:6])], gap=30)
    readings = readings_pil(Image.fromarray(page))
    spans = [(r.start, r.end, r.shape) for r in readings]
    chosen = best_readings(spans, np.full(len(readings), 0.99))
    assert [readings[i].digit.box for i in chosen] == [
        d.box for d in digits_pil(Image.fromarray(page))
    ]


def test_a_number_climbing_wholly_above_itself_reads_left_to_right(
    mnist_test_images: np.ndarray,
) -> None:
    """Digits each wholly above the last (a number written uphill, a raised exponent) leave
    empty rows between them, but share no columns, which is what lines of writing do: read as
    one line, left to right, not top first."""
    page = np.full((60 + 3 * 110 + 60, 420), 235, np.uint8)
    for i, image in enumerate(mnist_test_images[:3]):
        top, left = 60 + (2 - i) * 110, 40 + i * 110
        ink = np.asarray(Image.fromarray(image).resize((96, 96))).astype(np.int32)
        page[top : top + 96, left : left + 96] = 235 - (ink * 0.8).astype(np.uint8)
    lefts = [d.box[0] for d in digits_pil(Image.fromarray(page))]
    assert len(lefts) == 3 and lefts == sorted(lefts)
