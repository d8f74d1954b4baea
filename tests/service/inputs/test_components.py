"""Connected pieces of a mask, hole filling, and which pieces are writing."""

from __future__ import annotations

import numpy as np
import pytest

from service.inputs.components import bars, components, entering, filled, select


def _labels(mask: np.ndarray) -> np.ndarray:
    """Per pixel, its piece's number (0 where the mask is off)."""
    comp = components(mask)
    out = np.zeros(mask.shape, np.int64)
    for k in range(comp.n):
        keep = np.zeros(comp.n, bool)
        keep[k] = True
        out[comp.mask(keep, mask.shape)] = k + 1
    return out


def test_pieces_touching_diagonally_are_one() -> None:
    mask = np.zeros((6, 6), bool)
    mask[1, 1] = mask[2, 2] = mask[3, 3] = True  # a diagonal stroke
    mask[1, 5] = mask[2, 5] = True  # a separate bar
    comp = components(mask)
    assert comp.n == 2
    assert sorted(comp.area.tolist()) == [2, 3]
    labels = _labels(mask)
    assert labels[1, 1] == labels[3, 3] != labels[1, 5]


def test_a_u_shape_joined_only_at_its_bottom_is_one_piece() -> None:
    mask = np.zeros((5, 5), bool)
    mask[0:4, 0] = mask[0:4, 4] = True
    mask[4, :] = True
    comp = components(mask)
    assert comp.n == 1 and int(comp.area[0]) == int(mask.sum())
    assert (comp.y0[0], comp.y1[0], comp.x0[0], comp.x1[0]) == (0, 4, 0, 4)
    assert np.array_equal(comp.mask(np.ones(1, bool), mask.shape), mask)


def test_random_masks_keep_every_pixel_in_exactly_one_piece() -> None:
    rng = np.random.default_rng(0)
    mask = rng.random((40, 50)) < 0.3
    comp = components(mask)
    assert int(comp.area.sum()) == int(mask.sum())
    labels = _labels(mask)
    assert np.array_equal(labels > 0, mask)
    # 8-neighbours in the mask share a label
    a, b = labels[:-1, :-1], labels[1:, 1:]
    both = (a > 0) & (b > 0)
    assert np.array_equal(a[both], b[both])


def test_empty_mask_has_no_pieces() -> None:
    assert components(np.zeros((4, 4), bool)).n == 0


def test_holes_are_filled_but_open_bays_are_not() -> None:
    ring = np.zeros((9, 9), bool)
    ring[2:7, 2:7] = True
    ring[3:6, 3:6] = False  # a closed loop: its inside is a hole
    assert filled(ring)[4, 4] and filled(ring).sum() == 25
    bay = ring.copy()
    bay[4, 6] = False  # opened to the outside
    bay[3:6, 6] = False
    assert not filled(bay)[4, 4]


def test_long_thin_lines_and_far_specks_are_not_writing() -> None:
    mask = np.zeros((60, 60), bool)
    mask[10, 2:58] = True  # a printed rule across the page
    mask[20:45, 25:29] = True  # a stroke
    mask[20:24, 29:38] = True
    mask[55, 3] = mask[55, 4] = True  # a far speck
    mask[46, 27:29] = True  # a dot near the stroke stays
    comp = components(mask)
    keep = select(comp, mask.shape)
    kept = comp.mask(keep, mask.shape)
    assert kept[30, 26] and kept[46, 27]
    assert not kept[10, 5] and not kept[55, 3]


def test_a_thin_digit_across_a_tight_crop_is_writing_and_a_tilted_rule_is_not() -> None:
    mask = np.zeros((44, 44), bool)
    mask[2, 8:40] = True  # a fine-pen "5" across the whole crop: its top bar,
    mask[2:20, 8] = True  # its stem,
    mask[20, 8:36] = True  # and its bowl
    mask[20:40, 36] = True
    mask[40, 4:36] = True
    comp = components(mask)
    assert select(comp, mask.shape).all()
    rule = np.zeros((60, 60), bool)
    for x in range(2, 58):  # a printed rule in a photo turned by about 6 degrees
        rule[10 + round(0.1 * x), x] = True
    rule[25:50, 25:29] = True  # and a stroke
    comp = components(rule)
    kept = comp.mask(select(comp, rule.shape), rule.shape)
    assert kept[30, 26] and not kept[10, 3] and not kept[15, 50]


