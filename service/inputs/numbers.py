"""A picture of a number ("2024" on paper) -> its digits left to right, with their boxes.

The ink (:func:`service.inputs.preprocess.ink_map`) is split at the gaps of its column profile;
a piece much wider than the digits are tall (digits that touch) is cut at its thinnest column;
specks are dropped, and so is a column of two dots (a time's colon); a short fragment close to
a neighbour (a detached bar) joins it, and one that is both short and narrow but too far to join
any is dropped too. Each digit is then framed exactly as a single digit is.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from service.inputs.components import components
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
    nothing_found,
)

__all__ = ["MAX_NUMBER_SIDE", "digits_pil", "number_side"]

# Splitting a number into digits, in shares of a digit's height:
SPECK_SHARE = 0.25  # ink whose box is smaller than this is a speck
DOT_SHARE = 0.3  # a column of two pieces of ink, each smaller than this, is a colon
FRAGMENT_SHARE = 0.6  # a piece shorter than this is part of a digit ...
JOIN_GAP = 0.2  # ... when it is this close to one
WIDE_SHARE = 1.15  # a piece wider than this holds touching digits
MIN_PART_SHARE = 0.3  # the narrowest part a cut leaves
MAX_NUMBER_SIDE = 4 * WORK_SIDE  # the longest working side of a picture of a number


def digits_pil(
    img: Image.Image, *, lossy: bool | None = None, colour_only: bool = False
) -> list[Digit]:
    """The digits of a number written left to right, each framed exactly as a single digit is
    (:func:`~service.inputs.preprocess.preprocess_pil`), with its box ``(x, y, width, height)``
    in ``img``'s pixels.

    The ink is split at the gaps of its column profile; a piece much wider than the digits are
    tall (digits that touch) is cut at its thinnest column; specks and a time's colon are
    dropped and a short fragment close to a neighbour (a detached bar) joins it. No digit raises
    :class:`NoInkFound`. ``colour_only`` is :func:`ink_map`'s.
    """
    side = number_side(img.size)
    found = ink_map(img, "digit", lossy=lossy, work_side=side, colour_only=colour_only)
    ink = found.ink
    pieces = _split_columns(clean_mask(ink))
    if not pieces:
        raise NoInkFound(nothing_found("digit"))
    digits: list[Digit] = []
    for r0, r1, c0, c1 in pieces:
        x0, x1 = round(c0 * found.sx), round(c1 * found.sx)
        y0, y1 = round(r0 * found.sy), round(r1 * found.sy)
        box = (x0, y0, max(1, x1 - x0), max(1, y1 - y0))
        digits.append(Digit(frame(ink[r0:r1, c0:c1], "digit"), box))
    return digits


def number_side(size: tuple[int, int]) -> int:
    """The working side for a number: a wide picture keeps its height at about ``WORK_SIDE``
    (each digit is a small part of its width), up to ``MAX_NUMBER_SIDE``."""
    longer, shorter = max(size), max(1, min(size))
    return min(MAX_NUMBER_SIDE, max(WORK_SIDE, round(WORK_SIDE * longer / shorter)))


def _rows_of(mask: np.ndarray, c0: int, c1: int) -> Piece | None:
    r = np.flatnonzero(mask[:, c0:c1].any(axis=1))
    return None if r.size == 0 else (int(r[0]), int(r[-1]) + 1, c0, c1)


def _split_columns(mask: np.ndarray) -> list[Piece]:
    """Pieces of ink separated by empty columns, specks dropped, fragments joined, touching
    digits cut (see :func:`digits_pil`)."""
    pieces = column_pieces(mask)
    if not pieces:
        return []
    tallest = max(p[1] - p[0] for p in pieces)
    if tallest < max(3, MIN_INK_SIDE * min(mask.shape)):
        return []
    # A digit's height: the median of the pieces at least half as tall as the tallest.
    height = float(np.median([p[1] - p[0] for p in pieces if 2 * (p[1] - p[0]) >= tallest]))
    pieces = [p for p in pieces if max(p[1] - p[0], p[3] - p[2]) >= SPECK_SHARE * height]
    pieces = [p for p in pieces if not _dots(mask, p, height)] or pieces
    pieces = _join_fragments(mask, pieces, height)
    out: list[Piece] = []
    for piece in pieces:
        out.extend(_cut_wide(mask, piece, height))
    # a fragment too far from every digit to join one, or cut off one (a stroke's end, a mark on
    # the paper), is no digit either: a digit is short or narrow, never both
    small = FRAGMENT_SHARE * height
    return [p for p in out if p[1] - p[0] >= small or p[3] - p[2] >= small] or out


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
