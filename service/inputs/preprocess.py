"""Turn any decoded picture into what the image models were trained on (28x28, light on black).

Two fits, following how each data set was made:

- ``"digit"`` (MNIST): the ink is fitted into a 20x20 box (aspect kept) and pasted into the 28x28
  frame with its centre of mass at the centre; very thin strokes are thickened first.
- ``"item"`` (Fashion-MNIST): the object is trimmed, its longer side resized to 28 (aspect kept)
  and centred in the frame.

Both convert to grey (compositing transparency on a background that contrasts with the
strokes, :mod:`service.inputs.transparency`) and reduce the picture to a small working size. A
drawing, a scan or a data set image, whose background is one even level, is measured against
that level. A photo is measured locally:

- a digit against the paper under it (:mod:`service.inputs.paper`: lighting gradients, shadows,
  tinted paper and grain drop out, and ink in a shadow counts as much as ink in the light; a
  sharp shadow's edge across the page, which the paper's cells smooth over, is divided out
  first, :mod:`service.inputs.shadow`; the ink under a glossy page's glare is measured against
  the glare's own paper, :mod:`service.inputs.glare`), kept only where a piece of writing is
  (:mod:`service.inputs.components`: printed rules, a shadow's edge, specks and grain go; a
  frame drawn around the digit, :mod:`service.inputs.frames`); a whole sheet lying on a darker
  table is measured inside the sheet only (:mod:`service.inputs.sheet`); light strokes on a
  dark ground (chalk) are told from a page in shadow and from paper on a desk
  (:func:`_photo_ink`); a digit in a light-coloured ink that grey does not show is read in the
  darkest colour channel, and ink differing from an even canvas in colour alone by its colour
  distance (:func:`_coloured_ink`);
- an item against the colour of the background around it (:mod:`service.inputs.items`), on any
  ground: coloured, textured, shaded or dark.

A picture in which nothing stands out from the background raises :class:`NoInkFound` (a 422),
instead of being answered as if it held a digit.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
from PIL import Image

from service.errors import InvalidInput
from service.inputs.components import (
    Components,
    bars,
    components,
    entering,
    select,
    stroke_width,
)
from service.inputs.cores import with_cores
from service.inputs.forms import without_form_lines
from service.inputs.frames import without_frame
from service.inputs.glare import under_glare
from service.inputs.items import item_ink
from service.inputs.levels import (
    FULL_PEAK_SIDE,
    MIN_CONTRAST,
    levels,
    min_peak,
    stands_out,
)
from service.inputs.paper import (
    box_blur,
    cell_side,
    contrast,
    dilate,
    max_filter,
    paper_from_cells,
    paper_without_ink,
    quantile,
    quantiles,
    robust_sigma,
    sampled,
    without_rules,
)
from service.inputs.shadow import shadow_light
from service.inputs.sheet import sheet_on_desk
from service.inputs.transparency import composited_grey

__all__ = [
    "FITS",
    "READ_A_NUMBER",
    "WORK_SIDE",
    "Digit",
    "Fit",
    "InkMap",
    "NoInkFound",
    "Piece",
    "SeveralDigits",
    "clean_mask",
    "column_pieces",
    "frame",
    "ink_map",
    "inked_runs",
    "nothing_found",
    "preprocess_pil",
]

Fit = Literal["digit", "item"]
FITS: tuple[str, ...] = ("digit", "item")
SIDE = 28  # output frame
BOX = 20  # a digit's longer side, as in MNIST
WORK_SIDE = 256  # inputs are reduced by whole factors to a longer side of at most this
LOSSY_FORMATS = ("JPEG", "WEBP")  # compressed with loss as a rule (WebP may be lossless)
# a JPEG whose luminance quantisation steps average more than this (libjpeg's quality below
# about 30) keeps little but each 8x8 block's mean where the picture is fine-grained
COARSE_JPEG_STEP = 100.0
LEVEL_NOISE = 0.5  # the least noise of a background (in levels) that is not at 0 or 255
MIN_INK_SIDE = 0.04  # ink whose box is smaller than this share of the picture is a speck
# A crop of ink this much wider than tall, holding two pieces or more at least SEVERAL_HEIGHT as
# tall as it with empty columns between them, is several digits side by side (a number)
SEVERAL_ASPECT = 1.4
SEVERAL_HEIGHT = 0.6
SEVERAL_EDGE_SLIVER = 0.3  # a piece on the picture's edge narrower than this (of the height)
# more ink than this share of the page is texture or noise, not writing (a bold digit cropped
# tight covers more than half of its crop)
MAX_INK_SHARE = 0.6
COARSE_SIDE = 48  # samples along a side for a picture's levels (its middle, its page's colour)
LIGHT_PAGE = 128.0  # coloured ink is looked for on a page whose darkest channel is this light ...
EVEN_CHROMA = 48.0  # ... and whose colour is even: its channels this close at most pixels ...
VIVID_INK = 64.0  # ... and its ink's channels this far apart (a gel pen's colour, not a stain)
GROUND_INK = 0.05  # dark-on-light "ink" this close to the picture's middle level is its ground
LIT_BORDER = 0.25  # a light tail lining less of the picture's border than this is strokes ...
SPAN_SIDE = 0.1  # ... unless, for the ground test, it covers this much of two opposite sides
STROKE_SAMPLES = 8  # a light piece clear of the border this big (in samples) is strokes
MIN_STEEPNESS = 8.0  # ink beyond an even ground rising less steeply is light on the page
FINE_WIDTH = 3.0  # strokes a closer reading finds are a fine pen's: at most this wide (pixels)
FINE_PIECE = 1 / 3  # and mostly one piece: the largest holds at least this share of the ink
CORNER_SHARE = 0.1  # a piece filling a corner goes when the writing clear of the edges has at
# least this share of its area


class NoInkFound(InvalidInput):
    """The picture holds nothing that stands out from its background."""


class SeveralDigits(InvalidInput):
    """A picture of one digit holds several, side by side (a number). Built from its message
    (:func:`several_digits`), as every error is, so that it survives pickling (the decoding
    processes send it back) and a caller can put the file's name in front of it."""


