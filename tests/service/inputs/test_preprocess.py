"""preprocess_pil / decode_image: photos and drawings come out as MNIST-style 28x28 digits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from service.inputs.images import decode_image
from service.inputs.preprocess import (
    NoInkFound,
    SeveralDigits,
    _ink_box,
    _strokes_within,
    preprocess_pil,
)

ToBytes = Callable[..., bytes]
LIMIT = 20_000_000


def seven(
    mode: str,
    background: object,
    ink: object,
    width: int = 24,
    size: tuple[int, int] = (400, 400),
    at: tuple[int, int] = (0, 0),
) -> Image.Image:
    """A '7' drawn as a paint program would: a top bar and a slanted stem.

    The digit and its stroke width scale with the canvas's shorter side; ``at`` shifts it.
    """
    img = Image.new(mode, size, background)  # type: ignore[arg-type]
    k = min(size) / 400
    points = [(at[0] + x * k, at[1] + y * k) for x, y in [(100, 80), (300, 80), (170, 330)]]
    ImageDraw.Draw(img).line(points, fill=ink, width=round(width * k))  # type: ignore[arg-type]
    return img


def centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    total = a.sum()
    return float(a.sum(1) @ np.arange(28) / total), float(a.sum(0) @ np.arange(28) / total)


def bbox_long_side(a: np.ndarray) -> int:
    rows, cols = np.flatnonzero(a.any(1)), np.flatnonzero(a.any(0))
    return int(max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1))


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return preprocess_pil(seven("L", 0, 255))


def test_output_is_mnist_style(reference: np.ndarray) -> None:
    assert reference.shape == (28, 28) and reference.dtype == np.float32
    assert reference.min() == 0.0 and reference.max() == pytest.approx(1.0)
    cy, cx = centre_of_mass(reference)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5
    assert bbox_long_side(reference) in (20, 21)
    assert reference[:, :2].max() == 0 and reference[:2].max() == 0  # dark background


@pytest.mark.parametrize(
    "image",
    [
        pytest.param(seven("L", 255, 0), id="black-on-white"),
        pytest.param(seven("RGB", (255, 255, 255), (20, 20, 160)), id="blue-pen-rgb"),
        pytest.param(seven("RGBA", (0, 0, 0, 0), (0, 0, 0, 255)), id="black-on-transparent"),
        pytest.param(seven("RGBA", (255, 255, 255, 0), (255, 255, 255, 255)), id="white-on-transp"),
        pytest.param(seven("LA", (0, 0), (0, 255)), id="la-black-on-transparent"),
        # a soft brush on a layer: no pixel is even half opaque
        pytest.param(seven("RGBA", (0, 0, 0, 0), (255, 255, 255, 110)), id="soft-white-brush"),
        pytest.param(seven("RGBA", (255, 255, 255, 255), (0, 0, 0, 255)), id="opaque-rgba"),
        pytest.param(seven("1", 1, 0), id="bilevel"),
        pytest.param(seven("L", 255, 0).convert("P"), id="palette"),
        pytest.param(seven("I;16", 65535, 0), id="16-bit"),
        pytest.param(seven("L", 210, 60, size=(300, 500), at=(0, 150)), id="grey-paper-tall"),
        # the ink lies beyond the ground, not across the middle of the scale from it: a white
        # brush on a light-grey canvas, a black one on a dark-grey canvas
        pytest.param(seven("L", 200, 255), id="white-on-light-grey"),
        pytest.param(seven("RGB", (60, 60, 70), (0, 0, 0)), id="black-on-dark-grey"),
        pytest.param(seven("L", 0, 255, size=(1600, 1200), at=(300, 0)), id="large-canvas"),
    ],
)
def test_drawings_in_any_format_match_the_reference(
    image: Image.Image, reference: np.ndarray, to_bytes: ToBytes
) -> None:
    out = decode_image(to_bytes(image), max_pixels=LIMIT)
    assert np.abs(out - reference).mean() < 0.05


def _framed(inner: Image.Image, border: int) -> Image.Image:
    """``inner`` pasted in the middle of a 400x400 even ``border`` level."""
    img = Image.new("L", (400, 400), border)
    img.paste(inner, (50, 50))
    return img


@pytest.mark.parametrize(
    "image",
    [
        # the ink runs towards the far end of the scale from the ground; a page lighter than
        # its border is not one big mark
        pytest.param(_framed(seven("L", 255, 0, size=(300, 300)), 200), id="white-page-in-grey"),
        pytest.param(_framed(seven("L", 0, 255, size=(300, 300)), 40), id="dark-mode-canvas"),
    ],
)
def test_a_page_inside_an_even_border_is_not_taken_for_ink(
    image: Image.Image, reference: np.ndarray, to_bytes: ToBytes
) -> None:
    out = decode_image(to_bytes(image), max_pixels=LIMIT)
    assert np.abs(out - reference).mean() < 0.05


def test_a_dark_digit_with_a_light_halo_on_grey_is_the_dark_digit(
    reference: np.ndarray, to_bytes: ToBytes
) -> None:
    img = seven("L", 150, 255, width=60)
    ImageDraw.Draw(img).line([(100, 80), (300, 80), (170, 330)], fill=0, width=24)
    out = decode_image(to_bytes(img), max_pixels=LIMIT)
    assert np.abs(out - reference).mean() < 0.05


@pytest.mark.parametrize(("ground", "chalk"), [(40, 170), (25, 200), (70, 160), (15, 120)])
def test_chalk_on_a_board_is_the_chalk_not_the_board_around_it(
    ground: int, chalk: int, reference: np.ndarray, to_bytes: ToBytes
) -> None:
    """Grey chalk on a dark board (the two summing below white): read as dark ink on light,
    the board around each stroke scores as much contrast as the strokes do the right way
    round, and would come out as the digit's outline."""
    img = seven("L", ground, chalk)
    rng = np.random.default_rng(ground)
    grey = np.asarray(img, np.float32) + rng.normal(0, 4, (400, 400))
    photo = Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8))
    out = decode_image(to_bytes(photo, "JPEG", quality=85), max_pixels=LIMIT)
    assert np.abs(out - reference).mean() < 0.06


