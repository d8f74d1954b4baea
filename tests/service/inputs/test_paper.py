"""The paper estimate under a photographed digit, and the ink's contrast against it."""

from __future__ import annotations

import numpy as np
import pytest

from service.inputs.paper import (
    _extended,
    _median,
    _upsample,
    box_blur,
    cell_side,
    contrast,
    paper_from_cells,
    paper_without_ink,
    quantile,
    quantiles,
    sampled,
    without_rules,
)


def _lit_page(h: int = 120, w: int = 160) -> np.ndarray:
    """Paper under light falling off from left to right, from 230 to 130."""
    return np.tile(np.linspace(230, 130, w, dtype=np.float32), (h, 1))


def test_the_paper_follows_a_lighting_gradient_under_a_stroke() -> None:
    page = _lit_page()
    grey = page.copy()
    grey[20:100, 70:76] *= 0.4  # a dark vertical stroke
    paper = paper_from_cells(grey, cell_side(grey.shape))
    assert np.abs(paper - page).max() < 12  # the stroke is not taken for paper
    c, sigma = contrast(grey, paper)
    assert c[50, 72] > 0.5 and c[50, 20] < 0.05 and c[50, 150] < 0.05
    assert sigma < 0.02


def test_ink_in_a_shadow_is_as_strong_as_ink_in_the_light() -> None:
    light = np.full((120, 160), 220.0, np.float32)
    light[:, 80:] *= 0.5  # the right half in shadow
    grey = light.copy()
    grey[30:90, 40:44] *= 0.3  # the same ink in the light ...
    grey[30:90, 120:124] *= 0.3  # ... and in the shadow
    paper = paper_from_cells(grey, cell_side(grey.shape))
    c, _ = contrast(grey, paper)
    assert abs(float(c[60, 41]) - float(c[60, 121])) < 0.1


def test_the_second_estimate_keeps_a_bold_stroke_wider_than_a_cell() -> None:
    grey = _lit_page()
    grey[10:110, 60:90] *= 0.3  # a marker stroke wider than three cells
    cell = cell_side(grey.shape)
    first = paper_from_cells(grey, cell)
    ink = np.zeros(grey.shape, bool)
    ink[10:110, 60:90] = True
    second = paper_without_ink(grey, ink, cell)
    c1, _ = contrast(grey, first)
    c2, _ = contrast(grey, second)
    assert c1[60, 75] < 0.3  # the first estimate took the middle of the stroke for paper
    assert c2[60, 75] > 0.6


def test_rules_go_but_a_stroke_crossing_one_stays() -> None:
    mask = np.zeros((60, 80), bool)
    mask[20:22, :] = True  # a printed rule
    mask[40, :] = True  # another
    mask[5:50, 30:33] = True  # a stroke crossing both, most of the picture's height
    out = without_rules(mask)
    assert not out[20, 5] and not out[40, 70]
    assert out[5:50, 30:33].all()


def test_the_bar_of_a_seven_across_a_tight_crop_stays() -> None:
    """A pen-wide bar from edge to edge with the rest of the digit hanging from it is a
    stroke; a band as thick alone (a shadow's edge along the top) still goes."""
    seven = np.zeros((60, 40), bool)
    seven[4:10, :] = True  # the bar, 6 px of 40: thicker than a rule
    for y in range(10, 58):  # the stem, from the bar's right end down to the left
        x = 38 - (y - 10) * 24 // 48
        seven[y, x - 3 : x + 1] = True
    assert np.array_equal(without_rules(seven), seven)
    shadow = np.zeros((60, 40), bool)
    shadow[0:6, :] = True
    shadow[30:50, 18:22] = True  # writing apart from it
    out = without_rules(shadow)
    assert not out[0:5].any() and out[30:50, 18:22].all()


def test_a_lone_upright_band_is_a_one_and_bands_off_the_page_or_beside_writing_are_rules() -> None:
    one = np.zeros((60, 40), bool)
    one[3:57, 18:23] = True  # a "1" cropped tight: nothing hangs from it, nothing else there
    assert np.array_equal(without_rules(one), one)
    off_page = np.zeros((60, 40), bool)
    off_page[:, 18:23] = True  # from the top edge to the bottom one: a rule or a shadow band
    assert not without_rules(off_page).any()
    two = one.copy()
    two[3:57, 30:32] = True  # one of several
    assert not without_rules(two)[30, 18:32].any()
    beside = one.copy()
    beside[20:40, 2:12] = True  # a digit written beside a margin line
    out = without_rules(beside)
    assert not out[30, 18:23].any() and out[20:40, 2:12].all()


