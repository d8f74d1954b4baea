"""The paper under a photographed digit, and the ink's contrast against it.

The paper's level changes across a photo (uneven light, a shadow, tinted paper), so it is
estimated per cell of a coarse grid and interpolated back to full size:

1. First estimate: each cell's light tail (dark ink is a minority of nearly every cell); a 3x3
   median over the cells replaces cells that ink fills (bold, large strokes) while keeping the
   step of a shadow's edge, which a maximum or a mean would smear.
2. Second estimate, once the ink is roughly known: each cell's mean over the pixels that are not
   ink; cells that ink fills take the mean of their known neighbours, outwards. A stroke more
   than a cell or two wide (a marker across a tight crop) defeats the median: its core is
   taken for paper and only its rim found, so the caller adds the dark cores the rim encloses
   to the rough ink first (``service.inputs.preprocess``).

Contrast is ``(paper - grey) / paper``: light multiplies reflectance, so dividing makes a stroke
under a shadow as strong as one in the light. It is never taken relative to a near-black paper
(the dark end of a gradient), where a few grey levels would become ink.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from service.inputs.components import LONE_OTHER

__all__ = [
    "box_blur",
    "cell_side",
    "contrast",
    "dilate",
    "max_filter",
    "paper_from_cells",
    "paper_without_ink",
    "quantile",
    "quantiles",
    "robust_sigma",
    "sampled",
    "without_rules",
]

CELLS = 15  # about this many cells along the picture's shorter side ...
MIN_CELL = 8  # ... each at least this many pixels
PAPER_QUANTILE = 0.85  # a cell's paper level: its light tail
KNOWN_SHARE = 0.2  # a cell needs this share of non-ink pixels for a level of its own
MIN_PAPER = 64.0  # contrast is never relative to paper darker than this
GRAINY = 0.02  # contrast noise above which a 3x3 mean is taken first
RULE_SHARE = 0.6  # a row or column inked over this share of its length ...
RULE_EDGE = 0.1  # ... with ink this close to both ends is a printed rule ...
# ... unless its band is thicker than this for its length and a stroke ends on it: a printed
# rule is a hair across the page that strokes cross; the bar of a 7 or the base of a 2 across
# a tight crop is a pen's width, and the rest of the digit hangs from it
RULE_THICKNESS = 0.03
RULE_THICKNESS_PX = 2  # (or this many pixels, for icon-sized pictures)
RULE_TILT = 0.09  # rules turned by up to about 5 degrees: a page photographed a little askew
TILT_COLUMNS = 32  # about this many columns are sampled to find the rules' tilt
TILT_STEPS = 24  # tilts tried each way (at most: one pixel of rise over the length apart)
# a page's rules askew come in sets: one long slanted line across a crop (a 7's bar, an
# underline, a frame's edges, a table's edge) is not taken for rules
TILTED_RULES = 3
TILT_MAX_INK = 0.2  # a mask inked more than this all over is texture or noise, not a ruled page


def quantile(values: np.ndarray, q: float) -> float:
    """The q-quantile by nearest rank (np.partition: far cheaper than np.percentile)."""
    return quantiles(values, (q,))[0]


def quantiles(values: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """Several quantiles by nearest rank, with one partition or sort."""
    flat = values.ravel()
    if flat.size == 0:
        return [0.0] * len(qs)
    ks = [min(flat.size - 1, max(0, round(q * (flat.size - 1)))) for q in qs]
    # numpy's vectorised sort beats a partition at several ranks on the few thousand samples
    # this is asked for; at one rank the partition is cheaper
    part = np.partition(flat, ks[0]) if len(ks) == 1 else np.sort(flat)
    return [float(part[k]) for k in ks]


def robust_sigma(values: np.ndarray) -> float:
    """The noise level as 1.4826 x the median absolute deviation (ink does not inflate it)."""
    return 1.4826 * quantile(np.abs(values - quantile(values, 0.5)), 0.5)


def pixel_noise(c: np.ndarray) -> float:
    """The noise sigma of a map from its neighbouring pixels' differences (robust: the edges
    of strokes and printed lines are a minority of pixels, unlike the ink itself in a small
    picture the digit fills)."""
    step = 3 if c.size > 4096 else 1
    d = c[::step, 1:] - c[::step, :-1]
    return 1.4826 * quantile(np.abs(d), 0.5) / 1.4142


def box_blur(arr: np.ndarray) -> np.ndarray:
    """3x3 mean (edges replicated): cuts pixel noise by 3."""
    out = _sum3(_sum3(arr).T).T
    out /= 9.0
    return out


def max_filter(arr: np.ndarray, size: int) -> np.ndarray:
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


def _sum3(arr: np.ndarray) -> np.ndarray:
    """Each row plus its neighbours above and below (edge rows replicated), summed in that order
    (above, own, below) so that rounding is the same everywhere; by slicing, as np.pad copies
    the whole array first."""
    if arr.shape[0] == 1:
        return arr + arr + arr
    out = np.empty_like(arr)
    np.add(arr[:-2], arr[1:-1], out=out[1:-1])
    out[1:-1] += arr[2:]
    out[0] = arr[0] + arr[0] + arr[1]
    out[-1] = arr[-2] + arr[-1] + arr[-1]
    return out


def dilate(mask: np.ndarray) -> np.ndarray:
    """A mask grown by one pixel (4-neighbours)."""
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out


def cell_side(shape: tuple[int, int]) -> int:
    """Cell side in pixels for a picture of this shape."""
    return max(MIN_CELL, round(min(shape) / CELLS))


def _cells(arr: np.ndarray, cell: int) -> tuple[np.ndarray, int, int]:
    """The picture as a grid of about ``cell``-px cells: (ny, nx, ch * cw) values, ch, cw."""
    h, w = arr.shape
    ny, nx = max(1, h // cell), max(1, w // cell)
    ch, cw = h // ny, w // nx
    grid = arr[: ny * ch, : nx * cw].reshape(ny, ch, nx, cw).transpose(0, 2, 1, 3)
    return grid.reshape(ny, nx, ch * cw), ch, cw


@lru_cache(maxsize=256)
def _taps(n: int, cell: int, size: int, first: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """For ``size`` pixels, the lower of the two of ``n`` cell centres (``cell`` px apart) each
    lies between, and its weight on the upper one. Between the outer centres and the picture's
    edges (half a cell) the slope goes on, so light falling off towards a corner is followed
    there too. ``first`` is the first pixel's centre in pixels (less than half of one for a
    sample of every other pixel, whose pixels stand for the full picture's)."""
    u = np.clip((np.arange(size) + first) / cell - 0.5, -0.5, n - 0.5)
    lo = np.clip(np.floor(u).astype(np.int64), 0, max(n - 2, 0))
    frac = (u - lo).astype(np.float32) if n > 1 else np.zeros(size, np.float32)
    return lo, frac