@pytest.mark.parametrize(("offset", "ink"), [(0.15, 100), (0.3, 140)])
def test_a_pencil_one_on_a_page_mostly_in_shadow_is_the_one(
    offset: float, ink: int, to_bytes: ToBytes
) -> None:
    """The shadow's soft edge is ground-level "ink" too, as the board around chalk is; but the
    lit part of the page runs along the picture's border, where strokes only cross it."""
    drawn = Image.new("L", (240, 240), 0)
    ImageDraw.Draw(drawn).line([(190, 50), (180, 100)], fill=255, width=7)
    page = Image.new("L", (240, 240), 200)
    ImageDraw.Draw(page).line([(190, 50), (180, 100)], fill=ink, width=7)
    ys, xs = np.mgrid[0:240, 0:240] / 240.0
    shade = 1.0 - 0.55 / (1.0 + np.exp(-((ys - xs) * 0.7 + offset) / 0.03))  # the lower left
    grey = np.asarray(page, np.float32) * shade + np.random.default_rng(3).normal(0, 3, shade.shape)
    photo = Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8))
    out = decode_image(to_bytes(photo), max_pixels=LIMIT)
    assert np.abs(out - preprocess_pil(drawn)).mean() < 0.03


@pytest.mark.parametrize(("depth", "edge"), [(0.5, 60), (0.6, 100)])
def test_a_digit_on_a_page_mostly_in_deep_shadow_is_the_digit_not_the_lit_part(
    depth: float, edge: int, reference: np.ndarray, to_bytes: ToBytes
) -> None:
    """Its middle level dark and its light tail long, the page looks like a dark ground with
    light marks, and its lit part stands out more than the ink; but that part lines the
    picture's border, which strokes only cross."""
    grey = np.asarray(seven("L", 215, 60, at=(60, -40)), np.float32)
    ys, xs = np.mgrid[0:400, 0:400]
    grey = np.where(xs - ys < edge, grey * depth, grey)  # the lower left in shadow
    grey += np.random.default_rng(3).normal(0, 3, grey.shape)
    photo = Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8))
    out = decode_image(to_bytes(photo), max_pixels=LIMIT)
    assert np.abs(out - reference).mean() < 0.06


@pytest.mark.parametrize(("desk", "share"), [(30, 0.4), (70, 0.48)])
def test_a_digit_on_a_strip_of_paper_across_a_dark_desk_is_the_digit(
    desk: int, share: float, reference: np.ndarray, to_bytes: ToBytes
) -> None:
    """The desk is the picture's middle level and the digit's ink about as dark, as the board
    around chalk is; but the strip runs from one side of the picture to the other."""
    page = np.full((400, 400), float(desk), np.float32)
    page[round(200 - share * 200) : round(200 + share * 200)] = 205.0
    side = int(400 * share * 0.9)
    digit = np.asarray(seven("L", 0, 255).resize((side, side)), np.float32) / 255.0
    at = slice(200 - side // 2, 200 - side // 2 + side)
    page[at, at] = page[at, at] * (1.0 - digit) + 35.0 * digit
    page += np.random.default_rng(1).normal(0, 3, page.shape)
    photo = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8))
    out = decode_image(to_bytes(photo), max_pixels=LIMIT)
    assert np.abs(out - reference).mean() < 0.03


def test_light_strokes_beside_a_light_wall_are_strokes_and_a_lit_part_alone_is_not() -> None:
    """A board beside a light wall, or a small light digit under uneven light: the light part
    lines the border, but some of it, clear of the border, is strokes; the lit part of a page
    in shadow is all along the border."""
    lit = np.zeros((48, 64), bool)
    lit[:, :14] = True  # a light wall along the left side (lines a third of the border)
    assert not _strokes_within(lit)
    lit[10:40, 35:38] = True  # a chalk stroke on the board, clear of the border
    assert _strokes_within(lit)
    specks = np.zeros((48, 64), bool)
    specks[:, :14] = True
    specks[20:22, 40:42] = True  # a glint: too small to be a stroke
    assert not _strokes_within(specks)


def test_a_faint_coffee_ring_on_a_blank_page_is_no_digit(to_bytes: ToBytes) -> None:
    """Dark in the darkest colour channel, as a light gel pen is, but nearly grey: the colour
    reading takes only ink of a vivid colour."""
    ys, xs = np.mgrid[0:480, 0:640].astype(np.float32)
    d = np.sqrt((ys - 240) ** 2 + (xs - 330) ** 2) / 70.0
    a = (np.exp(-(((d - 1) / 0.04) ** 2)) * 0.35 + (d < 1) * 0.05)[..., None]  # a ring's rim
    page = np.full((480, 640, 3), 236.0, np.float32) * (1 - a) + np.array([150, 100, 45]) * a
    page += np.random.default_rng(0).normal(0, 2.5, (480, 640, 1))
    photo = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8), "RGB")
    for fmt in ("JPEG", "PNG"):
        with pytest.raises(NoInkFound):
            decode_image(to_bytes(photo, fmt, quality=90), max_pixels=LIMIT)


def test_transparent_palette_png(reference: np.ndarray, to_bytes: ToBytes) -> None:
    img = seven("P", 0, 1)
    img.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
    data = to_bytes(img, transparency=0)
    assert np.abs(decode_image(data, max_pixels=LIMIT) - reference).mean() < 0.05


