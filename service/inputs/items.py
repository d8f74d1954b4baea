"""A garment or shoe photographed on any background, as Fashion-MNIST shows one.

Fashion-MNIST items are product photos on white, trimmed and negated: light on black, a dark
item bright and a white item dim. A user's photo has a coloured, textured, shaded or dark
background instead, so the item is found as whatever differs from the background in colour, and
drawn bright where it differs most (a white shirt on a grey table is bright here, not dim: the
picture has no white ground to measure it against):

1. Background: per colour channel, a plane fitted to the border ring (light falling across a
   table), with a fall-off from the middle when the ring says so (a vignette), refitted on the
   ring's inliers so an item touching the border does not tilt it.
2. Item: pixels whose colour is far from the plane by more than the ring's own noise (texture
   and grain are smoothed first); its connected pieces without specks (see
   :mod:`service.inputs.components`), without small pieces beside it and without other items
   (the biggest is read, with what lies near it: a flat-lay of two garments framed together is
   neither), holes filled (a print on a shirt, a white collar), without a hanger's hook above
   it (a thin line over its middle, narrowing under its curl). When no plane fits the border
   (half door and half wall, a shadow's edge), so that nothing stands out from its strays, the
   item is what has colours the border does not hold; so too when what differs from the plane
   reaches two of the picture's edges (the door or the shadow taken in with the garment in
   front of it) and what has colours the border does not hold lies clear of them. When the
   border holds no such colours either, and it is two clearly distinct surfaces meeting in a
   few sharp edges (a garment cut off at a corner or photographed close up covers much of the
   ring, so the plane was the garment's and the ground's at once), the item is what differs
   from the surface holding more of the picture's corners, unless one straight line bounds it
   (half door and half wall, a shadow's edge).
3. Tone: how far the item is from the background, in the direction most of it differs (darker
   than a light table: dark parts bright, as Fashion-MNIST's negation makes them; lighter than
   a dark one: light parts bright). The item decides, not the picture's overall level, which a
   vignette's dark corners pull down. Never below a floor inside the item, so a pink shirt on a
   green table keeps its silhouette although their greys match.
"""

from __future__ import annotations

import numpy as np

from service.inputs.components import SPECK_SHARE, Components, components, filled, select
from service.inputs.paper import box_blur, quantile, robust_sigma

__all__ = ["item_ink"]

RING = 0.04  # the border ring's width, share of the shorter side
MIN_DISTANCE = 20.0  # colour distance (0-255 per channel) below which nothing stands out
GRAINY = 2.0  # colour noise (sigma) of the background above which it is smoothed first
RING_QUANTILE = 0.98  # the background's own strays: this quantile of its distance ...
NOISE_K = 2.5  # ... which the item's strongest difference exceeds this many times
THRESHOLD_K = 1.5  # item pixels are this many times as far as the background's strays ...
PEAK_SHARE = 0.1  # ... and at least this share of the strongest difference
MIN_THRESHOLD = 10.0
TONE_FLOOR = 0.15  # the dimmest tone inside the item
APART_SHARE = 0.3  # another item: this share of the biggest's area, or ...
APART_GAP = 0.1  # ... this much ground (of the biggest's size) beside it, ...
APART_BAND = 0.3  # ... or this much above or below it
MIN_ITEM_SIDE = 0.1  # an item smaller than this share of the picture is a speck
FRAMED_SIDE = 0.4  # an item before a second surface is framed as the subject: its longer side
# at least this share of the picture's shorter side (a print or a label is smaller)
RING_SAMPLES = 2048  # ring pixels the background is fitted on, at most about
VIGNETTE_GAIN = 0.7  # the fall-off is kept when it leaves the ring this much closer to the fit
PALETTE_STEP = 4.0  # colours (less the plane) are told apart to this step against the border
MAX_PALETTE = 512  # ... or to a coarser one, until the border holds at most this many
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # Pillow's RGB -> L weights
TWO_SHARE = 0.1  # two surfaces on the border: each at least this share of the ring, ...
TWO_GAP = 0.08  # ... at most this share of it between their colours (the middle ...
TWO_BETWEEN = 0.15  # ... of the way from one to the other, this far either side of half), ...
TWO_APART = 3.0  # ... their planes this far apart, in times either's median stray, ...
TWO_MAX_CHANGES = 12  # ... each in a few stretches around the picture (this many changes, ...
TWO_RUN = 0.005  # ... each surface's flicker over this share of the perimeter evened out)
STRAIGHT_SHARE = 0.03  # an outline straighter than this (its spread off a line, of the
# picture's shorter side) is a second surface's edge, not an item's
HOOK_WIDTH = 0.2  # a hook: rows atop the item this narrow, of its widest row, ...
HOOK_THIN = 0.135  # ... a thin line in them (its mean row this narrow, of the widest), ...
HOOK_HEIGHT = 0.05  # ... over at least this share of its longer side, ...
HOOK_OFF_CENTRE = 0.15  # ... their middle this near the item's (of its width) ...
HOOK_MAX = 0.3  # ... and at most this share of its height, ...
HOOK_SQUAT = 1.5  # ... above an item no wider than this many times its height below them;
HOOK_NECK = 0.7  # a hook's shank, under its curl, is at most this share of the curl's width


