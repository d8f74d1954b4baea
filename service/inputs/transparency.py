"""A picture's grey levels, with transparency composited on a background that contrasts with the
strokes (or, around a canvas, on the canvas's own colour)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from service.inputs.levels import MIN_CONTRAST
from service.inputs.paper import dilate

__all__ = ["composited_grey"]

KEYED_CONTRAST = 64.0  # grey levels between the strokes and the colour under transparent pixels
# from which that colour is taken as the background
CANVAS_FILL = 0.9  # opaque pixels filling this share of their box are a canvas (see _canvas_level)
CANVAS_EDGE = 2  # pixels of a canvas's anti-aliased edge, blended with the shadow around it
CANVAS_PLAIN = 0.5  # share of a canvas at its own level, give or take half the least contrast


def composited_grey(img: Image.Image, canvases: bool = True) -> np.ndarray:
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
