"""A sheet of paper lying on a darker surface: told from a bold light digit, and its hull."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

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
