"""A frame drawn around the writing (a circle or a box, as on a form or a marked answer), which
is not part of the digit."""

from __future__ import annotations

import numpy as np

from service.inputs.components import Components, components, filled
from service.inputs.paper import dilate

__all__ = ["without_frame"]

# A frame drawn around a digit (see without_frame): what it holds is at least FRAME_CONTENT as
# tall as it, and at least FRAME_INSIDE of that ink lies in its hole
FRAME_CONTENT = 0.35
FRAME_INSIDE = 0.9
FRAME_NEAR = 0.25  # a touching frame's inside edge: at most this share of it is writing
FRAME_HUG = 0.5  # ... and at most this share of the writing lies within a stroke's width of it
# lines across a frame are looked at away from the edges of its box, this percent on each side
FRAME_MARGIN_PCT = 15
FRAME_SPECK = 0.02  # a piece smaller than this share of the frame's ink is a speck, left alone


def without_frame(ink: np.ndarray) -> np.ndarray:
    """The ink without a frame drawn around the writing (a circle or a box, as on a form or a
    marked answer): a closed piece whose box holds every other piece and whose hole holds
    nearly all their ink, when that ink is as tall as a digit in it would be; or, when the
    writing touches the frame, the outermost band of their one piece (:func:`_peeled`). A loop
    of a 6 or a 0 with a speck or a stray stroke inside stays: what it holds is not that tall."""
    mask = ink > 0
    if not _closed_around(mask):
        return ink
    comp = components(mask)
    outer = int(np.argmax(comp.heights * comp.widths))
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
