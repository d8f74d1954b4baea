"""A sheet of paper lying on a darker surface: told from a bold light digit, and its hull; a
page photographed at an angle, the surface in wedges along its border."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from service.inputs.paper import dilate
from service.inputs.preprocess import ink_map
from service.inputs.sheet import hull_area, sheet_on_desk


@pytest.mark.parametrize(("digit", "bold"), [("0", 4), ("0", 8), ("8", 4)])
def test_a_bold_light_digit_on_a_dark_ground_is_no_sheet(digit: str, bold: int) -> None:
    """Its loops filled, a bold white 0 cropped tight on a chalkboard is as convex as a sheet
    on a table; but a sheet is mostly bare paper, and the digit mostly its loops."""
    picture = Image.new("L", (256, 256), 45)
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=230)
    x0, y0, x1, y1 = draw.textbbox((0, 0), digit, font=font, stroke_width=bold)
    at = ((256 - (x1 - x0)) / 2 - x0, (256 - (y1 - y0)) / 2 - y0)
    draw.text(at, digit, font=font, fill=225, stroke_width=bold, stroke_fill=225)
    rng = np.random.default_rng(0)
    lit = np.linspace(0.8, 1.1, 256)[None, :]  # uneven light: not an even ground
    grey = np.clip((np.asarray(picture, np.float32) + rng.normal(0, 5, (256, 256))) * lit, 0, 255)
    assert sheet_on_desk(grey.astype(np.float32)) is None


def test_the_hull_of_a_turned_sheet_is_its_area_and_of_an_l_shape_more() -> None:
    sheet = np.asarray(Image.new("L", (30, 40), 255).rotate(30, expand=True)) > 127
    assert hull_area(sheet) == pytest.approx(np.count_nonzero(sheet), rel=0.1)
    ell = np.zeros((40, 40), bool)
    ell[:, :10] = True
    ell[30:, :] = True
    assert hull_area(ell) == pytest.approx(40 * 40 - 30 * 30 / 2)


def angled_page(
    height: int,
    reach: float,
    *,
    soft: bool = False,
    at: tuple[float, float] = (0.5, 0.5),
    seed: int = 0,
    dark: float = 0.4,
) -> tuple[np.ndarray, np.ndarray]:
    """A page at an angle, as a phone sees it: a small '7' (in the middle, or ``at`` that
    share of the width and height), and a darker table in two thin wedges from the top corners
    down the sides, reaching ``reach`` of the width in at the top (``soft``: light falling off
    into those corners instead, no edge; ``dark``: how much darker the table is than the paper).
    The picture, and the 7's ink."""
    width = height * 3 // 4
    wedges = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(wedges)
    draw.polygon([(0, 0), (reach * width, 0), (0, height)], fill=255)
    draw.polygon([(width, 0), ((1 - reach) * width, 0), (width, height)], fill=255)
    table = np.asarray(wedges, np.float32) / 255
    if soft:
        ys, xs = np.mgrid[0:height, 0:width] / height
        table = np.clip(1 - np.minimum(xs, xs.max() - xs) / reach - ys, 0, 1)
    seven = Image.new("L", (width, height), 0)
    s, x, y = 0.1 * height, at[0] * width, at[1] * height
    points = [(x - s / 2, y - s / 2), (x + s / 2, y - s / 2), (x - s / 6, y + s / 2)]
    ImageDraw.Draw(seven).line(points, fill=255, width=max(2, round(s / 8)))
    ink = np.asarray(seven, np.float32) / 255
    rng = np.random.default_rng(seed)
    paper = 205 * (1 - 0.15 * np.linspace(0, 1, height))[:, None]
    grey = paper * (1 - dark * table) * (1 - 0.75 * ink) + rng.normal(0, 3, (height, width))
    return np.clip(grey, 0, 255).astype(np.uint8), ink


@pytest.mark.parametrize("height", [256, 1024])
@pytest.mark.parametrize("reach", [0.2, 0.25])
def test_the_table_beside_a_page_at_an_angle_is_no_ink(height: int, reach: float) -> None:
    """The paper's cells take a cell of table for paper: the wedge's narrow end and the sheet's
    edge beside it read as ink beside the small digit, unless the wedges are found as surface."""
    grey, seven = angled_page(height, reach)
    ink = ink_map(Image.fromarray(grey)).ink
    on = np.asarray(Image.fromarray((seven * 255).astype(np.uint8)).resize(ink.shape[::-1]))
    near = dilate(dilate(dilate(on > 0)))
    assert ink[near].sum() > 50
    assert ink[~near].sum() == 0


def test_a_digit_in_a_wedge_is_no_table() -> None:
    """A wedge-shaped shadow in a corner holding the digit is no table beyond the page: the
    digit, darker than the wedge, is read."""
    grey, seven = angled_page(256, 0.3, at=(0.1, 0.12))
    assert sheet_on_desk(grey.astype(np.float32)) is None
    ink = ink_map(Image.fromarray(grey)).ink
    on = np.asarray(Image.fromarray((seven * 255).astype(np.uint8)).resize(ink.shape[::-1]))
    assert ink[dilate(on > 0)].sum() > 50


def test_a_page_darkening_into_its_corners_has_no_wedges() -> None:
    """Light falling off into two corners is as dark there, but rises with no edge."""
    grey, _ = angled_page(256, 0.3, soft=True)
    assert sheet_on_desk(grey.astype(np.float32)) is None


def test_a_digit_running_off_the_border_is_no_wedge() -> None:
    """A bold 7 cropped tight, its bar along the top edge into a corner, is not shallow along
    the border: its stroke hangs from the bar."""
    grey = np.full((200, 160), 200, np.float32)
    grey[:24, :130] = 60
    grey[24:, 100:124] = 60
    grey += np.random.default_rng(1).normal(0, 3, grey.shape).astype(np.float32)
    assert sheet_on_desk(grey) is None


@pytest.mark.parametrize("dark", [0.75, 0.9])
@pytest.mark.parametrize("at", [(0.3, 0.3), (0.22, 0.5)])
def test_a_digit_touching_a_dark_wedge_is_not_painted_with_it(
    dark: float, at: tuple[float, float]
) -> None:
    """A digit written against the sheet's edge, on a table as dark as its ink or darker, joins
    the wedge's piece; beside its strokes lies paper, so the wedge is kept to the line of the
    sheet's edge and the digit is read, not painted with the sheet's light."""
    grey, seven = angled_page(256, 0.3, at=at, dark=dark)
    ink = ink_map(Image.fromarray(grey)).ink
    on = np.asarray(Image.fromarray((seven * 255).astype(np.uint8)).resize(ink.shape[::-1]))
    near = dilate(dilate(dilate(on > 0)))
    assert ink[near].sum() > 50
    assert ink[~near].sum() == 0