def _upsample(
    levels: np.ndarray, ch: int, cw: int, shape: tuple[int, int], first: float = 0.5
) -> np.ndarray:
    """A cell grid back to full size, linear between cell centres. Columns are interpolated on
    the small grid first, so the full-size work is two gathers of whole rows and two in-place
    operations (gathering single columns of a full-size array cost as much as the rest of the
    estimate); plain array arithmetic, as a matrix product would wake BLAS's threads for a few
    microseconds' work."""
    ny, nx = levels.shape
    levels = levels.astype(np.float32)
    lo, frac = _taps(nx, cw, shape[1], first)
    hi = np.minimum(lo + 1, nx - 1)
    left = levels.take(lo, axis=1)
    cols = left + (levels.take(hi, axis=1) - left) * frac[None, :]  # (ny, width)
    step = np.zeros_like(cols)  # each row's rise to the next (none past the last)
    np.subtract(cols[1:], cols[:-1], out=step[:-1])
    lo, frac = _taps(ny, ch, shape[0], first)
    out = step.take(lo, axis=0)
    out *= frac[:, None]
    out += cols.take(lo, axis=0)
    return out


def _sparse(arr: np.ndarray, cell: int) -> tuple[np.ndarray, int, int]:
    """Every other pixel when cells are large enough (the paper is smooth, and the estimate
    then costs a quarter): the array, its cell side and the step back to full size."""
    if min(arr.shape) >= 8 * cell:
        return arr[::2, ::2], cell // 2, 2
    return arr, cell, 1


