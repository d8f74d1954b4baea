"""Photos, not drawings: a digit or garment on lit, grainy, shaded, coloured or textured
backgrounds, at icon and page sizes, is read; the same backgrounds without one are not."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageDraw

from service.inputs.components import components, select
from service.inputs.images import decode_image
from service.inputs.preprocess import NoInkFound, _without_corners, preprocess_pil

ToBytes = Callable[..., bytes]
LIMIT = 20_000_000


def seven_mask(side: int, width: float = 0.06) -> np.ndarray:
    """A '7' as ink coverage in [0, 1] on a side x side square (anti-aliased: drawn 4x, then
    reduced)."""
    big = Image.new("L", (4 * side, 4 * side), 0)
    k = 4 * side / 100
    points = [(25 * k, 20 * k), (75 * k, 20 * k), (42 * k, 82 * k)]
    ImageDraw.Draw(big).line(points, fill=255, width=max(4, round(width * 4 * side)))
    return np.asarray(big.reduce(4), np.float32) / 255.0


def lit_paper(
    rng: np.random.Generator, side: int, *, grain: float = 4.0, fall: float = 0.45
) -> np.ndarray:
    """Off-white paper under light falling off diagonally by ``fall``, with grain."""
    ys, xs = np.mgrid[0:side, 0:side] / side
    return 235.0 * (1.0 - fall * (0.6 * xs + 0.4 * ys)) + rng.normal(0, grain, (side, side))


def photo(paper: np.ndarray, ink: np.ndarray, strength: float = 0.7) -> np.ndarray:
    """Ink darkens the paper it lies on (reflectance multiplies)."""
    return np.clip(paper * (1.0 - strength * ink), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """The same '7' drawn clean, white on black."""
    return preprocess_pil(Image.fromarray((seven_mask(200) * 255).astype(np.uint8)))


@pytest.mark.parametrize("side", [32, 48, 64, 300])
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_digit_on_a_lit_grainy_page_is_read_at_any_size(
    side: int, fmt: str, reference: np.ndarray, to_bytes: ToBytes
) -> None:
    rng = np.random.default_rng(side)
    page = photo(lit_paper(rng, side), seven_mask(side, 0.08 if side < 100 else 0.06))
    out = decode_image(to_bytes(page, fmt, **({"quality": 85} if fmt == "JPEG" else {})),
                       max_pixels=LIMIT)  # fmt: skip
    assert np.abs(out - reference).mean() < 0.1
    assert (out > 0.5).sum() > 0.5 * (reference > 0.5).sum()


@pytest.mark.parametrize("side", [32, 40])
def test_a_faint_fine_pen_digit_in_an_icon_is_read(
    side: int, reference: np.ndarray, to_bytes: ToBytes
) -> None:
    # a one-pixel stroke that darkens the paper by a fifth: in an icon, a fine pen's stroke
    # covers only part of each pixel it crosses, so its contrast is low
    rng = np.random.default_rng(side)
    page = photo(lit_paper(rng, side, grain=2.0, fall=0.2), seven_mask(side, 0.03), 0.2)
    out = decode_image(to_bytes(page), max_pixels=LIMIT)
    assert np.abs(out - reference).mean() < 0.1


@pytest.mark.parametrize("side", [32, 48, 300])
@pytest.mark.parametrize("kind", ["gradient", "grain", "vignette-free shadow band", "blank"])
def test_pages_with_light_and_grain_but_no_digit_are_refused(
    side: int, kind: str, to_bytes: ToBytes
) -> None:
    rng = np.random.default_rng(len(kind) + side)
    page = lit_paper(rng, side, grain=0.0 if kind == "blank" else 4.0,
                     fall=0.0 if kind in ("grain", "blank") else 0.45)  # fmt: skip
    if kind.startswith("vignette"):  # a soft band of shadow across the page
        xs = np.linspace(0, 1, side)[None, :]
        page = page * (1.0 - 0.25 * np.exp(-((xs - 0.6) ** 2) / 0.02))
    with pytest.raises(NoInkFound, match="no digit found"):
        decode_image(to_bytes(np.clip(page, 0, 255).astype(np.uint8)), max_pixels=LIMIT)


def test_a_digit_on_a_page_mostly_in_deep_shadow_is_read_as_dark_ink(
    reference: np.ndarray, to_bytes: ToBytes
) -> None:
    # Most of the page lies in a hard shadow (grey about 100), a lit strip at the left: the
    # picture's light tail is the lit strip, as a chalkboard's would be its chalk. The marker
    # ink stands out from the shadow more than the lit strip does.
    rng = np.random.default_rng(7)
    side = 240
    page = np.full((side, side), 235.0) + rng.normal(0, 3.0, (side, side))
    page[:, 60:] *= 0.42
    ink = np.zeros((side, side), np.float32)
    ink[40:220, 70:230] = seven_mask(200)[10:190, 20:180]
    out = decode_image(to_bytes(photo(page, ink, strength=0.9)), max_pixels=LIMIT)
    assert np.abs(out - reference).mean() < 0.12


def sharp_shadow(side: int, turn: float, share: float, through: float = 0.5) -> np.ndarray:
    """The light of a page with a phone's shadow on it: a sharp, straight edge (a pixel's blur)
    turned by ``turn`` degrees through the point ``through`` of the way across the page, the
    shadow side ``share`` as bright."""
    ys, xs = np.mgrid[0:side, 0:side] / side - through
    a = np.radians(turn)
    dist = (np.cos(a) * xs + np.sin(a) * ys) * side
    return 1.0 - (1.0 - share) / (1.0 + np.exp(-dist / 0.8))


@pytest.mark.parametrize(("turn", "share"), [(70, 0.25), (160, 0.4), (245, 0.3), (20, 0.45)])
def test_a_digit_crossed_by_a_sharp_shadow_s_edge_is_read(
    turn: float, share: float, reference: np.ndarray, to_bytes: ToBytes
) -> None:
    # The shadow's edge runs through the digit's middle: the paper's cells smooth over it, so
    # unless it is divided out a band along it reads as ink joined to the digit, and a page
    # mostly in shadow as light strokes (its lit part) on a dark ground.
    rng = np.random.default_rng(turn)
    side = 240
    page = (np.full((side, side), 230.0) + rng.normal(0, 3.0, (side, side))) * sharp_shadow(
        side, turn, share
    )
    ink = np.zeros((side, side), np.float32)
    ink[20:220, 20:220] = seven_mask(200)
    out = decode_image(to_bytes(photo(page, ink, strength=0.85), "JPEG", quality=85),
                       max_pixels=LIMIT)  # fmt: skip
    assert np.abs(out - reference).mean() < 0.1


@pytest.mark.parametrize("turn", [10, 100, 215, 300])
def test_a_page_with_only_a_sharp_shadow_s_edge_is_refused(turn: float, to_bytes: ToBytes) -> None:
    rng = np.random.default_rng(turn)
    side = 240
    page = (np.full((side, side), 230.0) + rng.normal(0, 3.0, (side, side))) * sharp_shadow(
        side, turn, 0.3, through=0.4
    )
    with pytest.raises(NoInkFound, match="no digit found"):
        decode_image(to_bytes(np.clip(page, 0, 255).astype(np.uint8), "JPEG", quality=85),
                     max_pixels=LIMIT)  # fmt: skip


def test_chalk_on_a_grainy_dark_board_is_read_as_light_strokes(
    reference: np.ndarray, to_bytes: ToBytes
) -> None:
    rng = np.random.default_rng(8)
    board = np.full((240, 240), 45.0) + rng.normal(0, 3.0, (240, 240))
    out = decode_image(to_bytes(np.clip(board + 170.0 * seven_mask(240), 0, 255).astype(np.uint8)),
                       max_pixels=LIMIT)  # fmt: skip
    assert np.abs(out - reference).mean() < 0.12


def test_a_bold_marker_digit_is_read(reference: np.ndarray, to_bytes: ToBytes) -> None:
    rng = np.random.default_rng(4)
    page = photo(lit_paper(rng, 240), seven_mask(240, 0.16), strength=0.85)
    out = decode_image(to_bytes(page), max_pixels=LIMIT)
    assert np.abs(out - reference).mean() < 0.2


def test_a_digit_on_ruled_paper_loses_the_rules_not_its_strokes(
    reference: np.ndarray, to_bytes: ToBytes
) -> None:
    rng = np.random.default_rng(5)
    paper = lit_paper(rng, 300, fall=0.2)
    paper[18::30, :] *= 0.75  # printed rules across the page
    out = decode_image(to_bytes(photo(paper, seven_mask(300))), max_pixels=LIMIT)
    assert np.abs(out - reference).mean() < 0.08


# ------------------------------------------------------------------ items


def shirt_mask(side: int) -> np.ndarray:
    """A T-shirt's silhouette on a side x side square."""
    img = Image.new("L", (side, side), 0)
    k = side / 100
    body = [(30, 25), (42, 20), (58, 20), (70, 25), (88, 40), (78, 52), (70, 45), (70, 85),
            (30, 85), (30, 45), (22, 52), (12, 40)]  # fmt: skip
    ImageDraw.Draw(img).polygon([(x * k, y * k) for x, y in body], fill=255)
    return np.asarray(img, np.float32) / 255.0


