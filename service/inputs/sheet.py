"""A sheet of paper photographed lying on a darker surface (a table, a desk): where it is."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from service.inputs.components import components, filled
from service.inputs.levels import FULL_PEAK_SIDE
from service.inputs.paper import dilate, quantile, quantiles

__all__ = ["Page", "hull_area", "sheet_on_desk"]

# A sheet of paper lying on a darker table: a bright, solid region clear of every edge of the
# picture, filling at least PAGE_AREA of it, its surround darker by PAGE_CONTRAST levels
PAGE_AREA = 0.2
PAGE_SOLID = 0.9  # share of its convex hull the sheet fills (a turned rectangle all of it)
PAGE_CONTRAST = 40.0
PAGE_BLANK = 0.8  # share of the sheet that is bare (its holes, the writing, are the rest)
# A page photographed at an angle fills the picture but for the surface beyond its edges, in
# wedges along the border: darker by PAGE_CONTRAST along WEDGE_BORDER of the border at least,
# each wedge reaching a corner and running WEDGE_RUN times as far along the border as it reaches
# in, all of them within WEDGE_AREA of the picture, their rim steep: a step of WEDGE_STEEP of the
# way from the surface to the paper per pixel at least (light falling off into the corners, a
# shadow's soft edge, rise more slowly)
WEDGE_BORDER = 0.05
WEDGE_RUN = 2.5
WEDGE_AREA = 1 / 3
WEDGE_STEEP = 0.2
# A wedge holding a mark darker than itself by a quarter of that step, WEDGE_WRITING of the
# picture's shorter side long (the dust rule's), holds writing: a digit in a corner's shadow
WEDGE_WRITING = 0.04


class Page(NamedTuple):
    """A sheet of paper lying on a darker surface: the sheet's box in the picture, and which
    pixels of the box are off the sheet (the surface around a turned sheet, and its edge)."""

    box: tuple[slice, slice]
    off: np.ndarray


def sheet_on_desk(grey: np.ndarray) -> Page | None:
    """A sheet of paper photographed lying on a darker surface, or None when the picture is not
    one. The surface would otherwise be measured as the paper around the sheet, and the sheet's
    edge read as a heavy frame of ink around a small digit. Only a bright region counts, nearly
    convex (a sheet at any turn; the writing on it is part of it), with the darker surface
    along three of the picture's edges at least and the sheet reaching none of them (it may run
    off the fourth): a page in shadow on one side, or darkening into its corners, has paper
    along more of them. Or a page at an angle that fills the picture but for the surface's
    wedges along its border (:func:`_wedges`)."""
    h, w = grey.shape
    step = max(1, max(h, w) // 64)
    small = grey[::step, ::step]
    sh, sw = small.shape
    # the sheet's level: it covers PAGE_AREA of the picture at least, off the middle perhaps
    paper = quantile(small, 1 - PAGE_AREA / 2)
    sides = (small[0], small[-1], small[:, 0], small[:, -1])  # top, bottom, left, right
    surface = [quantile(side, 0.9) + PAGE_CONTRAST <= paper for side in sides]
    if sum(surface) < 3:  # the paper reaches the picture's edges: a page at an angle at most
        return _wedges(grey, paper)
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
    if size < PAGE_SOLID * hull_area(sheet[y0 : y1 + 1, x0 : x1 + 1]):
        return None
    if pieces.area[i] < PAGE_BLANK * size:
        return None  # mostly writing: a light digit (a bold 0 or 8) on a dark ground, its loops
    off = dilate(~sheet)  # the sheet's edge (its shadow, a lighter rim) goes with the surface
    off = np.repeat(np.repeat(off, step, axis=0), step, axis=1)[:h, :w]
    box = (slice(y0 * step, min(h, (y1 + 1) * step)), slice(x0 * step, min(w, (x1 + 1) * step)))
    return Page(box, off[box])


def hull_area(mask: np.ndarray) -> float:
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


def _wedges(grey: np.ndarray, paper: float) -> Page | None:
    """The surface beyond a page photographed at an angle, or None when the picture shows none:
    wedges along the border, each from a corner of the picture to where the sheet's edge meets
    the border (see :data:`WEDGE_RUN` and the constants beside it). The paper's estimate, made
    of cells, takes a cell that is mostly surface for paper, so a wedge's narrow end and the
    sheet's edge beside it would read as ink, longer than a small digit; a digit running off
    the border is not shallow along it, and a page's light falling off into its corners has no
    steep rim. ``paper`` is the sheet's level."""
    h, w = grey.shape
    if min(h, w) < FULL_PEAK_SIDE:  # an icon: no room for a table beside the writing
        return None
    ring = np.concatenate((grey[0], grey[-1], grey[1:-1, 0], grey[1:-1, -1]))
    dark = ring[ring <= paper - PAGE_CONTRAST]
    if dark.size < WEDGE_BORDER * ring.size:
        return None
    surface = quantile(dark, 0.5)
    step = paper - surface
    pieces = components(grey < surface + step / 2)
    corner = np.zeros(pieces.n, bool)
    for r, c in ((0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1)):
        run = np.flatnonzero((pieces.rows == r) & (pieces.starts <= c) & (pieces.ends > c))
        corner[pieces.label[run]] = True
    bh, bw = pieces.heights, pieces.widths
    level = (pieces.y0 == 0) | (pieces.y1 == h - 1)  # on the top or bottom edge
    upright = (pieces.x0 == 0) | (pieces.x1 == w - 1)  # on the left or right one
    shallow = (level & (bw >= WEDGE_RUN * bh)) | (upright & (bh >= WEDGE_RUN * bw))
    wedge = corner & shallow
    if not wedge.any():
        return None
    off = np.zeros((h, w), bool)
    for i in np.flatnonzero(wedge):  # each in its box
        box = (slice(pieces.y0[i], pieces.y1[i] + 1), slice(pieces.x0[i], pieces.x1[i] + 1))
        across = bool(upright[i] and bh[i] >= WEDGE_RUN * bw[i])
        table = _table_part(pieces.piece(int(i)), across, WEDGE_WRITING * min(h, w))
        if table is None:
            return None
        off[box] |= table
    if off.mean() > WEDGE_AREA:
        return None
    marks = components(off & (grey < surface - step / 4))
    if marks.n and np.maximum(marks.heights, marks.widths).max() >= WEDGE_WRITING * min(h, w):
        return None
    rim = dilate(off) & ~off
    rim[[0, -1]] = rim[:, [0, -1]] = False  # the picture's edge is no rim
    gy, gx = np.gradient(grey)
    if not rim.any() or quantile(np.hypot(gy, gx)[rim], 0.5) < WEDGE_STEEP * step:
        return None
    return Page((slice(0, h), slice(0, w)), dilate(off))