# what to do about it, at predict; an endpoint without ?digits=many says its own words instead
READ_A_NUMBER = (
    "to read a number, send it with ?digits=many; to read one digit, crop the picture to it"
)


def several_digits(count: int) -> SeveralDigits:
    return SeveralDigits(
        f"the picture holds {count} separate marks side by side, as a number of {count} "
        f"digits does: {READ_A_NUMBER}"
    )


class InkMap(NamedTuple):
    """A picture's ink at working size and the picture's pixels per working pixel; ``small``:
    the ink is writing smaller than the dust rule keeps (:data:`MIN_INK_SIDE`), found only when
    asked for (:func:`ink_map`)."""

    ink: np.ndarray  # float32 (h, w) in [0, 1], light on black
    sx: float
    sy: float
    small: bool = False
    # the printed rules taken out of a photo's ink (bool (h, w); None: none were): a form's box
    # row or comb may span the page, and its upright sides are known by the rules they end on
    rules: np.ndarray | None = None


class _SmallWriting(Exception):
    """A photo's only writing is smaller than the dust rule keeps: its ink, for a caller that
    asked for it (:func:`_photo_ink`)."""

    def __init__(self, ink: np.ndarray) -> None:
        super().__init__("small writing")
        self.ink = ink


class Digit(NamedTuple):
    """One digit of a number: framed as MNIST, and where it is in the picture."""

    image: np.ndarray  # float32 (28, 28)
    box: tuple[int, int, int, int]  # x, y, width, height in the picture's pixels


THIN_STROKE = 0.07  # stroke width / digit size below which strokes are thickened ...
TARGET_STROKE = 0.12  # ... to about this (MNIST digits measure 0.11-0.25)