def test_a_thick_rule_a_stroke_crosses_goes_and_a_four_keeps_its_crossbar() -> None:
    """In a tight crop a notebook's rule can be as thick as a pen: a stroke written across it
    goes on past it, so it is a rule; a 4's crossbar has a stroke ending on it, so it stays."""
    ruled = np.zeros((64, 64), bool)
    ruled[40:43, :] = True  # a 3-px rule, edge to edge
    ruled[8:58, 30:35] = True  # a 1 crossing it
    out = without_rules(ruled)
    assert not out[40:43, :28].any() and not out[40:43, 37:].any()
    assert out[8:58, 30:35].all()
    four = np.zeros((64, 48), bool)
    four[36:41, :] = True  # the crossbar, across the tight crop
    four[4:37, 2:7] = True  # the left stroke ends on it
    four[4:62, 36:41] = True  # the right stroke crosses it
    assert np.array_equal(without_rules(four), four)


def _tilted_rule(mask: np.ndarray, y0: float, slope: float, thick: int = 1) -> np.ndarray:
    """The pixels of a rule from edge to edge rising by ``slope`` rows per column."""
    rule = np.zeros_like(mask)
    for x in range(mask.shape[1]):
        y = round(y0 + slope * x)
        if 0 <= y < mask.shape[0]:
            rule[y : y + thick, x] = True
    return rule


@pytest.mark.parametrize("degrees", [-4.5, -2.0, 1.0, 3.0])
@pytest.mark.parametrize("axis", [0, 1])
def test_rules_a_little_askew_go_and_the_digit_crossing_them_stays(
    degrees: float, axis: int
) -> None:
    """A page photographed at a slant: its rules drift across rows, so no row is a rule."""
    slope = float(np.tan(np.radians(degrees)))
    page = np.zeros((240, 320), bool)
    rules = np.zeros_like(page)
    for y0 in (40.0, 90.0, 140.0, 190.0):
        rules |= _tilted_rule(page, y0, slope, thick=2)
    stroke = np.zeros_like(page)
    stroke[20:165, 150:156] = True  # a 1 crossing three of them, ending clear of the fourth
    mask = rules | stroke
    if axis == 1:  # margin lines: the same turned upright
        mask, rules, stroke = mask.T, rules.T, stroke.T
    out = without_rules(mask)
    assert out[stroke].all()  # every pixel of the digit, where it crosses a rule too
    assert np.count_nonzero(out & rules & ~stroke) <= 0.02 * np.count_nonzero(rules)


@pytest.mark.parametrize("lines", [1, 2])
def test_one_or_two_slanted_lines_across_a_crop_are_no_rules(lines: int) -> None:
    """A 7's slanted bar across a tight crop, an underline, the top and bottom of a frame turned
    a little: a page's rules askew come in sets."""
    mask = np.zeros((120, 200), bool)
    for y0 in (20.0, 100.0)[:lines]:
        mask |= _tilted_rule(mask, y0, 0.04)  # thin: as thin as a rule
    mask[30:90, 95:99] = True  # what hangs from it or stands between
    assert np.array_equal(without_rules(mask), mask)


def test_a_long_slanted_stroke_clear_of_the_edges_is_no_rule() -> None:
    mask = _tilted_rule(np.zeros((120, 200), bool), 40.0, 0.05, thick=4)
    mask[:, :20] = mask[:, -20:] = False  # a long stroke that stops short of both edges
    mask[60:100, 90:96] = True
    assert np.array_equal(without_rules(mask), mask)


def test_the_upsampled_grid_is_linear_between_cell_centres_and_follows_the_slope_outside() -> None:
    levels = np.array([[0.0, 10.0], [20.0, 30.0]], np.float32)  # rises 10 per cell across, 20 down
    out = _upsample(levels, 4, 4, (9, 8))  # one row past the grid: its level stays the last one
    assert out.shape == (9, 8) and out.dtype == np.float32
    # pixel centres (x + 0.5) / 4 - 0.5 cells from the first centre, clipped half a cell out
    u = np.clip((np.arange(8) + 0.5) / 4 - 0.5, -0.5, 1.5)
    v = np.clip((np.arange(9) + 0.5) / 4 - 0.5, -0.5, 1.5)
    assert np.allclose(out, 20.0 * v[:, None] + 10.0 * u[None, :], atol=1e-5)


def test_a_single_cell_grid_is_its_level_everywhere() -> None:
    assert np.array_equal(
        _upsample(np.full((1, 1), 7.0, np.float32), 5, 5, (4, 6)), np.full((4, 6), 7.0, np.float32)
    )


def test_the_cell_median_replaces_a_lone_filled_cell_and_keeps_a_step() -> None:
    grid = np.full((5, 6), 200.0, np.float32)
    grid[:, 3:] = 100.0  # a shadow's edge
    grid[2, 1] = 30.0  # a cell that ink fills
    out = _median(grid)
    assert out[2, 1] == 200.0
    assert np.array_equal(out[:, :3], np.full((5, 3), 200.0)) and np.array_equal(
        out[:, 3:], grid[:, 3:]
    )


