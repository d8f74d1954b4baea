"""The ink under a specular spot on a glossy page, measured against the spot's own paper."""

from __future__ import annotations

import numpy as np

from service.inputs.components import components, stroke_width
from service.inputs.levels import levels, stands_out
from service.inputs.paper import box_blur, dilate, max_filter, quantile

__all__ = ["under_glare"]

# A specular spot (:func:`under_glare`): a piece of the picture at least GLARE_WHITE light,
# GLARE_AREA to GLARE_MAX_AREA of the picture, at least GLARE_STEP lighter than the paper
# around it and fading out into it (its paper's light tail GLARE_MARGIN above that paper) over
# a halo of at least GLARE_HALO of its core's area
GLARE_WHITE = 245.0
GLARE_AREA = 0.003
GLARE_MAX_AREA = 0.2
GLARE_STEP = 20.0
GLARE_MARGIN = 8.0
GLARE_HALO = 0.5
GLARE_WINDOW = 3.0  # the spot's paper: the light tail over this many stroke widths
GLARE_FIT = 400  # halo pixels the light's bump is fitted to (about, at most)
GLARE_LIFT = 3.0  # the light added under the core: at most this many times the core's own lift
GAMMA = 2.2  # encoded levels to linear light, about (a camera's sRGB curve)


def under_glare(
    grey: np.ndarray,
    paper: np.ndarray,
    c: np.ndarray,
    sigma: float,
    rough: np.ndarray,
    floor: float,
) -> np.ndarray:
    """The contrast ``c`` with the ink under a specular spot (a glossy page's blown-out glare)
    measured against the spot's own paper. The spot adds light: the ink under it is lifted
    towards white, the paper under its middle is cut off at white, and the paper's estimate,
    a mean over cells, stays below the spot's light; so there the ink's contrast falls under
    the threshold and a loop opens. A spot is a near-white piece clear of the picture's border,
    small, well lighter than the paper around it and fading into it over a halo (a sheet on a
    desk or a lit region ends sharply or reaches the border). Under it the paper is the light
    tail of its own small window where that is not blown out, and the light added (a bump
    fitted to the halo, :func:`_glare_bump`) over the paper around it where it is; the contrast
    is relative to the paper around it, as the light is added, not multiplied, and measured in
    linear light, where the light adds (:func:`_lifted_contrast`), but no stronger than the
    strokes' own level elsewhere: a stroke under the spot is no darker than the rest of it,
    and the threshold, a share of that level, must not rise with it. The new ink only
    carries on strokes ``c`` already holds, on a picture whose ink already stands out: every
    other pixel, and every picture without such a spot, keeps ``c`` as it is."""
    h, w = grey.shape
    core = grey >= GLARE_WHITE
    if np.count_nonzero(core) < GLARE_AREA * h * w:
        return c
    peak, high, t = levels(c, sigma, floor)
    if not stands_out(peak, sigma, floor):  # a blank page's glare: still nothing written
        return c
    comp = components(core)
    edge = (comp.y0 == 0) | (comp.x0 == 0) | (comp.y1 == h - 1) | (comp.x1 == w - 1)
    spots = ~edge & (comp.area >= GLARE_AREA * h * w) & (comp.area <= GLARE_MAX_AREA * h * w)
    if not spots.any():
        return c
    scale = grey.shape[0] / rough.shape[0]
    size = max(3, int(GLARE_WINDOW * stroke_width(rough) * scale) | 1) if rough.any() else 5
    light = -max_filter(-max_filter(grey, size), size)  # the paper's light tail (a closing)
    local = np.maximum(paper, light)
    new = None
    for i in np.flatnonzero(spots):
        sy, sx = comp.y1[i] - comp.y0[i] + 1, comp.x1[i] - comp.x0[i] + 1
        y0, y1 = max(comp.y0[i] - sy, 0), min(comp.y1[i] + sy, h - 1)
        x0, x1 = max(comp.x0[i] - sx, 0), min(comp.x1[i] + sx, w - 1)
        box = (slice(y0, y1 + 1), slice(x0, x1 + 1))
        rim = (paper[y0, x0 : x1 + 1], paper[y1, x0 : x1 + 1], paper[box][:, 0], paper[box][:, -1])
        ref = quantile(np.concatenate(rim), 0.5)  # the paper around the spot
        if ref > GLARE_WHITE - GLARE_STEP:
            continue
        lit = light[box] > ref + GLARE_MARGIN
        halo = lit & (light[box] < GLARE_WHITE)
        if np.count_nonzero(halo) < GLARE_HALO * comp.area[i]:
            continue
        added = _glare_bump(light[box], halo, ref)
        blown = local[box] >= GLARE_WHITE
        spot_paper = np.where(blown, np.maximum(ref + added, local[box]), local[box])
        raw = np.minimum(_lifted_contrast(grey[box], spot_paper, ref), high)
        raw[grey[box] >= GLARE_WHITE] = 0.0  # blown out: nothing of the ink is left
        zone = lit | (added > GLARE_MARGIN)
        if new is None:
            new = c.copy()
        sub = new[box]
        sub[zone] = np.maximum(sub[zone], box_blur(raw)[zone])  # as smooth as grain leaves c
    if new is None:
        return c
    # the pieces of the new ink that hold some of the old (a stroke carried on under the spot;
    # not a rule's stretch or the paper's grain under it), with their edges
    comp = components(new > t)
    if not comp.n:
        return c
    held = comp.sums(c > t) > 0
    if not held.any():
        return c
    return np.where(dilate(comp.mask(held, (h, w))), new, c)