def _resize(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    """Anti-aliased resize of a float32 array (Pillow's Lanczos on a mode-F image)."""
    if arr.shape == (height, width):
        return arr
    img = Image.fromarray(np.ascontiguousarray(arr, dtype=np.float32))
    return np.asarray(img.resize((width, height), Image.Resampling.LANCZOS), dtype=np.float32)


def _colour(img: Image.Image, grey: np.ndarray) -> np.ndarray:
    """(h, w, channels) 0-255: RGB for an opaque colour picture, else the grey alone."""
    if img.mode in ("RGB", "CMYK", "YCbCr") or (img.mode == "P" and "transparency" not in img.info):
        rgb = np.asarray(img.convert("RGB"), dtype=np.float32)
        if rgb.shape[:2] == grey.shape:
            return rgb
    return grey[..., None]


def _stroke_ratio(ink: np.ndarray) -> float:
    """Estimated stroke width over the digit's longer side."""
    return stroke_width(ink > 0.5) / max(ink.shape)


def _reference(arr: np.ndarray, fit: Fit) -> np.ndarray:
    """Pixels taken to be background: the border ring for a digit, the four corners for an item
    (which may fill the frame and touch its edges; Fashion-MNIST trims by the corner colour)."""
    if fit == "digit":
        b = max(1, round(0.04 * min(arr.shape)))
        return np.concatenate([arr[:b].ravel(), arr[-b:].ravel(),
                               arr[:, :b].ravel(), arr[:, -b:].ravel()])  # fmt: skip
    b = max(2, round(0.06 * min(arr.shape)))
    return np.concatenate([arr[:b, :b].ravel(), arr[:b, -b:].ravel(),
                           arr[-b:, :b].ravel(), arr[-b:, -b:].ravel()])  # fmt: skip


def _flat_background(grey: np.ndarray, fit: Fit) -> bool:
    """Whether the background (:func:`_reference`) is one even level (a drawing, a scan, a
    data set image), where the global background says all; photos, with their light, grain and
    colour, are measured locally. An item may fill a corner or two of its frame, so only the
    corners' median deviation counts for it; a digit's whole border ring must be even."""
    ring = _reference(grey, fit)
    even = robust_sigma(ring) <= 1.0
    if fit == "item":
        return even
    return even and quantile(ring, 0.95) - quantile(ring, 0.05) <= 8.0


def _coarse_jpeg(img: Image.Image) -> bool:
    """Whether ``img`` was decoded from a JPEG saved at a low quality (its quantisation tables,
    which a picture turned by its EXIF orientation no longer carries)."""
    tables: dict[int, list[int]] = getattr(img, "quantization", None) or {}
    return 0 in tables and float(np.mean(tables[0])) > COARSE_JPEG_STEP


def _photo_ink(
    grey: np.ndarray,
    shadow: bool = True,
    small: bool = False,
    rules: list[np.ndarray] | None = None,
) -> np.ndarray | None:
    """A photographed digit's strokes, light on black in [0, 1], measured against the local
    paper (:mod:`service.inputs.paper`) and kept only where a piece of writing is
    (:mod:`service.inputs.components`); None when nothing on the page is writing. A sharp
    shadow's edge across the page is divided out first (:mod:`service.inputs.shadow`), unless
    ``shadow`` is false (a sheet cut out of its desk, :func:`sheet_on_desk`, whose edges are no
    shadow's). ``small``: when what would be writing is all smaller than the dust rule keeps,
    but some of it is 3 pixels or more, that ink is raised in :class:`_SmallWriting`. ``rules``
    (when given) gets the pixels of the printed rules taken out, if any."""
    h, w = grey.shape
    shade = shadow_light(grey) if shadow else None
    if shade is not None:  # a sharp shadow's edge across the page: the page without it
        grey = grey / shade
    sample = _coarse(grey)
    dark, middle, light = quantiles(sample, (0.01, 0.5, 0.99))
    cell = cell_side(grey.shape)
    floor = min_peak(grey.shape)
    c, sigma, peak, high, t = _rough_ink(grey, cell, floor)
    # Light strokes on a dark ground (a chalkboard, an inverted scan) have the longer light
    # tail; a light page without a clear tail (light falling off, nothing written) is paper.
    # A page mostly in deep shadow has that tail too (its lit part), and the lit part may stand
    # out more than the ink: but it lines the picture's border, which strokes only cross.
    # And an object that fills most of a dark picture (a garment on black, as the data sets
    # store them) leaves the dark ground as the "dark ink": ground reaches the picture's edges,
    # writing does not.
    if middle < 128 and middle - dark < light - middle:
        inverse = _rough_ink(255.0 - grey, cell, floor)
        lit = sample > (middle + light) / 2
        inside = _edge_share(lit.astype(np.float32), 0.5) < LIT_BORDER or _strokes_within(lit)
        if (
            (inside and inverse[2] >= peak)
            or _edge_share(c, t) > _edge_share(inverse[0], inverse[4])
            or (
                inside
                and not _spans(lit)
                and _ink_is_ground(sampled(grey, cell), c > t, (dark, middle, light))
            )
        ):
            grey = 255.0 - grey
            c, sigma, peak, high, t = inverse
    if stands_out(peak, sigma, floor):  # the paper again, from the pixels that are not ink
        rough = c > 0.7 * t
        # an icon's few coarse cells leave a shadow in the rough ink, no stroke's core
        if min(h, w) >= FULL_PEAK_SIDE:
            sampled_cell = cell * c.shape[0] // h  # the samples may be every other pixel
            rough = with_cores(sampled(grey, cell), rough, sampled_cell)
        paper = paper_without_ink(grey, dilate(rough), cell)
        c, sigma = contrast(grey, paper)
        if min(h, w) >= FULL_PEAK_SIDE:
            c = under_glare(grey, paper, c, sigma, rough, floor)
    else:  # nothing stood out among the samples: the full picture has the last word
        c, sigma = contrast(grey, paper_from_cells(grey, cell))
    peak, high, t = levels(c, sigma, floor)
    if not stands_out(peak, sigma, floor):
        return None
    mask = c > t
    if mask.mean() > MAX_INK_SHARE:
        return None
    ruled = mask
    mask = without_rules(mask)
    if rules is not None and mask is not ruled:
        rules.append(ruled & ~mask)
    comp = components(mask)
    # an icon has no room for anything beside the writing: what meets its border is the digit
    aside = None
    if comp.n and min(h, w) >= FULL_PEAK_SIDE:
        aside = entering(comp, c, max(3.0, MIN_INK_SIDE * min(h, w)))  # the dust rule's
    keep = select(comp, (h, w), aside) if comp.n else np.zeros(0, bool)
    pens = bars(comp, keep, c)
    writing = _writing(comp, keep & ~pens, mask)
    if writing is None and pens.any():  # a band beside nothing but dust is the writing
        writing = _writing(comp, keep, mask)
    if writing is not None:
        kept = mask if writing.all() else comp.mask(writing, (h, w))
    else:
        tiny = _writing(comp, keep & ~pens, mask, share=0.0) if small else None
        if tiny is None:
            return None
        kept = comp.mask(tiny, (h, w))
    low = t / 2  # anti-aliased stroke edges fade out instead of being cut
    ink = np.clip((c - low) / max(high - low, 1e-6), 0.0, 1.0) * dilate(kept)
    if writing is None:
        raise _SmallWriting(ink)
    return ink


def _writing(
    comp: Components, keep: np.ndarray, mask: np.ndarray, share: float = MIN_INK_SIDE
) -> np.ndarray | None:
    """The kept pieces without a corner's dark (:func:`_without_corners`), or None when what
    is left is dust: no piece's box at least ``share`` of the picture's shorter side (and 3
    pixels) long."""
    keep = _without_corners(comp, keep, mask) if keep.any() else keep
    if not keep.any():
        return None
    sides = np.maximum(comp.y1 - comp.y0, comp.x1 - comp.x0)[keep] + 1
    if sides.max() < max(3, share * min(mask.shape)):  # dust, before dilation blots it
        return None
    return keep


def _without_corners(comp: Components, keep: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The kept pieces without those that fill a corner of the picture (a shadow's or a
    vignette's dark corner, left over from the paper's estimate), when writing clear of the
    picture's edges is kept as well: a digit that reaches into a corner of a tight crop is
    the only writing there, and stays."""
    h, w = mask.shape
    edge = (comp.y0 == 0) | (comp.x0 == 0) | (comp.y1 == h - 1) | (comp.x1 == w - 1)
    inner = keep & ~edge
    if not inner.any():
        return keep
    corner = np.zeros_like(keep)
    for r, c in ((0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1)):
        if mask[r, c]:  # the piece whose run covers the corner pixel
            run = np.flatnonzero((comp.rows == r) & (comp.starts <= c) & (comp.ends > c))
            corner[comp.label[run]] = True
    corner &= keep
    if not corner.any() or comp.area[inner].sum() < CORNER_SHARE * comp.area[corner].max():
        return keep
    return keep & ~corner


def _rough_ink(
    grey: np.ndarray, cell: int, floor: float
) -> tuple[np.ndarray, float, float, float, float]:
    """Dark ink's contrast against the first paper estimate, its noise sigma and its levels
    (:func:`~service.inputs.levels.levels`). This estimate only has to find the ink roughly,
    for the second to leave out: it is measured on the pixels the paper's cells are sampled
    from, a quarter of a large picture."""
    c, sigma = contrast(sampled(grey, cell), paper_from_cells(grey, cell, at_samples=True))
    return (c, sigma, *levels(c, sigma, floor))


def _coarse(arr: np.ndarray) -> np.ndarray:
    """Every n-th pixel each way, about :data:`COARSE_SIDE` along each side: enough for a
    picture's levels."""
    h, w = arr.shape[:2]
    return arr[:: max(1, h // COARSE_SIDE), :: max(1, w // COARSE_SIDE)]


def _strokes_within(lit: np.ndarray) -> bool:
    """Whether some of the light part of a picture's sample is clear of its border, in a piece
    of :data:`STROKE_SAMPLES` or more: strokes on a board beside a light wall, or a small light
    digit under uneven light, beside the lit region along the border."""
    pieces = components(lit)
    if not pieces.n:
        return False
    h, w = lit.shape
    clear = (pieces.y0 > 0) & (pieces.x0 > 0) & (pieces.y1 < h - 1) & (pieces.x1 < w - 1)
    return bool((pieces.area[clear] >= STROKE_SAMPLES).any())


def _spans(lit: np.ndarray) -> bool:
    """Whether the light part of a picture's sample runs from one side of the picture to the
    opposite one, over a good part of both (a strip of paper on a dark desk), as strokes do
    not."""
    sides = (lit[0], lit[-1]), (lit[:, 0], lit[:, -1])
    return any(a.mean() >= SPAN_SIDE and b.mean() >= SPAN_SIDE for a, b in sides)


def _ink_is_ground(grey: np.ndarray, ink: np.ndarray, levels: tuple[float, float, float]) -> bool:
    """Whether the "ink" of a dark-on-light reading is the picture's own ground: as light as its
    middle level. Read as dark on light, light strokes on a dark ground make the ground around
    each stroke the ink (measured against the stroke as paper, in the cells it crosses); it then
    scores as much contrast as the strokes read the right way round whenever they are not near
    white (chalk, a marker). (A page mostly in shadow, or a strip of paper on a dark desk, makes
    such ink too, of its lit part's edge or of the writing on it: the caller asks only when the
    light part is strokes clear of the border, :func:`_spans`.) ``grey`` is the picture
    ``ink`` was read on, ``levels`` the picture's dark, middle and light levels."""
    dark, middle, light = levels
    return bool(ink.any() and middle - quantile(grey[ink], 0.5) < GROUND_INK * (light - dark))


def _edge_share(c: np.ndarray, t: float) -> float:
    """The share of the picture's outermost pixels that ``c`` counts as ink (above ``t``)."""
    edge = np.concatenate((c[0], c[-1], c[1:-1, 0], c[1:-1, -1]))
    return float(np.mean(edge > t))


def _normalise(
    grey: np.ndarray,
    fit: Fit,
    lossy: bool,
    small: bool = False,
    rules: list[np.ndarray] | None = None,
) -> np.ndarray | None:
    """Light on black in [0, 1], or None when nothing stands out from the background.

    A photographed digit is measured against the local paper (:func:`_photo_ink`); otherwise
    the background is the even level of the border, and a digit's strokes are stretched so that
    most of the ink reaches 1 (as MNIST's do). An item keeps its texture: only its
    brightest pixel reaches 1; levels within 3% of the background are dropped for items from
    lossy (JPEG, WebP) files, whose ringing around edges the noise measured on a flat
    background does not show.

    Ink is taken to run from the ground towards the other end of the scale (dark on a light
    ground, light on a dark one); only when nothing does is it sought beyond the ground (a white
    brush on a light-grey canvas, a black one on a dark-grey canvas). Choosing by which side
    most of what stands out lies on would misread a white page inside a grey border as one big
    item.

    ``small``: a photo's writing smaller than the dust rule keeps raises :class:`_SmallWriting`
    (:func:`_photo_ink`); ``rules`` gets a photo's printed rules taken out (:func:`_photo_ink`).
    """
    if fit == "digit" and not _flat_background(grey, fit):
        page = sheet_on_desk(grey)
        if page is None:
            return _photo_ink(grey, small=small, rules=rules)
        sheet = grey[page.box].copy()  # the surface around it painted with the sheet's light
        paper = paper_without_ink(sheet, page.off, cell_side(sheet.shape))
        sheet[page.off] = paper[page.off]
        on_sheet: list[np.ndarray] = []
        try:
            on_page = _photo_ink(sheet, shadow=False, small=small, rules=on_sheet)
        except _SmallWriting as found:
            framed = np.zeros_like(grey)
            framed[page.box] = found.ink
            raise _SmallWriting(framed) from None
        if on_page is None:
            return None
        framed = np.zeros_like(grey)
        framed[page.box] = on_page
        if rules is not None and on_sheet:
            ruled = np.zeros(grey.shape, bool)
            ruled[page.box] = on_sheet[0]
            rules.append(ruled)
        return framed
    light = quantile(_reference(grey, fit), 0.5) > 127
    ink = _even_ground_ink(grey, fit, lossy, negate=light)
    if ink is None:
        ink = _even_ground_ink(grey, fit, lossy, negate=not light, beyond=True)
    return ink


def _even_ground_ink(
    grey: np.ndarray, fit: Fit, lossy: bool, negate: bool, beyond: bool = False
) -> np.ndarray | None:
    """:func:`_normalise` on an even ground, the picture negated first or not. Ink sought
    ``beyond`` the ground must rise from it as a stroke's edge does: a glow brighter than an
    even border (a flash or lamp on an empty page, whose border the light does not reach) is not
    a digit (:func:`_steepness`)."""
    if negate:
        grey = 255.0 - grey
    ref = _reference(grey, fit)
    background = quantile(ref, 0.5)
    sigma = 1.4826 * quantile(np.abs(ref - background), 0.5)  # robust noise level
    if sigma > 1.0:  # a photo or scan, not a clean drawing
        grey = box_blur(grey)
        ref = _reference(grey, fit)
        background = quantile(ref, 0.5)
        sigma = 1.4826 * quantile(np.abs(ref - background), 0.5)
    if background > 0:
        # an even border may hide a level of unevenness elsewhere (light, grain the border
        # happens not to show); a background at the end of the scale (a data set's or a
        # rendered image's) has no noise below it to hide, and its faintest levels are the
        # item's anti-aliased edge. Digits and items alike: a level of grain is no more ink
        # beside a digit than around a garment
        sigma = max(sigma, LEVEL_NOISE)
    peak = float(grey.max())
    if peak - background < max(MIN_CONTRAST, 6 * sigma):
        return None
    if beyond and fit == "digit" and _steepness(grey, background, peak) < MIN_STEEPNESS:
        return None
    high = quantile(grey[grey > (background + peak) / 2], 0.9) if fit == "digit" else peak
    span = high - background
    floor = 0.03 * span if fit == "digit" or lossy else 0.0
    low = background + min(max(floor, 4 * sigma), 0.5 * span)
    return np.clip((grey - low) / max(high - low, 1e-6), 0.0, 1.0)


def _steepness(grey: np.ndarray, background: float, peak: float) -> float:
    """How sharply the ink rises from the background: the 99th percentile, over the pixels more
    than a tenth of the way to the peak, of the level's slope (full range per pixel), times the
    picture's shorter side, measured after a box blur (grain steepens a glow, not a stroke) in a
    picture large enough that the blur does not widen its strokes. A stroke's edge, even blurred
    or 28 px small, is 9 and more; the falloff of a flash or lamp's light over a page 3-7."""
    smooth = box_blur(grey) if min(grey.shape) >= FULL_PEAK_SIDE else grey
    level = (smooth - background) / max(peak - background, 1e-6)
    inked = level > 0.1
    if not inked.any() or min(level.shape) < 2:  # a line of pixels has no slope across it
        return 0.0
    dy, dx = np.gradient(level)
    return quantile(np.hypot(dy, dx)[inked], 0.99) * min(grey.shape)


def clean_mask(ink: np.ndarray) -> np.ndarray:
    """The inked pixels, without isolated ones (no inked neighbour)."""
    mask = ink > 0
    p = np.zeros((mask.shape[0] + 2, mask.shape[1] + 2), np.uint8)
    p[1:-1, 1:-1] = mask
    rows = p[:-2] + p[1:-1] + p[2:]
    neighbours = rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:] - mask
    return mask & (neighbours > 0)


Piece = tuple[int, int, int, int]  # rows r0:r1, columns c0:c1 (working pixels)


def inked_runs(mask: np.ndarray, axis: int) -> list[tuple[int, int]]:
    """The runs of columns (``axis`` 0) or rows (1) of ``mask`` that hold ink, as
    ``(start, stop)``."""
    padded = np.concatenate([[False], np.asarray(mask.any(axis=axis)), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def column_pieces(mask: np.ndarray) -> list[Piece]:
    """The pieces of ``mask`` that empty columns separate, left to right, each with the rows it
    spans."""
    pieces: list[Piece] = []
    for a, b in inked_runs(mask, axis=0):
        r = np.flatnonzero(mask[:, a:b].any(axis=1))
        pieces.append((int(r[0]), int(r[-1]) + 1, a, b))
    return pieces


def _side_by_side(ink: np.ndarray, box: tuple[slice, slice]) -> int:
    """How many digits the ink in ``box`` holds side by side: pieces nearly as tall as the box
    that empty columns separate, counted only in a box much wider than tall (one digit never
    is, and a digit's pieces are never all that tall). A narrow piece on the picture's left or
    right edge is not counted: a sliver of a neighbour cut off by a loose crop of one digit of
    a number (the digits of a number cropped tight are wider, and count)."""
    crop = ink[box]
    h, w = crop.shape
    if w < SEVERAL_ASPECT * h:
        return 1
    pieces = column_pieces(clean_mask(crop))
    sliver = SEVERAL_EDGE_SLIVER * h
    if box[1].start == 0 and pieces and pieces[0][3] - pieces[0][2] < sliver:
        pieces = pieces[1:]
    if box[1].stop == ink.shape[1] and pieces and pieces[-1][3] - pieces[-1][2] < sliver:
        pieces = pieces[:-1]
    return sum(r1 - r0 >= SEVERAL_HEIGHT * h for r0, r1, _, _ in pieces)


def _ink_box(ink: np.ndarray) -> tuple[slice, slice] | None:
    """Bounding box of the ink, ignoring isolated specks (pixels with no inked neighbour);
    None when what is left is too small to be a digit or an item."""
    mask = clean_mask(ink)
    if not mask.any():
        return None
    r, c = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    longer = max(r[-1] - r[0], c[-1] - c[0]) + 1
    if longer < max(3, MIN_INK_SIDE * min(ink.shape)):
        return None
    return slice(r[0], r[-1] + 1), slice(c[0], c[-1] + 1)


def _centre(digit: np.ndarray) -> np.ndarray:
    """Paste into the 28x28 frame with the centre of mass at (14, 14), clipping what falls out."""
    h, w = digit.shape
    mass = float(digit.sum())
    cy = float(digit.sum(axis=1) @ np.arange(h)) / mass
    cx = float(digit.sum(axis=0) @ np.arange(w)) / mass
    top, left = round(SIDE / 2 - cy), round(SIDE / 2 - cx)
    out = np.zeros((SIDE, SIDE), np.float32)
    y0, y1, x0, x1 = max(top, 0), min(top + h, SIDE), max(left, 0), min(left + w, SIDE)
    out[y0:y1, x0:x1] = digit[y0 - top : y1 - top, x0 - left : x1 - left]
    return out


def _middle(item: np.ndarray) -> np.ndarray:
    """Paste into the 28x28 frame with the bounding box centred (an odd margin puts the extra
    pixel before the item, as in Fashion-MNIST)."""
    h, w = item.shape
    out = np.zeros((SIDE, SIDE), np.float32)
    top, left = (SIDE - h + 1) // 2, (SIDE - w + 1) // 2
    out[top : top + h, left : left + w] = item
    return out


def _thicken(ink: np.ndarray) -> np.ndarray:
    """Dilate strokes that are thin for their size (a fine pen, a 1-px brush) towards MNIST's."""
    longer = max(ink.shape)
    ratio = _stroke_ratio(ink)
    if ratio >= THIN_STROKE or longer <= 2 * BOX:
        return ink
    size = 1 + 2 * round((TARGET_STROKE - ratio) * longer / 2)
    return max_filter(np.pad(ink, size // 2), size)


def ink_map(
    img: Image.Image,
    fit: Fit = "digit",
    *,
    lossy: bool | None = None,
    work_side: int = WORK_SIDE,
    colour_only: bool = False,
    small: bool = False,
) -> InkMap:
    """The picture's ink at working size, light on black in [0, 1], measured against its background
    (see the module doc), paper noise dropped and contrast stretched; the steps every framing
    shares. A picture with no ink raises :class:`NoInkFound`. ``lossy`` (default: whether
    ``img.format`` is in :data:`LOSSY_FORMATS`) marks compression noise; ``work_side`` is the
    longest working side; ``colour_only``: a digit's ink is looked for in the colour channels alone
    (its grey, decoded apart, showed none). ``small``: a photo whose only writing is smaller than
    the dust rule keeps (at least 3 working pixels) returns that writing, marked
    :attr:`InkMap.small`, instead of raising, when its colour channels show no digit either: the
    caller decides whether it is worth a closer look at the file."""
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, not {fit!r}")
    if lossy is None:
        lossy = img.format in LOSSY_FORMATS
    width, height = img.size
    coarse = fit == "item" and _coarse_jpeg(img)
    img = _reduced(img, work_side)
    grey = composited_grey(img, canvases=fit == "digit")
    h, w = grey.shape
    if max(h, w) > work_side:  # a mode not reduced above (CMYK)
        scale = work_side / max(h, w)
        grey = _resize(grey, max(1, round(w * scale)), max(1, round(h * scale)))
    tiny = None
    rules: list[np.ndarray] = []
    # strong compression flattens a fine-grained ground (wood, cloth) into even blocks, so
    # even corners do not tell such a file from a drawing; read as one, its grain becomes ink
    if fit == "item" and (coarse or not _flat_background(grey, fit)):
        ink = item_ink(_colour(img, grey), grey)
    else:
        try:
            ink = None if colour_only else _normalise(grey, fit, lossy, small=small, rules=rules)
        except _SmallWriting as found:
            ink, tiny = None, found.ink
        if ink is None and fit == "digit":
            rules.clear()  # the grey's, not the colour channels'
            ink = _coloured_ink(img, grey, lossy)
    if ink is None and tiny is not None:
        return InkMap(tiny, width / tiny.shape[1], height / tiny.shape[0], small=True)
    if ink is None:
        raise NoInkFound(nothing_found(fit))
    ruled = rules[0] if rules and rules[0].shape == ink.shape else None
    return InkMap(ink, width / ink.shape[1], height / ink.shape[0], rules=ruled)


def _coloured_ink(img: Image.Image, grey: np.ndarray, lossy: bool) -> np.ndarray | None:
    """The digits in a colour picture whose grey shows none, read in two ways.

    Ink of a light colour (a yellow or pale gel pen, a highlighter) is nearly as light as white
    paper in grey, but dark in the channel its colour lacks, so the picture's darkest channel at
    each pixel is read: on a light page of one even colour (a picture of colour noise has its
    darkest channel dark all over, and would make ink of it), and only ink of a vivid colour: a
    faint stain (a coffee ring) is dark in the darkest channel too, but nearly grey.

    Else, ink that differs from its canvas in colour but hardly in grey (red on mid-grey, green
    on brick red): how far each pixel's colour is from the canvas's is read as a picture of
    light strokes on black. Only on a canvas of one even colour (a photo's grain, light and
    colour noise would be read as ink there) and for ink of a vivid difference (a faint stain is
    near the canvas's colour)."""
    rgb = _colour(img, grey)
    if rgb.shape[-1] != 3:
        return None
    darkest = rgb.min(axis=2)
    chroma = rgb.max(axis=2) - darkest
    if (
        quantile(_coarse(darkest), 0.5) >= LIGHT_PAGE
        and quantile(_coarse(chroma), 0.5) <= EVEN_CHROMA
    ):
        ink = _vivid_ink(darkest, chroma, lossy)
        if ink is not None:
            return ink
    canvas = np.median(rgb[:: max(1, rgb.shape[0] // 64), :: max(1, rgb.shape[1] // 64)], (0, 1))
    unlike = np.sqrt(((rgb - canvas) ** 2).sum(axis=2)).clip(0.0, 255.0).astype(np.float32)
    if not _flat_background(unlike, "digit"):
        return None
    return _vivid_ink(unlike, unlike, lossy)


def _vivid_ink(reading: np.ndarray, difference: np.ndarray, lossy: bool) -> np.ndarray | None:
    """The digit ``reading`` shows, when its strokes differ vividly from the page: ``difference``
    (how far each pixel's colour is from the page's, or from grey) at them, VIVID_INK at least."""
    ink = _normalise(reading, "digit", lossy)
    if ink is None or ink.shape != difference.shape:
        return None
    strokes = difference[ink > 0.5]
    return ink if strokes.size and quantile(strokes, 0.5) >= VIVID_INK else None


def frame(ink: np.ndarray, fit: Fit = "digit") -> np.ndarray:
    """One digit's (item's) ink, cropped to its box -> float32 (28, 28) framed as its data set
    was: for ``"digit"``, very thin strokes thickened, the longer side resized to 20 px
    (anti-aliased, aspect kept) and pasted with the centre of mass at the centre; for ``"item"``,
    the longer side resized to 28 px and centred."""
    if fit == "digit":
        ink = _thicken(ink)
    height, width = ink.shape
    scale = (BOX if fit == "digit" else SIDE) / max(height, width)
    out = _resize(ink, max(1, round(width * scale)), max(1, round(height * scale)))
    out = np.clip(out, 0.0, 1.0)
    if out.sum() <= 0:
        raise NoInkFound(nothing_found(fit))
    return _centre(out) if fit == "digit" else _middle(out)


def preprocess_pil(
    img: Image.Image,
    fit: Fit = "digit",
    *,
    lossy: bool | None = None,
    colour_only: bool = False,
    work_side: int = WORK_SIDE,
    fine: bool = False,
) -> np.ndarray:
    """Any Pillow image -> float32 (28, 28) in [0, 1], light on black, as in MNIST.

    Steps: inputs larger than ``WORK_SIDE`` reduced (box filter); grey (transparency composited
    on a contrasting background); the ink measured against its background (:func:`ink_map`);
    cropped to the ink's bounding box (ignoring isolated specks); then framed (:func:`frame`).
    A picture with no ink raises :class:`NoInkFound`; a picture of several digits side by side
    (a number) sent as one digit, :class:`SeveralDigits`. ``work_side`` is :func:`ink_map`'s;
    ``fine``: the picture is read again closer for a fine pen's strokes (:func:`_fine_writing`).
    """
    ink = ink_map(img, fit, lossy=lossy, colour_only=colour_only, work_side=work_side).ink
    if fit == "digit":
        ink = without_frame(ink)
    box = _ink_box(ink)
    if box is None:
        raise NoInkFound(nothing_found(fit))
    if fit == "digit" and (count := _side_by_side(ink, box)) > 1:
        # a digit in one box of a form's row of empty boxes: the boxes are not digits (looked
        # for only here, so a lone digit's straight strokes are never taken for printed lines)
        ink = without_frame(without_form_lines(ink))
        box = _ink_box(ink)
        if box is None or (count := _side_by_side(ink, box)) > 1:
            raise several_digits(count)
    if fine and not _fine_writing(ink, box):
        raise NoInkFound(nothing_found(fit))
    return frame(ink[box], fit)


def _fine_writing(ink: np.ndarray, box: tuple[slice, slice]) -> bool:
    """Whether what a closer reading found looks like a fine pen's writing, the only thing
    that reading is for: clear of the picture's edges (a shadow's or a table's edge reaches
    them), thin strokes (a shadow's or a fold's soft edge is wide), mostly one piece (a curled
    hair read closer breaks into many)."""
    (r, c), (h, w) = box, ink.shape
    if r.start <= 0 or c.start <= 0 or r.stop >= h or c.stop >= w:
        return False
    m = ink[box] > 0.5
    area = int(m.sum())
    if area == 0 or stroke_width(m) > FINE_WIDTH:
        return False
    return int(components(m).area.max()) >= FINE_PIECE * area


def nothing_found(fit: Fit) -> str:
    what = "digit" if fit == "digit" else "item"
    return (
        f"no {what} found in the image: nothing stands out from its background "
        "(a blank or empty page, ink too faint to read, or marks smaller than "
        f"{MIN_INK_SIDE:.0%} of the picture's shorter side: crop closer to the {what})"
    )


def _reduced(img: Image.Image, work_side: int = WORK_SIDE) -> Image.Image:
    """The picture shrunk by a whole factor to a longer side of at most ``work_side`` (Pillow's
    box reduction, in C: the cheapest resampling there is, and the digit ends up 20 px anyway)."""
    factor = -(-max(img.size) // work_side)
    if factor < 2:
        return img
    if img.mode.startswith("I;16"):  # 16-bit grey: reduced as 32-bit levels, then read as 0-255
        levels = np.asarray(img.convert("I").reduce(factor), dtype=np.float32)
        return Image.fromarray(levels * np.float32(255.0 / 65535.0), "F")
    if img.mode in ("1", "P", "PA"):
        img = img.convert("L" if img.mode == "1" else "RGBA")
    if img.mode not in ("L", "LA", "RGB", "RGBA", "I", "F"):
        return img
    return img.reduce(factor)