def test_the_cell_median_keeps_light_falling_off_into_a_corner() -> None:
    y, x = np.mgrid[0:4, 0:5].astype(np.float32)
    grid = 220.0 - 12.0 * y - 9.0 * x  # darkest in the bottom right corner
    grid[-1, -1] -= 25.0  # a vignette: darker still in the corner than the slope says
    out = _median(grid)
    assert np.allclose(out[:-1, :-1], grid[:-1, :-1])
    assert out[-1, -1] < grid[-1, -2] and out[-1, -1] < grid[-2, -1]


def test_the_first_estimate_at_the_samples_is_the_full_estimate_there() -> None:
    page = _lit_page(130, 170)
    page[40:90, 60:70] = 40.0  # a bold stroke
    cell = cell_side(page.shape)
    full = paper_from_cells(page, cell)
    at_samples = paper_from_cells(page, cell, at_samples=True)
    assert at_samples.shape == sampled(page, cell).shape == (65, 85)
    assert np.allclose(at_samples, full[::2, ::2], atol=1e-3)


def test_the_second_estimate_takes_a_rough_ink_map_at_the_samples() -> None:
    page = _lit_page(130, 170)
    ink = np.zeros(page.shape, bool)
    ink[40:90, 60:70] = True
    page[ink] = 40.0
    cell = cell_side(page.shape)
    full = paper_without_ink(page, ink, cell)
    assert np.array_equal(paper_without_ink(page, sampled(ink, cell), cell), full)
    assert abs(float(full[60, 65]) - float(_lit_page(130, 170)[60, 65])) < 10.0


def test_the_box_blur_is_the_3x3_mean_of_the_edge_padded_array_to_the_last_bit() -> None:
    rng = np.random.default_rng(3)
    for shape in [(1, 1), (1, 6), (6, 1), (2, 2), (3, 7), (31, 17)]:
        arr = rng.random(shape).astype(np.float32)
        p = np.pad(arr, 1, mode="edge")
        rows = p[:-2] + p[1:-1] + p[2:]
        expected = (rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]) / 9.0
        got = box_blur(arr)
        assert got.dtype == expected.dtype
        assert np.array_equal(got, expected)


def test_the_contrast_is_the_clipped_ratio_to_the_paper_to_the_last_bit() -> None:
    rng = np.random.default_rng(4)
    grey = (rng.random((20, 30)) * 255).astype(np.float32)
    paper = (rng.random((20, 30)) * 255).astype(np.float32)
    c, _ = contrast(grey, paper)
    expected = np.clip((paper - grey) / np.maximum(paper, 64.0), 0.0, 1.0)
    if np.array_equal(c, expected):  # not grainy: no blur taken
        return
    assert np.array_equal(c, box_blur(expected))


def test_the_cell_median_is_each_windows_middle_value_on_random_grids() -> None:
    rng = np.random.default_rng(5)
    for shape, ties in [((3, 3), False), ((4, 7), False), ((15, 19), False), ((15, 19), True)]:
        grid = rng.random(shape).astype(np.float32)
        if ties:  # few distinct levels: equal values in most windows
            grid = np.round(grid * 3)
        ext = _extended(grid, 1)
        windows = [[ext[y : y + 3, x : x + 3] for x in range(shape[1])] for y in range(shape[0])]
        expected = np.array([[np.sort(win.ravel())[4] for win in row] for row in windows])
        assert np.array_equal(_median(grid), expected)


def test_the_upsampled_grid_equals_the_two_pass_linear_interpolation() -> None:
    rng = np.random.default_rng(6)
    levels = rng.random((5, 7)).astype(np.float32) * 200
    out = _upsample(levels, 8, 6, (40, 42))
    ys = np.clip((np.arange(40) + 0.5) / 8 - 0.5, -0.5, 4.5)
    xs = np.clip((np.arange(42) + 0.5) / 6 - 0.5, -0.5, 6.5)
    y0, x0 = np.clip(np.floor(ys), 0, 3).astype(int), np.clip(np.floor(xs), 0, 5).astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = levels[y0][:, x0] + (levels[y0][:, x0 + 1] - levels[y0][:, x0]) * fx
    bottom = levels[y0 + 1][:, x0] + (levels[y0 + 1][:, x0 + 1] - levels[y0 + 1][:, x0]) * fx
    assert np.allclose(out, top + (bottom - top) * fy, atol=1e-3)


def test_quantiles_are_the_nearest_rank_values_at_one_rank_or_several() -> None:
    values = np.random.default_rng(8).random((37, 23)).astype(np.float32)
    ranked = np.sort(values.ravel())
    qs = (0.0, 0.01, 0.5, 0.85, 0.99, 1.0)
    expected = [float(ranked[round(q * (ranked.size - 1))]) for q in qs]
    assert quantiles(values, qs) == expected
    assert [quantile(values, q) for q in qs] == expected
    assert quantiles(np.zeros(0, np.float32), (0.5, 0.9)) == [0.0, 0.0]
