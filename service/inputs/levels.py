"""How far a picture's ink stands out from its background: the least contrast of writing, and
a contrast map's peak, stroke level and ink threshold."""

from __future__ import annotations

import numpy as np

from service.inputs.paper import quantile

__all__ = [
    "FULL_PEAK_SIDE",
    "MIN_CONTRAST",
    "MIN_PEAK",
    "levels",
    "min_peak",
    "stands_out",
]

MIN_CONTRAST = 16.0  # grey levels between background and ink below which the image is blank
MIN_PEAK = 0.18  # a photo's strongest ink darker than its paper by less than this is blank ...
FULL_PEAK_SIDE = 64  # ... in a picture whose shorter side has at least this many pixels
NOISE_K = 5.0  # ink stands this many noise sigmas above the paper
INK_SHARE = 0.45  # ink threshold as a share of the strokes' own contrast


def min_peak(shape: tuple[int, ...]) -> float:
    """The least contrast of writing in a picture of this shape: in a small one (an icon) a pen
    stroke is narrower than a pixel, and its contrast shrinks with the share of the pixel it
    covers, so the floor shrinks with the picture's shorter side."""
    return MIN_PEAK * min(1.0, min(shape) / FULL_PEAK_SIDE)


def stands_out(peak: float, sigma: float, floor: float = MIN_PEAK) -> bool:
    """Whether the strongest ink is contrast enough (at least ``floor``) and clear of the noise
    to be writing."""
    return peak >= floor and peak >= NOISE_K * sigma + 0.02


def levels(c: np.ndarray, sigma: float, floor: float = MIN_PEAK) -> tuple[float, float, float]:
    """(peak, stroke level, threshold) of a contrast map; the peak is the strongest 2x2 mean,
    so one hot pixel is not a stroke; ``floor`` is the least peak of writing."""
    h, w = (c.shape[0] // 2) * 2, (c.shape[1] // 2) * 2
    quads = c[:h:2, :w:2] + c[1:h:2, :w:2] + c[:h:2, 1:w:2] + c[1:h:2, 1:w:2]
    # the largest sum over 4 is the largest mean (a division by 4 is exact and keeps the order)
    peak = float(quads.max() / 4) if quads.size else float(c.max())
    strong = c[c > peak / 2]
    high = quantile(strong, 0.9) if strong.size else peak
    return peak, high, max(INK_SHARE * high, NOISE_K * sigma, floor / 2)