def test_many_similar_pieces_are_clutter() -> None:
    mask = np.zeros((100, 100), bool)
    mask[2::8, 2::8] = True  # grain: 13 x 13 dots, none dominant
    mask[3::8, 2::8] = True
    comp = components(mask)
    assert not select(comp, mask.shape).any()


def _print(mask: np.ndarray, rows: range, cols: range) -> None:
    """Lines of small letters (3x4 blocks a column apart) over ``rows`` and ``cols``."""
    for y in rows[::8]:
        for x in cols[::5]:
            mask[y : y + 4, x : x + 3] = True


def test_a_digit_clear_of_printed_text_beside_it_is_writing() -> None:
    """Printed text beside a digit is many pieces, none dominant, but each letter is far
    smaller than the digit and away from it: the digit is the writing, the print is not."""
    mask = np.zeros((120, 160), bool)
    _print(mask, range(5, 40), range(10, 150))  # 5 lines of 28 letters
    mask[60:100, 70:74] = True  # a "1", 40 rows tall
    mask[60:64, 66:74] = True
    comp = components(mask)
    keep = select(comp, mask.shape)
    assert comp.mask(keep, mask.shape).sum() == np.count_nonzero(mask[55:, :])


def test_a_page_of_print_alone_is_still_clutter() -> None:
    """A page of print with a longer word among its letters: the word has letters beside it,
    and the page is no digit."""
    mask = np.zeros((120, 160), bool)
    _print(mask, range(5, 110), range(10, 150))
    mask[45:49, 60:80] = True  # letters run together into a word on a line of them
    comp = components(mask)
    assert not select(comp, mask.shape).any()


@pytest.mark.parametrize("shape", ["signature", "blob"])
def test_a_signature_or_a_solid_mark_under_print_is_no_digit(shape: str) -> None:
    """Under a page of print, a signature (far wider than tall) or a solid mark (a printed
    star, a dot) stands clear of the letters as a digit would, but is shaped as no digit: the
    page stays refused."""
    mask = np.zeros((120, 160), bool)
    _print(mask, range(5, 40), range(10, 150))
    if shape == "signature":
        for x in range(40, 120):  # a wavy stroke 80 wide, about 20 tall
            y = 80 + int(8 * np.sin(x / 6))
            mask[y : y + 3, x] = True
    else:
        mask[62:82, 65:85] = True
    comp = components(mask)
    assert not select(comp, mask.shape).any()


def _flood_fill(mask: np.ndarray) -> np.ndarray:
    """The straightforward 8-connected labelling: a breadth-first fill from each unlabelled pixel
    in row-major order, pieces numbered 1.. in the order their first pixel is met."""
    h, w = mask.shape
    out = np.zeros(mask.shape, np.int64)
    n = 0
    for y0 in range(h):
        for x0 in range(w):
            if not mask[y0, x0] or out[y0, x0]:
                continue
            n += 1
            out[y0, x0] = n
            todo = [(y0, x0)]
            while todo:
                y, x = todo.pop()
                for yy in range(max(0, y - 1), min(h, y + 2)):
                    for xx in range(max(0, x - 1), min(w, x + 2)):
                        if mask[yy, xx] and not out[yy, xx]:
                            out[yy, xx] = n
                            todo.append((yy, xx))
    return out


def test_pieces_areas_and_boxes_equal_a_flood_fills_on_random_masks() -> None:
    rng = np.random.default_rng(7)
    for density, shape in [(0.2, (1, 9)), (0.3, (9, 1)), (0.35, (23, 31)), (0.5, (17, 12))]:
        mask = rng.random(shape) < density
        expected = _flood_fill(mask)
        assert np.array_equal(_labels(mask), expected)
        comp = components(mask)
        for k in range(comp.n):
            ys, xs = np.nonzero(expected == k + 1)
            assert comp.area[k] == ys.size
            assert (comp.y0[k], comp.y1[k]) == (ys.min(), ys.max())
            assert (comp.x0[k], comp.x1[k]) == (xs.min(), xs.max())