def _ring(shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    b = max(1, round(RING * min(h, w)))
    ring = np.zeros((h, w), bool)
    ring[:b], ring[-b:], ring[:, :b], ring[:, -b:] = True, True, True, True
    return ring


def _background(colour: np.ndarray, ring: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per channel, the light across the ring's inliers: (background (h, w, k), the ring's
    pixels that fit it). A plane, or a plane with a fall-off from the picture's centre when
    that fits the ring clearly better (a vignette: a lamp close by, a lens's dark corners); the
    ring alone cannot tell a faint fall-off from texture, and a wrong one moves the middle.
    Fitted on at most about ``RING_SAMPLES`` of the ring's pixels; every ring pixel is then
    judged against the fit."""
    h, w = colour.shape[:2]
    ys, xs = np.nonzero(ring)
    y, x = ys / h - 0.5, xs / w - 0.5
    design = np.stack([np.ones(ys.size), y, x, y * y + x * x], axis=1)
    vals = colour[ys, xs].astype(np.float64)  # (n, k)
    step = max(1, ys.size // RING_SAMPLES)
    coef, limit, spread = _fit(design[::step, :3], vals[::step])
    terms = 3
    if spread > 0:
        radial = _fit(design[::step], vals[::step])
        if radial[2] < VIGNETTE_GAIN * spread:
            (coef, limit, _), terms = radial, 4
    inliers = _distance(vals - design[:, :terms] @ coef) < limit
    c = coef.astype(np.float32)
    yy = (np.arange(h, dtype=np.float32) / h - 0.5)[:, None, None]
    xx = (np.arange(w, dtype=np.float32) / w - 0.5)[None, :, None]
    plane = c[0] + c[1] * yy + c[2] * xx
    if terms == 4:
        plane = plane + c[3] * (yy * yy + xx * xx)
    fitted = np.zeros((h, w), bool)
    fitted[ys[inliers], xs[inliers]] = True
    return plane, fitted


def _fit(design: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Least squares of ``vals`` on ``design``, refitted twice on the inliers: (coefficients,
    the distance below which a pixel is an inlier, the inliers' median distance), all three
    from the last fit that kept at least 30% of the values near it; when none did, the first
    fit with every value an inlier."""
    n = design.shape[1]
    inliers = np.ones(len(vals), bool)
    kept: tuple[np.ndarray, float, float] | None = None
    for _ in range(3):
        x = design[inliers]  # least squares by its normal equations
        coef = np.linalg.solve(x.T @ x + 1e-9 * np.eye(n), x.T @ vals[inliers])
        dist = _distance(vals - design @ coef)
        bound = 3 * max(robust_sigma(dist[inliers]), 1.0) + quantile(dist[inliers], 0.5)
        keep = dist < bound
        if keep.sum() < 0.3 * len(vals):
            break
        inliers, kept = keep, (coef, bound, quantile(dist[keep], 0.5))
    if kept is None:
        return coef, np.inf, quantile(dist, 0.5)
    return kept


def _distance(diff: np.ndarray) -> np.ndarray:
    """Each row's length (an ``einsum``: a sum over 3 columns by ``sum`` is far slower)."""
    return np.sqrt(np.einsum("ij,ij->i", diff, diff))


def _difference(
    colour: np.ndarray, plane: np.ndarray, fitted: np.ndarray
) -> tuple[np.ndarray, float, float]:
    """Each pixel's colour distance from the plane, how far the ring's ``fitted`` pixels stray
    (``RING_QUANTILE``) and the picture's strongest difference."""
    dist = np.sqrt(((colour - plane) ** 2).sum(axis=2))
    if robust_sigma(dist[fitted]) > GRAINY:  # texture or grain: a 5x5 tent mean evens it out
        dist = box_blur(box_blur(dist))
    return dist, quantile(dist[fitted], RING_QUANTILE), quantile(dist, 0.999)


def _unlike_the_border(residual: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """Each pixel's distance from the nearest colour the border ring holds, both less the plane
    (``residual``, (h, w, k)): a door and the wall beside it, or a page's lit and shadowed parts,
    are each near some of the border, a garment in front of them is near none. Measured on every
    other row and column, between colours told apart to ``PALETTE_STEP`` or coarser (each
    colour the picture holds against each of at most ``MAX_PALETTE`` the ring holds), and
    evened out."""
    h, w, k = residual.shape
    half = residual[::2, ::2].reshape(-1, k)
    border = residual[ring]
    step = PALETTE_STEP
    palette = _colours(border, step)
    while len(palette) > MAX_PALETTE:  # a varied border (cloth, grain): coarser steps suffice
        step *= 2
        palette = _colours(border, step)
    keys = _keys(np.round(half / step).astype(np.int64))
    colour_keys, which = np.unique(keys, return_inverse=True)
    colours = _colours(half, step, colour_keys).astype(np.float32)
    nearest = np.full(len(colours), np.inf, np.float32)
    for start in range(0, len(palette), 256):
        part = palette[start : start + 256].astype(np.float32)
        gap = ((colours[:, None, :] - part[None]) ** 2).sum(axis=2)
        nearest = np.minimum(nearest, gap.min(axis=1))
    dist = step * np.sqrt(nearest)[which.ravel()].reshape(h - h // 2, w - w // 2)
    dist = box_blur(dist)
    return np.repeat(np.repeat(dist, 2, axis=0), 2, axis=1)[:h, :w]


_KEY_SPAN = 1 << 12  # a colour step's index, shifted to be positive, is below this


def _keys(cells: np.ndarray) -> np.ndarray:
    """One integer per row of colour-step indices (n, k): np.unique on these is far faster than
    on rows."""
    keys = np.zeros(len(cells), np.int64)
    for c in range(cells.shape[1]):
        keys = keys * _KEY_SPAN + cells[:, c] + _KEY_SPAN // 2
    return keys


def _colours(values: np.ndarray, step: float, keys: np.ndarray | None = None) -> np.ndarray:
    """The distinct colours of ``values`` (n, k) told apart to ``step``, in steps (m, k); from
    their ``keys`` when given."""
    if keys is None:
        keys = np.unique(_keys(np.round(values / step).astype(np.int64)))
    k = values.shape[1]
    cells = np.empty((len(keys), k), np.int64)
    for c in range(k - 1, -1, -1):
        cells[:, c] = keys % _KEY_SPAN - _KEY_SPAN // 2
        keys = keys // _KEY_SPAN
    return cells


def _on_the_item(comp: Components, keep: np.ndarray) -> np.ndarray:
    """The kept pieces without small ones beside the item: a piece under ``SPECK_SHARE`` of the
    biggest stays only where it reaches into the biggest's box (a print, a button). Writing
    keeps such pieces near it (a broken stroke belongs to the digit); beside a garment they are
    crumbs, texture or a shadow's fringe, and would widen its box, so the item would come out
    small."""
    big = int(np.argmax(np.where(keep, comp.area, -1)))
    overlaps = (
        (comp.x1 >= comp.x0[big])
        & (comp.x0 <= comp.x1[big])
        & (comp.y1 >= comp.y0[big])
        & (comp.y0 <= comp.y1[big])
    )
    keep = keep & (overlaps | (comp.area >= SPECK_SHARE * comp.area[big]))
    # the item is the biggest piece and what lies near it, gathered outwards (a strap, a sole,
    # the stripes of a shirt cut by bands the colour of the ground, each near the last: a band
    # across a garment, a belt or a midsole, leaves more ground above and below than a strap
    # does beside); other items (a flat-lay, a pair of shoes apart) have more ground between
    # them, or lie beside the biggest piece (clear of its columns) and are about as big
    size = max(comp.x1[big] - comp.x0[big], comp.y1[big] - comp.y0[big]) + 1
    twin = (np.maximum(comp.x0 - comp.x1[big], comp.x0[big] - comp.x1) > 0) & (
        comp.area >= APART_SHARE * comp.area[big]
    )
    x0, x1, y0, y1 = comp.x0[big], comp.x1[big], comp.y0[big], comp.y1[big]
    member = np.zeros_like(keep)
    member[big] = True
    while True:
        across = np.maximum(comp.x0 - x1, x0 - comp.x1)
        down = np.maximum(comp.y0 - y1, y0 - comp.y1)
        near = (across <= APART_GAP * size) & (down <= APART_BAND * size)
        near &= keep & ~member & ~twin
        if not near.any():
            return member
        member |= near
        x0, x1 = min(x0, comp.x0[near].min()), max(x1, comp.x1[near].max())
        y0, y1 = min(y0, comp.y0[near].min()), max(y1, comp.y1[near].max())


def _found(
    dist: np.ndarray, ground_level: float, peak: float
) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    """The item's mask (holes not yet filled) and box (y0, y1, x0, x1) where ``dist`` stands
    out from the background's strays (``ground_level``) and from the strongest difference
    (``peak``); None when nothing does, or only specks."""
    h, w = dist.shape
    t = max(THRESHOLD_K * ground_level, PEAK_SHARE * peak, MIN_THRESHOLD)
    comp = components(dist > t)
    keep = select(comp, (h, w)) if comp.n else np.zeros(0, bool)
    if not keep.any():
        return None
    keep = _on_the_item(comp, keep)
    y0, y1 = int(comp.y0[keep].min()), int(comp.y1[keep].max())
    x0, x1 = int(comp.x0[keep].min()), int(comp.x1[keep].max())
    if max(y1 - y0, x1 - x0) + 1 < max(3, MIN_ITEM_SIDE * min(h, w)):
        return None
    return comp.mask(keep, (h, w)), (y0, y1, x0, x1)


def _edges(box: tuple[int, int, int, int], shape: tuple[int, int]) -> int:
    """How many of the picture's edges ``box`` (y0, y1, x0, x1) reaches."""
    y0, y1, x0, x1 = box
    return (y0 == 0) + (x0 == 0) + (y1 == shape[0] - 1) + (x1 == shape[1] - 1)


def _in_front(
    found: tuple[np.ndarray, tuple[int, int, int, int]],
    other: tuple[np.ndarray, tuple[int, int, int, int]] | None,
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Of what differs from the plane (``found``) and what has colours the border does not hold
    (``other``), the item. What differs from the plane and reaches two of the picture's edges
    is a second surface the border holds (a door and the wall beside it, a shadow across the
    table or over a corner) taken in with the item in front of it, when ``other`` lies clear of
    the edges and is framed as an item (its longer side at least ``FRAMED_SIDE`` of the
    picture's shorter side). An item itself reaching two edges (cut off by the frame, a
    close-up) has its colours on the border, so ``other`` is a part of it reaching the edges
    too, or nothing, or a print, logo, pocket or sticker clear of the edges, which is smaller
    than a framed item; the item is then ``found``."""
    if other is None or _edges(other[1], found[0].shape):
        return found
    y0, y1, x0, x1 = other[1]
    framed = max(y1 - y0, x1 - x0) + 1 >= FRAMED_SIDE * min(found[0].shape)
    return other if framed else found


def item_ink(colour: np.ndarray, grey: np.ndarray) -> np.ndarray | None:
    """The item in a picture, light on black in [0, 1] at the picture's size (``colour`` is
    (h, w, channels) 0-255, ``grey`` its luminance); None when nothing stands out."""
    h, w = grey.shape
    if min(h, w) < 8:
        return None
    ring = _ring((h, w))
    plane, fitted = _background(colour, ring)
    dist, ground_level, peak = _difference(colour, plane, fitted)
    if peak < max(MIN_DISTANCE, NOISE_K * ground_level):
        # no plane fits a border of two surfaces or a shadow's edge, and its strays then hide
        # the item; what stands out clearly has colours the border does not hold, over at
        # least an item's least size (a blank, textured or shadowed page has none)
        found = _unlike(colour - plane, ring)
        if found is None:
            two = _two_surfaces(colour, ring)
            if two is not None:
                found, plane = two
    else:
        found = _found(dist, ground_level, peak)
        if found is not None and _edges(found[1], (h, w)) >= 2:
            found = _in_front(found, _unlike(colour - plane, ring))
    if found is None:
        return None
    mask = _without_hook(filled(found[0]))
    # a weighted sum, not a matrix product, which would wake BLAS's threads for little work
    ground = (plane * LUMA).sum(axis=2) if plane.shape[2] == LUMA.size else plane[..., 0]
    tone = (ground - grey) if quantile((grey - ground)[mask], 0.5) < 0 else (grey - ground)
    inside = tone[mask]
    top = quantile(inside, 0.99) if inside.size else 0.0
    tone = np.clip(tone / max(top, 1e-6), 0.0, 1.0) if top > 0 else np.zeros_like(tone)
    return np.where(mask, TONE_FLOOR + (1.0 - TONE_FLOOR) * tone, 0.0).astype(np.float32)


def _unlike(
    residual: np.ndarray, ring: np.ndarray
) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    """The item as what has colours the border does not hold (:func:`_unlike_the_border`)."""
    dist = _unlike_the_border(residual, ring)
    if np.mean(dist > MIN_DISTANCE) < MIN_ITEM_SIDE**2:
        return None
    return _found(dist, quantile(dist[ring], RING_QUANTILE), quantile(dist, 0.999))


def _perimeter(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The picture's outermost pixels in order around it (rows, columns), clockwise from the
    top left corner."""
    h, w = shape
    top = (np.zeros(w - 1, np.int64), np.arange(w - 1))
    right = (np.arange(h - 1), np.full(h - 1, w - 1))
    bottom = (np.full(w - 1, h - 1), np.arange(w - 1, 0, -1))
    left = (np.arange(h - 1, 0, -1), np.zeros(h - 1, np.int64))
    parts = (top, right, bottom, left)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _two_surfaces(
    colour: np.ndarray, ring: np.ndarray
) -> tuple[tuple[np.ndarray, tuple[int, int, int, int]], np.ndarray] | None:
    """The item, and the plane of the ground around it, when the border ring is two clearly
    distinct surfaces, each in a few long stretches around the picture: a garment cut off at
    a corner or photographed close up covers much of the ring, so no one plane fits it and its
    colours are the border's own. The item is what differs from the ground, the surface that
    holds more of the picture's corners. None when the ring is no such two surfaces (a
    pattern, a textured or blank page, light falling off), or when the part read is bounded by
    one straight line (half door and half wall, a shadow's edge across a page)."""
    h, w = ring.shape
    ys, xs = np.nonzero(ring)
    vals = colour[ys, xs].astype(np.float32)
    labels = _two_means(vals)
    if labels is None:
        return None
    py, px = _perimeter((h, w))
    index = np.full((h, w), -1, np.int64)
    index[ys, xs] = np.arange(ys.size)
    along = _majority(labels[index[py, px]], max(1, round(TWO_RUN * py.size)))
    changes = int(np.count_nonzero(along != np.roll(along, 1)))
    if changes > TWO_MAX_CHANGES:
        return None
    yy = (np.arange(h, dtype=np.float32) / h - 0.5)[:, None, None]
    xx = (np.arange(w, dtype=np.float32) / w - 0.5)[None, :, None]
    design = np.stack([np.ones(ys.size), ys / h - 0.5, xs / w - 0.5], axis=1)
    planes, fits = [], []
    for side in (0, 1):
        on = labels == side
        coef, limit, spread = _fit(design[on], vals[on].astype(np.float64))
        c = coef.astype(np.float32)
        planes.append(c[0] + c[1] * yy + c[2] * xx)
        fitted = np.zeros((h, w), bool)
        inl = _distance(vals[on] - design[on] @ coef) < limit
        fitted[ys[on][inl], xs[on][inl]] = True
        fits.append((fitted, spread, coef))
    # the two surfaces' colours, along the ring, far apart against their own spread
    apart = quantile(_distance(design @ (fits[0][2] - fits[1][2])), 0.5)
    if apart < max(2 * MIN_DISTANCE, TWO_APART * max(fits[0][1], fits[1][1])):
        return None
    # the ground holds more of the picture's corners (a garment cut off at one corner holds
    # one; close up, the ground shows at least at its shoulders' or its hem's corners); as
    # many: the ground is the surface a plane fits better (a garment has folds and shading)
    corners = along[[0, w - 1, w + h - 2, 2 * w + h - 3]]
    held = int(corners.sum())
    side = int(held > 2) if held != 2 else int(fits[1][1] < fits[0][1])
    dist, ground_level, peak = _difference(colour, planes[side], fits[side][0])
    found = _found(dist, ground_level, peak)
    if found is None or _straight_edged(filled(found[0])):
        return None
    return found, planes[side]


def _majority(labels: np.ndarray, half: int) -> np.ndarray:
    """Each of a circular sequence of 0/1 ``labels`` as most of the ``2 half + 1`` around it
    hold (the flicker where two surfaces meet, or of their grain, evened out)."""
    sums = np.convolve(
        np.concatenate([labels[-half:], labels, labels[:half]]), np.ones(2 * half + 1)
    )
    return (sums[2 * half : 2 * half + labels.size] > half).astype(np.int64)


def _two_means(vals: np.ndarray) -> np.ndarray | None:
    """The ring's pixels (n, k) told into two colours (0 or 1 each), each at least
    ``TWO_SHARE`` of the ring, and at most ``TWO_GAP`` of it between them; else None."""
    centre = vals.mean(axis=0)
    axis = np.linalg.svd(vals - centre, full_matrices=False)[2][0]
    proj = (vals - centre) @ axis
    labels = proj > 0
    for _ in range(8):
        if labels.all() or not labels.any():
            return None
        a, b = vals[~labels].mean(axis=0), vals[labels].mean(axis=0)
        new = ((vals - b) ** 2).sum(axis=1) < ((vals - a) ** 2).sum(axis=1)
        if (new == labels).all():
            break
        labels = new
    share = labels.mean()
    if min(share, 1 - share) < TWO_SHARE:
        return None
    # two surfaces meet in a few sharp edges; light falling off (a glow, a vignette, a soft
    # shadow) passes through every colour between them
    a, b = vals[~labels].mean(axis=0), vals[labels].mean(axis=0)
    along = (vals - a) @ (b - a) / max(float((b - a) @ (b - a)), 1e-6)
    if np.mean(np.abs(along - 0.5) < TWO_BETWEEN) > TWO_GAP:
        return None
    return labels.astype(np.int64)


def _straight_edged(mask: np.ndarray) -> bool:
    """Whether the part of ``mask``'s outline inside the picture is one straight line (a
    half-plane: a second surface, not an item)."""
    h, w = mask.shape
    inner = mask[1:-1, 1:-1]
    edge = inner & ~(mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:])
    ys, xs = np.nonzero(edge)
    if ys.size < 10:
        return True
    pts = np.stack([ys, xs], axis=1).astype(np.float64)
    pts -= pts.mean(axis=0)
    sv = np.linalg.svd(pts, full_matrices=False)[1]
    return bool(sv[1] / np.sqrt(ys.size) < STRAIGHT_SHARE * min(h, w))


def _without_hook(mask: np.ndarray) -> np.ndarray:
    """The mask without a hanger's hook: the rows atop the item before the first wider than
    ``HOOK_WIDTH`` of its widest row (a gap between hook and garment counts with them), when
    they hold a thin line (``HOOK_THIN``) that narrows under a wider part (``HOOK_NECK``: a
    hook's curl over its shank), over the item's middle, at least ``HOOK_HEIGHT`` of its longer
    side and at most ``HOOK_MAX`` of its height, above an item no squatter than ``HOOK_SQUAT``.
    Framed with the garment, the hook stretched its box, so the garment came out short (a
    T-shirt read as a dress, trousers as a dress, a shirt as a coat). The top of a bag's handle
    or of a boot's shaft widens downwards, a handle spans much of its bag or rises higher, a
    shoe's tongue or strap tops an item far wider than tall: those are kept."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size < 2:
        return mask
    top, bottom = int(rows[0]), int(rows[-1])
    band = mask[top : bottom + 1]
    filled_rows = band.any(axis=1)
    left = np.where(filled_rows, band.argmax(axis=1), 0)
    right = np.where(filled_rows, band.shape[1] - 1 - band[:, ::-1].argmax(axis=1), -1)
    extent = right - left + 1
    widest = int(extent.max())
    wide = np.flatnonzero(extent > HOOK_WIDTH * widest)
    stem = int(wide[0])  # rows above the first wide one (a gap between them counts too)
    height = bottom - top + 1
    if stem < max(2, HOOK_HEIGHT * max(height, widest)) or stem > HOOK_MAX * height:
        return mask
    if widest > HOOK_SQUAT * (height - stem):  # a shoe: a tab or a strap atop its heel
        return mask
    counts = band[:stem].sum(axis=1)
    if counts[counts > 0].mean() > HOOK_THIN * widest:  # a rounded top, a shoe's tongue
        return mask
    # a hook curls over its shank; the top of a bag's handle, a boot's shaft or any rounded
    # top widens downwards instead
    seen = extent[:stem][counts > 0]
    if (seen[1:] > HOOK_NECK * np.maximum.accumulate(seen)[:-1]).all():
        return mask
    cols = np.flatnonzero(band.any(axis=0))
    middle = (cols[0] + cols[-1]) / 2
    hook = band[:stem].any(axis=0)
    hook_cols = np.flatnonzero(hook)
    if abs((hook_cols[0] + hook_cols[-1]) / 2 - middle) > HOOK_OFF_CENTRE * widest:
        return mask
    out = mask.copy()
    out[: top + stem] = False
    return out