@pytest.fixture(scope="module")
def shirt() -> np.ndarray:
    """The shirt as Fashion-MNIST shows one: dark on white, negated."""
    page = (255 - 200 * shirt_mask(200)).astype(np.uint8)
    return preprocess_pil(Image.fromarray(page), fit="item")


def _silhouette_iou(a: np.ndarray, b: np.ndarray) -> float:
    ma, mb = a > 0.1, b > 0.1
    return float((ma & mb).sum() / max((ma | mb).sum(), 1))


@pytest.mark.parametrize(
    ("ground", "item"),
    [
        pytest.param((60, 170, 60), (230, 120, 160), id="pink-on-green-same-grey"),
        pytest.param((20, 20, 25), (200, 200, 190), id="light-on-dark"),
        pytest.param((240, 235, 225), (40, 60, 120), id="dark-on-light"),
    ],
)
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_garment_on_a_coloured_ground_is_found_by_its_colour(
    ground: tuple[int, int, int],
    item: tuple[int, int, int],
    fmt: str,
    shirt: np.ndarray,
    to_bytes: ToBytes,
) -> None:
    rng = np.random.default_rng(7)
    m = shirt_mask(160)[..., None]
    light = np.linspace(1.0, 0.8, 160)[None, :, None]  # light falling across the table
    pic = (np.array(ground) * (1 - m) + np.array(item) * m) * light
    pic = np.clip(pic + rng.normal(0, 3, pic.shape), 0, 255).astype(np.uint8)
    out = decode_image(to_bytes(pic, fmt), max_pixels=LIMIT, fit="item")
    assert _silhouette_iou(out, shirt) > 0.85