def test_a_full_mask_is_one_piece() -> None:
    comp = components(np.ones((5, 6), bool))
    assert comp.n == 1
    assert (comp.area[0], comp.y0[0], comp.y1[0], comp.x0[0], comp.x1[0]) == (30, 0, 4, 0, 5)


def _pen_beside_a_seven(
    *, pen_width: int = 12, pen_x: int = 80, pen_contrast: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """A mask of a "7" (strokes 4 px wide, about 40 px tall) and a straight band (a pen) to its
    right, longer than the 7; and the ink's contrast (the writing's
    1, the band's ``pen_contrast``)."""
    mask = np.zeros((100, 100), bool)
    mask[30:34, 20:56] = True  # the 7's bar
    for y in range(34, 72):  # its slanted stem
        x = 52 - round(0.45 * (y - 34))
        mask[y, x : x + 4] = True
    mask[10:85, pen_x : pen_x + pen_width] = True
    contrast = mask.astype(np.float32)
    contrast[10:85, pen_x : pen_x + pen_width] *= pen_contrast
    return mask, contrast


def _bars_of(mask: np.ndarray, contrast: np.ndarray) -> np.ndarray:
    comp = components(mask)
    return comp.mask(bars(comp, select(comp, mask.shape), contrast), mask.shape)


def test_a_pen_lying_beside_the_writing_is_no_writing() -> None:
    mask, contrast = _pen_beside_a_seven()
    found = _bars_of(mask, contrast)
    assert found[10:85, 80:92].all() and not found[:, :80].any()


def test_a_band_no_thicker_than_the_writing_is_a_pen_when_it_runs_off_the_picture() -> None:
    mask = np.zeros((100, 100), bool)
    mask[30:38, 20:56] = True  # a 7 with strokes 8 px wide
    for y in range(38, 72):
        x = 50 - round(0.45 * (y - 38))
        mask[y, x : x + 8] = True
    mask[:, 80:89] = True  # a band 9 px wide from the top edge to the bottom one
    found = _bars_of(mask, mask.astype(np.float32))
    assert found[:, 80:89].all() and not found[:, :80].any()
    mask[:12, 80:89] = mask[88:, 80:89] = False  # ending inside the picture: a stroke
    assert not _bars_of(mask, mask.astype(np.float32)).any()


def test_a_straight_stroke_of_the_writing_is_not_a_pen() -> None:
    # as thick as the writing's strokes: a line drawn with the same pen (an open 4's stem)
    assert not _bars_of(*_pen_beside_a_seven(pen_width=4)).any()
    # close to the writing: a piece of the digit broken off
    assert not _bars_of(*_pen_beside_a_seven(pen_x=58)).any()
    # the writing much fainter than the band: a shadow's or a finger's rim beside a "1"
    assert not _bars_of(*_pen_beside_a_seven(pen_contrast=2.0)).any()
    # a band alone is the writing (a "1")
    mask = np.zeros((100, 100), bool)
    mask[10:90, 45:57] = True
    assert not _bars_of(mask, mask.astype(np.float32)).any()
    # a band beside a mark much shorter than itself: the "1" and a speck of dirt
    mask[40:50, 20:26] = True
    assert not _bars_of(mask, mask.astype(np.float32)).any()
    # a band in line with the rest of the writing: a stroke broken by glare
    mask = np.zeros((100, 100), bool)
    mask[5:60, 45:57] = True
    mask[70:95, 45:57] = True
    mask[70:74, 30:45] = True
    assert not _bars_of(mask, mask.astype(np.float32)).any()


def _levelled(*pieces: tuple[slice, slice, float]) -> np.ndarray:
    """A 120x160 contrast map holding each piece (rows, columns) at its level."""
    contrast = np.zeros((120, 160))
    for rows, cols, level in pieces:
        contrast[rows, cols] = level
    return contrast


def test_a_light_piece_reaching_in_from_the_border_is_no_writing() -> None:
    """A table's wedge or a finger at the border is far lighter than the pen's ink clear of
    it, and goes with the slivers as light along it; a piece as dark as the ink (a digit the
    picture's edge cuts), or darker than the wedge beside it (writing), stays."""
    writing = (slice(50, 75), slice(70, 76), 0.8)
    wedge = (slice(0, 12), slice(0, 40), 0.3)
    sliver = (slice(3, 5), slice(50, 75), 0.3)
    beside = (slice(20, 30), slice(45, 50), 0.6)
    cut = (slice(90, 120), slice(130, 140), 0.8)
    contrast = _levelled(writing, wedge, sliver, beside, cut)
    comp = components(contrast > 0)
    out = entering(comp, contrast, 5.0)
    level = comp.sums(contrast) / comp.area
    assert sorted(level[out].round(1).tolist()) == [0.3, 0.3]
    keep = select(comp, contrast.shape, out)
    assert sorted(level[keep].round(1).tolist()) == [0.6, 0.8, 0.8]


def test_a_digit_the_edge_cuts_beside_a_small_darker_mark_is_not_taken_for_a_table() -> None:
    """A digit the picture's edge cuts, a little lighter than a small mark clear of the border
    (a tick, a speck, a word of a date or of print): the mark is no measure of the digit's ink,
    and the digit stays (it is no table's wedge)."""
    mark = (slice(20, 30), slice(20, 27), 0.8)  # smaller than a digit: 10 of 120 rows
    digit = (slice(60, 120), slice(120, 126), 0.65)  # reaches the bottom edge
    contrast = _levelled(mark, digit)
    comp = components(contrast > 0)
    assert not entering(comp, contrast, 5.0).any()


def test_a_broad_light_blob_at_the_border_beside_a_small_mark_goes() -> None:
    """Beside a small mark a finger's broad blob still goes: it is no stroke."""
    mark = (slice(20, 30), slice(20, 23), 0.8)
    finger = (slice(70, 120), slice(100, 140), 0.4)
    contrast = _levelled(mark, finger)
    comp = components(contrast > 0)
    level = comp.sums(contrast) / comp.area
    assert level[entering(comp, contrast, 5.0)].round(1).tolist() == [0.4]


def test_a_tables_wedge_along_the_border_beside_a_small_digit_goes() -> None:
    """A page photographed at an angle: the table's wedge is a light sliver along the border,
    far longer on the edge than it reaches in, and goes beside a small digit as beside a large
    one, with the sheet's edge as light beside it; a digit the edge cuts crosses the border
    with its strokes and stays."""
    writing = (slice(50, 64), slice(70, 73), 0.8)  # under 0.15 of the 120 rows
    wedge = (slice(0, 8), slice(20, 110), 0.4)  # 90 along the top, 8 deep
    edge = (slice(9, 11), slice(110, 125), 0.4)  # the sheet's edge, clear of the border
    cut = (slice(90, 120), slice(140, 144), 0.6)  # a stroke the bottom edge cuts
    contrast = _levelled(writing, wedge, edge, cut)
    comp = components(contrast > 0)
    level = comp.sums(contrast) / comp.area
    out = entering(comp, contrast, 5.0)
    assert sorted(level[out].round(1).tolist()) == [0.4, 0.4]


def test_the_end_of_a_number_the_edge_cuts_stays() -> None:
    """A number cropped tight: its last digit, cut by the picture's edge and drawn a little
    lighter than the others, is level with them and as tall, and stays."""
    first = (slice(40, 80), slice(20, 44), 0.8)
    second = (slice(40, 78), slice(80, 92), 0.8)
    last = (slice(42, 80), slice(144, 160), 0.7)  # reaches the right edge
    contrast = _levelled(first, second, last)
    comp = components(contrast > 0)
    assert not entering(comp, contrast, 5.0).any()
