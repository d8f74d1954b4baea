"""Connected pieces of ink in a mask, and which of them are the digit or item.

Labelling is vectorised: the mask's horizontal runs are merged with a union-find done by
hooking and pointer jumping over whole arrays, so a picture costs a few numpy passes and no
Python loop per pixel or per run.

Which pieces to keep: printed lines and a shadow's edge (long and thin) go, specks far from the
main piece go, and a mask of many similar pieces with no dominant one is grain or texture, not
writing, unless they are print beside a digit clear of it (letters all far smaller than it).
A pen lying on the page beside the writing goes too (:func:`bars`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "Components",
    "bars",
    "components",
    "entering",
    "filled",
    "interior",
    "row_runs",
    "select",
    "stroke_width",
]

LINE_SPAN = 0.8  # a piece longer than this share of the picture's side ...
LINE_THICK = 0.06  # ... and thinner than this share of its length is a printed line or an edge,
LINE_BEND = 0.2  # ... when straight: its box no wider across than this share of its length
# (a rule in a photo turned by up to about 11 degrees) and twice its thickness; a digit written
# with a fine pen across a tight crop fills its box both ways
SPECK_SHARE = 0.08  # pieces smaller than this share of the biggest are specks ...
NEAR = 0.25  # ... unless within this share of the biggest piece's size from it
CLUTTER_PIECES = 40  # more pieces than this with no dominant one is noise or texture
DOMINANT_SHARE = 0.3  # the biggest piece holds at least this share of the ink in writing
LONE_OTHER = 0.25  # an upright line with less other ink than this share of its own is a "1"
# Printed text beside the writing is many pieces too, but each letter (or word the print's
# letters join into) is at most this share of the digit's length, ...
TEXT_SMALL = 0.7
# ... and the digit stands clear of it: the other pieces near it hold at most this share of its
# ink (a word of the print, taken for the largest piece, has its letters beside it)
TEXT_ALONE = 0.05
# ... and the largest piece is shaped as a digit, not a signature, a word or a printed logo: no
# wider than this many times its height, ...
TEXT_WIDE = 1.3
# ... and drawn in strokes, not a solid blob (a bright star, a dot): its stroke width at most
# this share of its length
TEXT_STROKE = 0.35
# An object lying on the page (a pen, a pencil): a piece that fills its turned box as a
# straight band with parallel edges does (a hand's stroke wavers), ...
BAR_FILL = 0.94
BAR_WIDTH = 0.25  # ... no wider than this share of its length, ...
BAR_THICKER = 1.6  # ... thicker than the writing's strokes by this much (a drawn line is not)
# or running off the picture at both ends, ...
BAR_LONGER = 1.25  # ... this many times longer than the writing beside it, ...
BAR_WRITING = 0.35  # ... which is at least this share of its length (not a mark beside a "1"), ...
BAR_GAP = 0.1  # ... clear of it by this share of the writing's size ...
BAR_STRENGTH = 0.6  # ... and at least this share of the bar's contrast (not a shadow's rim)
# Something reaching in from the picture's border that is not ink (the table beside a page seen
# at an angle, a finger holding it): a piece on the border, clear of the writing that is clear
# of the border, whose mean contrast is under this share of that writing's. A digit the
# picture's edge cuts is drawn with the same pen as a mark beside it, and is as dark; a
# table's or a finger's shade is far lighter than a pen's ink on the same page
ENTERING_LIGHTER = 0.9
# ... and so does a piece beside one that goes, clear of the border, at most this many times
# as strong as the pieces that go
ENTERING_ALIKE = 1.1
# The writing clear of the border tells what is far lighter only when it is a digit's size, at
# least this share of the picture's shorter side: a small mark clear of it (a tick, a speck, a
# printed word, a date) is no measure of a digit the picture's edge cuts, which may be drawn
# lighter (a pencil digit beside a ballpoint date, a light-blue digit beside printed text) or by
# the same pen 10% lighter (a thinner stroke) ...
ENTERING_WRITING = 0.15
# ... unless the piece is no stroke at all: strokes this many times as wide as the writing's (a
# finger's blob), ...
ENTERING_BROAD = 5.0
# ... or a sliver along the border: a run of it on the picture's edge line this many times as
# long as the piece reaches in from that edge, and longer than the writing (the narrow end of a
# table's wedge, which runs along the sheet's edge; a digit the edge cuts crosses it with its
# strokes, or is cut along one stroke with the rest of it further in)
ENTERING_SLIVER = 2.5
# A piece on the writing's line, as tall as it (within this factor either way) and level with it
# (most of its height beside the writing's), is the end of a number the picture's edge cuts
ENTERING_LEVEL = 1.5


@dataclass(frozen=True)
class Components:
    """8-connected pieces of a mask, kept as its horizontal runs and per-piece boxes."""

    rows: np.ndarray  # per run
    starts: np.ndarray
    ends: np.ndarray  # exclusive
    label: np.ndarray  # per run: its piece, 0..n-1
    area: np.ndarray  # per piece
    y0: np.ndarray
    y1: np.ndarray  # inclusive
    x0: np.ndarray
    x1: np.ndarray  # inclusive

    @property
    def n(self) -> int:
        return int(self.area.size)

    @property
    def heights(self) -> np.ndarray:
        """Per piece, its box's height in pixels."""
        return self.y1 - self.y0 + 1

    @property
    def widths(self) -> np.ndarray:
        """Per piece, its box's width in pixels."""
        return self.x1 - self.x0 + 1

    def mask(self, keep: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """The pixels of the pieces where ``keep`` is true."""
        sel = keep[self.label]
        return _painted(self.rows[sel], self.starts[sel], self.ends[sel], shape)

    def piece(self, i: int) -> np.ndarray:
        """Piece ``i``'s pixels in its box (rows ``y0[i]`` to ``y1[i]``, columns ``x0[i]`` to
        ``x1[i]``)."""
        sel = self.label == i
        y0, x0 = self.y0[i], self.x0[i]
        box = (int(self.y1[i] - y0 + 1), int(self.x1[i] - x0 + 1))
        return _painted(self.rows[sel] - y0, self.starts[sel] - x0, self.ends[sel] - x0, box)

    def sums(self, values: np.ndarray) -> np.ndarray:
        """Per piece, the sum of ``values`` (an array of the mask's shape) over its pixels."""
        cumulative = np.zeros((values.shape[0], values.shape[1] + 1), np.float64)
        np.cumsum(values, axis=1, out=cumulative[:, 1:])
        runs = cumulative[self.rows, self.ends] - cumulative[self.rows, self.starts]
        return np.bincount(self.label, weights=runs, minlength=self.n)


def _painted(
    rows: np.ndarray, starts: np.ndarray, ends: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
    """A mask of ``shape`` holding the runs ``[starts, ends)`` on ``rows``."""
    edges = np.zeros((shape[0], shape[1] + 1), np.int32)
    np.add.at(edges, (rows, starts), 1)
    np.add.at(edges, (rows, ends), -1)
    return np.cumsum(edges, axis=1)[:, :-1] > 0


def _roots(parent: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Union of the run pairs (a[i], b[i]): every run pointed at its set's smallest run."""
    while a.size:
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
    return parent


def row_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The runs of a boolean mask along its rows, in the mask's pixels' order: each run's row,
    start and end (exclusive)."""
    h, w = mask.shape
    stride = w + 2
    padded = np.zeros((h, stride), bool)  # a blank column each side: runs end in their row
    padded[:, 1:-1] = mask
    flat = padded.ravel()
    # every change of value, alternately a run's start and its end (each row starts and ends
    # blank): one comparison and one search instead of a difference and two
    changes = np.flatnonzero(flat[1:] != flat[:-1])
    rows, starts = np.divmod(changes[0::2], stride)
    return rows, starts, changes[1::2] - rows * stride


def components(mask: np.ndarray) -> Components:
    """The 8-connected pieces of a boolean mask."""
    w = mask.shape[1]
    stride = w + 2  # the runs' keys: a row's runs never meet the next row's
    rows, starts, ends = row_runs(mask)
    n_runs = rows.size
    if n_runs == 0:
        empty = np.zeros(0, np.int64)
        return Components(rows, starts, ends, empty, empty, empty, empty, empty, empty)
    key_s = rows * stride + starts
    key_e = rows * stride + ends
    # the runs of the row above that touch run b (diagonals included): s_a <= e_b, e_a >= s_b
    above = rows - 1
    hi = np.searchsorted(key_s, above * stride + ends, side="right")
    lo = np.searchsorted(key_e, above * stride + starts, side="left")
    counts = np.maximum(hi - lo, 0)
    counts[rows == 0] = 0
    b = np.repeat(np.arange(n_runs), counts)
    offsets = np.arange(b.size) - np.repeat(np.cumsum(counts) - counts, counts)
    a = np.repeat(lo, counts) + offsets
    parent = _roots(np.arange(n_runs), a, b)
    # each set's root is its smallest run, so the roots are the runs that are their own parent,
    # numbered in order (as np.unique would, without its sort); runs go row by row, so a piece's
    # top row is its root's
    is_root = parent == np.arange(n_runs)
    roots = np.flatnonzero(is_root)
    label = (np.cumsum(is_root) - 1)[parent]
    n = roots.size
    area = np.bincount(label, weights=ends - starts, minlength=n).astype(np.int64)
    y0, y1 = rows[roots], np.zeros(n, np.int64)
    x0, x1 = np.full(n, w, np.int64), np.zeros(n, np.int64)
    np.maximum.at(y1, label, rows)
    np.minimum.at(x0, label, starts)
    np.maximum.at(x1, label, ends - 1)
    return Components(rows, starts, ends, label, area, y0, y1, x0, x1)


def _lone_one(comp: Components, line: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The line that is a "1" across a tight crop: upright, the only line, clear of the picture's
    sides and not running from its top edge to its bottom one (a printed rule runs off the
    page), with little other ink (less than ``LONE_OTHER`` of its own)."""
    out = np.zeros_like(line)
    if np.count_nonzero(line) != 1:
        return out
    k = int(np.flatnonzero(line)[0])
    h, w = shape
    upright = comp.y1[k] - comp.y0[k] >= comp.x1[k] - comp.x0[k]
    clear = comp.x0[k] > 0 and comp.x1[k] < w - 1 and not (comp.y0[k] == 0 and comp.y1[k] == h - 1)
    if upright and clear and comp.area.sum() - comp.area[k] <= LONE_OTHER * comp.area[k]:
        out[k] = True
    return out


def select(comp: Components, shape: tuple[int, int], aside: np.ndarray | None = None) -> np.ndarray:
    """Which pieces are the digit or item (bool per piece; none when the mask is clutter).
    ``aside``: pieces known not to be writing (:func:`entering`), left out before the largest
    piece is chosen, so that the writing is not taken for a speck beside them."""
    h, w = shape
    bh, bw = comp.heights, comp.widths
    length = np.maximum(bw, bh)
    thickness = comp.area / np.maximum(length, 1)
    across = np.minimum(bw, bh)
    line = (
        (np.maximum(bw / w, bh / h) >= LINE_SPAN)
        & (thickness <= LINE_THICK * length + 1.5)
        & (across <= LINE_BEND * length + 2 * thickness)
    )
    keep = ~line | _lone_one(comp, line, (h, w))
    if aside is not None:
        keep &= ~aside
    if not keep.any():
        return keep
    biggest = int(np.argmax(np.where(keep, comp.area, -1)))
    margin = NEAR * max(bh[biggest], bw[biggest])
    near = (
        (comp.x1 >= comp.x0[biggest] - margin)
        & (comp.x0 <= comp.x1[biggest] + margin)
        & (comp.y1 >= comp.y0[biggest] - margin)
        & (comp.y0 <= comp.y1[biggest] + margin)
    )
    keep &= (comp.area >= SPECK_SHARE * comp.area[biggest]) | (near & (comp.area >= 2))
    clutter = comp.n > CLUTTER_PIECES and comp.area[biggest] < DOMINANT_SHARE * comp.area.sum()
    if clutter and _print_beside(comp, keep, near, biggest, length, (h, w)):
        keep &= near  # the print away from the writing is not writing
        clutter = False
    if not clutter and keep.sum() > CLUTTER_PIECES:
        # a dominant piece among many small ones near it (dots or a print on the ground): the
        # small ones are the ground's, not the writing's or the item's
        keep &= comp.area >= SPECK_SHARE * comp.area[biggest]
    if clutter or keep.sum() > CLUTTER_PIECES:
        keep[:] = False
    return keep


def _print_beside(
    comp: Components,
    keep: np.ndarray,
    near: np.ndarray,
    biggest: int,
    length: np.ndarray,
    shape: tuple[int, int],
) -> bool:
    """Whether the many pieces beside the largest are print and it is the writing: the kept
    pieces away from it are all far smaller (:data:`TEXT_SMALL`) and those near it hold little
    ink beside its own (:data:`TEXT_ALONE`). Grain or a texture has pieces of every size, and a
    page of print alone has a word's letters beside its largest word."""
    far = keep & ~near
    if np.any(length[far] > TEXT_SMALL * length[biggest]):
        return False
    bh, bw = comp.heights[biggest], comp.widths[biggest]
    if bw > TEXT_WIDE * bh:
        return False
    one = np.zeros(comp.n, bool)
    one[biggest] = True
    if stroke_width(comp.mask(one, shape)) > TEXT_STROKE * length[biggest]:
        return False
    around = comp.area[keep & near].sum() - comp.area[biggest]
    return bool(around <= TEXT_ALONE * comp.area[biggest])


def entering(comp: Components, contrast: np.ndarray, least: float) -> np.ndarray:
    """Which pieces reach in from the picture's border and are no ink (bool per piece): the
    table beside a page photographed at an angle, a finger holding it. The writing is the
    largest piece clear of the border at least ``least`` pixels long (the dust rule's); a piece
    on the border clear of it goes when it is far lighter than that writing (see
    :data:`ENTERING_LIGHTER`), and so does a piece as light beside one that goes (within its
    length; :data:`ENTERING_ALIKE`). Beside writing smaller than a digit only a broad blob or a
    sliver along the border goes (:data:`ENTERING_WRITING`, :data:`ENTERING_BROAD`,
    :data:`ENTERING_SLIVER`), and a piece level with the writing and as tall stays (the end of a
    number; :data:`ENTERING_LEVEL`). ``contrast`` is the ink's contrast per pixel."""
    out = np.zeros(comp.n, bool)
    h, w = contrast.shape
    edge = (comp.y0 == 0) | (comp.x0 == 0) | (comp.y1 == h - 1) | (comp.x1 == w - 1)
    bh, bw = comp.heights, comp.widths
    clear = ~edge & (np.maximum(bh, bw) >= least)
    if not edge.any() or not clear.any():
        return out
    k = int(np.flatnonzero(clear)[np.argmax(comp.area[clear])])
    # clear of the writing: no pixel within NEAR of its size around its box (an L-shaped
    # table along two edges has its box around the writing)
    margin = NEAR * max(bh[k], bw[k])
    runs = (
        (comp.rows >= comp.y0[k] - margin)
        & (comp.rows <= comp.y1[k] + margin)
        & (comp.starts <= comp.x1[k] + margin)
        & (comp.ends > comp.x0[k] - margin)
    )
    far = np.bincount(comp.label[runs], minlength=comp.n) == 0
    strength = comp.sums(contrast) / np.maximum(comp.area, 1)
    lighter = far & (strength < ENTERING_LIGHTER * strength[k])
    light = lighter
    if max(bh[k], bw[k]) < ENTERING_WRITING * min(h, w):
        # each piece's stroke width, as stroke_width measures a mask's
        inner = interior(comp.mask(np.ones(comp.n, bool), (h, w)))
        width = 2 * comp.area / np.maximum(comp.area - comp.sums(inner.astype(np.float64)), 1)
        sliver = _along_border(comp, (h, w), max(bh[k], bw[k]))
        light = lighter & ((width >= ENTERING_BROAD * width[k]) | sliver)
    overlap = np.minimum(comp.y1, comp.y1[k]) - np.maximum(comp.y0, comp.y0[k]) + 1
    level = (
        (bh <= ENTERING_LEVEL * bh[k])
        & (bh * ENTERING_LEVEL >= bh[k])
        & (overlap >= 0.5 * np.maximum(bh, 1))
    )
    out = edge & light & ~level
    if out.any():
        # the sheet's edge goes on beyond the table's wedge, where the paper's estimate finds
        # its step in slivers clear of the border: within the wedge's length, and as light
        # as it (writing there, a digit of a number beside a vignette's corner, is darker)
        gone = np.flatnonzero(out)
        reach = np.maximum(bh[gone], bw[gone])
        beside = (
            (comp.x1[:, None] >= comp.x0[gone] - reach)
            & (comp.x0[:, None] <= comp.x1[gone] + reach)
            & (comp.y1[:, None] >= comp.y0[gone] - reach)
            & (comp.y0[:, None] <= comp.y1[gone] + reach)
        ).any(axis=1)
        out |= lighter & beside & (strength <= ENTERING_ALIKE * strength[gone].max())
    return out


def _along_border(comp: Components, shape: tuple[int, int], least: float) -> np.ndarray:
    """Which pieces lie along the picture's border as a sliver (bool per piece): on one of its
    edge lines a run at least :data:`ENTERING_SLIVER` times as long as the piece reaches in
    from that edge, and at least ``least`` pixels long (the writing's length: a stroke's tip
    that the edge cuts is shorter)."""
    h, w = shape
    bh, bw = comp.heights, comp.widths
    out = np.zeros(comp.n, bool)
    # the top and bottom lines: the mask's runs there are the pieces' runs along them
    for row in (0, h - 1):
        on = comp.rows == row
        run = np.zeros(comp.n, np.int64)
        np.maximum.at(run, comp.label[on], comp.ends[on] - comp.starts[on])
        out |= (run >= ENTERING_SLIVER * bh) & (run >= least)
    # the left and right lines: each row's run that starts or ends there, by piece, in rows
    # that follow each other
    for on in (comp.starts == 0, comp.ends == w):
        column = np.full(h + 2, -1, np.int64)
        column[comp.rows[on] + 1] = comp.label[on]
        change = np.flatnonzero(column[1:] != column[:-1])  # the row before each stretch
        lengths = np.diff(change)
        labels = column[change[:-1] + 1]
        inked = labels >= 0
        run = np.zeros(comp.n, np.int64)
        np.maximum.at(run, labels[inked], lengths[inked])
        out |= (run >= ENTERING_SLIVER * bw) & (run >= least)
    return out


def _shapes(
    comp: Components,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each piece's length and width along its own axes (those of a solid band with the same
    second moments), its centre (x, y) and its axis' angle, from the runs' sums."""
    n = comp.n
    s = comp.starts.astype(np.float64)
    e = comp.ends.astype(np.float64) - 1.0  # the run's last column
    r = comp.rows.astype(np.float64)
    count = e - s + 1.0
    sum_x = count * (s + e) / 2.0
    sum_xx = (e * (e + 1) * (2 * e + 1) - (s - 1) * s * (2 * s - 1)) / 6.0
    area = np.bincount(comp.label, count, n)
    mx = np.bincount(comp.label, sum_x, n) / area
    my = np.bincount(comp.label, count * r, n) / area
    # a pixel is a unit square: its own variance (1/12) each way
    vxx = np.bincount(comp.label, sum_xx, n) / area - mx * mx + 1.0 / 12.0
    vyy = np.bincount(comp.label, count * r * r, n) / area - my * my + 1.0 / 12.0
    vxy = np.bincount(comp.label, r * sum_x, n) / area - mx * my
    half = (vxx + vyy) / 2.0
    spread = np.sqrt(np.maximum(half * half - (vxx * vyy - vxy * vxy), 0.0))
    length = np.sqrt(12.0 * (half + spread))
    width = np.sqrt(12.0 * np.maximum(half - spread, 0.0))
    return length, width, mx, my, 0.5 * np.arctan2(2.0 * vxy, vxx - vyy)


def bars(comp: Components, keep: np.ndarray, contrast: np.ndarray) -> np.ndarray:
    """Which kept pieces are an object lying on the page beside the writing (a pen, a pencil):
    a straight band with parallel edges (a hand's stroke wavers), thicker than the writing's
    strokes or running off the picture at both ends, longer than the writing beside it and
    clear of it; the writing is as strong as the band, not a faint rim, and not
    in line with it (a stroke broken by glare). A "1" beside a small mark stays: the writing
    must be a fair share of the band's length. ``contrast`` is the ink's contrast per pixel."""
    out = np.zeros_like(keep)
    if np.count_nonzero(keep) < 2:
        return out
    length, width, mx, my, angle = _shapes(comp)
    band = keep & (comp.area >= BAR_FILL * length * width) & (width <= BAR_WIDTH * length)
    writing = keep & ~band
    if not band.any() or not writing.any():
        return out
    h, w = contrast.shape
    edge = (comp.y0 == 0) | (comp.x0 == 0) | (comp.y1 == h - 1) | (comp.x1 == w - 1)
    biggest = int(np.flatnonzero(writing)[np.argmax(comp.area[writing])])
    if edge[biggest]:  # writing runs off a tight crop: no room for a pen beside it
        return out
    writing_mask = comp.mask(writing, (h, w))
    ys, xs = np.nonzero(writing_mask)
    size = max(int(ys.max() - ys.min()), int(xs.max() - xs.min())) + 1
    totals = comp.sums(contrast)
    writing_strength = totals[writing].sum() / comp.area[writing].sum()  # mean contrast
    stroke = stroke_width(writing_mask)
    for k in np.flatnonzero(band):
        cos, sin = np.cos(angle[k]), np.sin(angle[k])
        thick = width[k] >= BAR_THICKER * stroke
        if not (thick or _runs_off(mx[k], my[k], cos, sin, length[k], width[k], (h, w))):
            continue
        if not size * BAR_LONGER <= length[k] <= size / BAR_WRITING:
            continue
        along = np.abs((xs - mx[k]) * cos + (ys - my[k]) * sin)
        across = np.abs((ys - my[k]) * cos - (xs - mx[k]) * sin)
        if np.mean(across <= width[k]) >= 0.5:  # the writing goes on along the band
            continue
        gap = np.hypot(
            np.maximum(along - length[k] / 2, 0.0), np.maximum(across - width[k] / 2, 0.0)
        ).min()
        if gap < BAR_GAP * size:
            continue
        out[k] = writing_strength >= BAR_STRENGTH * totals[k] / comp.area[k]
    return out


def _runs_off(
    x: float, y: float, cos: float, sin: float, length: float, width: float, shape: tuple[int, int]
) -> bool:
    """Whether a band centred at ``(x, y)`` along ``(cos, sin)`` reaches the picture's border
    at both its ends: an object longer than the picture (a stroke of the writing, clear of the
    edges as the rest of it is, ends inside)."""
    h, w = shape
    reach = width / 2 + 2
    for end in (-0.5, 0.5):
        ex, ey = x + end * length * cos, y + end * length * sin
        if min(ex, ey, w - 1 - ex, h - 1 - ey) > reach:
            return False
    return True


def interior(mask: np.ndarray) -> np.ndarray:
    """The pixels of ``mask`` whose four neighbours are in it too (the rest is its boundary;
    the picture's edge is outside)."""
    inner = np.zeros_like(mask)
    inner[1:-1, 1:-1] = (
        mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    )
    return inner


def stroke_width(mask: np.ndarray) -> float:
    """The strokes' mean width: twice the area over the boundary's length (in pixels)."""
    area = int(np.count_nonzero(mask))
    return 2.0 * area / max(area - int(np.count_nonzero(interior(mask))), 1)


def filled(mask: np.ndarray) -> np.ndarray:
    """The mask with its holes filled: the unmasked pieces that do not touch the border."""
    comp = components(~mask)
    if comp.n == 0:
        return mask
    h, w = mask.shape
    outside = (comp.y0 == 0) | (comp.x0 == 0) | (comp.y1 == h - 1) | (comp.x1 == w - 1)
    if outside.all():
        return mask
    return mask | comp.mask(~outside, (h, w))