@pytest.mark.parametrize("mode", ["L", "RGB", "CMYK"])
def test_jpeg_modes(mode: str, reference: np.ndarray, to_bytes: ToBytes) -> None:
    img = seven("RGB", (255, 255, 255), (0, 0, 0)).convert(mode)
    out = decode_image(to_bytes(img, "JPEG", quality=90), max_pixels=LIMIT)
    assert np.abs(out - reference).mean() < 0.05


def test_large_jpeg_photo_with_an_off_centre_digit(
    reference: np.ndarray, to_bytes: ToBytes
) -> None:
    img = seven("RGB", (235, 230, 220), (30, 30, 40), size=(4000, 3000), at=(900, 0))
    out = decode_image(to_bytes(img, "JPEG", quality=80), max_pixels=LIMIT)
    assert np.abs(out - reference).mean() < 0.06


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied(
    orientation: int, reference: np.ndarray, to_bytes: ToBytes
) -> None:
    upright = seven("L", 255, 0)
    # store the pixels so that applying the EXIF orientation turns them upright again
    stored = upright.transpose(
        {
            3: Image.Transpose.ROTATE_180,
            6: Image.Transpose.ROTATE_90,
            8: Image.Transpose.ROTATE_270,
        }[orientation]
    )
    exif = Image.Exif()
    exif[0x0112] = orientation
    for fmt in ("PNG", "JPEG"):
        out = decode_image(to_bytes(stored, fmt, exif=exif), max_pixels=LIMIT)
        assert np.abs(out - reference).mean() < 0.05, fmt
        plain = decode_image(to_bytes(stored, fmt), max_pixels=LIMIT)
        assert np.abs(plain - reference).mean() > 0.05, fmt  # the test would notice a no-op


def test_thin_strokes_are_thickened(reference: np.ndarray, to_bytes: ToBytes) -> None:
    thin = decode_image(to_bytes(seven("L", 255, 0, width=2)), max_pixels=LIMIT)
    assert thin.sum() > 0.6 * reference.sum()
    assert np.abs(thin - reference).mean() < 0.08


def test_noisy_grey_paper_photo(reference: np.ndarray, to_bytes: ToBytes) -> None:
    rng = np.random.default_rng(3)
    ink = np.asarray(seven("L", 0, 255, size=(800, 600)), np.float64)
    paper = np.linspace(170, 210, 800)[None, :] + rng.normal(0, 7, (600, 800))
    photo = np.clip(paper - 0.75 * ink, 0, 255).astype(np.uint8)
    out = decode_image(to_bytes(photo, "JPEG", quality=85), max_pixels=LIMIT)
    assert np.abs(out - reference).mean() < 0.06


@pytest.mark.parametrize(
    ("size", "stroke", "width"),
    [
        ((220, 300), [(25, 45), (195, 45), (95, 270)], 45),  # a marker "7" cropped tight
        ((220, 300), [(25, 45), (195, 45), (95, 270)], 60),
        ((200, 500), [(100, 50), (100, 450)], 90),  # a "1" as wide as half the crop
        ((160, 260), [(20, 40), (140, 40), (70, 230)], 75),  # ink on 55% of the crop
    ],
)
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_bold_stroke_across_a_tight_crop_is_read_whole(
    size: tuple[int, int], stroke: list[tuple[int, int]], width: int, fmt: str, to_bytes: ToBytes
) -> None:
    """A stroke wider than the paper's cells: its core was taken for paper (dark paper) and
    only its rim was read, an outline the models read as another digit. Read whole, a bold
    digit can cover more than half of a tight crop, and is still writing."""
    drawing = Image.new("L", size, 0)
    ImageDraw.Draw(drawing).line(stroke, fill=255, width=width, joint="curve")
    ink = np.asarray(drawing, np.float64) / 255
    rng = np.random.default_rng(1)
    ys, xs = np.linspace(0, 1, size[1])[:, None], np.linspace(0, 1, size[0])[None, :]
    paper = 225 * (1 - 0.08 * ys - 0.05 * xs) + rng.normal(0, 3, ink.shape)
    photo = np.clip(paper * (1 - 0.85 * ink), 0, 255).astype(np.uint8)
    out = decode_image(to_bytes(photo, fmt), max_pixels=LIMIT)
    expected = preprocess_pil(ImageOps.expand(drawing, border=200, fill=0))  # plainly a drawing
    shifts = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]  # the centre of mass rounds
    assert min(np.abs(out - np.roll(expected, s, (0, 1))).mean() for s in shifts) < 0.03


@pytest.mark.parametrize("width", [8, 20, 40, 120])
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_one_cropped_tight_is_a_digit_and_a_rule_off_the_page_is_not(
    width: int, fmt: str, to_bytes: ToBytes
) -> None:
    """A "1" spanning most of its crop, alone: with a fine pen it looked like a printed line,
    with a bold one like a rule as thick as a pen (nothing hangs from it); both were "no digit
    found". An upright line that runs off the page at both ends is still a rule."""
    rng = np.random.default_rng(2)
    drawing = Image.new("L", (200, 420), 0)
    ImageDraw.Draw(drawing).line([(100, 40), (100, 380)], fill=255, width=width)
    ink = np.asarray(drawing, np.float64) / 255
    photo = np.clip((225 + rng.normal(0, 3, ink.shape)) * (1 - 0.85 * ink), 0, 255)
    out = decode_image(to_bytes(photo.astype(np.uint8), fmt), max_pixels=LIMIT)
    assert np.abs(out - preprocess_pil(drawing)).mean() < 0.06
    ruled = np.clip(225 + rng.normal(0, 3, ink.shape), 0, 255)
    ruled[:, 98:101] -= 120
    with pytest.raises(NoInkFound):
        decode_image(to_bytes(ruled.astype(np.uint8), fmt), max_pixels=LIMIT)