def _table_part(piece: np.ndarray, across: bool, writing: float) -> np.ndarray | None:
    """A wedge's piece without the writing that touches it from the sheet, or None when the
    sheet's edge beside that writing cannot be told. A wedge is the surface from the border to
    the sheet's edge, each of its rows (``across``: it runs down the left or right edge) or
    columns a single run from the border (its holes filled), its reach along the border a
    straight line (the sheet's edge). A digit touching the sheet's edge, as dark as the surface,
    joins its piece, but beside its stroke that touches lies paper, and the rest of it is cut
    off from the border along those lines: such a part ``writing`` pixels long (WEDGE_WRITING of
    the picture's shorter side) is writing, and the wedge is kept to the line of the sheet's edge
    fitted on the rows clear of it. ``piece`` is the piece in its box, on the picture's border."""
    m = filled(piece)
    if not across:
        m = m.T
    flip = bool(m[:, 0].sum() < m[:, -1].sum())
    if flip:
        m = m[:, ::-1]
    anchored = np.cumprod(m, axis=1).astype(bool)
    rest = components(m & ~anchored)
    if not rest.n:
        return piece
    big = np.maximum(rest.heights, rest.widths) >= writing
    if not big.any():
        return piece
    lo, hi = int(rest.y0[big].min()), int(rest.y1[big].max())
    margin = hi - lo + 1  # the digit's strokes that reach the table lie beside the rest of it
    reach = anchored.sum(axis=1)
    ys = np.flatnonzero(reach > 0)
    clear = ys[(ys < lo - margin) | (ys > hi + margin)]
    if clear.size < writing or clear.size < (ys.size + 1) // 2:
        return None
    slope, at0 = np.polyfit(clear, reach[clear], 1)
    edge = slope * np.arange(m.shape[0]) + at0
    table = anchored & (np.arange(m.shape[1])[None, :] < edge[:, None] + 1)
    if flip:
        table = table[:, ::-1]
    return table if across else table.T
