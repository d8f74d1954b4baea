"""Prototype preprocessing for real pictures: photos and drawings -> the models' 28x28 input.

Self-contained (numpy and Pillow only) so it can move into the service as one module::

    x, info = preprocess(image_bytes_or_pil, framing="digit")   # or framing="item"

``x`` is float32 (28, 28) in [0, 1], light on black, as MNIST and Fashion-MNIST are; all zeros
when ``info.ink`` is False ("no ink found": a blank, near-blank, gradient-only or empty textured
page, or noise). ``info`` also gives the ink box in the caller's pixels, the polarity, the
measured contrast and noise, and a reason.

Digits (``framing="digit"``), step by step:

1. Decode small: a JPEG is decoded by libjpeg at 1/2-1/8 scale and straight to grey
   (``Image.draft``); any picture is then box-reduced by a whole factor (``Image.reduce``) and
   resized to a working size of at most ``WORK_SIDE`` px. Transparency is composited on the
   colour that contrasts with the strokes.
2. Polarity: dark ink on light paper when the median is nearer the bright tail than the dark one
   (a photo, a paint program); otherwise light strokes on a dark ground (the demo canvas). The
   picture is flipped so that paper is light.
3. Paper estimate (lighting, shadow, tint): the working image is cut into cells of ``CELL`` px;
   each cell's paper level is its ``PAPER_QUANTILE`` quantile (ink is a minority of nearly every
   cell); a 3x3 median over cells replaces cells that ink fills (thick, large strokes) while
   keeping the step of a shadow's edge, which a max or mean would smear; the grid is
   interpolated bilinearly back to full size.
4. Contrast: ``c = (paper - grey) / paper``. Division rather than subtraction makes ink under a
   shadow as strong as ink in the light, since light multiplies reflectance.
5. Noise and threshold: ``sigma`` is the robust spread (MAD) of ``c``; paper grain and JPEG noise
   live there. When sigma is high a 3x3 mean is taken first. The stroke level ``high`` is the 90th
   percentile of the pixels above half the peak; ink is ``c > t`` with
   ``t = max(INK_SHARE * high, NOISE_K * sigma, MIN_CONTRAST / 2)``. Printed rules (blue, grey)
   are fainter than pen or pencil ink, so most fall below ``t``.
6. Connected components (8-connected, run-length based, vectorised) of the ink mask. Dropped:
   lines (printed rules, squares, a shadow's edge: longer than ``LINE_SPAN`` of the picture's side
   and thin), and specks (smaller than ``SPECK_SHARE`` of the biggest component and outside its
   neighbourhood). Rows or columns inked across most of the width (a rule crossing a stroke)
   are cleared before labelling.
7. No ink: nothing left, what is left is smaller than ``MIN_INK_SIDE`` of the picture, the peak
   contrast is below ``MIN_CONTRAST`` or within ``NOISE_K`` sigmas of the noise, or the mask is
   clutter (noise: many similar components, no dominant one, or ink over a third of the page).
8. MNIST framing: the soft ink ``(c - t/2) / (high - t/2)`` inside the kept components (dilated
   by one pixel so anti-aliased edges stay), cropped to their box; strokes thin for the digit's
   size are thickened; resized so the longer side is 20 px (aspect kept), stretched so the
   strokes reach 1, and pasted into 28x28 with the centre of mass at the centre.

Items (``framing="item"``), Fashion-MNIST's recipe (trim, longer side 28, centre, negate a light
background): the background is a plane fitted to the border ring (light gradients across a
product photo), the item is the signed difference from it in the direction away from the
background (darker than a light ground, lighter than a dark one), measured against the ring's
noise; components as above; cropped, resized to a longer side of 28 and centred; the brightest
item pixel reaches 1.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from PIL import Image

__all__ = ["Framing", "Info", "decode", "preprocess", "preprocess_grey"]

Framing = Literal["digit", "item"]
SIDE = 28  # output frame
BOX = 20  # a digit's longer side inside the frame, as in MNIST
WORK_SIDE = 160  # working resolution (longer side); a 20 px digit needs no more
CELL = 8  # paper-estimate cell, px at working resolution
PAPER_QUANTILE = 0.85  # a cell's paper level: its light tail (strokes are the dark minority)
MIN_PAPER = 64.0  # contrast is relative to the paper, but never to a level darker than this:
# a near-black "paper" (the dark end of a gradient) would turn a few grey levels into ink
MIN_CONTRAST = 0.18  # peak ink contrast (share of the paper's level) below which a page is blank
NOISE_K = 5.0  # ink must stand this many noise sigmas above the paper
INK_SHARE = 0.45  # ink threshold as a share of the strokes' own contrast
LINE_SPAN = 0.8  # a component longer than this share of the picture's side ...
LINE_THICK = 0.06  # ... and thinner than this share of its length is a printed line or an edge
RULE_SHARE = 0.6  # a row / column inked over this share of its length is a printed rule
SPECK_SHARE = 0.08  # components smaller than this share of the biggest are specks ...
NEAR = 0.25  # ... unless within this share of the biggest component's size from it
MIN_INK_SIDE = 0.05  # ink whose box is smaller than this share of the picture is dust
CLUTTER_COMPONENTS = 40  # more components than this, with no dominant one, is noise
MAX_INK_SHARE = 0.35  # more ink than this share of the page is not writing
THIN_STROKE = 0.08  # stroke width / digit size under which strokes are thickened (MNIST 0.1-0.25)


@dataclass
class Info:
    """What the preprocessing found; ``ink`` False means "no digit or item in this picture"."""

    ink: bool
    reason: str
    framing: str
    polarity: str = ""  # dark-on-light | light-on-dark
    box: tuple[int, int, int, int] | None = None  # ink box (x0, y0, x1, y1), caller's pixels
    contrast: float = 0.0  # peak ink contrast (digit: share of paper level; item: grey levels)
    noise: float = 0.0  # robust noise sigma, same unit
    threshold: float = 0.0
    components: int = 0  # ink components kept
    work_size: tuple[int, int] = (0, 0)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------ decoding


def decode(data: bytes | Image.Image, framing: Framing = "digit") -> tuple[np.ndarray, float]:
    """Bytes or a Pillow image -> (grey float32 at working size, scale to the caller's pixels).

    A JPEG is decoded at reduced size (libjpeg's DCT scaling, 1/2 to 1/8) and, for digits,
    straight to grey: a 3000x4000 photo costs a fraction of a full decode.
    """
    img = Image.open(io.BytesIO(data)) if isinstance(data, bytes | bytearray) else data
    full_w = img.width
    if img.format == "JPEG" and max(img.size) > 2 * WORK_SIDE:
        img.draft("L", (WORK_SIDE, WORK_SIDE))
    grey = _grey(img)
    h, w = grey.shape
    if max(h, w) > WORK_SIDE:
        factor = max(h, w) // WORK_SIDE
        small = Image.fromarray(grey)
        if factor >= 2:
            small = small.reduce(factor)
        if max(small.size) > WORK_SIDE:
            s = WORK_SIDE / max(small.size)
            size = (max(1, round(small.width * s)), max(1, round(small.height * s)))
            small = small.resize(size, Image.Resampling.BILINEAR)
        grey = np.asarray(small, np.float32)
    return grey, full_w / grey.shape[1]


def _grey(img: Image.Image) -> np.ndarray:
    """Grey 0-255 float32; transparency composited on the colour contrasting with the strokes."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, np.float32)
        return np.clip(arr * (255.0 / max(float(arr.max(initial=0)), 255.0)), 0, 255)
    if "A" in img.mode or "transparency" in img.info:
        la = np.asarray(img.convert("RGBA").convert("LA"), np.float32)
        grey, alpha = la[..., 0], la[..., 1] / 255.0
        if float(alpha.min(initial=1.0)) < 0.99:
            opaque = alpha > 0.5
            stroke = float(grey[opaque].mean()) if opaque.any() else 0.0
            ground = 255.0 if stroke < 128 else 0.0
            grey = grey * alpha + ground * (1.0 - alpha)
        return grey
    if img.mode != "L":
        img = img.convert("L")
    return np.asarray(img, np.float32)


# ------------------------------------------------------------------ small numpy helpers


def _q(values: np.ndarray, q: float) -> float:
    """Nearest-rank quantile (np.partition: far cheaper than np.percentile)."""
    flat = values.ravel()
    if flat.size == 0:
        return 0.0
    k = min(flat.size - 1, max(0, round(q * (flat.size - 1))))
    return float(np.partition(flat, k)[k])


def _mad_sigma(values: np.ndarray) -> float:
    med = _q(values, 0.5)
    return 1.4826 * _q(np.abs(values - med), 0.5)


def _box3(a: np.ndarray) -> np.ndarray:
    p = np.pad(a, 1, mode="edge")
    r = p[:-2] + p[1:-1] + p[2:]
    return (r[:, :-2] + r[:, 1:-1] + r[:, 2:]) / 9.0


def _dilate(mask: np.ndarray, radius: int = 1) -> np.ndarray:
    out = mask.copy()
    for _ in range(radius):
        p = np.pad(out, 1)
        out = p[1:-1, 1:-1] | p[:-2, 1:-1] | p[2:, 1:-1] | p[1:-1, :-2] | p[1:-1, 2:]
    return out


def _max3(a: np.ndarray) -> np.ndarray:
    p = np.pad(a, 1)
    r = np.maximum(np.maximum(p[:-2], p[1:-1]), p[2:])
    return np.maximum(np.maximum(r[:, :-2], r[:, 1:-1]), r[:, 2:])


def _median3(grid: np.ndarray) -> np.ndarray:
    """3x3 median of a small grid (edges replicated)."""
    p = np.pad(grid, 1, mode="edge")
    h, w = grid.shape
    stack = np.stack([p[i : i + h, j : j + w] for i in range(3) for j in range(3)])
    return np.partition(stack, 4, axis=0)[4]


def _cells(grey: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The picture as a grid of ``CELL``-px cells: (ny, nx, ch * cw) values, ch, cw."""
    h, w = grey.shape
    ny, nx = max(1, h // CELL), max(1, w // CELL)
    ch, cw = h // ny, w // nx
    cells = grey[: ny * ch, : nx * cw].reshape(ny, ch, nx, cw).transpose(0, 2, 1, 3)
    return cells.reshape(ny, nx, ch * cw), ch, cw


def _upsample(levels: np.ndarray, ch: int, cw: int, shape: tuple[int, int]) -> np.ndarray:
    """A cell grid back to full size (bilinear; the uncovered last rows / columns repeat)."""
    ny, nx = levels.shape
    img = Image.fromarray(np.ascontiguousarray(levels, np.float32))
    smooth = np.asarray(img.resize((nx * cw, ny * ch), Image.Resampling.BILINEAR), np.float32)
    if smooth.shape != shape:
        missing = ((0, shape[0] - smooth.shape[0]), (0, shape[1] - smooth.shape[1]))
        smooth = np.pad(smooth, missing, "edge")
    return smooth


def _paper(grey: np.ndarray) -> np.ndarray:
    """First paper estimate: cell quantiles, 3x3 median over cells, bilinear."""
    cells, ch, cw = _cells(grey)
    k = round(PAPER_QUANTILE * (cells.shape[2] - 1))
    levels = np.partition(cells, k, axis=2)[:, :, k]
    if min(levels.shape) >= 3:
        levels = _median3(levels)
    return _upsample(levels, ch, cw, grey.shape)


def _paper_without(grey: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """Second paper estimate: each cell's mean over the pixels that are not ink; cells that ink
    fills (a bold marker) take the mean of their filled neighbours, outwards."""
    cells, ch, cw = _cells(grey)
    free, _, _ = _cells((~ink).astype(np.float32))
    count = free.sum(axis=2)
    level = (cells * free).sum(axis=2) / np.maximum(count, 1.0)
    known = count >= 0.2 * cells.shape[2]
    if not known.any():
        return _paper(grey)
    level = np.where(known, level, 0.0)
    for _ in range(max(level.shape)):
        if known.all():
            break
        pk = np.pad(known.astype(np.float32), 1)
        pl = np.pad(level * known, 1)
        n = pk[:-2, 1:-1] + pk[2:, 1:-1] + pk[1:-1, :-2] + pk[1:-1, 2:]
        total = pl[:-2, 1:-1] + pl[2:, 1:-1] + pl[1:-1, :-2] + pl[1:-1, 2:]
        grow = ~known & (n > 0)
        level = np.where(grow, total / np.maximum(n, 1.0), level)
        known = known | grow
    return _upsample(level, ch, cw, grey.shape)


def _clear_rules(mask: np.ndarray) -> np.ndarray:
    """Printed rules crossing the page: bands of rows (columns) inked over most of their length.
    Only the band's pixels where no stroke passes through it (ink just above and below) go."""
    for axis in (0, 1):
        m = mask if axis == 0 else mask.T
        rules = m.sum(axis=1) > RULE_SHARE * m.shape[1]
        if not rules.any():
            continue
        m = m.copy()
        idx = np.flatnonzero(rules)
        bands = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
        for band in bands:
            r0, r1 = int(band[0]), int(band[-1])
            above = m[r0 - 2] if r0 >= 2 else np.zeros(m.shape[1], bool)
            below = m[r1 + 2] if r1 + 2 < m.shape[0] else np.zeros(m.shape[1], bool)
            through = above & below
            m[max(0, r0 - 1) : r1 + 2] &= through
        mask = m if axis == 0 else m.T
    return mask


# ------------------------------------------------------------------ connected components


@dataclass
class _Components:
    rows: np.ndarray  # per run
    starts: np.ndarray
    ends: np.ndarray  # exclusive
    label: np.ndarray  # per run, 0..n-1
    area: np.ndarray  # per component
    y0: np.ndarray
    y1: np.ndarray  # inclusive
    x0: np.ndarray
    x1: np.ndarray  # inclusive

    @property
    def n(self) -> int:
        return int(self.area.size)

    def mask(self, keep: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """Pixels of the components where ``keep`` is true."""
        sel = keep[self.label]
        edges = np.zeros((shape[0], shape[1] + 1), np.int32)
        np.add.at(edges, (self.rows[sel], self.starts[sel]), 1)
        np.add.at(edges, (self.rows[sel], self.ends[sel]), -1)
        return np.cumsum(edges, axis=1)[:, :-1] > 0


def components(mask: np.ndarray) -> _Components:
    """8-connected components from the mask's horizontal runs, merged with a vectorised
    union-find (hooking plus pointer jumping): no Python loop per pixel or per run."""
    h, w = mask.shape
    padded = np.zeros((h, w + 2), np.int8)
    padded[:, 1:-1] = mask
    d = np.diff(padded, axis=1)
    rows, starts = np.nonzero(d == 1)
    _, ends = np.nonzero(d == -1)
    n_runs = rows.size
    empty = np.zeros(0, np.int64)
    if n_runs == 0:
        return _Components(rows, starts, ends, empty, empty, empty, empty, empty, empty)
    stride = w + 2
    key_s = rows * stride + starts
    key_e = rows * stride + ends
    # runs of the row above that overlap run b (8-connected): s_a <= e_b and e_a >= s_b
    above = rows - 1
    hi = np.searchsorted(key_s, above * stride + ends, side="right")
    lo = np.searchsorted(key_e, above * stride + starts, side="left")
    counts = np.maximum(hi - lo, 0)
    counts[rows == 0] = 0
    b = np.repeat(np.arange(n_runs), counts)
    offsets = np.arange(b.size) - np.repeat(np.cumsum(counts) - counts, counts)
    a = np.repeat(lo, counts) + offsets
    parent = np.arange(n_runs)
    if b.size:
        while True:
            pa, pb = parent[a], parent[b]
            if np.array_equal(pa, pb):
                break
            low = np.minimum(pa, pb)
            np.minimum.at(parent, pa, low)
            np.minimum.at(parent, pb, low)
            while True:  # pointer jumping to the roots
                nxt = parent[parent]
                if np.array_equal(nxt, parent):
                    break
                parent = nxt
    roots, label = np.unique(parent, return_inverse=True)
    n = roots.size
    length = ends - starts
    area = np.bincount(label, weights=length, minlength=n).astype(np.int64)
    y0 = np.full(n, h, np.int64)
    y1 = np.zeros(n, np.int64)
    x0 = np.full(n, w, np.int64)
    x1 = np.zeros(n, np.int64)
    np.minimum.at(y0, label, rows)
    np.maximum.at(y1, label, rows)
    np.minimum.at(x0, label, starts)
    np.maximum.at(x1, label, ends - 1)
    return _Components(rows, starts, ends, label, area, y0, y1, x0, x1)


def _select(comp: _Components, shape: tuple[int, int]) -> tuple[np.ndarray, str]:
    """Which components are the digit or item: not lines, not specks. (keep, reason if none)."""
    h, w = shape
    bh = comp.y1 - comp.y0 + 1
    bw = comp.x1 - comp.x0 + 1
    long_side = np.maximum(bw / w, bh / h)
    length = np.maximum(bw, bh)
    thickness = comp.area / np.maximum(length, 1)
    line = (long_side >= LINE_SPAN) & (thickness <= LINE_THICK * length + 1.5)
    keep = ~line
    if not keep.any():
        return keep, "only lines: printed rules or a shadow's edge"
    biggest = int(np.argmax(np.where(keep, comp.area, -1)))
    big_area = comp.area[biggest]
    big_size = max(bh[biggest], bw[biggest])
    margin = NEAR * big_size
    near = (
        (comp.x1 >= comp.x0[biggest] - margin)
        & (comp.x0 <= comp.x1[biggest] + margin)
        & (comp.y1 >= comp.y0[biggest] - margin)
        & (comp.y0 <= comp.y1[biggest] + margin)
    )
    keep &= (comp.area >= SPECK_SHARE * big_area) | (near & (comp.area >= 2))
    if keep.sum() > CLUTTER_COMPONENTS or (
        comp.n > CLUTTER_COMPONENTS and big_area < 0.3 * comp.area.sum()
    ):
        keep[:] = False
        return keep, "clutter: many small marks and no dominant one (noise, texture)"
    return keep, ""


# ------------------------------------------------------------------ framing


def _fit_digit(ink: np.ndarray) -> np.ndarray:
    """Longer side to 20 px (anti-aliased), strokes stretched to 1, centre of mass at (14, 14)."""
    h, w = ink.shape
    s = BOX / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    img = Image.fromarray(np.ascontiguousarray(ink, np.float32))
    small = np.asarray(img.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0), np.float32)
    small = np.clip(small, 0.0, None)
    top = _q(small[small > 0.05], 0.95) if (small > 0.05).any() else float(small.max())
    small = np.clip(small / max(top, 1e-6), 0.0, 1.0)
    return _paste_com(small)


def _paste_com(digit: np.ndarray) -> np.ndarray:
    h, w = digit.shape
    mass = float(digit.sum())
    out = np.zeros((SIDE, SIDE), np.float32)
    if mass <= 0:
        return out
    cy = float(digit.sum(axis=1) @ np.arange(h)) / mass
    cx = float(digit.sum(axis=0) @ np.arange(w)) / mass
    top, left = round(SIDE / 2 - 0.5 - cy), round(SIDE / 2 - 0.5 - cx)
    y0, y1, x0, x1 = max(top, 0), min(top + h, SIDE), max(left, 0), min(left + w, SIDE)
    out[y0:y1, x0:x1] = digit[y0 - top : y1 - top, x0 - left : x1 - left]
    return out


def _fit_item(item: np.ndarray) -> np.ndarray:
    h, w = item.shape
    s = SIDE / max(h, w)
    size = (max(1, min(SIDE, round(w * s))), max(1, min(SIDE, round(h * s))))
    img = Image.fromarray(np.ascontiguousarray(item, np.float32))
    small = np.clip(np.asarray(img.resize(size, Image.Resampling.BILINEAR), np.float32), 0, 1)
    out = np.zeros((SIDE, SIDE), np.float32)
    top, left = (SIDE - size[1] + 1) // 2, (SIDE - size[0] + 1) // 2
    out[top : top + size[1], left : left + size[0]] = small
    return out


def _stroke_ratio(mask: np.ndarray) -> float:
    """Stroke width (2 x area / boundary length) over the ink's longer side."""
    area = int(mask.sum())
    if area == 0:
        return 0.0
    p = np.pad(mask, 1)
    inner = p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    boundary = area - int(inner.sum())
    return 2.0 * area / max(boundary, 1) / max(mask.shape)


def _box_out(
    y0: int, y1: int, x0: int, x1: int, scale: float, shape: tuple[int, int]
) -> tuple[int, int, int, int]:
    return (
        int(x0 * scale),
        int(y0 * scale),
        min(round((x1 + 1) * scale), round(shape[1] * scale)),
        min(round((y1 + 1) * scale), round(shape[0] * scale)),
    )


def _contrast(grey: np.ndarray, paper: np.ndarray) -> tuple[np.ndarray, float]:
    """Ink contrast against the paper, 3x3-smoothed when grainy, and its noise sigma."""
    c = np.clip((paper - grey) / np.maximum(paper, MIN_PAPER), 0.0, 1.0)
    sigma = _mad_sigma(c[::2, ::2])
    if sigma > 0.02:  # grain or sensor noise: a 3x3 mean cuts it by three
        c = _box3(c)
        sigma = _mad_sigma(c[::2, ::2])
    return c, sigma


def _levels(c: np.ndarray, sigma: float) -> tuple[float, float, float]:
    """(peak, stroke level, threshold) of a contrast map."""
    h, w = c.shape
    hh, ww = (h // 2) * 2, (w // 2) * 2
    quads = (c[:hh:2, :ww:2] + c[1:hh:2, :ww:2] + c[:hh:2, 1:ww:2] + c[1:hh:2, 1:ww:2]) / 4
    peak = float(quads.max()) if quads.size else float(c.max())
    strong = c[c > peak / 2]
    high = _q(strong, 0.9) if strong.size else peak
    return peak, high, max(INK_SHARE * high, NOISE_K * sigma, MIN_CONTRAST / 2)


def _digit(grey: np.ndarray, scale: float) -> tuple[np.ndarray, Info]:
    h, w = grey.shape
    info = Info(False, "", "digit", work_size=(w, h))
    # polarity: the paper is the majority, so the median sits nearer the paper's tail
    sample = grey[:: max(1, h // 48), :: max(1, w // 48)]
    dark, mid, light = _q(sample, 0.01), _q(sample, 0.5), _q(sample, 0.99)
    if mid - dark >= light - mid:
        info.polarity = "dark-on-light"
    else:
        info.polarity = "light-on-dark"
        grey = 255.0 - grey
    paper = _paper(grey)
    c, sigma = _contrast(grey, paper)
    peak, high, t = _levels(c, sigma)
    if peak >= MIN_CONTRAST and peak >= NOISE_K * sigma + 0.02:
        # second pass: the paper again, from the pixels that are not ink
        paper = _paper_without(grey, _dilate(c > 0.7 * t))
        c, sigma = _contrast(grey, paper)
        peak, high, t = _levels(c, sigma)
    info.contrast, info.noise, info.threshold = peak, sigma, t
    if peak < MIN_CONTRAST or peak < NOISE_K * sigma + 0.02:
        info.reason = "nothing stands out from the paper"
        return np.zeros((SIDE, SIDE), np.float32), info
    mask = c > t
    if mask.mean() > MAX_INK_SHARE:
        info.reason = "ink over most of the page: texture or noise, not writing"
        return np.zeros((SIDE, SIDE), np.float32), info
    mask = _clear_rules(mask)
    comp = components(mask)
    if comp.n == 0:
        info.reason = "no ink left after removing printed rules"
        return np.zeros((SIDE, SIDE), np.float32), info
    keep, why = _select(comp, (h, w))
    if not keep.any():
        info.reason = why
        return np.zeros((SIDE, SIDE), np.float32), info
    y0, y1 = int(comp.y0[keep].min()), int(comp.y1[keep].max())
    x0, x1 = int(comp.x0[keep].min()), int(comp.x1[keep].max())
    if max(y1 - y0 + 1, x1 - x0 + 1) < max(2, MIN_INK_SIDE * min(h, w)):
        info.reason = "only dust: the ink is too small to be a digit"
        return np.zeros((SIDE, SIDE), np.float32), info
    info.components = int(keep.sum())
    kept = _dilate(comp.mask(keep, (h, w)))
    low = t / 2
    soft = np.clip((c - low) / max(high - low, 1e-6), 0.0, 1.0) * kept
    ink = soft[y0 : y1 + 1, x0 : x1 + 1]
    ratio = _stroke_ratio(ink > 0.5)
    info.extra["stroke_ratio"] = round(ratio, 4)
    while ratio < THIN_STROKE and max(ink.shape) > BOX:  # a fine pen: towards MNIST's strokes
        ink = _max3(ink)
        ratio += 2.0 / max(ink.shape)
    info.ink, info.reason = True, "ink found"
    info.box = _box_out(y0, y1, x0, x1, scale, (h, w))
    return _fit_digit(ink), info


def _ring(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values, rows and columns of the border ring (4% of the shorter side, at least 1 px)."""
    h, w = a.shape
    b = max(1, round(0.04 * min(h, w)))
    ys, xs = np.mgrid[0:h, 0:w]
    ring = np.zeros((h, w), bool)
    ring[:b], ring[-b:], ring[:, :b], ring[:, -b:] = True, True, True, True
    return a[ring], ys[ring], xs[ring]


def _item(grey: np.ndarray, scale: float) -> tuple[np.ndarray, Info]:
    h, w = grey.shape
    info = Info(False, "", "item", work_size=(w, h))
    vals, ys, xs = _ring(grey)
    # background plane a + b*y + c*x through the ring (light falling across the table), refit
    # on the ring's inliers so an item touching the border does not tilt it
    design = np.stack([np.ones_like(vals), ys / h, xs / w], axis=1).astype(np.float64)
    inl = np.ones(vals.size, bool)
    coef = np.zeros(3)
    for _ in range(3):
        coef = np.linalg.lstsq(design[inl], vals[inl], rcond=None)[0]
        res = vals - design @ coef
        s = max(_mad_sigma(res[inl]), 1.0)
        inl = np.abs(res) < 3 * s
        if inl.sum() < 0.3 * vals.size:
            break
    yy = np.arange(h, dtype=np.float32)[:, None] / h
    xx = np.arange(w, dtype=np.float32)[None, :] / w
    bg = float(coef[0]) + float(coef[1]) * yy + float(coef[2]) * xx
    level = float(np.median(bg))
    info.polarity = "dark-on-light" if level > 127 else "light-on-dark"
    diff = (bg - grey) if level > 127 else (grey - bg)
    sigma = _mad_sigma(vals - (design @ coef))
    if sigma > 2.0:
        diff = _box3(diff)
        sigma /= 2.5
    peak = _q(diff, 0.999)
    info.contrast, info.noise = peak, sigma
    if peak < max(20.0, 6 * sigma):
        info.reason = "nothing stands out from the background"
        return np.zeros((SIDE, SIDE), np.float32), info
    t = max(4 * sigma, 0.08 * peak, 8.0)
    info.threshold = t
    mask = np.abs(diff) > t  # an item may be lighter and darker than the ground in places
    comp = components(mask)
    keep, why = _select(comp, (h, w))
    if not keep.any():
        info.reason = why or "no item"
        return np.zeros((SIDE, SIDE), np.float32), info
    y0, y1 = int(comp.y0[keep].min()), int(comp.y1[keep].max())
    x0, x1 = int(comp.x0[keep].min()), int(comp.x1[keep].max())
    if max(y1 - y0 + 1, x1 - x0 + 1) < max(3, 2 * MIN_INK_SIDE * min(h, w)):
        info.reason = "only specks: too small to be an item"
        return np.zeros((SIDE, SIDE), np.float32), info
    info.components = int(keep.sum())
    kept = _dilate(comp.mask(keep, (h, w)))
    crop = np.clip(diff, 0.0, None)[y0 : y1 + 1, x0 : x1 + 1] * kept[y0 : y1 + 1, x0 : x1 + 1]
    crop = crop / max(_q(crop[crop > t], 0.99) if (crop > t).any() else peak, 1e-6)
    info.ink, info.reason = True, "item found"
    info.box = _box_out(y0, y1, x0, x1, scale, (h, w))
    return _fit_item(np.clip(crop, 0, 1)), info


def preprocess_grey(
    grey: np.ndarray, framing: Framing = "digit", scale: float = 1.0
) -> tuple[np.ndarray, Info]:
    """The same as :func:`preprocess`, from a grey float32 array already at working size."""
    if framing == "digit":
        return _digit(grey, scale)
    if framing == "item":
        return _item(grey, scale)
    raise ValueError(f"framing must be 'digit' or 'item', not {framing!r}")


def preprocess(image: bytes | Image.Image, framing: Framing = "digit") -> tuple[np.ndarray, Info]:
    """A photo or drawing (encoded bytes or a Pillow image) -> (float32 28x28 in [0, 1], Info).

    See the module documentation for the steps. When ``info.ink`` is False the array is all
    zeros and the caller should answer "no digit found" instead of classifying it.
    """
    if framing not in ("digit", "item"):
        raise ValueError(f"framing must be 'digit' or 'item', not {framing!r}")
    grey, scale = decode(image, framing)
    return preprocess_grey(grey, framing, scale)