@pytest.mark.parametrize(
    ("angle", "size", "at"),
    [(0, (600, 1000), None), (12, (600, 1000), None), (0, (500, 700), (380, 650))],
)
def test_a_sheet_running_off_one_edge_of_the_photo(
    angle: float, size: tuple[int, int], at: tuple[int, int] | None, to_bytes: ToBytes
) -> None:
    """The sheet's bottom out of the picture: the table along the other three edges still
    tells the sheet from it, the picture's middle on the sheet or not."""
    rng = np.random.default_rng(6)
    w, h = 900, 1200
    table = np.clip(np.array([90, 60, 40]) + rng.normal(0, 10, (h, w, 3)), 0, 255)
    sheet = seven("RGB", (235, 232, 225), (30, 30, 90), size=size).rotate(
        angle, expand=True, fillcolor=(235, 232, 225)
    )
    cover = Image.new("L", size, 255).rotate(angle, expand=True)
    photo = Image.fromarray(table.astype(np.uint8))
    photo.paste(sheet, at or ((w - sheet.width) // 2, 300), cover)
    out = decode_image(to_bytes(photo, "JPEG", quality=88), max_pixels=LIMIT)
    turned = preprocess_pil(seven("L", 0, 255).rotate(angle, fillcolor=0))
    assert np.abs(out - turned).mean() < 0.06


@pytest.mark.parametrize(
    ("border", "angle", "width"),
    [(80, 0, 24), (150, 0, 24), (80, 6, 24), (120, -4, 24), (120, -8, 48), (250, 20, 24),
     (250, -35, 24)],
)  # fmt: skip
def test_a_sheet_lying_on_a_darker_table(
    border: int, angle: float, width: int, reference: np.ndarray, to_bytes: ToBytes
) -> None:
    """A phone photo of a whole sheet of paper on a table: the table is not the paper, and
    the sheet's edge is not a heavy frame of ink around a small digit; nor, at any turn, the
    table left in the sheet's box (the writing on the sheet is part of it)."""
    rng = np.random.default_rng(5)
    w, h = 900, 1200
    table = np.clip(np.array([90, 60, 40]) + rng.normal(0, 10, (h, w, 3)), 0, 255)
    size = (w - 2 * border, h - 2 * border)
    sheet = seven("RGB", (235, 232, 225), (30, 30, 90), width=width, size=size)
    cover = Image.new("L", sheet.size, 255).rotate(angle, expand=True)
    sheet = sheet.rotate(angle, expand=True)
    photo = Image.fromarray(table.astype(np.uint8))
    photo.paste(sheet, ((w - sheet.width) // 2, (h - sheet.height) // 2), cover)
    out = decode_image(to_bytes(photo, "JPEG", quality=88), max_pixels=LIMIT)
    turned = preprocess_pil(seven("L", 0, 255, width=width).rotate(angle, fillcolor=0))
    assert np.abs(out - turned).mean() < 0.06
    assert np.abs(out - reference).mean() < 0.06 or angle != 0


@pytest.mark.parametrize(
    "image",
    [Image.new("L", (50, 40), 255), Image.new("L", (50, 40), 0), Image.new("RGBA", (30, 30)),
     Image.new("RGB", (28, 28), (128, 128, 128))],
)  # fmt: skip
def test_blank_images_are_not_a_digit(image: Image.Image, to_bytes: ToBytes) -> None:
    with pytest.raises(NoInkFound, match="no digit found") as info:
        decode_image(to_bytes(image), max_pixels=LIMIT)
    assert info.value.status_code == 422
    with pytest.raises(NoInkFound, match="no item found"):
        decode_image(to_bytes(image), max_pixels=LIMIT, fit="item")


@pytest.mark.parametrize(("size", "fmt"), [((800, 600), "PNG"), ((1600, 1200), "JPEG")])
def test_a_flash_on_an_empty_page_is_not_a_digit(
    size: tuple[int, int], fmt: str, to_bytes: ToBytes
) -> None:
    # brighter in the middle than at the edges, which it does not reach: an even border, and a
    # glow "beyond" it as a white brush on grey would be
    w, h = size
    yy, xx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-w / h, w / h, w), indexing="ij")
    page = 190 + 55 * np.exp(-(xx**2 + yy**2) / 0.1)
    page += np.random.default_rng(0).normal(0, 2, page.shape)
    data = to_bytes(np.clip(page, 0, 255).astype(np.uint8), fmt)
    with pytest.raises(NoInkFound, match="no digit found"):
        decode_image(data, max_pixels=LIMIT)


@pytest.mark.parametrize("blur", [0, 3, 6])
@pytest.mark.parametrize("size", [(400, 400), (28, 28)])
def test_a_soft_white_digit_on_grey_is_still_read(
    blur: int, size: tuple[int, int], reference: np.ndarray, to_bytes: ToBytes
) -> None:
    # the same side of the ground as a flash's glow, but rising from it as a stroke does
    img = seven("L", 150, 255, width=16).filter(ImageFilter.GaussianBlur(blur)).resize(size)
    out = decode_image(to_bytes(img), max_pixels=LIMIT)
    assert np.abs(out - reference).mean() < (0.08 if size == (28, 28) else 0.06)


def test_a_digit_too_small_to_read_is_refused_with_what_to_do(to_bytes: ToBytes) -> None:
    page = Image.new("L", (1000, 1000), 255)
    page.paste(seven("L", 255, 0, size=(30, 30)), (400, 500))  # 3% of the page
    with pytest.raises(NoInkFound, match="smaller than 4% of the picture's shorter side: crop"):
        decode_image(to_bytes(page), max_pixels=LIMIT)


def _drawn(size: tuple[int, int], *lines: list[tuple[int, int]], width: int = 14) -> Image.Image:
    img = Image.new("L", size, 255)
    draw = ImageDraw.Draw(img)
    for points in lines:
        draw.line(points, fill=0, width=width)
    return img


SEVEN = [(20, 40), (120, 40), (60, 200)]
ONE = [(260, 40), (260, 200)]


@pytest.mark.parametrize(
    ("lines", "count"),
    [
        ([SEVEN, ONE], 2),  # "71": two pieces as tall as the writing, a gap between
        ([SEVEN, ONE, [(380, 40), (380, 200)]], 3),
        ([[(20, 120), (300, 120)], [(160, 100), (160, 140)]], 1),  # one wide piece: never refused
        ([SEVEN, [(200, 180), (240, 180)]], 1),  # a digit and a short mark: not two digits
        ([SEVEN, [(150, 40), (150, 200)]], 1),  # two tall pieces, but not wider than a digit
        ([SEVEN, [(416, 40), (416, 200)]], 1),  # a neighbour cut by a loose crop, at the edge
        (
            [
                [(0, 40), (100, 40), (40, 200)],
                [(160, 40), (260, 40), (200, 200)],
                [(320, 40), (420, 40), (360, 200)],
            ],
            3,
        ),  # a number cropped tight: its digits count
    ],
)
def test_a_number_sent_as_one_digit_is_refused(
    lines: list[list[tuple[int, int]]], count: int, to_bytes: ToBytes
) -> None:
    """Squeezed into one digit's box, a number is an answer for nobody: the client is told to
    send ?digits=many, and only for pieces as tall as the writing with gaps between them."""
    picture = to_bytes(_drawn((420, 240), *lines))
    if count == 1:
        assert decode_image(picture, max_pixels=LIMIT).shape == (28, 28)
        return
    with pytest.raises(SeveralDigits, match=f"holds {count} separate marks side by side.*many"):
        decode_image(picture, max_pixels=LIMIT)


@pytest.mark.parametrize("shape", ["ellipse", "rectangle"])
def test_a_circle_or_box_drawn_around_a_digit_is_not_read_as_part_of_it(
    shape: str, reference: np.ndarray, to_bytes: ToBytes
) -> None:
    """A marked answer or a form's box: kept, it made a ring with a digit inside (a "0")."""
    page = Image.new("L", (400, 400), 255)
    page.paste(seven("L", 255, 0, width=16, size=(240, 240)), (80, 80))
    getattr(ImageDraw.Draw(page), shape)([40, 50, 360, 350], outline=0, width=10)
    out = decode_image(to_bytes(page), max_pixels=LIMIT)
    assert np.abs(out - reference).mean() < 0.06


@pytest.mark.parametrize("box", [[50, 70, 290, 330], [60, 80, 280, 320], [40, 100, 280, 300]])
def test_a_circle_the_digit_touches_is_dropped_too(
    box: list[int], reference: np.ndarray, to_bytes: ToBytes
) -> None:
    """Circled in a hurry, the ring touches the digit: one piece with it, read "0"."""
    page = Image.new("L", (400, 400), 255)
    page.paste(seven("L", 255, 0, width=16, size=(240, 240)), (80, 80))
    ImageDraw.Draw(page).ellipse(box, outline=0, width=10)
    out = decode_image(to_bytes(page), max_pixels=LIMIT)
    assert np.abs(out - reference).mean() < 0.07


@pytest.mark.parametrize("shape", [(100, 1), (1, 100)])
def test_a_picture_one_pixel_across_is_refused_not_a_server_error(
    shape: tuple[int, int], to_bytes: ToBytes
) -> None:
    """A line of pixels lighter than its ground reached the slope measure, which needs two
    pixels each way (a ValueError: a 500)."""
    line = np.full(shape, 170, np.uint8)
    line.reshape(-1)[1:4] = 228
    with pytest.raises(NoInkFound):
        decode_image(to_bytes(line), max_pixels=LIMIT)


def test_one_pixel_image_is_not_a_digit(to_bytes: ToBytes) -> None:
    with pytest.raises(NoInkFound):
        decode_image(to_bytes(np.full((1, 1), 255, np.uint8)), max_pixels=LIMIT)


def _paper(rng: np.random.Generator, size: tuple[int, int] = (480, 360)) -> np.ndarray:
    """Off-white paper under uneven light: a gradient, a soft shadow band and grain."""
    h, w = size[1], size[0]
    ys, xs = np.linspace(0, 1, h)[:, None], np.linspace(0, 1, w)[None, :]
    light = 1.0 - 0.18 * ys - 0.12 * xs - 0.2 * np.exp(-((xs - 0.7) ** 2) / 0.01)
    return 235.0 * light + rng.normal(0, 5, (h, w))


@pytest.mark.parametrize("kind", ["gradient", "speck", "texture", "lines-only"])
def test_pages_without_a_digit_are_not_answered_with_one(kind: str, to_bytes: ToBytes) -> None:
    rng = np.random.default_rng(11)
    page = _paper(rng)
    if kind == "speck":  # a pencil dot and a few crumbs
        page[200:203, 100:103] -= 120
        page[50, 300] -= 90
    elif kind == "texture":  # blotchy recycled paper
        blotches = np.asarray(
            Image.fromarray(rng.normal(0, 1, (12, 16)).astype(np.float32)).resize((480, 360)),
            np.float64,
        )
        page += 6 * blotches
    elif kind == "lines-only":  # faint ruled lines, nothing written
        page[40::36, :] -= 25
    photo = np.clip(page, 0, 255).astype(np.uint8)
    for fmt in ("PNG", "JPEG"):
        with pytest.raises(NoInkFound):
            decode_image(to_bytes(photo, fmt), max_pixels=LIMIT)


def test_a_digit_on_shaded_paper_is_read_like_the_drawing(
    reference: np.ndarray, to_bytes: ToBytes
) -> None:
    rng = np.random.default_rng(12)
    ink = np.asarray(seven("L", 0, 255, size=(480, 360), at=(40, 10)), np.float64) / 255
    page = _paper(rng)
    photo = np.clip(page * (1 - 0.8 * ink), 0, 255).astype(np.uint8)  # ink darkens the paper
    for fmt in ("PNG", "JPEG"):
        out = decode_image(to_bytes(photo, fmt), max_pixels=LIMIT)
        assert np.abs(out - reference).mean() < 0.06


PICTURES = Path(__file__).parent / "pictures"


@pytest.mark.parametrize(
    "name",
    [
        "five-fine-pen-tight-crop-44px.jpg",  # a thin digit across the crop is no printed rule
        "one-as-a-bar-among-grain.jpg",  # a band beside nothing but specks is no pen
    ],
)
def test_readable_pictures_once_judged_blank_are_read(name: str) -> None:
    """Generated photos that a person reads at once and the preprocessing found no ink in (the
    photo set's generator, `benchmarks/photos/generate.py`, with digits beyond the set's
    indices; a faint pencil "1" on grainy recycled paper, drawn as a plain bar)."""
    out = decode_image((PICTURES / name).read_bytes(), max_pixels=LIMIT)
    assert out.shape == (28, 28) and out.max() > 0.5
    assert bbox_long_side(out > 0.1) in range(18, 23)


# ------------------------------------------------------------------ real MNIST


def test_mnist_pngs_come_through_nearly_unchanged(
    mnist_test_images: np.ndarray, to_bytes: ToBytes
) -> None:
    diffs = np.array([
        np.abs(decode_image(to_bytes(a), max_pixels=LIMIT) - a / 255.0).mean()
        for a in mnist_test_images
    ])  # fmt: skip
    assert diffs.mean() < 0.01
    assert np.percentile(diffs, 95) < 0.02


def test_inverted_enlarged_off_centre_mnist_matches(
    mnist_test_images: np.ndarray, to_bytes: ToBytes
) -> None:
    rng = np.random.default_rng(5)
    diffs = []
    for a in mnist_test_images[:150]:
        expected = decode_image(to_bytes(a), max_pixels=LIMIT)
        factor = int(rng.integers(2, 6))
        big = np.asarray(Image.fromarray(a).resize((28 * factor,) * 2, Image.Resampling.BICUBIC))
        canvas = np.full((40 * factor, 70 * factor), 255, np.uint8)
        top, left = rng.integers(0, 12 * factor), rng.integers(0, 42 * factor)
        canvas[top : top + 28 * factor, left : left + 28 * factor] = 255 - big
        diffs.append(np.abs(decode_image(to_bytes(canvas), max_pixels=LIMIT) - expected).mean())
    assert np.mean(diffs) < 0.04
    assert np.percentile(diffs, 95) < 0.09


def test_fashion_pngs_come_through_nearly_unchanged_with_item_fit(
    fashion_test_images: np.ndarray, to_bytes: ToBytes
) -> None:
    item = np.array([
        np.abs(decode_image(to_bytes(a), max_pixels=LIMIT, fit="item") - a / 255.0).mean()
        for a in fashion_test_images
    ])  # fmt: skip
    assert item.mean() < 0.01
    assert np.percentile(item, 95) < 0.02
    digit = np.array([_digit_fit_change(a, to_bytes(a)) for a in fashion_test_images[:50]])
    assert digit.mean() > 3 * item[:50].mean()  # the digit fit would distort clothes


def _digit_fit_change(a: np.ndarray, data: bytes) -> float:
    """Mean change the digit fit makes to a data-set image; a refusal ("no digit found",
    which a garment filling the frame may get) is the whole image lost."""
    try:
        return float(np.abs(decode_image(data, max_pixels=LIMIT) - a / 255.0).mean())
    except NoInkFound:
        return float((a / 255.0).mean())


def test_product_photo_on_white_with_item_fit(
    fashion_test_images: np.ndarray, to_bytes: ToBytes
) -> None:
    diffs = []
    for a in fashion_test_images[:100]:
        expected = decode_image(to_bytes(a), max_pixels=LIMIT, fit="item")
        big = np.asarray(Image.fromarray(a).resize((112, 112), Image.Resampling.BICUBIC))
        photo = np.full((160, 130, 3), 255, np.uint8)
        photo[30:142, 9:121] = (255 - big)[..., None]
        out = decode_image(to_bytes(photo, "JPEG", quality=92), max_pixels=LIMIT, fit="item")
        diffs.append(np.abs(out - expected).mean())
    assert np.mean(diffs) < 0.05


def test_bad_fit() -> None:
    with pytest.raises(ValueError, match="fit must be one of"):
        preprocess_pil(Image.new("L", (5, 5)), fit="face")  # type: ignore[arg-type]


def test_the_ink_box_leaves_out_isolated_specks_as_a_whole_picture_count_would() -> None:
    rng = np.random.default_rng(9)
    for _ in range(20):
        ink = np.zeros((40, 50), np.float32)
        y, x = rng.integers(0, 30), rng.integers(0, 40)
        ink[y : y + 10, x : x + 8] = rng.random((10, 8)) > 0.3
        for sy, sx in rng.integers(0, 40, (3, 2)):  # specks anywhere, maybe touching the ink
            ink[sy, sx] = 1.0
        mask = ink > 0
        p = np.pad(mask, 1).astype(np.uint8)
        neighbours = sum(
            np.roll(np.roll(p, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
        )
        kept = mask & (neighbours[1:-1, 1:-1] - mask > 0)
        box = _ink_box(ink)
        if not kept.any():
            assert box is None
            continue
        r, c = np.flatnonzero(kept.any(axis=1)), np.flatnonzero(kept.any(axis=0))
        if max(r[-1] - r[0], c[-1] - c[0]) + 1 < 3:
            assert box is None
            continue
        assert box == (slice(r[0], r[-1] + 1), slice(c[0], c[-1] + 1))


@pytest.mark.parametrize("mode", ["L", "P", "RGBA"])
def test_a_keyed_transparent_white_stays_the_background(mode: str, to_bytes: ToBytes) -> None:
    # a thin anti-aliased digit: most of its opaque pixels are the light edge, whose mean grey
    # would call for a black background, on which the edge reads as an outline of the digit
    soft = seven("L", 255, 0, width=4, size=(1600, 1600)).resize((100, 100), Image.Resampling.BOX)
    plain = decode_image(to_bytes(soft), max_pixels=LIMIT)
    if mode == "RGBA":
        keyed = soft.convert("RGBA")
        keyed.putalpha(Image.eval(soft, lambda v: 0 if v == 255 else 255))
        data = to_bytes(keyed)
    else:
        data = to_bytes(soft.convert(mode), transparency=255)
    assert np.abs(decode_image(data, max_pixels=LIMIT) - plain).mean() < 0.01


def _on_transparent_margin(canvas: Image.Image, radius: int) -> Image.Image:
    """``canvas`` (RGB) with rounded corners in a transparent black margin a soft shadow darkens:
    an artboard smaller than its export, or a window screenshot."""
    margin = 40
    size = (canvas.width + 2 * margin, canvas.height + 2 * margin)
    shadow = Image.new("L", size, 0)
    ImageDraw.Draw(shadow).rectangle(
        (margin, margin + 8, size[0] - margin, size[1] - margin + 8), 100
    )
    out = Image.merge(
        "RGBA", (*Image.new("RGB", size).split(), shadow.filter(ImageFilter.BoxBlur(8)))
    )
    mask = Image.new("L", canvas.size, 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, canvas.width - 1, canvas.height - 1), radius, 255)
    out.paste(canvas, (margin, margin), mask)
    return out


@pytest.mark.parametrize("radius", [0, 30])
@pytest.mark.parametrize("ground, ink", [(255, 0), (0, 255)], ids=["white-canvas", "black-canvas"])
def test_a_canvas_in_a_transparent_margin_extends_to_it(
    ground: int, ink: int, radius: int, to_bytes: ToBytes
) -> None:
    # the opaque part is the canvas, not the strokes: its margin and corners are more canvas,
    # not a ground of the opposite level around a canvas-shaped mark
    canvas = seven("RGB", (ground,) * 3, (ink,) * 3, size=(240, 240))
    plain = decode_image(to_bytes(canvas), max_pixels=LIMIT)
    out = decode_image(to_bytes(_on_transparent_margin(canvas, radius)), max_pixels=LIMIT)
    assert np.abs(out - plain).mean() < 0.05


def test_a_garment_cut_out_of_its_photo_is_the_item_not_a_canvas(to_bytes: ToBytes) -> None:
    """A bag filling its box, cut out on transparency, with a darker flap: as a canvas, it and
    its margin would be one ground and no item would be found."""
    bag = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    draw = ImageDraw.Draw(bag)
    draw.rectangle((30, 40, 170, 180), fill=(150, 110, 70, 255))
    draw.rectangle((30, 40, 170, 90), fill=(110, 80, 50, 255))
    opaque = Image.new("RGB", (200, 200), (255, 255, 255))
    opaque.paste(bag, (0, 0), bag)
    cut_out = decode_image(to_bytes(bag), max_pixels=LIMIT, fit="item")
    on_white = decode_image(to_bytes(opaque), max_pixels=LIMIT, fit="item")
    assert cut_out.max() > 0.5 and np.abs(cut_out - on_white).mean() < 0.05


def test_a_bold_stroke_shaded_from_end_to_end_is_no_canvas(to_bytes: ToBytes) -> None:
    """A "1" drawn as one bar filling its box, graded from black to grey: strokes, read as
    on white, not a canvas whose median level leaves half the bar."""
    for top, bottom in ((0, 90), (195, 255)):
        bar = np.zeros((200, 200, 4), np.uint8)
        bar[30:170, 85:115, :3] = np.linspace(top, bottom, 140)[:, None, None].astype(np.uint8)
        bar[30:170, 85:115, 3] = 255
        rgba = Image.fromarray(bar, "RGBA")
        on_white = Image.new("RGB", rgba.size, (255, 255, 255) if top < 128 else (0, 0, 0))
        on_white.paste(rgba, (0, 0), rgba)
        out = decode_image(to_bytes(rgba), max_pixels=LIMIT)
        assert np.abs(out - decode_image(to_bytes(on_white), max_pixels=LIMIT)).mean() < 0.02


def test_a_drawing_whose_opacity_fades_across_it_is_read_whole(to_bytes: ToBytes) -> None:
    """Every pixel at least half opaque: a canvas all of it, the strokes laid on it as faded as
    they are drawn (not turned into canvas for being less opaque than its most opaque part)."""
    plain = seven("L", 255, 0)
    alpha = Image.fromarray(np.tile(np.linspace(255, 140, 400), (400, 1)).astype(np.uint8))
    faded = plain.convert("LA")
    faded.putalpha(alpha)
    out = decode_image(to_bytes(faded), max_pixels=LIMIT)
    assert np.abs(out - decode_image(to_bytes(plain), max_pixels=LIMIT)).mean() < 0.08


@pytest.mark.parametrize(
    ("ground", "ink"),
    [((90, 90, 90), (220, 30, 30)), ((150, 70, 70), (0, 160, 0)), ((200, 230, 255), (255, 255, 0))],
    ids=["red-on-grey", "green-on-brick", "yellow-on-light-blue"],
)
def test_ink_unlike_its_canvas_in_colour_only_is_read(
    ground: tuple[int, ...], ink: tuple[int, ...], to_bytes: ToBytes
) -> None:
    """Grey shows no stroke (the two are about as light): the colour difference does."""
    plain = decode_image(to_bytes(seven("L", 255, 0, size=(240, 240))), max_pixels=LIMIT)
    drawn = seven("RGB", ground, ink, size=(240, 240))
    assert np.abs(decode_image(to_bytes(drawn), max_pixels=LIMIT) - plain).mean() < 0.05


def test_a_faint_colour_mark_on_a_coloured_canvas_stays_blank(to_bytes: ToBytes) -> None:
    """A stain or a smudge near the canvas's colour, and no stroke in grey: no digit."""
    drawn = seven("RGB", (180, 120, 90), (170, 126, 100), size=(240, 240))
    with pytest.raises(NoInkFound):
        decode_image(to_bytes(drawn), max_pixels=LIMIT)


def _phone_page(rng: np.random.Generator, side: int = 160) -> np.ndarray:
    """A phone photo (600x800) of a page (RGB floats) with a small '7' (``side`` pixels) off
    its middle, the light falling off a little towards one side."""
    w, h = 600, 800
    ink = np.asarray(seven("L", 0, 255, width=30, size=(side, side)), np.float64) / 255
    page = np.ones((h, w)) * np.linspace(228, 212, w)[None, :]
    page[360 : 360 + side, 250 : 250 + side] *= 1 - 0.85 * ink
    rgb = page[..., None] * np.array([1.0, 0.99, 0.96])
    return rgb + rng.normal(0, 3, (h, w, 1))


@pytest.mark.parametrize("corners", [("top",), ("left",), ("top", "right")])
def test_a_page_seen_at_an_angle_shows_the_table_in_wedges_not_as_ink(
    corners: tuple[str, ...], reference: np.ndarray, to_bytes: ToBytes
) -> None:
    """A page photographed at an angle: the darker table shows in a wedge at each end of the
    side that is farther away, reaching along the picture's edges. The wedges are no ink, and
    the digit is no speck beside them."""
    rng = np.random.default_rng(31)
    photo = _phone_page(rng)
    h, w = photo.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    table = np.zeros((h, w), bool)
    for side in corners:  # this side of the page shrinks: the table shows at both its ends
        along, across = {"top": (xs, ys), "right": (ys, 1 - xs), "left": (ys, xs)}[side]
        reach = 0.12 * (1 - across)  # a wedge's width, widest on the far side
        table |= (along < reach) | (along > 1 - reach)
    photo[table] = np.array([120.0, 105.0, 95.0]) + rng.normal(0, 3, (np.count_nonzero(table), 3))
    picture = Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(1.5)
    )
    out = decode_image(to_bytes(picture, "JPEG", quality=88), max_pixels=LIMIT)
    assert np.abs(out - reference).mean() < 0.06


@pytest.mark.parametrize(("edge", "side"), [("left", 100), ("right", 100), ("bottom", 160)])
def test_a_finger_holding_the_page_at_its_edge_is_no_ink(
    edge: str, side: int, reference: np.ndarray, to_bytes: ToBytes
) -> None:
    """A finger reaching in from the picture's edge: a broad, soft, skin-coloured blob, far
    lighter than a pen's ink, neither framed with the digit nor taken for it."""
    rng = np.random.default_rng(32)
    photo = _phone_page(rng, side)
    h, w = photo.shape[:2]
    finger = Image.new("L", (w, h), 0)
    box = {
        "bottom": (100, 560, 200, h + 50),
        "left": (-50, 120, 200, 220),
        "right": (420, 40, w + 50, 150),
    }[edge]
    ImageDraw.Draw(finger).rounded_rectangle(box, radius=50, fill=255)
    cover = np.asarray(finger.filter(ImageFilter.GaussianBlur(6)), np.float64)[..., None] / 255
    photo = photo * (1 - cover) + np.array([175.0, 120.0, 95.0]) * cover
    picture = Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8))
    out = decode_image(to_bytes(picture, "JPEG", quality=88), max_pixels=LIMIT)
    assert np.abs(out - reference).mean() < 0.06


def test_a_digit_running_off_the_picture_beside_a_small_thin_mark_is_the_digit(
    to_bytes: ToBytes,
) -> None:
    """A large bold digit the picture's edge cuts, and a small thin mark clear of the border:
    the digit is read, not the mark (both are the same pen's ink, equally dark)."""
    rng = np.random.default_rng(33)
    pictures = []
    for mark in (False, True):
        canvas = Image.new("L", (800, 600), 0)
        canvas.paste(seven("L", 0, 255, width=40, size=(600, 600)), (320, -140))
        if mark:
            ImageDraw.Draw(canvas).line([(90, 470), (150, 478)], fill=255, width=6)
        ink = np.asarray(canvas, np.float64) / 255
        photo = 220.0 * (1 - 0.85 * ink) + rng.normal(0, 3, ink.shape)
        pictures.append(np.clip(photo, 0, 255).astype(np.uint8))
    alone, beside = (
        decode_image(to_bytes(p, "JPEG", quality=88), max_pixels=LIMIT) for p in pictures
    )
    assert alone.max() > 0.5
    assert np.abs(alone - beside).mean() < 0.03
