"""Turn any decoded picture into what the image models were trained on (28x28, light on black).

Two fits, following how each data set was made:

- ``"digit"`` (MNIST): the ink is fitted into a 20x20 box (aspect kept) and pasted into the 28x28
  frame with its centre of mass at the centre; very thin strokes are thickened first.
- ``"item"`` (Fashion-MNIST): the object is trimmed, its longer side resized to 28 (aspect kept)
  and centred in the frame.

Both convert to grey (compositing transparency on a background that contrasts with the strokes)
and reduce the picture to a small working size. A drawing, a scan or a data set image, whose
background is one even level, is measured against that level. A photo is measured locally:

- a digit against the paper under it (:mod:`service.inputs.paper`: lighting gradients, shadows,
  tinted paper and grain drop out, and ink in a shadow counts as much as ink in the light; a
  sharp shadow's edge across the page, which the paper's cells smooth over, is divided out
  first, :mod:`service.inputs.shadow`), kept only where a piece of writing is
  (:mod:`service.inputs.components`: printed rules, a shadow's edge, specks and grain go); a
  whole sheet lying on a darker table is measured inside the
  sheet only (:func:`_page`); light strokes on a dark ground (chalk) are told from a page in
  shadow and from paper on a desk (:func:`_photo_ink`); a digit in a light-coloured ink that
  grey does not show is read in the darkest colour channel, and ink differing from an even
  canvas in colour alone by its colour distance (:func:`_coloured_ink`);
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
    filled,
    select,
    stroke_width,
)
from service.inputs.items import item_ink
from service.inputs.paper import (
    box_blur,
    cell_side,
    contrast,
    dilate,
    paper_from_cells,
    paper_without_ink,
    quantile,
    quantiles,
    robust_sigma,
    sampled,
    without_rules,
)
from service.inputs.shadow import shadow_light

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
MIN_CONTRAST = 16.0  # grey levels between background and ink below which the image is blank
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
# A frame drawn around a digit (see _without_frame): what it holds is at least FRAME_CONTENT as
# tall as it, and at least FRAME_INSIDE of that ink lies in its hole
FRAME_CONTENT = 0.35
FRAME_INSIDE = 0.9
FRAME_NEAR = 0.25  # a touching frame's inside edge: at most this share of it is writing
FRAME_HUG = 0.5  # ... and at most this share of the writing lies within a stroke's width of it
# lines across a frame are looked at away from the edges of its box, this percent on each side
FRAME_MARGIN_PCT = 15
FRAME_SPECK = 0.02  # a piece smaller than this share of the frame's ink is a speck, left alone
MIN_PEAK = 0.18  # a photo's strongest ink darker than its paper by less than this is blank ...
FULL_PEAK_SIDE = 64  # ... in a picture whose shorter side has at least this many pixels
NOISE_K = 5.0  # ink stands this many noise sigmas above the paper
INK_SHARE = 0.45  # ink threshold as a share of the strokes' own contrast
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
KEYED_CONTRAST = 64.0  # grey levels between the strokes and the colour under transparent pixels
# from which that colour is taken as the background
CANVAS_FILL = 0.9  # opaque pixels filling this share of their box are a canvas (see _canvas_level)
CANVAS_EDGE = 2  # pixels of a canvas's anti-aliased edge, blended with the shadow around it
CANVAS_PLAIN = 0.5  # share of a canvas at its own level, give or take half the least contrast
FINE_WIDTH = 3.0  # strokes a closer reading finds are a fine pen's: at most this wide (pixels)
FINE_PIECE = 1 / 3  # and mostly one piece: the largest holds at least this share of the ink
CORNER_SHARE = 0.1  # a piece filling a corner goes when the writing clear of the edges has at
# least this share of its area
# A sheet of paper lying on a darker table: a bright, solid region clear of every edge of the
# picture, filling at least PAGE_AREA of it, its surround darker by PAGE_CONTRAST levels
PAGE_AREA = 0.2
PAGE_SOLID = 0.9  # share of its convex hull the sheet fills (a turned rectangle all of it)
PAGE_CONTRAST = 40.0
PAGE_BLANK = 0.8  # share of the sheet that is bare (its holes, the writing, are the rest)
# A specular spot (:func:`_under_glare`): a piece of the picture at least GLARE_WHITE light,
# GLARE_AREA to GLARE_MAX_AREA of the picture, at least GLARE_STEP lighter than the paper
# around it and fading out into it (its paper's light tail GLARE_MARGIN above that paper) over
# a halo of at least GLARE_HALO of its core's area
GLARE_WHITE = 245.0
GLARE_AREA = 0.003
GLARE_MAX_AREA = 0.2
GLARE_STEP = 20.0
GLARE_MARGIN = 8.0
GLARE_HALO = 0.5
GLARE_WINDOW = 3.0  # the spot's paper: the light tail over this many stroke widths
GLARE_FIT = 400  # halo pixels the light's bump is fitted to (about, at most)
GLARE_LIFT = 3.0  # the light added under the core: at most this many times the core's own lift
# A stroke's core the paper's first estimate missed (see _with_cores): its middle level within
# CORE_LEVEL of the way from the rim's ink to the paper, at least CORE_RIM of its surround rim
CORE_LEVEL = 0.25
CORE_RIM = 0.6


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


def _grey(img: Image.Image, canvases: bool = True) -> np.ndarray:
    """Grey levels 0-255 as float32, with transparency composited on a background.

    With ``canvases`` (a digit's picture: a garment cut out of its photo may fill its box as a
    canvas does, and is the thing itself), when the opaque pixels are a canvas or a window
    (:func:`_canvas_level`) rather than strokes, the transparent margin around it, or its
    rounded-off corners, are more of it: whatever is less opaque than the canvas, a shadow it casts
    included, takes its colour. Otherwise the background is the colour the file gives its
    transparent pixels, when it gives one that contrasts with the strokes: a PNG whose white is
    keyed transparent (``tRNS``), or paper cut away by a background remover, keeps its white or its
    paper, so a thin digit's light anti-aliased edge is not read as the digit. A canvas leaves
    transparent pixels black, which says nothing: a drawing app's PNG may hold dark strokes on
    transparent pixels (composited on white) or light strokes on transparent pixels (composited on
    black), so the background is then whichever contrasts with the strokes' mean grey, weighted by
    their alpha (a soft brush may leave no pixel even half opaque).
    """
    if img.mode.startswith("I") or img.mode == "F":  # 16-bit PNG ("I;16") or 32-bit modes
        arr = np.asarray(img, dtype=np.float32)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        return np.clip(arr * (255.0 / peak), 0, 255)
    if "A" in img.mode or "transparency" in img.info:
        la = np.asarray(img.convert("RGBA").convert("LA"), dtype=np.float32)
        grey, alpha = la[..., 0], la[..., 1] / 255.0
        if alpha.min(initial=1.0) < 0.99:
            opaque = alpha > 0.5
            canvas = _canvas_level(grey, opaque) if canvases else None
            if canvas is not None:
                # around a canvas, what is not even half opaque is margin or a shadow it casts,
                # and the canvas's own edge is blended with that shadow: all of it is more
                # canvas; within it, a stroke drawn half-transparent is laid on the canvas
                edge = ~opaque
                for _ in range(CANVAS_EDGE):
                    edge = dilate(edge)
                edge &= alpha < alpha.max() - 0.01
                laid = grey * alpha + np.float32(canvas) * (1.0 - alpha)
                return np.where(opaque & ~edge, laid, np.float32(canvas))
            weight = float(alpha.sum())
            stroke = float((grey * alpha).sum()) / weight if weight > 0.0 else 0.0
            background = 255.0 if stroke < 128 else 0.0
            clear = alpha == 0.0
            if clear.any():
                under = float(np.median(grey[clear]))
                if under > 0.0 and abs(stroke - under) >= KEYED_CONTRAST:
                    background = under
            grey = grey * alpha + background * (1.0 - alpha)
        return grey
    if img.mode not in ("L", "RGB"):
        img = img.convert("RGB")
    return np.asarray(img if img.mode == "L" else img.convert("L"), dtype=np.float32)


def _canvas_level(grey: np.ndarray, opaque: np.ndarray) -> float | None:
    """The grey of the canvas or window the opaque pixels make (its median level), or None when
    they are strokes. A canvas fills its box (but for rounded corners), is mostly one plain level
    and holds a drawing, at least two levels; strokes leave most of their box empty, and a solid
    shape of one colour (a stencil, a bar) or one shaded across is taken for strokes."""
    rows, cols = np.flatnonzero(opaque.any(axis=1)), np.flatnonzero(opaque.any(axis=0))
    if rows.size == 0:
        return None
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    inside, levels = opaque[box], grey[box][opaque[box]]
    if inside.mean() < CANVAS_FILL or np.ptp(levels) < MIN_CONTRAST:
        return None
    level = float(np.median(levels))
    # most of a canvas is its one plain colour; a bold stroke shaded or graded from end to end
    # has no such level
    if np.mean(np.abs(levels - level) <= MIN_CONTRAST / 2) < CANVAS_PLAIN:
        return None
    return level


def _colour(img: Image.Image, grey: np.ndarray) -> np.ndarray:
    """(h, w, channels) 0-255: RGB for an opaque colour picture, else the grey alone."""
    if img.mode in ("RGB", "CMYK", "YCbCr") or (img.mode == "P" and "transparency" not in img.info):
        rgb = np.asarray(img.convert("RGB"), dtype=np.float32)
        if rgb.shape[:2] == grey.shape:
            return rgb
    return grey[..., None]


def _max_filter(arr: np.ndarray, size: int) -> np.ndarray:
    """Grey dilation with a size x size square (separable; O(log size) passes per axis)."""
    for axis in (0, 1):
        a = np.moveaxis(arr, axis, 0)
        n, pad = a.shape[0], size // 2
        m = np.concatenate([np.zeros((pad, *a.shape[1:]), a.dtype), a,
                            np.zeros((size - 1 - pad, *a.shape[1:]), a.dtype)])  # fmt: skip
        span = 1  # m[i] = max of `span` padded rows from i
        while span * 2 <= size:
            m = np.maximum(m[:-span], m[span:])
            span *= 2
        a = np.maximum(m[:n], m[size - span : size - span + n])
        arr = np.moveaxis(a, 0, axis)
    return arr


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


class Page(NamedTuple):
    """A sheet of paper lying on a darker surface: the sheet's box in the picture, and which
    pixels of the box are off the sheet (the surface around a turned sheet, and its edge)."""

    box: tuple[slice, slice]
    off: np.ndarray


def _page(grey: np.ndarray) -> Page | None:
    """A sheet of paper photographed lying on a darker surface, or None when the picture is not
    one. The surface would otherwise be measured as the paper around the sheet, and the sheet's
    edge read as a heavy frame of ink around a small digit. Only a bright region counts, nearly
    convex (a sheet at any turn; the writing on it is part of it), with the darker surface
    along three of the picture's edges at least and the sheet reaching none of them (it may run
    off the fourth): a page in shadow on one side, or darkening into its corners, has paper
    along more of them."""
    h, w = grey.shape
    step = max(1, max(h, w) // 64)
    small = grey[::step, ::step]
    sh, sw = small.shape
    # the sheet's level: it covers PAGE_AREA of the picture at least, off the middle perhaps
    paper = quantile(small, 1 - PAGE_AREA / 2)
    sides = (small[0], small[-1], small[:, 0], small[:, -1])  # top, bottom, left, right
    surface = [quantile(side, 0.9) + PAGE_CONTRAST <= paper for side in sides]
    if sum(surface) < 3:
        return None  # the usual photo: the paper reaches the picture's edges (quick to tell)
    lo, hi = quantiles(small, (0.05, 0.95))
    if hi - lo < PAGE_CONTRAST:
        return None
    bright = small > (lo + hi) / 2
    pieces = components(bright)
    if not pieces.n:
        return None
    i = int(np.argmax(pieces.area))
    y0, y1, x0, x1 = (int(v[i]) for v in (pieces.y0, pieces.y1, pieces.x0, pieces.x1))
    touches = (y0 == 0, y1 == sh - 1, x0 == 0, x1 == sw - 1)
    if (
        any(t and s for t, s in zip(touches, surface, strict=True))
        or pieces.area[i] < PAGE_AREA * small.size
        or quantile(small[bright], 0.5) - quantile(small[~bright], 0.5) < PAGE_CONTRAST
    ):
        return None
    sheet = filled(pieces.mask(np.arange(pieces.n) == i, (sh, sw)))
    size = np.count_nonzero(sheet)
    if size < PAGE_SOLID * _hull_area(sheet[y0 : y1 + 1, x0 : x1 + 1]):
        return None
    if pieces.area[i] < PAGE_BLANK * size:
        return None  # mostly writing: a light digit (a bold 0 or 8) on a dark ground, its loops
    off = dilate(~sheet)  # the sheet's edge (its shadow, a lighter rim) goes with the surface
    off = np.repeat(np.repeat(off, step, axis=0), step, axis=1)[:h, :w]
    box = (slice(y0 * step, min(h, (y1 + 1) * step)), slice(x0 * step, min(w, (x1 + 1) * step)))
    return Page(box, off[box])


def _hull_area(mask: np.ndarray) -> float:
    """The area of the convex hull of a mask's pixels (as unit squares): the hull of the corners
    of each row's run from its first pixel to its last, by Andrew's monotone chain."""
    rows = np.flatnonzero(mask.any(axis=1))
    first = np.argmax(mask[rows], axis=1)
    last = mask.shape[1] - np.argmax(mask[rows, ::-1], axis=1)  # one past the last pixel
    corners = sorted(
        {
            (x, y)
            for r, a, b in zip(rows.tolist(), first.tolist(), last.tolist(), strict=True)
            for x, y in ((a, r), (a, r + 1), (b, r), (b, r + 1))
        }
    )
    hull = _half_hull(corners)[:-1] + _half_hull(corners[::-1])[:-1]
    xs, ys = np.array(hull, np.float64).T
    return float(abs(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))) / 2)


def _half_hull(points: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """One side of the convex hull of points sorted one way: each point kept only while the
    path turns the same way."""
    out: list[tuple[int, int]] = []
    for x, y in points:
        while len(out) >= 2:
            (ax, ay), (bx, by) = out[-2], out[-1]
            if (bx - ax) * (y - ay) - (by - ay) * (x - ax) > 0:
                break
            out.pop()
        out.append((x, y))
    return out


def _photo_ink(grey: np.ndarray, shadow: bool = True, small: bool = False) -> np.ndarray | None:
    """A photographed digit's strokes, light on black in [0, 1], measured against the local
    paper (:mod:`service.inputs.paper`) and kept only where a piece of writing is
    (:mod:`service.inputs.components`); None when nothing on the page is writing. A sharp
    shadow's edge across the page is divided out first (:mod:`service.inputs.shadow`), unless
    ``shadow`` is false (a sheet cut out of its desk, :func:`_page`, whose edges are no
    shadow's). ``small``: when what would be writing is all smaller than the dust rule keeps,
    but some of it is 3 pixels or more, that ink is raised in :class:`_SmallWriting`."""
    h, w = grey.shape
    shade = shadow_light(grey) if shadow else None
    if shade is not None:  # a sharp shadow's edge across the page: the page without it
        grey = grey / shade
    sample = _coarse(grey)
    dark, middle, light = quantiles(sample, (0.01, 0.5, 0.99))
    cell = cell_side(grey.shape)
    floor = _min_peak(grey.shape)
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
    if _stands_out(peak, sigma, floor):  # the paper again, from the pixels that are not ink
        rough = c > 0.7 * t
        # an icon's few coarse cells leave a shadow in the rough ink, no stroke's core
        if min(h, w) >= FULL_PEAK_SIDE:
            sampled_cell = cell * c.shape[0] // h  # the samples may be every other pixel
            rough = _with_cores(sampled(grey, cell), rough, sampled_cell)
        paper = paper_without_ink(grey, dilate(rough), cell)
        c, sigma = contrast(grey, paper)
        if min(h, w) >= FULL_PEAK_SIDE:
            c = _under_glare(grey, paper, c, sigma, rough, floor)
    else:  # nothing stood out among the samples: the full picture has the last word
        c, sigma = contrast(grey, paper_from_cells(grey, cell))
    peak, high, t = _levels(c, sigma, floor)
    if not _stands_out(peak, sigma, floor):
        return None
    mask = c > t
    if mask.mean() > MAX_INK_SHARE:
        return None
    mask = without_rules(mask)
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


def _under_glare(
    grey: np.ndarray,
    paper: np.ndarray,
    c: np.ndarray,
    sigma: float,
    rough: np.ndarray,
    floor: float,
) -> np.ndarray:
    """The contrast ``c`` with the ink under a specular spot (a glossy page's blown-out glare)
    measured against the spot's own paper. The spot adds light: the ink under it is lifted
    towards white, the paper under its middle is cut off at white, and the paper's estimate,
    a mean over cells, stays below the spot's light; so there the ink's contrast falls under
    the threshold and a loop opens. A spot is a near-white piece clear of the picture's border,
    small, well lighter than the paper around it and fading into it over a halo (a sheet on a
    desk or a lit region ends sharply or reaches the border). Under it the paper is the light
    tail of its own small window where that is not blown out, and the light added (a bump
    fitted to the halo, :func:`_glare_bump`) over the paper around it where it is; the contrast
    is relative to the paper around it, as the light is added, not multiplied. The new ink only
    carries on strokes ``c`` already holds, on a picture whose ink already stands out: every
    other pixel, and every picture without such a spot, keeps ``c`` as it is."""
    h, w = grey.shape
    core = grey >= GLARE_WHITE
    if np.count_nonzero(core) < GLARE_AREA * h * w:
        return c
    peak, _, t = _levels(c, sigma, floor)
    if not _stands_out(peak, sigma, floor):  # a blank page's glare: still nothing written
        return c
    comp = components(core)
    edge = (comp.y0 == 0) | (comp.x0 == 0) | (comp.y1 == h - 1) | (comp.x1 == w - 1)
    spots = ~edge & (comp.area >= GLARE_AREA * h * w) & (comp.area <= GLARE_MAX_AREA * h * w)
    if not spots.any():
        return c
    scale = grey.shape[0] / rough.shape[0]
    size = max(3, int(GLARE_WINDOW * stroke_width(rough) * scale) | 1) if rough.any() else 5
    light = -_max_filter(-_max_filter(grey, size), size)  # the paper's light tail (a closing)
    local = np.maximum(paper, light)
    new = None
    for i in np.flatnonzero(spots):
        sy, sx = comp.y1[i] - comp.y0[i] + 1, comp.x1[i] - comp.x0[i] + 1
        y0, y1 = max(comp.y0[i] - sy, 0), min(comp.y1[i] + sy, h - 1)
        x0, x1 = max(comp.x0[i] - sx, 0), min(comp.x1[i] + sx, w - 1)
        box = (slice(y0, y1 + 1), slice(x0, x1 + 1))
        rim = (paper[y0, x0 : x1 + 1], paper[y1, x0 : x1 + 1], paper[box][:, 0], paper[box][:, -1])
        ref = quantile(np.concatenate(rim), 0.5)  # the paper around the spot
        if ref > GLARE_WHITE - GLARE_STEP:
            continue
        lit = light[box] > ref + GLARE_MARGIN
        halo = lit & (light[box] < GLARE_WHITE)
        if np.count_nonzero(halo) < GLARE_HALO * comp.area[i]:
            continue
        added = _glare_bump(light[box], halo, ref)
        blown = local[box] >= GLARE_WHITE
        spot_paper = np.where(blown, np.maximum(ref + added, local[box]), local[box])
        raw = np.clip((spot_paper - grey[box]) / max(ref, 1.0), 0.0, 1.0)
        raw[grey[box] >= GLARE_WHITE] = 0.0  # blown out: nothing of the ink is left
        zone = lit | (added > GLARE_MARGIN)
        if new is None:
            new = c.copy()
        sub = new[box]
        sub[zone] = np.maximum(sub[zone], box_blur(raw)[zone])  # as smooth as grain leaves c
    if new is None:
        return c
    # the pieces of the new ink that hold some of the old (a stroke carried on under the spot;
    # not a rule's stretch or the paper's grain under it), with their edges
    comp = components(new > t)
    if not comp.n:
        return c
    held = comp.sums(c > t) > 0
    if not held.any():
        return c
    return np.where(dilate(comp.mask(held, (h, w))), new, c)


def _glare_bump(light: np.ndarray, halo: np.ndarray, ref: float) -> np.ndarray:
    """The light a specular spot adds over a box around it: a smooth bump (a quadratic in its
    logarithm, a Gaussian's shape) fitted by least squares to the lift of the paper's light
    tail ``light`` over the paper around it, ``ref``, on (about :data:`GLARE_FIT` pixels of)
    the spot's ``halo``, and carried on under its blown-out core, at most
    :data:`GLARE_LIFT` times the core's own lift."""
    ys, xs = np.nonzero(halo)
    step = max(1, ys.size // GLARE_FIT)
    ys, xs = ys[::step], xs[::step]
    h, w = light.shape
    my, mx, sc = (h - 1) / 2, (w - 1) / 2, max(h - 1, w - 1) / 2

    def terms(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        yy, xx = (yy - my) / sc, (xx - mx) / sc
        return np.stack([np.ones_like(yy), yy, xx, yy * yy, xx * xx, yy * xx], -1)

    lift = light[ys, xs] - ref
    coef = np.linalg.lstsq(terms(ys.astype(float), xs.astype(float)), np.log(lift), rcond=None)[0]
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    return np.minimum(np.exp(np.minimum(terms(yy, xx) @ coef, 8.0)), GLARE_LIFT * (255.0 - ref))


def _with_cores(grey: np.ndarray, rough: np.ndarray, cell: int) -> np.ndarray:
    """The rough ink with the cores of strokes wider than the paper's cells added (a marker
    across a tight crop): the first estimate takes such a core for paper, so only the stroke's
    rim stands out, around pixels as dark as the rim. A dark piece at least a cell in area,
    about as dark as the rim's ink and enclosed by it (its surround mostly rough ink) is ink;
    the loop of a digit or a shadow, lighter than the ink or bounded by paper, stays paper."""
    if not rough.any():
        return rough
    ink = quantile(grey[rough], 0.5)
    paper = quantile(grey[::2, ::2][~rough[::2, ::2]], 0.5)  # a sample is enough for a level
    dark = (grey < (ink + paper) / 2) & ~rough
    if np.count_nonzero(dark) < cell * cell:
        return rough
    comp = components(dark)
    big = comp.area >= cell * cell
    if not big.any():
        return rough
    # every big piece's pixels at once, labelled 1.., in the picture padded by one pixel: the
    # surround beyond its edges counts as paper (a stroke is cut short by a crop, a region along
    # an edge, a lit or shaded strip, is not enclosed)
    h, w = rough.shape
    runs = big[comp.label]
    lengths = comp.ends[runs] - comp.starts[runs]
    first = (comp.rows[runs] + 1) * (w + 2) + comp.starts[runs] + 1
    pixels = np.repeat(first - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
    owner = np.repeat(comp.label[runs] + 1, lengths)
    labels = np.zeros((h + 2) * (w + 2), np.int64)
    labels[pixels] = owner
    n = comp.n + 1
    # each piece's middle level (nearest rank, as quantile), from its pixels sorted by level
    levels = np.pad(grey, 1).ravel()[pixels]
    order = np.lexsort((levels, owner))
    counts = np.bincount(owner, minlength=n)
    starts = np.cumsum(counts) - counts
    middle = levels[order][
        np.minimum(starts + np.round(0.5 * (counts - 1)).astype(np.int64), len(order) - 1)
    ]
    # each piece's surround: the (pixel, piece) pairs of unlabelled pixels beside it (up, down,
    # left, right, as a dilation reaches); a pixel beside two pieces counts for each
    grid = labels.reshape(h + 2, w + 2)
    pairs = np.concatenate(
        [
            np.flatnonzero((grid == 0) & (nb > 0)) * n + nb[(grid == 0) & (nb > 0)]
            for shift in ((-1, 0), (1, 0), (0, -1), (0, 1))
            for nb in [np.roll(grid, shift, axis=(0, 1))]
        ]
    )
    pairs.sort()  # distinct pairs by a sort (numpy's hash-based unique is slower here)
    ring = pairs[np.concatenate(([True], pairs[1:] != pairs[:-1]))]
    ring_owner = ring % n
    on_rough = np.pad(rough, 1).ravel()[ring // n]
    around = np.bincount(ring_owner, minlength=n)
    rimmed = np.bincount(ring_owner[on_rough], minlength=n)
    core = (
        (counts > 0) & (middle <= ink + CORE_LEVEL * (paper - ink)) & (rimmed >= CORE_RIM * around)
    )
    core[0] = False
    return rough | core[labels].reshape(h + 2, w + 2)[1:-1, 1:-1]


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
    (:func:`_levels`). This estimate only has to find the ink roughly, for the second to leave
    out: it is measured on the pixels the paper's cells are sampled from, a quarter of a large
    picture."""
    c, sigma = contrast(sampled(grey, cell), paper_from_cells(grey, cell, at_samples=True))
    return (c, sigma, *_levels(c, sigma, floor))


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


def _min_peak(shape: tuple[int, ...]) -> float:
    """The least contrast of writing in a picture of this shape: in a small one (an icon) a pen
    stroke is narrower than a pixel, and its contrast shrinks with the share of the pixel it
    covers, so the floor shrinks with the picture's shorter side."""
    return MIN_PEAK * min(1.0, min(shape) / FULL_PEAK_SIDE)


def _stands_out(peak: float, sigma: float, floor: float = MIN_PEAK) -> bool:
    """Whether the strongest ink is contrast enough (at least ``floor``) and clear of the noise
    to be writing."""
    return peak >= floor and peak >= NOISE_K * sigma + 0.02


def _levels(c: np.ndarray, sigma: float, floor: float = MIN_PEAK) -> tuple[float, float, float]:
    """(peak, stroke level, threshold) of a contrast map; the peak is the strongest 2x2 mean,
    so one hot pixel is not a stroke; ``floor`` is the least peak of writing."""
    h, w = (c.shape[0] // 2) * 2, (c.shape[1] // 2) * 2
    quads = c[:h:2, :w:2] + c[1:h:2, :w:2] + c[:h:2, 1:w:2] + c[1:h:2, 1:w:2]
    # the largest sum over 4 is the largest mean (a division by 4 is exact and keeps the order)
    peak = float(quads.max() / 4) if quads.size else float(c.max())
    strong = c[c > peak / 2]
    high = quantile(strong, 0.9) if strong.size else peak
    return peak, high, max(INK_SHARE * high, NOISE_K * sigma, floor / 2)


def _normalise(grey: np.ndarray, fit: Fit, lossy: bool, small: bool = False) -> np.ndarray | None:
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
    (:func:`_photo_ink`).
    """
    if fit == "digit" and not _flat_background(grey, fit):
        page = _page(grey)
        if page is None:
            return _photo_ink(grey, small=small)
        sheet = grey[page.box].copy()  # the surface around it painted with the sheet's light
        paper = paper_without_ink(sheet, page.off, cell_side(sheet.shape))
        sheet[page.off] = paper[page.off]
        try:
            on_page = _photo_ink(sheet, shadow=False, small=small)
        except _SmallWriting as found:
            framed = np.zeros_like(grey)
            framed[page.box] = found.ink
            raise _SmallWriting(framed) from None
        if on_page is None:
            return None
        framed = np.zeros_like(grey)
        framed[page.box] = on_page
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


def _without_frame(ink: np.ndarray) -> np.ndarray:
    """The ink without a frame drawn around the writing (a circle or a box, as on a form or a
    marked answer): a closed piece whose box holds every other piece and whose hole holds
    nearly all their ink, when that ink is as tall as a digit in it would be; or, when the
    writing touches the frame, the outermost band of their one piece (:func:`_peeled`). A loop
    of a 6 or a 0 with a speck or a stray stroke inside stays: what it holds is not that tall."""
    mask = ink > 0
    if not _closed_around(mask):
        return ink
    comp = components(mask)
    outer = int(np.argmax((comp.y1 - comp.y0 + 1) * (comp.x1 - comp.x0 + 1)))
    peeled = _peeled(comp, outer, mask)
    if peeled is not None:
        return ink * ~peeled
    if comp.n < 2:
        return ink
    # what the frame must hold: every piece but specks (dust beside the frame does not count)
    rest = (np.arange(comp.n) != outer) & (comp.area >= FRAME_SPECK * comp.area[outer])
    if not rest.any():
        return ink
    inside = (
        (comp.y0[rest] > comp.y0[outer])
        & (comp.y1[rest] < comp.y1[outer])
        & (comp.x0[rest] > comp.x0[outer])
        & (comp.x1[rest] < comp.x1[outer])
    )
    held = comp.y1[rest].max() - comp.y0[rest].min() + 1
    if not inside.all() or held < FRAME_CONTENT * (comp.y1[outer] - comp.y0[outer] + 1):
        return ink
    keep = np.zeros(comp.n, bool)
    keep[outer] = True
    ring = comp.mask(keep, mask.shape)
    others = comp.mask(rest, mask.shape)
    if np.count_nonzero(others & filled(ring)) < FRAME_INSIDE * np.count_nonzero(others):
        return ink
    return ink * ~dilate(ring)  # with the ring's anti-aliased edge


def _peeled(comp: Components, outer: int, mask: np.ndarray) -> np.ndarray | None:
    """A frame the writing touches, which labelling cannot tell from it: the outermost band of
    the biggest piece, as thick as its strokes where lines across meet it first, when that band
    is closed and what it leaves inside is as tall as a digit in a frame (a 0, 6 or 8 leaves at
    most a crossing) and stands clear of the band (a 0 gone round twice leaves its inner stroke
    along it). Returns the pixels to drop (the band, widened by its anti-aliased edge), or None."""
    keep = np.zeros(comp.n, bool)
    keep[outer] = True
    piece = comp.mask(keep, mask.shape)
    rows = piece[comp.y0[outer] : comp.y1[outer] + 1]
    h = rows.shape[0]
    rows = rows[_inset(h) : h - _inset(h)]
    inked = rows.any(axis=1)
    if not inked.any():
        return None
    rows = rows[inked]
    first = np.argmax(rows, axis=1)  # each line's first inked pixel, and its run's end
    solid = rows | (np.arange(rows.shape[1])[None, :] < first[:, None])
    end = np.where((~solid).any(axis=1), np.argmax(~solid, axis=1), rows.shape[1])
    thickness = max(1, int(np.median(end - first)))
    reach = ~filled(piece)
    for _ in range(thickness + 1):
        reach = dilate(reach)
    band = piece & reach
    inner = mask & ~band
    held = components(inner)  # a digit held is one tall piece, not the ring's ragged inner edge
    if held.n == 0 or (held.y1 - held.y0).max() + 1 < FRAME_CONTENT * h:
        return None
    hole = filled(band) & ~band
    if np.count_nonzero(inner & hole) < FRAME_INSIDE * np.count_nonzero(inner):
        return None
    # a digit in a frame stands clear of it but where it touches; what is left of a 0 whose
    # stroke doubles back inside its ring is that inner stroke, lying along the band
    near = band
    for _ in range(thickness):
        near = dilate(near)
    if np.count_nonzero(near & inner) > FRAME_HUG * np.count_nonzero(inner):
        return None
    # a frame's inside edge faces paper but where the writing touches it; the inner contour
    # of an outlined digit, or what is left of a 0, 6 or 8, runs along it
    zone = near
    for _ in range(thickness + 1):
        zone = dilate(zone)
    zone &= hole
    if np.count_nonzero(zone & inner) > FRAME_NEAR * np.count_nonzero(zone):
        return None
    return dilate(band)


def _inset(side: int) -> int:
    """How far in from each edge of a frame's box, ``side`` pixels long, lines across it are
    looked at (its corners and rounded ends hold no line across)."""
    return side * FRAME_MARGIN_PCT // 100


def _closed_around(mask: np.ndarray) -> bool:
    """Whether a line across the ink's box, and one down it, away from its edges, each meet
    ink three times or more, as lines across a frame and what it holds do (lines across a 0 or
    an 8 meet it twice at most one way): a quick look that spares most pictures the pieces'
    labelling. Every line of the box's inner 70% is looked at, so a thin stroke held anywhere
    in the frame (a "1") is crossed."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size < 3 or cols.size < 3:
        return False
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    dy, dx = _inset(y1 - y0), _inset(x1 - x0)
    across = mask[y0 + dy : y1 - dy, x0:x1]
    if not across.size or _most_runs(across) < 3:
        return False
    down = mask[y0:y1, x0 + dx : x1 - dx].T
    return bool(down.size and _most_runs(down) >= 3)


def _most_runs(lines: np.ndarray) -> int:
    """The most runs of ink along any of ``lines`` (rows of a boolean array)."""
    starts = lines[:, 1:] & ~lines[:, :-1]
    return int((starts.sum(axis=1) + lines[:, 0]).max())


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
    return _max_filter(np.pad(ink, size // 2), size)


def ink_map(
    img: Image.Image,
    fit: Fit = "digit",
    *,
    lossy: bool | None = None,
    work_side: int = WORK_SIDE,
    colour_only: bool = False,
    small: bool = False,
) -> InkMap:
    """The picture's ink at working size, light on black in [0, 1], measured against its
    background (see the module doc), paper noise dropped and contrast stretched; the steps
    every framing shares. A picture with no ink raises :class:`NoInkFound`. ``lossy``
    (default: whether ``img.format`` is JPEG or WebP) marks compression noise; ``work_side`` is the
    longest working side; ``colour_only``: a digit's ink is looked for in the colour channels
    alone (its grey, decoded apart, showed none). ``small``: a photo whose only writing is
    smaller than the dust rule keeps (at least 3 working pixels) returns that writing, marked
    :attr:`InkMap.small`, instead of raising, when its colour channels show no digit either:
    the caller decides whether it is worth a closer look at the file."""
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, not {fit!r}")
    if lossy is None:
        lossy = img.format in LOSSY_FORMATS
    width, height = img.size
    coarse = fit == "item" and _coarse_jpeg(img)
    img = _reduced(img, work_side)
    grey = _grey(img, canvases=fit == "digit")
    h, w = grey.shape
    if max(h, w) > work_side:  # a mode not reduced above (CMYK)
        scale = work_side / max(h, w)
        grey = _resize(grey, max(1, round(w * scale)), max(1, round(h * scale)))
    tiny = None
    # strong compression flattens a fine-grained ground (wood, cloth) into even blocks, so
    # even corners do not tell such a file from a drawing; read as one, its grain becomes ink
    if fit == "item" and (coarse or not _flat_background(grey, fit)):
        ink = item_ink(_colour(img, grey), grey)
    else:
        try:
            ink = None if colour_only else _normalise(grey, fit, lossy, small=small)
        except _SmallWriting as found:
            ink, tiny = None, found.ink
        if ink is None and fit == "digit":
            ink = _coloured_ink(img, grey, lossy)
    if ink is None and tiny is not None:
        return InkMap(tiny, width / tiny.shape[1], height / tiny.shape[0], small=True)
    if ink is None:
        raise NoInkFound(nothing_found(fit))
    return InkMap(ink, width / ink.shape[1], height / ink.shape[0])


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
        ink = _without_frame(ink)
    box = _ink_box(ink)
    if box is None:
        raise NoInkFound(nothing_found(fit))
    if fit == "digit" and (count := _side_by_side(ink, box)) > 1:
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
