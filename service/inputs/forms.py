"""The printed lines of a form around handwriting: a row of boxes (one digit each), a comb's
ticks, an underline, a long box around a number or a table cell's sides.

Such lines are straight, thin for their length and held level or upright, which a handwritten
stroke hardly ever is, but a box's side is no longer than a digit, so straightness alone would
take a flat "7"'s bar or an upright "1" for one too. A line counts as printed only where it
belongs to a printed shape: an upright line as tall as the writing whose both ends meet level
lines (a box's side; a digit's own short straight pieces meet at corners too, as in a "0" drawn
square), a level line whose both ends meet such sides (a box's top or bottom), a level line that
upright lines touch (a comb's ticks, those of one height then printed too), or a line much
longer than the writing is tall (an underline, a long box, a table's rule). Its pixels are
dropped, but where a stroke crosses it.

A row of boxes or a comb as wide as the page has its level lines taken out with the page's
rules already (:func:`service.inputs.paper.without_rules`): those rules are looked at with the
ink, so that the sides and ticks left standing between them are known as printed too (a rule is
not taken out again, and an upright rule, a squared page's, is no box's side or comb's tick).

Digits filling their boxes lie along the lines over most of their length: a line's thickness is
that of its bare columns, and a few columns whose middle a stroke's end moves do not make it a
wavering stroke.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from service.inputs.components import components, row_runs
from service.inputs.paper import dilate

__all__ = ["without_form_lines"]

# A straight line: runs of ink along rows (columns) at least LINE_RUN of the picture's shorter
# side long (and LINE_RUN_PX), whose piece is at least LINE_RATIO times as long as it is thick
LINE_RUN = 0.04
LINE_RUN_PX = 6
LINE_RATIO = 8.0
LINE_TILT = 0.1  # and that rises or falls at most this much along its length (about 6 degrees)
COMB_TICKS = 3  # a level line that this many upright lines stand on or hang from is a comb's
TOUCH = 3  # ... ending at most this many rows (less one) clear of it
TICK_ALIKE = 0.25  # ... and those of them within this share of their median height are ticks
LONG_LINE = 2.0  # a line this many times as long as the tallest writing is printed
BOX_SIDE = 0.8  # a box's side is at least this share of the tallest writing's height
INK_LEVEL = 0.25  # ink at this level or more is looked at (a faint printed line too)
# a line's thickness: this percentile of its columns' ink, else their median (see _lines)
LINE_QUANTILE = 25
# and whose thin columns' middles keep to a fitted line, but for this share of them (a stroke
# ending on the line shifts a column's middle without thickening it)
LINE_OFF = 0.05


class Line(NamedTuple):
    """A straight piece along rows (``x0``-``x1`` its length, ``y0``-``y1`` its band of rows,
    inclusive; for an upright line, of the transposed mask) and its mean thickness."""

    y0: int
    y1: int
    x0: int
    x1: int
    thickness: float


def without_form_lines(ink: np.ndarray, rules: np.ndarray | None = None) -> np.ndarray:
    """``ink`` (light on black) without a form's printed lines (see the module doc); the same
    array when there are none. ``rules``: the printed rules already taken out of the ink (the
    :class:`~service.inputs.preprocess.InkMap`'s), looked for lines with it."""
    mask = ink >= INK_LEVEL
    # the lines are found in the ink with the rules put back (they are printed lines too)
    lined = mask if rules is None or rules.shape != mask.shape else mask | rules
    least = max(LINE_RUN_PX, round(LINE_RUN * min(mask.shape)))
    # a pixel belongs to the longer of its two runs: a box's side is not a run of its top
    along, across = _run_lengths(lined), _run_lengths(lined.T).T
    level, level_px = _lines((along >= least) & (along >= across), lined)
    # Every rule but one needs a level line, and that one (an upright line LONG_LINE times as
    # tall as the writing) cannot hold without one: the upright line is then in a piece of the
    # writing at least as tall as itself. Most numbers have no level line thin enough, and are
    # spared the rest.
    if not level:
        return ink
    upright, upright_px = _lines(((across >= least) & (across > along)).T, lined.T)
    # the writing's height, measured without the lines across (along) it: an underline joins
    # the digits on it into one long piece, and a "1" is no shorter than the writing
    tallest = _tallest_writing(mask & ~level_px)
    widest = _tallest_writing((mask & ~upright_px.T).T)
    # upright lines in the picture's rows and columns: (top, bottom, left, right)
    ups = [(u.x0, u.x1, u.y0, u.y1, u.thickness) for u in upright]
    # the lines that are a page's rules (a squared page's upright ones are no comb's ticks)
    ruled_flat = np.zeros(len(level), bool)
    ruled_up = np.zeros(len(upright), bool)
    if rules is not None and lined is not mask:
        ruled_flat = _ruled(level, level_px & rules)
        ruled_up = _ruled(upright, upright_px & rules.T)
    flats = [(f.y0, f.y1, f.x0, f.x1, f.thickness) for f in level]
    printed_up = np.zeros(len(ups), bool)
    printed_flat = np.zeros(len(flats), bool)
    # a box's side is as tall as the writing (the box holds it): a digit's own short straight
    # pieces, such as the upright sides of a "0" drawn square, are far shorter
    side = np.array([b - t + 1 >= BOX_SIDE * tallest for t, b, _, _, _ in ups], bool)
    # per level line: the upright lines with an end on it; per upright line: the level lines
    # its top and its bottom meet
    stands: list[list[int]] = [[] for _ in flats]
    ends: list[tuple[list[int], list[int]]] = [([], []) for _ in ups]
    for i, (t, b, left, right, ut) in enumerate(ups):
        for j, (ft, fb, fl, fr, flt) in enumerate(flats):
            reach = round(max(ut, flt)) + 2
            if right < fl - reach or left > fr + reach:
                continue
            top = ft - reach <= t <= fb + reach
            bottom = ft - reach <= b <= fb + reach
            if top:
                ends[i][0].append(j)
            if bottom:
                ends[i][1].append(j)
            # a comb's tick meets its line (a stroke hanging just under one is writing)
            if not ruled_up[i] and ((top and t <= fb + TOUCH) or (bottom and b >= ft - TOUCH)):
                stands[j].append(i)
    box_sides = [u for u, tall, r in zip(ups, side, ruled_up, strict=True) if tall and not r]
    for j, (ft, fb, fl, fr, flt) in enumerate(flats):
        sides = [False, False]
        for t, b, left, right, ut in box_sides:
            reach = round(max(ut, flt)) + 2
            if b < ft - reach or t > fb + reach:
                continue
            sides[0] |= left - reach <= fl <= right + reach
            sides[1] |= left - reach <= fr <= right + reach
        if all(sides):
            printed_flat[j] = True
        if len(stands[j]) >= COMB_TICKS:
            printed_flat[j] = True
            # its ticks are alike: a digit's short stroke on the line is not one of them
            tall = np.array([ups[i][1] - ups[i][0] + 1 for i in stands[j]], np.float64)
            alike = np.abs(tall - np.median(tall)) <= TICK_ALIKE * np.median(tall)
            printed_up[np.asarray(stands[j])[alike]] = True
    for j, (_, _, fl, fr, _) in enumerate(flats):
        printed_flat[j] |= fr - fl + 1 >= LONG_LINE * tallest
    for i, (t, b, _, _, _) in enumerate(ups):
        printed_up[i] |= b - t + 1 >= LONG_LINE * max(tallest, widest)
        # a box's side runs between printed lines: a digit's upright stroke may end on its own
        # short bars (the top and the middle of a "5")
        above, below = ends[i]
        printed_up[i] |= side[i] and printed_flat[above].any() and printed_flat[below].any()
    if not printed_up.any() and not printed_flat.any():
        return ink
    # the rules are out of the ink already, with their edges
    printed_flat &= ~ruled_flat
    printed_up &= ~ruled_up
    drop = _dropped(lined, level_px, [level[j] for j in np.flatnonzero(printed_flat)])
    drop |= _dropped(lined.T, upright_px, [upright[i] for i in np.flatnonzero(printed_up)]).T
    return ink * ~drop


def _ruled(lines: list[Line], ruled: np.ndarray) -> np.ndarray:
    """Which of the ``lines`` are mostly of the pixels ``ruled`` (a page's rules): their bands'
    middle rows hold ruled pixels in over half their columns."""
    out = np.zeros(len(lines), bool)
    for k, line in enumerate(lines):
        band = ruled[line.y0 : line.y1 + 1, line.x0 : line.x1 + 1]
        out[k] = band.any(axis=0).mean() > 0.5
    return out


def _run_lengths(mask: np.ndarray) -> np.ndarray:
    """Each pixel's run length along its row (0 off the mask)."""
    _, starts, ends = row_runs(mask)
    length = (ends - starts).astype(np.int32)
    out = np.zeros(mask.shape, np.int32)
    out[mask] = np.repeat(length, length)  # the runs come in the mask's pixels' order
    return out


def _lines(long: np.ndarray, mask: np.ndarray) -> tuple[list[Line], np.ndarray]:
    """The straight lines along the rows of ``long`` (the pixels of long runs of ``mask``):
    pieces :data:`LINE_RATIO` times as long as they are thick and straight along a fitted line
    (a stroke touching one adds its runs to the piece, not to the line); and their pixels."""
    if not long.any():
        return [], np.zeros_like(mask)
    pieces = components(long)
    length = pieces.widths
    lines: list[Line] = []
    out = np.zeros_like(mask)
    candidates = np.flatnonzero(length >= LINE_RATIO * pieces.area / length)
    if not candidates.size:
        return lines, out
    # each pixel's piece (1-based, 0 off it): the runs come in the pixels' order
    labels = np.zeros(long.shape, np.int32)
    labels[long] = np.repeat(pieces.label + 1, pieces.ends - pieces.starts)
    for k in candidates:
        y0, y1, x0, x1 = (int(v[k]) for v in (pieces.y0, pieces.y1, pieces.x0, pieces.x1))
        sub = labels[y0 : y1 + 1, x0 : x1 + 1] == k + 1
        counts = sub.sum(axis=0)
        inked = counts > 0
        rows = np.arange(sub.shape[0])[:, None]
        centre = (sub * rows).sum(axis=0) / np.maximum(counts, 1)
        # its thickness: its bare columns' (strokes lying on the line thicken most of them when
        # digits fill a form's boxes), else most of its columns' (a noisy line's bare columns
        # are thinner than the line)
        median = float(np.median(counts[inked]))
        bare = float(np.percentile(counts[inked], LINE_QUANTILE))
        for thickness in (bare, median) if bare < median else (median,):
            fit = _fitted(counts, centre, thickness)
            if fit is not None:
                break
        else:
            continue
        band = sub & (np.abs(rows - fit[None, :]) <= thickness / 2 + 1)
        out[y0 : y1 + 1, x0 : x1 + 1] |= band
        top = [round(y0 + fit[0] - thickness / 2), round(y0 + fit[-1] - thickness / 2)]
        bottom = [round(y0 + fit[0] + thickness / 2), round(y0 + fit[-1] + thickness / 2)]
        # a line along the picture's edge: its band ends there, not beyond it
        lines.append(Line(max(min(top), 0), min(max(bottom), long.shape[0] - 1), x0, x1, thickness))
    return lines, out


def _fitted(counts: np.ndarray, centre: np.ndarray, thickness: float) -> np.ndarray | None:
    """The row of a line ``thickness`` thick along each column of a piece (``counts``: its ink
    per column, ``centre``: that ink's middle row), fitted through its plain columns (no
    thicker than the line); None when too few columns are plain, the line slants (see
    :data:`LINE_TILT`) or too many of their middles leave it (:data:`LINE_OFF`)."""
    plain = (counts > 0) & (counts <= thickness + 1)
    if np.count_nonzero(plain) < LINE_RATIO * thickness:
        return None
    # the least-squares line through the plain columns' centres (never fewer than two)
    cols = np.flatnonzero(plain).astype(np.float64)
    dx = cols - cols.mean()
    slope = float(dx @ centre[plain]) / float(dx @ dx)
    at = float(centre[plain].mean()) - slope * float(cols.mean())
    if abs(slope) > LINE_TILT:
        return None  # the slanting bottoms of touching digits, not a form held level
    fit = slope * np.arange(counts.size) + at
    off = np.abs(centre[plain] - fit[plain]) > thickness / 2 + 1
    if np.count_nonzero(off) > LINE_OFF * np.count_nonzero(plain):
        return None  # a curved or wavering stroke
    return fit


def _tallest_writing(rest: np.ndarray) -> float:
    """The height of the tallest piece left once every straight line is taken out (at least a
    pixel)."""
    comp = components(rest)
    return float(comp.heights.max()) if comp.n else 1.0


def _dropped(mask: np.ndarray, pixels: np.ndarray, lines: list[Line]) -> np.ndarray:
    """The pixels of the level ``lines`` (in ``pixels``, every line's) with their anti-aliased
    edge, but in the columns where a stroke crosses one (ink just above and just below it)."""
    drop = np.zeros_like(mask)
    h = mask.shape[0]
    for line in lines:
        r0, r1 = line.y0, line.y1 + 1
        band = pixels[r0:r1, line.x0 : line.x1 + 1]
        inked = band.any(axis=0)
        top = np.where(inked, np.argmax(band, axis=0) + r0, r0)
        bottom = np.where(inked, r1 - 1 - np.argmax(band[::-1], axis=0), r1 - 1)
        cols = np.arange(line.x0, line.x1 + 1)
        above = mask[np.maximum(top - 2, 0), cols] & (top - 2 >= 0)
        below = mask[np.minimum(bottom + 2, h - 1), cols] & (bottom + 2 < h)
        piece = np.zeros_like(mask)
        piece[r0:r1, line.x0 : line.x1 + 1] = band & ~(above & below)[None, :]
        drop |= dilate(piece)
    return drop
