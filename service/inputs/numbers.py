"""A picture of a number ("2024" on paper) -> its digits left to right, with their boxes.

The ink (:func:`service.inputs.preprocess.ink_map`) is split into lines of writing at empty rows
(a number written on two lines is read line after line, top first), then each line at the gaps
of its column profile; a piece much wider than the digits are tall (digits that touch) is cut
at its thinnest column; specks are dropped, and so is a column of two dots (a time's colon); a
short fragment close to a neighbour (a detached bar) joins it, and one that is both short and
narrow but too far to join any is dropped too. Each digit is then framed exactly as a single
digit is.

Digits that touch leave no gap to split at, and the thinnest column is often the wrong cut; a
piece as wide as a digit is tall may even be one digit or two. So besides that split, a wide
piece is offered to the model in other ways: cut at any of its thin columns, each part as one
digit (:func:`readings_pil`); the split the model reads most surely, of parts that look most
like digits to the version's density model, wins (:func:`best_readings`).

A number small in a large photo (a phone's picture of a page) may have digits smaller at
working size than the dust rule keeps, and too few pixels to read. When that is all the photo
holds and those pieces look like a number written (:func:`small_row`: several of a similar
height side by side in a row), :class:`SmallNumber` says where they are, for the caller to read
that part of the file again at its own resolution (``closer``): there the digits must still be
strokes, two or more, and a row of dust specks (blots) is refused as before.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from PIL import Image

from service.inputs.components import components, stroke_width
from service.inputs.forms import without_form_lines
from service.inputs.preprocess import (
    MIN_INK_SIDE,
    WORK_SIDE,
    Digit,
    NoInkFound,
    Piece,
    clean_mask,
    column_pieces,
    frame,
    ink_map,
    inked_runs,
    nothing_found,
)

__all__ = [
    "MAX_NUMBER_SIDE",
    "Reading",
    "SmallNumber",
    "best_readings",
    "digits_pil",
    "number_side",
    "readings_pil",
]

# Splitting a number into digits, in shares of a digit's height:
SPECK_SHARE = 0.25  # ink whose box is smaller than this is a speck
DOT_SHARE = 0.3  # a column of two pieces of ink, each smaller than this, is a colon
FRAGMENT_SHARE = 0.6  # a piece shorter than this is part of a digit ...
JOIN_GAP = 0.2  # ... when it is this close to one
WIDE_SHARE = 1.15  # a piece wider than this holds touching digits
MIN_PART_SHARE = 0.3  # the narrowest part a cut leaves
MAX_NUMBER_SIDE = 4 * WORK_SIDE  # the longest working side of a picture of a number
# Lines of writing: bands of inked rows between empty ones, each at least LINE_SHARE as tall as
# the tallest band, at least LINE_GAP of its height apart, two of them sharing inked columns
# over LINE_OVERLAP of the narrower's. A thinner band (an underline, a detached bar, a dot)
# belongs to the nearest line; a digit broken across an empty row or two leaves pieces too
# close to pass for two lines (a wider gap is weighed by the model: see readings_pil).
LINE_SHARE = 0.5
LINE_GAP = 0.15
LINE_OVERLAP = 0.5
# Other splits of a piece at least CUT_SHARE as wide as a digit is tall: cut at the thinnest
# columns (their profile's local minima), at most MAX_CUTS, each CUT_EDGE from the piece's ends
# and from one another, into parts between PART_WIDTHS wide.
CUT_SHARE = 0.9
MAX_CUTS = 6
CUT_EDGE = 0.12
PART_WIDTHS = (0.15, 1.3)
SHAPE_PREFERENCE = 0.1  # log-probability per digit by which the split by shape is preferred
UNLIKE_SHARE = 0.5  # a part flagged out of distribution counts as read this much less surely
# A part's density score (how unlike a handwritten digit its pixels are, in units of the flag's
# threshold) counts against it by DENSITY_WEIGHT log-probability per unit: the classifiers read
# two touching digits framed as one nearly as surely as each alone, but the pair is no shape of
# digit, while a wide digit's halves are no whole digit either. A part cut from a piece and
# shorter than SHORT_PART of the digits' height counts as at the threshold at least: framed to a
# digit's size, a piece cut from one (a "6"'s loop beside its stem, read "10") looks like a plain
# digit to the density (a small digit standing apart is a whole piece: it does not count so).
DENSITY_WEIGHT = 0.5
SHORT_PART = 0.8
# A number too small to keep at working size (see small_row): at least SMALL_DIGITS pieces
# (at most SMALL_MOST: a longer row is a printed pattern, a perforation or a chain of rings) at
# least SMALL_DIGIT_PX working pixels tall, their heights within SMALL_HEIGHTS of their median,
# side by side in a row: centres within SMALL_ROW of a digit's height of one another, gaps at
# most SMALL_GAP of it; read again from the file with a digit CLOSE_DIGIT_PX tall, in a crop
# CLOSE_MARGIN digits' heights wider each way, where its strokes are at most CLOSE_STROKE of a
# digit's height wide (a dust speck is a blot)
SMALL_DIGITS = 2
SMALL_MOST = 12
SMALL_DIGIT_PX = 4
SMALL_HEIGHTS = (0.7, 1.4)
SMALL_ROW = 0.5
SMALL_GAP = 1.0
CLOSE_DIGIT_PX = 48
CLOSE_MARGIN = 1.0
CLOSE_STROKE = 0.3


class SmallNumber(NoInkFound):
    """No digit at working size, but pieces that look like a number too small to keep
    (:func:`small_row`): where they are, in shares of the picture's width and height
    (``left, top, right, bottom``), and a digit's height in shares of the picture's height.
    A 422 to a caller that does not look closer."""

    def __init__(self, box: tuple[float, float, float, float], height: float) -> None:
        super().__init__(nothing_found("digit"))
        self.box = box
        self.height = height

    def __reduce__(self) -> tuple[type[SmallNumber], tuple[tuple[float, ...], float]]:
        return type(self), (self.box, self.height)


class Reading(NamedTuple):
    """A digit of one of the ways to split a number: between cuts ``start`` and ``end`` (numbered
    left to right, the number's first edge 0); ``shape``: of the split by the ink's shape alone."""

    digit: Digit
    start: int
    end: int
    shape: bool


def digits_pil(
    img: Image.Image, *, lossy: bool | None = None, colour_only: bool = False
) -> list[Digit]:
    """The digits of a number written left to right, each framed exactly as a single digit is
    (:func:`~service.inputs.preprocess.preprocess_pil`), with its box ``(x, y, width, height)``
    in ``img``'s pixels.

    The ink is split into lines of writing at empty rows (read top first), each line at the gaps
    of its column profile; a piece much wider than the digits are tall (digits that touch) is
    cut at its thinnest column; specks and a time's colon are dropped and a short fragment close
    to a neighbour (a detached bar) joins it. No digit raises :class:`NoInkFound`.
    ``colour_only`` is :func:`ink_map`'s.
    """
    readings = readings_pil(img, lossy=lossy, colour_only=colour_only, others=False)
    return [r.digit for r in readings]


def readings_pil(
    img: Image.Image,
    *,
    lossy: bool | None = None,
    colour_only: bool = False,
    others: bool = True,
    small: bool = False,
    closer: bool = False,
) -> list[Reading]:
    """The split of :func:`digits_pil` as readings, then (``others``) each wide piece's other
    splits: every part between two of its cuts (its edges and its thin columns) of a digit's
    width (:data:`PART_WIDTHS`), unless the piece lost a fragment in the split by shape.

    ``small``: a photo whose only writing is too small to keep or to split but looks like a
    number (:func:`small_row`) raises :class:`SmallNumber` rather than :class:`NoInkFound`.
    ``closer``: ``img`` is such a number's part of the file, read again: no digit is found
    unless there are two or more, of strokes (:data:`CLOSE_STROKE`)."""
    side = number_side(img.size)
    found = ink_map(img, "digit", lossy=lossy, work_side=side, colour_only=colour_only, small=small)
    ink = found.ink if found.small else without_form_lines(found.ink, found.rules)
    mask = clean_mask(ink)
    # small ink is never split: dust above dust in one column would pass for a digit
    lines = [] if found.small else [(line, *_split_columns(line)) for line in _lines(mask)]
    lines = [(line, groups, height) for line, groups, height in lines if groups]
    groups = [group for _, line_groups, _ in lines for group in line_groups]
    if not groups and small and (row := small_row(mask)) is not None:
        (r0, r1, c0, c1), size = row
        h, w = mask.shape
        raise SmallNumber((c0 / w, r0 / h, c1 / w, r1 / h), size / h)
    if not groups or (closer and not _strokes(mask, groups, lines[0][2])):
        raise NoInkFound(nothing_found("digit"))

    def digit(piece: Piece) -> Digit:
        r0, r1, c0, c1 = piece
        x0, x1 = round(c0 * found.sx), round(c1 * found.sx)
        y0, y1 = round(r0 * found.sy), round(r1 * found.sy)
        return Digit(frame(ink[r0:r1, c0:c1], "digit"), (x0, y0, max(1, x1 - x0), max(1, y1 - y0)))

    def split(
        lines: list[tuple[np.ndarray, list[tuple[Piece, list[Piece]]], float]],
    ) -> tuple[list[Reading], list[Reading], int]:
        """The readings by shape and the other ones of ``lines`` read one after the other, and
        the last cut's number."""
        shape: list[Reading] = []
        other: list[Reading] = []
        node = 0
        for line, line_groups, height in lines:
            for whole, parts in line_groups:
                cuts = _cuts(line, whole, parts, height) if others else None
                if cuts is None:
                    for part in parts:
                        shape.append(Reading(digit(part), node, node + 1, True))
                        node += 1
                    continue
                at = {c: node + i for i, c in enumerate(cuts)}
                edges = [p[2] for p in parts] + [parts[-1][3]]
                by_shape = set(itertools.pairwise(edges))
                for i, a in enumerate(cuts):
                    for b in cuts[i + 1 :]:
                        known = (a, b) in by_shape
                        if not known and not PART_WIDTHS[0] <= (b - a) / height <= PART_WIDTHS[1]:
                            continue
                        piece = _rows_of(line, a, b)
                        if piece is not None:
                            reading = Reading(digit(piece), at[a], at[b], known)
                            (shape if known else other).append(reading)
                node = at[cuts[-1]]
        return shape, other, node

    shape, other, last = split(lines)
    if others and len(lines) > 1 and (one := _split_columns(mask))[0]:
        # Digits whose strokes all break at one height (a seven-segment 1017, a dry pen) leave
        # empty rows too: the ink read as one line is another way to read it, for the model to
        # weigh (its halves of digits look like no digit), numbered after the lines' cuts and
        # ending at the same last cut.
        one_shape, one_other, one_last = split([(mask, *one)])
        end = last + one_last - 1

        def lines_node(node: int) -> int:
            return end if node == last else node

        def one_node(node: int) -> int:
            return 0 if node == 0 else end if node == one_last else last - 1 + node

        shape = [r._replace(end=lines_node(r.end)) for r in shape]
        other = [r._replace(end=lines_node(r.end)) for r in other] + [
            Reading(r.digit, one_node(r.start), one_node(r.end), False)
            for r in one_shape + one_other
        ]
    return shape + other


def best_readings(
    readings: list[tuple[int, int, bool]],
    confidence: np.ndarray,
    unlike: np.ndarray | None = None,
    density: np.ndarray | None = None,
    heights: Sequence[float] | None = None,
) -> list[int]:
    """Which readings (``(start, end, shape)`` each) make the split the model reads most surely:
    the path from the first cut to the last with the largest sum of the log of each digit's
    ``confidence`` (its top probability), in order. Another split must be read more surely than
    the split by shape, by :data:`SHAPE_PREFERENCE` per digit of that: the halves of one digit
    may each look like a digit too, and a part that does not look like a digit (``unlike``: the
    version's out-of-distribution flag) counts at :data:`UNLIKE_SHARE` of its confidence. Each
    part's ``density`` score (in units of its threshold; the version's out-of-distribution model)
    counts against it by :data:`DENSITY_WEIGHT`: touching digits framed as one are read surely
    but look like no digit; a part a cut made that is shorter than :data:`SHORT_PART` of the
    digits (``heights``: each reading's, in any unit) counts as at the threshold at least."""
    # a non-finite output (a broken version) is read as not sure at all, never as a lost path
    confidence = np.nan_to_num(np.asarray(confidence, np.float64), nan=0.0, posinf=1.0, neginf=0.0)
    if unlike is not None:
        confidence = np.where(unlike, UNLIKE_SHARE * confidence, confidence)
    gain = np.log(np.maximum(confidence, 1e-12))
    by_shape = [i for i, r in enumerate(readings) if r[2]]
    if density is not None:
        # a score that is not a number (a broken model) tells nothing: the model's reading decides
        unusual = np.nan_to_num(np.asarray(density, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        if heights is not None:
            tall = np.asarray(heights, np.float64)
            digit = float(np.median(tall[by_shape])) if by_shape else float(tall.max())
            cut = np.array([not r[2] for r in readings])  # a part a cut made, not a whole piece
            short = cut & (tall < SHORT_PART * digit)
            unusual = np.where(short, np.maximum(unusual, 1.0), unusual)
        gain = gain - DENSITY_WEIGHT * np.maximum(unusual, 0.0)
    last = max(end for _, end, _ in readings)
    best = [-math.inf] * (last + 1)
    via = [-1] * (last + 1)
    best[0] = 0.0
    order = sorted(range(len(readings)), key=lambda i: readings[i][0])
    for i in order:  # cuts go left to right: a reading's start is settled before it is used
        start, end, shape = readings[i]
        if best[start] == -math.inf:
            continue
        score = best[start] + float(gain[i]) + (SHAPE_PREFERENCE if shape else 0.0)
        if score > best[end]:
            best[end], via[end] = score, i
    chosen: list[int] = []
    node = last
    while node > 0:
        if via[node] < 0:  # no path from the first cut to the last: the split by shape
            return by_shape
        chosen.append(via[node])
        node = readings[via[node]][0]
    return chosen[::-1]


def number_side(size: tuple[int, int]) -> int:
    """The working side for a number: a wide picture keeps its height at about ``WORK_SIDE``
    (each digit is a small part of its width), up to ``MAX_NUMBER_SIDE``."""
    longer, shorter = max(size), max(1, min(size))
    return min(MAX_NUMBER_SIDE, max(WORK_SIDE, round(WORK_SIDE * longer / shorter)))


def small_row(mask: np.ndarray) -> tuple[Piece, float] | None:
    """Pieces of ink too small for the dust rule that look like a number written: at least
    :data:`SMALL_DIGITS` of them (and at most :data:`SMALL_MOST`), each :data:`SMALL_DIGIT_PX`
    pixels tall or more and of about the same height (:data:`SMALL_HEIGHTS`), side by side in
    one row (:data:`SMALL_ROW`, :data:`SMALL_GAP`). Returns the longest such row's box with
    every piece beside it (a detached bar, a dot), and a digit's height; None for anything
    else (specks, a hair, a smudge's edge, one mark)."""
    comp = components(mask)
    if comp.n < SMALL_DIGITS:
        return None
    heights = comp.heights
    tall = heights >= SMALL_DIGIT_PX
    if np.count_nonzero(tall) < SMALL_DIGITS:
        return None
    height = _digit_height(heights[tall])
    lo, hi = SMALL_HEIGHTS
    digit = tall & (heights >= lo * height) & (heights <= hi * height)
    order = sorted(np.flatnonzero(digit).tolist(), key=lambda i: int(comp.x0[i]))
    middle = (comp.y0 + comp.y1) / 2
    best: list[int] = []
    row: list[int] = []
    for i in order:
        if row and (
            comp.x0[i] - comp.x1[row[-1]] - 1 > SMALL_GAP * height
            or abs(middle[i] - middle[row[-1]]) > SMALL_ROW * height
        ):
            row = []
        row.append(i)
        if len(row) > len(best):
            best = list(row)
    if not SMALL_DIGITS <= len(best) <= SMALL_MOST:
        return None
    r0, r1 = int(comp.y0[best].min()), int(comp.y1[best].max()) + 1
    c0, c1 = int(comp.x0[best].min()), int(comp.x1[best].max()) + 1
    near = (
        (comp.x1 >= c0 - SMALL_GAP * height)
        & (comp.x0 < c1 + SMALL_GAP * height)
        & (comp.y1 >= r0 - SMALL_ROW * height)
        & (comp.y0 < r1 + SMALL_ROW * height)
    )
    r0, r1 = min(r0, int(comp.y0[near].min())), max(r1, int(comp.y1[near].max()) + 1)
    c0, c1 = min(c0, int(comp.x0[near].min())), max(c1, int(comp.x1[near].max()) + 1)
    return (r0, r1, c0, c1), height


def _digit_height(heights: np.ndarray) -> float:
    """A digit's height: the median of the pieces' ``heights`` at least half the tallest."""
    return float(np.median(heights[2 * heights >= heights.max()]))


def _strokes(mask: np.ndarray, groups: list[tuple[Piece, list[Piece]]], height: float) -> bool:
    """Whether a small number read closer is writing: two digits or more (not a long printed
    row, :data:`SMALL_MOST`), whose ink is strokes no wider than :data:`CLOSE_STROKE` of a
    digit's height (dust, closer, is blots)."""
    if not SMALL_DIGITS <= sum(len(parts) for _, parts in groups) <= SMALL_MOST:
        return False
    ink = np.zeros_like(mask)
    for (r0, r1, c0, c1), _ in groups:
        ink[r0:r1, c0:c1] = mask[r0:r1, c0:c1]
    return stroke_width(ink) <= CLOSE_STROKE * height


def _lines(mask: np.ndarray) -> list[np.ndarray]:
    """The lines of writing in ``mask``, top to bottom, each the mask with every other line's
    rows emptied (see :data:`LINE_SHARE`); the whole mask when it holds one line."""
    bands = inked_runs(mask, axis=1)
    if len(bands) < 2:
        return [mask]
    tallest = max(b - a for a, b in bands)
    tall = [(a, b) for a, b in bands if b - a >= LINE_SHARE * tallest]
    lines = [tall[0]]
    for a, b in tall[1:]:
        if a - lines[-1][1] < LINE_GAP * tallest:  # too close: pieces of one line's writing
            lines[-1] = (lines[-1][0], b)
        else:
            lines.append((a, b))
    if len(lines) < 2:
        return [mask]
    # the rows between two lines go to the nearer one (a thin band in them with it)
    middles = [(upper[1] + lower[0]) // 2 for upper, lower in itertools.pairwise(lines)]
    out = []
    for r0, r1 in itertools.pairwise([0, *middles, mask.shape[0]]):
        line = np.zeros_like(mask)
        line[r0:r1] = mask[r0:r1]
        out.append(line)
    # Lines matter only where their writing shares columns, which the split by columns would
    # frame as one digit: a number climbing so steeply that a digit sits wholly above the next,
    # or a raised exponent, shares hardly any, and reads left to right as one line.
    columns = [line.any(axis=0) for line in out]
    if not any(
        (upper & lower).sum() >= LINE_OVERLAP * min(upper.sum(), lower.sum())
        for upper, lower in itertools.pairwise(columns)
    ):
        return [mask]
    return out


def _rows_of(mask: np.ndarray, c0: int, c1: int) -> Piece | None:
    r = np.flatnonzero(mask[:, c0:c1].any(axis=1))
    return None if r.size == 0 else (int(r[0]), int(r[-1]) + 1, c0, c1)


def _split_columns(mask: np.ndarray) -> tuple[list[tuple[Piece, list[Piece]]], float]:
    """Pieces of ink separated by empty columns, specks dropped, fragments joined, each with
    its touching digits cut (see :func:`digits_pil`); and a digit's height."""
    pieces = column_pieces(mask)
    if not pieces:
        return [], 0.0
    tallest = max(p[1] - p[0] for p in pieces)
    if tallest < max(3, MIN_INK_SIDE * min(mask.shape)):
        return [], 0.0
    height = _digit_height(np.array([p[1] - p[0] for p in pieces]))
    pieces = [p for p in pieces if max(p[1] - p[0], p[3] - p[2]) >= SPECK_SHARE * height]
    pieces = [p for p in pieces if not _dots(mask, p, height)] or pieces
    pieces = _join_fragments(mask, pieces, height)
    groups = [(piece, _cut_wide(mask, piece, height)) for piece in pieces]
    # a fragment too far from every digit to join one, or cut off one (a stroke's end, a mark on
    # the paper), is no digit either: a digit is short or narrow, never both
    small = FRAGMENT_SHARE * height

    def digit(p: Piece) -> bool:
        return p[1] - p[0] >= small or p[3] - p[2] >= small

    kept = [(piece, [p for p in parts if digit(p)]) for piece, parts in groups]
    if not any(parts for _, parts in kept):
        return [g for g in groups if g[1]], height
    return [g for g in kept if g[1]], height


def _cuts(mask: np.ndarray, whole: Piece, parts: list[Piece], height: float) -> list[int] | None:
    """Where a piece may be cut to read it in other ways: its edges, the cuts of its split by
    shape and its thinnest columns, left to right; None for a piece too narrow to hold two
    digits, or one whose split by shape dropped a fragment."""
    r0, r1, c0, c1 = whole
    if c1 - c0 < CUT_SHARE * height or parts[0][2] != c0 or parts[-1][3] != c1:
        return None
    if any(a[3] != b[2] for a, b in itertools.pairwise(parts)):
        return None
    profile = np.count_nonzero(mask[r0:r1, c0:c1], axis=0).astype(np.float64)
    smooth = np.convolve(profile, np.ones(3) / 3, mode="same")
    edge, n = round(CUT_EDGE * height), len(smooth)
    minima = [
        i
        for i in range(max(1, edge), min(n - 1, n - edge))
        if smooth[i] <= smooth[i - 1] and smooth[i] <= smooth[i + 1]
    ]
    chosen: list[int] = []
    for i in sorted(minima, key=lambda i: smooth[i]):
        if all(abs(i - j) >= edge for j in chosen):
            chosen.append(i)
        if len(chosen) == MAX_CUTS:
            break
    return sorted({c0, c1, *(p[2] for p in parts), *(c0 + i for i in chosen)})


def _dots(mask: np.ndarray, piece: Piece, height: float) -> bool:
    """Whether a column piece is two dots one above the other (a time's colon, "19:50"), each
    much smaller than a digit: its column is as tall as a short digit, and it was read as a
    "1". A "1" broken or dashed into short pieces holds three or more of them (two that short
    would leave a gap wider than either), a digit broken by faint strokes larger ones."""
    r0, r1, c0, c1 = piece
    comp = components(mask[r0:r1, c0:c1])
    if comp.n != 2:
        return False
    sides = np.maximum(comp.y1 - comp.y0, comp.x1 - comp.x0) + 1
    return bool((sides < DOT_SHARE * height).all())


def _join_fragments(mask: np.ndarray, pieces: list[Piece], height: float) -> list[Piece]:
    """Join a short piece (a detached bar or hook) to its nearer neighbour when close to it."""
    pieces = list(pieces)
    i = 0
    while i < len(pieces) and len(pieces) > 1:
        r0, r1, c0, c1 = pieces[i]
        if r1 - r0 >= FRAGMENT_SHARE * height:
            i += 1
            continue
        gaps = []
        if i > 0:
            gaps.append((c0 - pieces[i - 1][3], i - 1))
        if i + 1 < len(pieces):
            gaps.append((pieces[i + 1][2] - c1, i + 1))
        gap, j = min(gaps)
        if gap > JOIN_GAP * height:
            i += 1
            continue
        a, b = min(i, j), max(i, j)
        joined = _rows_of(mask, pieces[a][2], pieces[b][3])
        assert joined is not None
        pieces[a : b + 1] = [joined]
        i = a
    return pieces


def _cut_wide(mask: np.ndarray, piece: Piece, height: float) -> list[Piece]:
    """A piece wider than a digit can be, cut at its thinnest column (recursively)."""
    r0, r1, c0, c1 = piece
    width = c1 - c0
    if width <= WIDE_SHARE * max(height, r1 - r0):
        return [piece]
    margin = max(1, round(MIN_PART_SHARE * height))
    if width <= 2 * margin:
        return [piece]
    profile = np.count_nonzero(mask[:, c0 + margin : c1 - margin], axis=0)
    # Prefer the middle among equally thin columns: np.argmin picks the first otherwise.
    centre = np.abs(np.arange(profile.size) - profile.size / 2) / max(profile.size, 1)
    cut = c0 + margin + int(np.argmin(profile + 0.5 * centre))
    parts = [_rows_of(mask, c0, cut), _rows_of(mask, cut, c1)]
    return [q for p in parts if p is not None for q in _cut_wide(mask, p, height)]