def test_a_garment_on_a_textured_cloth_is_found(shirt: np.ndarray, to_bytes: ToBytes) -> None:
    rng = np.random.default_rng(8)
    ys, xs = np.mgrid[0:160, 0:160]
    weave = 150 + 25 * np.sign(np.sin(xs * 1.3) * np.sin(ys * 1.3))  # a coarse weave
    cloth = np.stack([weave * 0.9, weave * 0.7, weave], axis=2) + rng.normal(0, 6, (160, 160, 3))
    m = shirt_mask(160)[..., None]
    pic = np.clip(cloth * (1 - m) + np.array([40, 90, 40]) * m, 0, 255).astype(np.uint8)
    out = decode_image(to_bytes(pic), max_pixels=LIMIT, fit="item")
    assert _silhouette_iou(out, shirt) > 0.8


def test_a_garment_on_wood_in_a_low_quality_jpeg_is_read_as_a_photo(
    shirt: np.ndarray, to_bytes: ToBytes
) -> None:
    """At JPEG quality 5 the wood's fine grain is flattened into even blocks in the corners,
    which made the picture pass for a flat drawing: the grain and the boards' joints around the
    garment were drawn as ink and the garment came out small."""
    ys, xs = np.mgrid[0:240, 0:240]
    grain = 170 + 20 * np.sin(2 * np.pi * (xs + 4 * np.sin(ys / 13)) / 5)
    grain -= 60 * ((np.abs(xs - 30) < 4) | (np.abs(xs - 210) < 4))  # joints between boards
    wood = np.stack([grain, grain * 0.75, grain * 0.5], axis=2)
    m = np.zeros((240, 240))
    m[40:200, 40:200] = shirt_mask(160)
    pic = wood * (1 - m[..., None]) + np.array([40, 40, 60]) * m[..., None]
    data = to_bytes(np.clip(pic, 0, 255).astype(np.uint8), "JPEG", quality=5)
    out = decode_image(data, max_pixels=LIMIT, fit="item")
    assert _silhouette_iou(out, shirt) > 0.8


def test_a_garment_with_a_shadow_s_edge_across_the_border_is_found(
    shirt: np.ndarray, to_bytes: ToBytes
) -> None:
    """A strong shadow over one corner: no plane fits the border, and the ring's strays,
    measured against one, were farther than the garment ("no item found")."""
    rng = np.random.default_rng(15)
    ys, xs = np.mgrid[0:200, 0:160]
    ground = np.full((200, 160, 3), (225, 215, 200), float)
    ground *= np.where(xs + 0.5 * ys < 90, 0.35, 1.0)[..., None]
    m = np.zeros((200, 160))
    m[20:180, 0:160] = shirt_mask(160)
    pic = ground * (1 - m[..., None]) + np.array([40, 110, 70]) * m[..., None]
    pic += rng.normal(0, 3, pic.shape)
    out = decode_image(to_bytes(np.clip(pic, 0, 255).astype(np.uint8)), max_pixels=LIMIT,
                       fit="item")  # fmt: skip
    assert _silhouette_iou(out, shirt) > 0.8


def vignette(h: int, w: int, depth: float) -> np.ndarray:
    """Light falling off from the middle of the picture to its corners by ``depth`` (a lamp
    close to the table), times a mild fall across it: (h, w, 1)."""
    ys = np.linspace(-0.5, 0.5, h)[:, None]
    xs = np.linspace(-0.5, 0.5, w)[None, :]
    return ((1.0 - depth * 2 * (ys**2 + xs**2)) * (1.0 - 0.15 * (xs + 0.5)))[..., None]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("depth", [0.5, 0.7])
def test_a_garment_under_a_vignette_is_found(
    depth: float, fmt: str, shirt: np.ndarray, to_bytes: ToBytes
) -> None:
    # the ring around the picture is dark at the corners and light at the edges' middles: no
    # plane fits it, and measured against a plane the whole ring looks as far off as the item
    rng = np.random.default_rng(10)
    h, w = 150, 200
    m = np.zeros((h, w, 1))
    m[15:135, 50:170, 0] = shirt_mask(120)
    ground, item = np.array([225, 220, 230]), np.array([120, 60, 90])
    pic = (ground * (1 - m) + item * m) * vignette(h, w, depth)
    pic = np.clip(pic + rng.normal(0, 3, pic.shape), 0, 255).astype(np.uint8)
    out = decode_image(to_bytes(pic, fmt), max_pixels=LIMIT, fit="item")
    assert _silhouette_iou(out, shirt) > 0.8