def _lifted_contrast(grey: np.ndarray, paper: np.ndarray, ref: float) -> np.ndarray:
    """The contrast ink under added light would have in the light around it: the light is
    added in linear light, so the ink's reflectance is the drop below ``paper`` (the paper with
    the light added) over ``ref`` (the paper around the spot), both in linear light, and its
    contrast is that reflectance encoded back as ``ref`` is. Measured in encoded levels, the
    drop shrinks as the light adds up, as a camera's tone curve flattens towards white."""
    lin_ref = max(float(_linear(np.array(ref))), 1e-6)
    reflectance = 1.0 - (_linear(paper) - _linear(grey)) / lin_ref
    return (1.0 - np.clip(reflectance, 0.0, 1.0) ** (1 / GAMMA)).astype(np.float32)


def _linear(level: np.ndarray) -> np.ndarray:
    """Encoded grey levels (0-255) as linear light (0-1), a display gamma's curve."""
    return (np.clip(level, 0.0, 255.0) / 255.0) ** GAMMA


def _glare_bump(light: np.ndarray, halo: np.ndarray, ref: float) -> np.ndarray:
    """The light a specular spot adds over a box around it: a smooth bump (a quadratic in its
    logarithm, a Gaussian's shape) fitted by least squares to the lift of the paper's light
    tail ``light`` over the paper around it, ``ref``, on (about :data:`GLARE_FIT` pixels of)
    the spot's ``halo``, and carried on under its blown-out core, at most
    :data:`GLARE_LIFT` times the core's own lift."""
    ys, xs = np.nonzero(halo)
    step = max(1, ys.size // GLARE_FIT)
    ys, xs = ys[::step], xs[::step]
    h, w = light.shape
    my, mx, sc = (h - 1) / 2, (w - 1) / 2, max(h - 1, w - 1) / 2

    def terms(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        yy, xx = (yy - my) / sc, (xx - mx) / sc
        return np.stack([np.ones_like(yy), yy, xx, yy * yy, xx * xx, yy * xx], -1)

    lift = light[ys, xs] - ref
    coef = np.linalg.lstsq(terms(ys.astype(float), xs.astype(float)), np.log(lift), rcond=None)[0]
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    return np.minimum(np.exp(np.minimum(terms(yy, xx) @ coef, 8.0)), GLARE_LIFT * (255.0 - ref))