def _median(grid: np.ndarray) -> np.ndarray:
    """3x3 median of a small float32 grid: each column's three values sorted, then the median
    of the window is the median of the largest of its three lows, the median of its three
    middles and the smallest of its three highs (exact: a median is one of the window's own
    values, the one a sort would pick). Beyond the edges the grid is extended linearly, not
    replicated: light falling off towards a corner (a vignette) then keeps its corner cells,
    which a replicated edge would replace by their lighter neighbours."""
    ext = _extended(grid, 1)
    up, mid, down = ext[:-2], ext[1:-1], ext[2:]
    lo, hi = np.minimum(up, mid), np.maximum(up, mid)
    mid = np.maximum(lo, np.minimum(hi, down))  # each column's middle, ...
    lo = np.minimum(lo, down)  # ... its low ...
    hi = np.maximum(hi, down)  # ... and its high
    lows = np.maximum(np.maximum(lo[:, :-2], lo[:, 1:-1]), lo[:, 2:])
    highs = np.minimum(np.minimum(hi[:, :-2], hi[:, 1:-1]), hi[:, 2:])
    return _median3(_median3(mid[:, :-2], mid[:, 1:-1], mid[:, 2:]), lows, highs)


def _median3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The middle of three values, elementwise."""
    return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))


def _extended(grid: np.ndarray, r: int) -> np.ndarray:
    """The grid (at least 2x2) with ``r`` cells added on every side, each row and column
    continuing the slope between its edge cell and the next one in."""
    h, w = grid.shape
    out = np.empty((h + 2 * r, w + 2 * r), np.float32)
    out[r : r + h, r : r + w] = grid
    for k in range(1, r + 1):
        out[r - k, r : r + w] = grid[0] + k * (grid[0] - grid[1])
        out[r + h - 1 + k, r : r + w] = grid[-1] + k * (grid[-1] - grid[-2])
    for k in range(1, r + 1):
        out[:, r - k] = out[:, r] + k * (out[:, r] - out[:, r + 1])
        out[:, r + w - 1 + k] = out[:, r + w - 1] + k * (out[:, r + w - 1] - out[:, r + w - 2])
    return out


def sampled(arr: np.ndarray, cell: int) -> np.ndarray:
    """The pixels the paper estimates measure their cells on (every other pixel of a picture
    large enough for ``cell``): a rough ink map at this size is all :func:`paper_without_ink`
    needs."""
    return _sparse(arr, cell)[0]


def paper_from_cells(grey: np.ndarray, cell: int, *, at_samples: bool = False) -> np.ndarray:
    """First estimate: each cell's light tail, a 3x3 median over cells, bilinear; at full size,
    or with ``at_samples`` at the pixels of :func:`sampled` (a quarter of the work when the
    estimate only has to find the ink roughly)."""
    sparse, small, step = _sparse(grey, cell)
    cells, ch, cw = _cells(sparse, small)
    k = round(PAPER_QUANTILE * (cells.shape[2] - 1))
    levels = np.sort(cells, axis=2)[:, :, k]  # cheaper than np.partition for short cells
    if min(levels.shape) >= 3:
        levels = _median(levels)
    if at_samples:  # the same levels as at full size, at the sampled pixels
        return _upsample(levels, ch, cw, sparse.shape, 0.5 / step)
    return _upsample(levels, ch * step, cw * step, grey.shape)


def paper_without_ink(grey: np.ndarray, ink: np.ndarray, cell: int) -> np.ndarray:
    """Second estimate: each cell's mean over its non-ink pixels; filled cells take their
    known neighbours' mean, outwards. ``ink`` is at full size or at :func:`sampled`'s pixels."""
    sparse, small, step = _sparse(grey, cell)
    cells, ch, cw = _cells(sparse, small)
    if ink.shape != sparse.shape:
        ink = ink[::step, ::step]
    free, _, _ = _cells(~ink, small)
    count = free.sum(axis=2)
    level = (cells * free).sum(axis=2) / np.maximum(count, 1.0)
    known = count >= KNOWN_SHARE * cells.shape[2]
    if not known.any():
        return paper_from_cells(grey, cell)
    level = np.where(known, level, 0.0)
    while not known.all():
        n, total = _neighbour_sums(np.stack((known, level * known)))  # both in one pass
        grow = ~known & (n > 0)
        level = np.where(grow, total / np.maximum(n, 1.0), level)
        known = known | grow
    return _upsample(level, ch * step, cw * step, grey.shape)


def _neighbour_sums(grid: np.ndarray) -> np.ndarray:
    """Each cell's sum over its 4 neighbours (none beyond the edges) on the last two axes of
    ``grid`` (a stack of grids is summed at once), by slicing: np.pad costs more than the sums
    on a grid this small."""
    out = np.zeros_like(grid)
    out[..., 1:, :] += grid[..., :-1, :]
    out[..., :-1, :] += grid[..., 1:, :]
    out[..., :, 1:] += grid[..., :, :-1]
    out[..., :, :-1] += grid[..., :, 1:]
    return out


def contrast(grey: np.ndarray, paper: np.ndarray) -> tuple[np.ndarray, float]:
    """Dark ink's contrast against the paper in [0, 1] (3x3-smoothed when grainy), and its
    noise sigma."""
    c = paper - grey  # in place from here: each full-size temporary costs as much as the sums
    c /= np.maximum(paper, MIN_PAPER)
    np.clip(c, 0.0, 1.0, out=c)
    sigma = pixel_noise(c)
    if sigma > GRAINY:  # grain or sensor noise: a 3x3 mean cuts it by three
        c = box_blur(c)
        sigma = pixel_noise(c)
    return c, sigma


def _hangs_from(m: np.ndarray, r0: int, r1: int) -> bool:
    """Whether a stroke ends at rows ``r0``-``r1``: ink that leaves the band on one side, twice
    as far from it as the band is thick (past the band's own ragged edge), with no ink across
    from it on the other side (a 7's stem under its bar, the curve of a 2 over its base, the
    left stroke of a 4 over its crossbar). The strokes of a digit written across a rule go on
    past it."""
    d = 2 * (r1 - r0 + 1)
    h = m.shape[0]
    for near, far, step in ((r0 - d, r1 + d, 1), (r1 + d, r0 - d, -1)):
        if not 0 <= near < h:
            continue
        row = m[near]
        edges = np.flatnonzero(np.diff(np.concatenate(([False], row, [False]))))
        for x0, x1 in zip(edges[0::2], edges[1::2], strict=True):  # each stroke, [x0, x1)
            span = slice(max(0, x0 - d), x1 + d)  # a slanted stroke drifts sideways
            between = m[near:r0, span] if step == 1 else m[r1 + 1 : near + 1, span]
            if not between.any(axis=1).all():  # not joined to the band
                continue
            across = m[far, span] if 0 <= far < h else np.zeros(0, bool)
            if not across.any():
                return True
    return False


def _lone_upright(m: np.ndarray, r0: int, r1: int) -> bool:
    """Whether the upright band at columns ``r0``-``r1`` (rows of the transposed mask ``m``) is
    a "1" cropped tight: clear of the picture's sides (a shadow's edge runs along one), not
    running from its top edge to its bottom one (a printed rule or a shadow band runs off the
    page) and nearly all the ink there is (a rule is one of several, or beside a digit)."""
    if r0 == 0 or r1 == m.shape[0] - 1 or (m[r0 : r1 + 1, 0].any() and m[r0 : r1 + 1, -1].any()):
        return False
    band = np.count_nonzero(m[r0 : r1 + 1])
    return bool(np.count_nonzero(m) - band <= LONE_OTHER * band)


def without_rules(mask: np.ndarray) -> np.ndarray:
    """The mask without printed rules crossing the page: bands of rows (columns) inked over
    most of their length and reaching both edges (a long straight stroke stops short of them).
    A band that is thick for its length where a stroke ends (:func:`_hangs_from`) is a stroke
    across a tight crop (a 7's bar with its stem below, a 2's base, a 4's crossbar), not a
    rule, and stays; the strokes of a digit crossing a rule go on past it. A rule's pixels
    stay only where a stroke passes through it (ink two pixels above and below), so a digit
    crossing a rule is not cut. Rules a little askew (a page photographed at a slant) are
    found along their tilt (:func:`_without_tilted_rules`)."""
    for axis in (0, 1):
        m = mask if axis == 0 else mask.T
        cleaned = _without_row_rules(m, axis)
        if cleaned is None:
            cleaned = _without_tilted_rules(m, axis)
        if cleaned is not None:
            mask = cleaned if axis == 0 else cleaned.T
    return mask


def _without_row_rules(m: np.ndarray, axis: int, paired: bool = False) -> np.ndarray | None:
    """``m`` without the rules along its rows (see :func:`without_rules`), or None when no row
    is one. ``paired``: a rule may run in two neighbouring rows (one turned straight by whole
    pixels), so a row counts with the neighbour that adds most to it."""
    w = m.shape[1]
    edge = max(1, round(RULE_EDGE * w))
    if paired:
        both = np.zeros_like(m)
        both[:-1] = m[:-1] | m[1:]
        counts = np.count_nonzero(both, axis=1)
        rules = counts > RULE_SHARE * w
        rules &= both[:, :edge].any(axis=1) & both[:, -edge:].any(axis=1)
        rules[1:] |= rules[:-1]  # both rows of a pair
    else:
        rules = np.count_nonzero(m, axis=1) > RULE_SHARE * w
        if not rules.any():  # the usual page: no row is inked enough to be a rule
            return None
        rules &= m[:, :edge].any(axis=1) & m[:, -edge:].any(axis=1)
    if not rules.any():
        return None
    m = m.copy()
    idx = np.flatnonzero(rules)
    thin = max(RULE_THICKNESS_PX, RULE_THICKNESS * w)
    bands = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
    for band in bands:
        r0, r1 = int(band[0]), int(band[-1])
        if r1 - r0 + 1 > thin and _hangs_from(m, r0, r1):
            continue
        if axis == 1 and len(bands) == 1 and _lone_upright(m, r0, r1):
            continue
        above = m[r0 - 2] if r0 >= 2 else np.zeros(w, bool)
        below = m[r1 + 2] if r1 + 2 < m.shape[0] else np.zeros(w, bool)
        m[max(0, r0 - 1) : r1 + 2] &= above & below
    return m


def _without_tilted_rules(m: np.ndarray, axis: int) -> np.ndarray | None:
    """``m`` without rules along its rows turned by up to :data:`RULE_TILT` (rise over run), or
    None when there are none. Only a mask with ink near both of its ends can hold one. The tilt
    is the one under which a sample of the columns, each shifted up or down by it, has the most
    ink in one row (over :data:`RULE_SHARE` of them, in at least :data:`TILTED_RULES` bands of
    rows); the mask is sheared by it, its rules taken out as straight ones, and sheared back."""
    h, w = m.shape
    edge = max(1, round(RULE_EDGE * w))
    steps = min(TILT_STEPS, round(RULE_TILT * w))
    if steps < 2 or not (m[:, :edge].any() and m[:, -edge:].any()):
        return None
    if np.count_nonzero(m) > TILT_MAX_INK * m.size:
        return None
    cols = np.arange(0, w, max(1, w // TILT_COLUMNS))
    sample = m[:, cols].copy()
    sample[:-1] |= m[1:, cols]  # a rule turned straight by whole pixels may run in two rows
    rows, at = np.nonzero(sample)
    if rows.size == 0:
        return None
    slopes = np.arange(-steps, steps + 1) * (RULE_TILT / steps)
    centred = cols - (w - 1) / 2
    lift = np.rint(slopes[:, None] * centred[None, :]).astype(np.intp)  # (tilts, columns)
    most = int(np.abs(lift).max())
    span = h + 2 * most
    where = rows[None, :] - lift[:, at] + most + np.arange(len(slopes))[:, None] * span
    counts = np.bincount(where.ravel(), minlength=len(slopes) * span).reshape(-1, span)
    peaks = counts.max(axis=1)
    tied = np.flatnonzero(peaks == peaks.max())  # a thick line fills a row over a range of tilts
    best = int(tied[len(tied) // 2])  # its middle is the line's own
    slope = slopes[best]
    if peaks[best] <= RULE_SHARE * len(cols) or slope == 0:  # straight: the rows have said
        return None
    full = counts[best] > RULE_SHARE * len(cols)
    if np.count_nonzero(full[1:] & ~full[:-1]) + int(full[0]) < TILTED_RULES:
        return None
    lift_all = np.rint(slope * (np.arange(w) - (w - 1) / 2)).astype(np.intp)
    most = int(np.abs(lift_all).max())
    sheared = np.zeros((h + 2 * most, w), bool)
    rr, cc = np.nonzero(m)
    sheared[rr - lift_all[cc] + most, cc] = True
    cleaned = _without_row_rules(sheared, axis, paired=True)
    if cleaned is None:
        return None
    back = np.arange(h)[:, None] - lift_all[None, :] + most
    return cleaned[back, np.arange(w)[None, :]]