@pytest.mark.parametrize("ground", [100, 118, 140])
def test_a_dark_garment_keeps_its_tone_on_a_mid_grey_ground_with_dark_corners(
    ground: int, shirt: np.ndarray, to_bytes: ToBytes
) -> None:
    # a shirt darker than its table is drawn bright, as Fashion-MNIST's negation makes it,
    # however dark a vignette makes the picture's corners
    rng = np.random.default_rng(ground)
    h, w = 150, 200
    m = np.zeros((h, w, 1))
    m[15:135, 50:170, 0] = shirt_mask(120)
    stripes = 40 + 20 * (np.arange(h) // 6 % 2)[:, None, None]  # a striped dark shirt
    pic = (ground * (1 - m) + stripes * m) * vignette(h, w, 0.7)
    pic = np.clip(np.repeat(pic, 3, axis=2) + rng.normal(0, 3, (h, w, 3)), 0, 255)
    out = decode_image(to_bytes(pic.astype(np.uint8)), max_pixels=LIMIT, fit="item")
    assert _silhouette_iou(out, shirt) > 0.8
    assert np.median(out[shirt > 0.5]) > 0.5  # bright, as a dark shirt is in the data set


@pytest.mark.parametrize(
    ("ground", "item", "grain"),
    [
        pytest.param(200, 250, 0.0, id="white-on-light-clean"),
        pytest.param(200, 250, 3.0, id="white-on-light-grainy"),
        pytest.param(50, 8, 0.0, id="black-on-dark-clean"),
        pytest.param(50, 8, 3.0, id="black-on-dark-grainy"),
    ],
)
def test_a_garment_beyond_its_ground_is_drawn_bright(
    ground: int, item: int, grain: float, shirt: np.ndarray, to_bytes: ToBytes
) -> None:
    # a white shirt on a light-grey table, a black one on a dark table: Fashion-MNIST draws a
    # white item dim against its white ground, but a picture without one has only the item's
    # side to go by; negated by the ground's level, the item fell below the ground and was
    # refused as blank
    rng = np.random.default_rng(ground + int(grain))
    m = np.zeros((150, 200))
    m[15:135, 50:170] = shirt_mask(120)
    pic = np.clip(ground + (item - ground) * m + rng.normal(0, grain, m.shape), 0, 255)
    out = decode_image(to_bytes(pic.astype(np.uint8)), max_pixels=LIMIT, fit="item")
    assert _silhouette_iou(out, shirt) > 0.85
    assert np.median(out[shirt > 0.5]) > 0.5


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_a_garment_on_an_even_ground_with_a_level_of_grain_fills_its_frame(
    fmt: str, shirt: np.ndarray, to_bytes: ToBytes
) -> None:
    # the border reads perfectly even, but a third of the ground is a level lighter (grain,
    # light, or a lossy format's ringing): that level is ground, not a faint garment around it
    rng = np.random.default_rng(11)
    m = np.zeros((150, 200))
    m[15:135, 50:170] = shirt_mask(120)
    pic = 37 + (rng.random(m.shape) < 0.3) + 150 * m
    out = decode_image(to_bytes(pic.astype(np.uint8), fmt), max_pixels=LIMIT, fit="item")
    assert _silhouette_iou(out, shirt) > 0.85


def test_specks_beside_a_garment_do_not_shrink_it(shirt: np.ndarray, to_bytes: ToBytes) -> None:
    # crumbs on the table next to the shirt: kept, they would widen its box, and the shirt
    # would come out smaller and off-centre
    rng = np.random.default_rng(12)
    m = np.zeros((150, 220))
    m[15:135, 50:170] = shirt_mask(120)
    for y, x in ((40, 180), (100, 186), (130, 30)):
        m[y : y + 4, x : x + 4] = 1.0
    pic = np.clip(230 - 170 * m + rng.normal(0, 3, m.shape), 0, 255)
    rgb = np.repeat(pic[..., None], 3, axis=2).astype(np.uint8)
    out = decode_image(to_bytes(rgb, "JPEG", quality=90), max_pixels=LIMIT, fit="item")
    assert _silhouette_iou(out, shirt) > 0.85


@pytest.mark.parametrize(("spacing", "radius"), [(30, 4), (36, 5), (44, 7)])
def test_a_garment_on_a_dotted_ground_is_found(
    spacing: int, radius: int, shirt: np.ndarray, to_bytes: ToBytes
) -> None:
    """Polka dots near a garment: more small pieces than writing ever has, so all were taken
    for clutter and the garment for nothing ("no item found")."""
    ys, xs = np.mgrid[0:600, 0:600]
    dots = ((xs % spacing) - spacing // 2) ** 2 + ((ys % spacing) - spacing // 2) ** 2 < radius**2
    ground = np.where(dots, 120.0, 225.0)
    m = np.zeros((600, 600))
    m[100:500, 100:500] = shirt_mask(400)
    rng = np.random.default_rng(14)
    pic = np.clip(ground * (1 - m) + 40 * m + rng.normal(0, 3, m.shape), 0, 255)
    rgb = np.repeat(pic[..., None], 3, axis=2).astype(np.uint8)
    out = decode_image(to_bytes(rgb, "JPEG", quality=90), max_pixels=LIMIT, fit="item")
    assert _silhouette_iou(out, shirt) > 0.85


@pytest.mark.parametrize("band", [12, 20])
def test_a_garment_cut_by_stripes_the_ground_s_colour_stays_whole(
    band: int, to_bytes: ToBytes
) -> None:
    """White stripes on a white table cut a shirt into pieces one above another: one garment,
    not several side by side (each of its stripes was read alone)."""
    rng = np.random.default_rng(15)
    m = np.zeros((256, 256))
    for top in range(40, 220, 30):
        m[top : top + 30 - band // 2, 70:187] = 1.0  # dark stripes, light ones between
    pic = np.clip(225 - 185 * m + rng.normal(0, 3, m.shape), 0, 255)
    rgb = np.repeat(pic[..., None], 3, axis=2).astype(np.uint8)
    out = decode_image(to_bytes(rgb), max_pixels=LIMIT, fit="item")
    rows = np.flatnonzero(out.max(axis=1) > 0.05)
    assert rows[0] == 0 and rows[-1] == 27  # all the stripes, the longer side filling the frame


@pytest.mark.parametrize("at", [(170, 60), (175, 150)])  # straight below, below and aside
def test_of_two_items_one_above_the_other_the_bigger_is_read(
    at: tuple[int, int], shirt: np.ndarray, to_bytes: ToBytes
) -> None:
    """A second garment below the first, with ground between them: not part of it (framed
    together, both came out squeezed into one narrow box)."""
    rng = np.random.default_rng(16)
    m = np.zeros((300, 330))
    m[10:130, 60:180] = shirt_mask(120)
    m[at[0] : at[0] + 100, at[1] : at[1] + 100] = shirt_mask(100)
    pic = np.clip(230 - 170 * m + rng.normal(0, 3, m.shape), 0, 255)
    rgb = np.repeat(pic[..., None], 3, axis=2).astype(np.uint8)
    out = decode_image(to_bytes(rgb), max_pixels=LIMIT, fit="item")
    assert _silhouette_iou(out, shirt) > 0.85


@pytest.mark.parametrize("second", [0.5, 0.8])
def test_of_two_items_side_by_side_the_bigger_is_read(
    second: float, shirt: np.ndarray, to_bytes: ToBytes
) -> None:
    """A flat-lay of two garments, or a pair of shoes: framed together, they came out as one
    wide, flat item that is neither (a "Sandal" for a shirt and trousers)."""
    rng = np.random.default_rng(13)
    m = np.zeros((160, 300))
    m[20:140, 10:130] = shirt_mask(120)
    side = round(120 * second)
    m[80 - side // 2 : 80 - side // 2 + side, 170 : 170 + side] = shirt_mask(side)
    pic = np.clip(230 - 170 * m + rng.normal(0, 3, m.shape), 0, 255)
    rgb = np.repeat(pic[..., None], 3, axis=2).astype(np.uint8)
    out = decode_image(to_bytes(rgb), max_pixels=LIMIT, fit="item")
    assert _silhouette_iou(out, shirt) > 0.85


def _in_front_of(ground: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """A 160x160 photo: the shirt in ``colour`` in front of ``ground`` (160, 160, 3), clear of
    the edges, with noise."""
    rng = np.random.default_rng(21)
    m = np.zeros((160, 160))
    m[40:130, 35:125] = shirt_mask(90)
    pic = ground * (1 - m[..., None]) + np.array(colour) * m[..., None]
    return np.clip(pic + rng.normal(0, 3, pic.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_garment_hung_on_a_door_is_read_without_the_door(
    fmt: str, shirt: np.ndarray, to_bytes: ToBytes
) -> None:
    """The door, from the top edge to the bottom, and the wall beside it are both on the
    border: the door was taken for the item, with the garment a hole filled in it."""
    door = np.zeros((160, 160))
    door[:, 25:135] = 1.0
    ground = (
        np.array([215, 212, 205]) * (1 - door[..., None])
        + np.array([120, 80, 45]) * door[..., None]
    )
    pic = _in_front_of(ground, (40, 60, 150))
    out = decode_image(to_bytes(pic, fmt), max_pixels=LIMIT, fit="item")
    assert _silhouette_iou(out, shirt) > 0.85


def test_a_garment_half_in_a_shadow_is_read_without_the_shadow(
    shirt: np.ndarray, to_bytes: ToBytes
) -> None:
    """A shadow over the table's right side, from the top edge to the bottom, its edge across
    the garment: it was read as part of the item, which came out a wide wedge."""
    ys, xs = np.mgrid[0:160, 0:160]
    shade = ((xs - 0.3 * ys) > 90).astype(float)[..., None]
    ground = np.array([225, 215, 195]) * (1 - 0.45 * shade)
    pic = _in_front_of(ground, (150, 30, 40))
    out = decode_image(to_bytes(pic), max_pixels=LIMIT, fit="item")
    assert _silhouette_iou(out, shirt) > 0.85


def test_a_close_up_garment_cut_off_by_two_edges_is_read_whole(to_bytes: ToBytes) -> None:
    """Cut off at the left and bottom, it reaches two edges as a door does, and its colour is on
    the border: it is read whole, not as its print alone."""
    rng = np.random.default_rng(22)
    pic = np.empty((160, 160, 3))
    pic[:] = (220, 218, 210)
    pic[40:, :110] = (40, 60, 150)
    pic[80:110, 40:70] = (240, 240, 240)  # the print
    pic = np.clip(pic + rng.normal(0, 3, pic.shape), 0, 255).astype(np.uint8)
    out = decode_image(to_bytes(pic), max_pixels=LIMIT, fit="item")
    lit = out > 0.1
    assert lit.mean() > 0.6  # the whole garment, longer side filling the frame, not a square print


def _close_up(
    ground: tuple[int, int, int], item: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """A shirt photographed close up (its mask, and the 160x160 photo): its sleeves and hem
    cut off by the left, right and bottom edges, the ground at the top and in the corners, in
    light falling across the table."""
    rng = np.random.default_rng(24)
    m = shirt_mask(240)[40:200, 40:200]
    light = np.linspace(1.0, 0.85, 160)[None, :, None]
    pic = (np.array(ground) * (1 - m[..., None]) + np.array(item) * m[..., None]) * light
    return m, np.clip(pic + rng.normal(0, 3, pic.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("ground", "item"),
    [((220, 218, 210), (40, 60, 150)), ((60, 55, 50), (200, 190, 170))],
    ids=["navy-on-light", "cream-on-dark"],
)
def test_a_close_up_garment_covering_most_of_the_border_is_read(
    ground: tuple[int, int, int], item: tuple[int, int, int], to_bytes: ToBytes
) -> None:
    """The shirt holds most of the border ring, so no plane fits it and the shirt's colour is
    the border's own: nothing stood out and the shirt was refused as "no item found". The ring
    is two clearly distinct surfaces; the one that differs from the other and covers the
    picture's middle is the shirt."""
    m, pic = _close_up(ground, item)
    out = decode_image(to_bytes(pic), max_pixels=LIMIT, fit="item")
    whole = preprocess_pil(Image.fromarray((255 - 200 * m).astype(np.uint8)), fit="item")
    assert _silhouette_iou(out, whole) > 0.85


@pytest.mark.parametrize(("angle", "offset"), [(0.3, -30), (0.6, 15), (1.2, -30)])
def test_a_page_of_two_surfaces_with_nothing_on_it_is_still_refused(
    angle: float, offset: int, to_bytes: ToBytes
) -> None:
    """Half door and half wall, or a shadow's edge across a page, at a slant, with nothing in
    front: no plane fits the border and it is two distinct surfaces, as a close-up garment's
    is, but the part either leaves is bounded by one straight line, which no garment is."""
    rng = np.random.default_rng(25)
    ys, xs = np.mgrid[0:160, 0:160]
    door = ((xs - 80) * np.cos(angle) + (ys - 80) * np.sin(angle) > offset).astype(float)[..., None]
    pic = np.array([215, 212, 205]) * (1 - door) + np.array([120, 80, 45]) * door
    pic = np.clip(pic + rng.normal(0, 3, pic.shape), 0, 255).astype(np.uint8)
    with pytest.raises(NoInkFound):
        decode_image(to_bytes(pic), max_pixels=LIMIT, fit="item")


@pytest.mark.parametrize("corner", ["bottom left", "top right"])
def test_a_garment_cut_off_at_a_corner_is_read_whole_not_as_its_print(
    corner: str, to_bytes: ToBytes
) -> None:
    """A shirt cut off by two edges with a red print: the print's colour is not on the border
    and it lies clear of the edges, as a garment before a door does; it is a small part of the
    picture, not an item framed as the subject, so the shirt is read (a square print read "Bag")."""
    rng = np.random.default_rng(23)
    m = np.zeros((160, 160))
    m[60:, :110] = shirt_mask(140)[:100, 30:]  # cut off at the bottom and the left
    if corner == "top right":
        m = m[::-1, ::-1]
    plain = np.array([220, 218, 210]) * (1 - m[..., None]) + np.array([40, 60, 150]) * m[..., None]
    printed = plain.copy()
    ys, xs = np.nonzero(m > 0.5)
    cy, cx = int(ys.mean()), int(xs.mean())
    printed[cy - 12 : cy + 12, cx - 12 : cx + 12] = (200, 40, 40)
    noise = rng.normal(0, 3, plain.shape)
    out, whole = (
        decode_image(
            to_bytes(np.clip(p + noise, 0, 255).astype(np.uint8)), max_pixels=LIMIT, fit="item"
        )
        for p in (printed, plain)
    )
    assert _silhouette_iou(out, whole) > 0.85


def _hung(item: np.ndarray, hook: bool, seed: int = 23) -> np.ndarray:
    """A 200x160 photo of ``item`` (a mask on a 120x120 square, dark navy) hung on a lit wall,
    its square's top 30 px below the picture's; with ``hook``, a grey wire hook from a wall knob
    34 px below the top down to the shirt's top centre."""
    rng = np.random.default_rng(seed)
    wall = np.array([225, 220, 210]) * np.linspace(1.0, 0.85, 200)[:, None, None]
    pic = np.ones((200, 160, 3)) * wall
    if hook:
        img = Image.new("L", (160, 200), 0)
        d = ImageDraw.Draw(img)
        d.ellipse((77, 33, 83, 39), fill=255)  # the knob
        d.arc((70, 34, 84, 48), 180, 360, fill=255, width=2)  # the hook's curl over it
        d.line((84, 41, 80, 56), fill=255, width=2)  # down to the garment
        m = np.asarray(img, np.float32)[..., None] / 255
        pic = pic * (1 - m) + np.array([100, 100, 105]) * m
    m = np.zeros((200, 160))
    m[30:150, 20:140] = item
    pic = pic * (1 - m[..., None]) + np.array([40, 45, 80]) * m[..., None]
    return np.clip(pic + rng.normal(0, 3, pic.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_garment_on_a_hanger_is_read_without_its_hook(
    fmt: str, shirt: np.ndarray, to_bytes: ToBytes
) -> None:
    """The hook above the shoulders was framed with the garment, which came out short: the
    input is the garment's alone."""
    pic = _hung(shirt_mask(120), hook=True)
    out = decode_image(to_bytes(pic, fmt), max_pixels=LIMIT, fit="item")
    assert _silhouette_iou(out, shirt) > 0.85


def _bag_mask(side: int) -> np.ndarray:
    """A bag's silhouette with a strap handle over most of its width, on a side x side square."""
    img = Image.new("L", (side, side), 0)
    k = side / 100
    d = ImageDraw.Draw(img)
    d.rectangle((10 * k, 40 * k, 90 * k, 95 * k), fill=255)
    d.arc((26 * k, 5 * k, 74 * k, 75 * k), 180, 360, fill=255, width=round(3 * k))
    return np.asarray(img, np.float32) / 255.0


def _sandal_mask(side: int) -> np.ndarray:
    """A low shoe's silhouette with a thin strap rising from its middle, on a side x side
    square."""
    img = Image.new("L", (side, side), 0)
    k = side / 100
    d = ImageDraw.Draw(img)
    d.rectangle((10 * k, 70 * k, 90 * k, 90 * k), fill=255)
    d.rectangle((49 * k, 62 * k, 51 * k, 70 * k), fill=255)
    return np.asarray(img, np.float32) / 255.0


@pytest.mark.parametrize("item", [_bag_mask, _sandal_mask])
def test_a_bags_handle_or_a_shoes_strap_is_kept(
    item: Callable[[int], np.ndarray], to_bytes: ToBytes
) -> None:
    """A handle spans much of its bag; a strap rises from a shoe far wider than tall: neither
    is taken for a hanger's hook."""
    pic = _hung(item(120), hook=False)
    out = decode_image(to_bytes(pic), max_pixels=LIMIT, fit="item")
    page = (255 - 200 * item(200)).astype(np.uint8)
    on_white = preprocess_pil(Image.fromarray(page), fit="item")
    # as tall as the item with its handle or strap: without, it would fill fewer rows
    assert (out > 0.1).any(axis=1).sum() >= (on_white > 0.1).any(axis=1).sum() - 1


@pytest.mark.parametrize(
    "kind", ["coloured", "lit", "textured", "vignette", "shadow", "door and wall"]
)
def test_a_background_without_an_item_is_refused(kind: str, to_bytes: ToBytes) -> None:
    rng = np.random.default_rng(9)
    pic = np.empty((120, 160, 3))
    pic[:] = (70, 140, 200)
    if kind == "lit":
        pic *= np.linspace(1.0, 0.7, 160)[None, :, None]
    elif kind == "vignette":
        pic = pic * vignette(120, 160, 0.7) + rng.normal(0, 3, pic.shape)
    elif kind == "textured":
        pic += rng.normal(0, 10, pic.shape)
    elif kind == "shadow":  # a strong shadow's edge across a corner
        ys, xs = np.mgrid[0:120, 0:160]
        pic *= np.where(xs + ys < 110, 0.45, 1.0)[..., None]
        pic += rng.normal(0, 3, pic.shape)
    elif kind == "door and wall":
        pic[:, 110:] = (235, 230, 220)
        pic += rng.normal(0, 3, pic.shape)
    with pytest.raises(NoInkFound, match="no item found"):
        decode_image(to_bytes(np.clip(pic, 0, 255).astype(np.uint8)), max_pixels=LIMIT,
                     fit="item")  # fmt: skip


def _corner_and_stroke(stroke_rows: slice) -> np.ndarray:
    mask = np.zeros((30, 30), bool)
    for r in range(8):  # a dark corner, top left: what a vignette leaves
        mask[r, : 8 - r] = True
    mask[stroke_rows, 15] = True  # writing clear of the edges
    return mask


def test_a_dark_corner_goes_when_writing_is_found_elsewhere() -> None:
    mask = _corner_and_stroke(slice(8, 22))
    comp = components(mask)
    keep = _without_corners(comp, select(comp, mask.shape), mask)
    assert np.array_equal(comp.mask(keep, mask.shape), mask & (np.arange(30) == 15)[None, :])


def test_a_corner_piece_stays_when_it_is_all_the_writing() -> None:
    for mask in (_corner_and_stroke(slice(0, 0)), _corner_and_stroke(slice(14, 17))):
        comp = components(mask)  # alone, or beside a speck a tenth of its size
        keep = select(comp, mask.shape)
        assert np.array_equal(_without_corners(comp, keep, mask), keep)


def test_a_pen_lying_beside_the_digit_is_left_out(reference: np.ndarray, to_bytes: ToBytes) -> None:
    rng = np.random.default_rng(7)
    side = 300
    pen = Image.new("L", (4 * side, 4 * side), 0)  # a pen across the page, beside the digit
    ImageDraw.Draw(pen).line([(4 * 200, 4 * 320), (4 * 300, -40)], fill=255, width=4 * 28)
    ink = np.asarray(pen.reduce(4), np.float32) / 255.0
    ink[40:260, 0:220] = np.maximum(ink[40:260, 0:220], seven_mask(220))
    page = photo(lit_paper(rng, side, fall=0.2), ink, strength=0.8)
    out = decode_image(to_bytes(page, "JPEG", quality=85), max_pixels=LIMIT)
    assert np.abs(out - reference).mean() < 0.1


def ring_mask(side: int, width: float = 0.07) -> np.ndarray:
    """A '0' as ink coverage in [0, 1] (anti-aliased: drawn 4x, then reduced)."""
    big = Image.new("L", (4 * side, 4 * side), 0)
    k = 4 * side / 100
    ImageDraw.Draw(big).ellipse([(33 * k, 18 * k), (67 * k, 82 * k)], outline=255,
                                width=max(4, round(width * 4 * side)))  # fmt: skip
    return np.asarray(big.reduce(4), np.float32) / 255.0


def glared(side: int, amount: float, seed: int, ink: bool = True) -> np.ndarray:
    """A glossy page: paper with (or without) a '0', and a specular spot's light added over
    the bottom of the loop, blown out to white at its middle."""
    rng = np.random.default_rng(seed)
    page = 205.0 + rng.normal(0, 2.0, (side, side))
    if ink:
        page *= 1.0 - 0.8 * ring_mask(side)
    ys, xs = np.mgrid[0:side, 0:side] / side
    spot = np.exp(-(((ys - 0.78) / (0.6 * 0.16)) ** 2 + ((xs - 0.5) / 0.16) ** 2))
    return np.clip(page + amount * spot, 0, 255).astype(np.uint8)


def _enclosed(out: np.ndarray) -> int:
    """The number of holes in the output's ink (pieces of background clear of its border)."""
    comp = components(out <= 0.3)
    h, w = out.shape
    edge = (comp.y0 == 0) | (comp.x0 == 0) | (comp.y1 == h - 1) | (comp.x1 == w - 1)
    return int(np.count_nonzero(~edge))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_loop_under_a_blown_out_glare_spot_stays_closed(seed: int, to_bytes: ToBytes) -> None:
    # the spot lifts the ink under it towards white: measured against the paper around the
    # spot's middle, the bottom of the loop falls below the ink threshold and the 0 opens
    page = glared(256, 160.0, seed)
    out = decode_image(to_bytes(page, "JPEG", quality=85), max_pixels=LIMIT).reshape(28, 28)
    assert _enclosed(out) == 1


def glared_as_a_camera_records_it(amount: float, seed: int, side: int = 256) -> np.ndarray:
    """:func:`glared`'s page as a camera records it: the spot's light added to the paper's
    in linear light, then encoded with a display gamma, which flattens the ink's drop under
    the spot far more than an addition in encoded levels does."""
    rng = np.random.default_rng(seed)
    page = (205.0 / 255.0) ** 2.2 * (1.0 + rng.normal(0, 0.02, (side, side)))
    page *= 1.0 - 0.8 * ring_mask(side, width=0.1)
    ys, xs = np.mgrid[0:side, 0:side] / side
    spot = np.exp(-(((ys - 0.78) / (0.6 * 0.16)) ** 2 + ((xs - 0.5) / 0.16) ** 2))
    return (255.0 * np.clip(page + amount * spot, 0, 1) ** (1 / 2.2)).astype(np.uint8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_loop_under_a_glare_spot_in_linear_light_stays_closed(
    seed: int, to_bytes: ToBytes
) -> None:
    # in encoded levels the spot's light flattens the bottom of the loop under the ink
    # threshold; measured in linear light, where the light adds, it stands out as the rest does
    page = glared_as_a_camera_records_it(0.6, seed)
    out = decode_image(to_bytes(page, "JPEG", quality=85), max_pixels=LIMIT).reshape(28, 28)
    assert _enclosed(out) == 1


@pytest.mark.parametrize("amount", [120.0, 200.0, 300.0])
def test_a_blank_glossy_page_with_a_glare_spot_is_refused(amount: float, to_bytes: ToBytes) -> None:
    page = glared(256, amount, 7, ink=False)
    with pytest.raises(NoInkFound):
        decode_image(to_bytes(page, "JPEG", quality=85), max_pixels=LIMIT)


def _phone_page(rng: np.random.Generator) -> np.ndarray:
    """A phone photo's page (3000x4000): light falling off across it, and grain."""
    w, h = 3000, 4000
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    page = 200.0 * (1.0 - 0.2 * (0.6 * xs / w + 0.4 * ys / h))
    return page + rng.normal(0, 3, (h, w)).astype(np.float32)


def test_a_fine_pen_digit_small_in_a_phone_photo_is_read(
    reference: np.ndarray, to_bytes: ToBytes
) -> None:
    """A ballpoint digit 6% of a phone photo's height: its strokes, narrower than a pixel at
    the working size, were averaged into the paper and the photo judged blank."""
    page = _phone_page(np.random.default_rng(10))
    page[1800:2040, 1400:1640] *= 1.0 - 0.5 * seven_mask(240, 0.04)
    data = to_bytes(np.clip(page, 0, 255).astype(np.uint8), "JPEG", quality=90)
    out = decode_image(data, max_pixels=LIMIT)
    assert np.abs(out - reference).mean() < 0.1


def test_a_blank_phone_photo_is_still_refused_when_read_again_closer(to_bytes: ToBytes) -> None:
    page = _phone_page(np.random.default_rng(11))
    with pytest.raises(NoInkFound):
        decode_image(to_bytes(np.clip(page, 0, 255).astype(np.uint8), "JPEG", quality=90),
                     max_pixels=LIMIT)  # fmt: skip


def test_a_closer_reading_keeps_only_what_looks_like_a_fine_pen() -> None:
    """Read closer, a phone photo without a digit showed a shadow's soft edge across the top
    (read as 2 and 7), a table's edge along a side (read as 1), a curled hair in pieces (read as
    6 at p = 0.98): a closer reading keeps thin strokes, clear of the edges, mostly one piece."""
    from service.inputs.preprocess import _fine_writing, _ink_box

    def judged(ink: np.ndarray) -> bool:
        box = _ink_box(ink)
        assert box is not None
        return _fine_writing(ink, box)

    pen = np.zeros((512, 384), np.float32)
    pen[200:240, 150:190] = seven_mask(40, 0.04) > 0.3
    assert judged(pen)
    wide = np.zeros_like(pen)
    wide[200:212, 100:300] = 1.0  # a soft edge's band, 12 px wide
    assert not judged(wide)
    edge = np.zeros_like(pen)
    edge[:, 380:382] = 1.0  # thin, but along the picture's side
    assert not judged(edge)
    bits = np.zeros_like(pen)
    bits[200:260:6, 150:200:6] = 1.0  # a hair broken into specks
    bits[201:261:6, 150:200:6] = 1.0
    assert not judged(bits)
