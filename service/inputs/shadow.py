"""A sharp shadow's edge across a photographed page, and the light it leaves, to divide out.

A phone or a hand between a ceiling spot and the page casts a shadow with a sharp, straight edge,
the shadow side 20-70% as bright. The paper's estimate (:mod:`service.inputs.paper`) is made of
cells and smooth between their centres, so across such an edge it is too light on the shadow
side and too dark on the lit side: a band along the edge reads as dark ink, joined to the digit
it crosses (no line to drop), and a page more than half in shadow is read as light strokes on a
dark ground, its lit part taken for the strokes. The edge is found here, and the light across it
measured, so that the picture divided by that light is the page without the shadow: the rest of
the reading is unchanged.

1. Candidates: a Hough transform of the log-level's steep gradients, each voting for the line
   across its direction (a shadow's edge is the one long straight step of one sign; a stroke
   has two edges of opposite signs, and bends).
2. Each candidate line is cut into :data:`SEGMENTS` along its length; the edge must hold a step
   in most of them, the two at its ends included (a sheet's edge on a darker desk, a printed
   line, a long stroke stop short of them), at one line (a robust fit of where each segment's
   profile crosses its middle level).
3. Across the fitted line, the median level at each distance, along its whole length (ink
   crossing it is a minority), is the light's profile: a step of :data:`MIN_STEP` at least
   (and :data:`MAX_STEP` at most: darker is a marker's stroke or a dark object), no wider than
   a sharp edge, with each side even beyond it (a band, a stroke's far edge, a
   board's light chalk are not a shadow's sides).
"""

from __future__ import annotations

import numpy as np

from service.inputs.paper import box_blur, quantile, quantiles

__all__ = ["shadow_light"]

MIN_SIDE = 64  # pictures whose shorter side is smaller than this are not looked at
LOG_OFFSET = 8.0  # levels added before the log, so that the noise of near-black does not count
MIN_STEP = float(np.log(1.5))  # the shadow side at most 2/3 as bright as the lit side ...
MAX_STEP = float(np.log(6.0))  # ... and a sixth or so at least (darker is ink or a dark object)
QUICK_CELLS = 8  # the quick look: about this many cells of paper along the shorter side ...
QUICK_SHARE = 0.1  # ... this share of them at least in the shadow, as many in the light
EDGE_SLOPE = 0.05  # a steep gradient, in log-levels per pixel
ANGLES = 120  # Hough bins over the full turn (3 degrees each)
SLOPE_CAP = 0.25  # a pixel's vote is capped: a stroke's edge is steeper than a shadow's
MIN_SPAN = 0.25  # a candidate's votes, as the least edge: MIN_STEP over this share of the side
CANDIDATES = 4  # lines looked at, strongest first
NEAR_LINE = 0.2  # the profile across a line is taken this share of the shorter side each way
SHARP = 0.05  # a sharp edge's 20-80% rise, as a share of the shorter side (4 px at least)
MIN_CHORD = 0.4  # the line runs this share of the shorter side inside the picture at least
SEGMENTS = 8  # pieces of the line whose steps are looked at apart ...
SEG_AGREE = 4  # ... this many at least holding the edge at one line
HALF = 0.1  # each side of the edge covers this share of the picture at least ...
EVEN = 0.35  # ... its median level within this share of the step of the level at the edge
LIGHT_MARKS = 0.6  # the shadow side's 98th percentile this share of the step above its level is
# light marks on a dark ground (chalk on a board beside a wall), not paper in shadow


def shadow_light(grey: np.ndarray) -> np.ndarray | None:
    """The light across a sharp shadow's edge in ``grey`` (1 on the lit side, down to the
    shadow's share of it on the other), or None when the picture holds no such edge."""
    h, w = grey.shape
    side = min(h, w)
    if side < MIN_SIDE or not _two_lights(grey):
        return None
    lg = np.log(box_blur(grey) + LOG_OFFSET)
    gy, gx = np.gradient(lg)
    slope = np.hypot(gx, gy)
    ys, xs = np.nonzero(slope > EDGE_SLOPE)
    if ys.size < side:  # not even one edge across the picture
        return None
    # the gradient points into the light: its direction is the edge's normal, with its sign
    turn = np.round(np.arctan2(gy[ys, xs], gx[ys, xs]) * (ANGLES / (2 * np.pi))).astype(np.int64)
    turn %= ANGLES
    angle = turn * (2 * np.pi / ANGLES)
    reach = int(np.hypot(h, w) / 2) + 2
    across = (xs - (w - 1) / 2) * np.cos(angle) + (ys - (h - 1) / 2) * np.sin(angle)
    rho = np.round(across).astype(np.int64)
    votes = np.bincount(
        turn * (2 * reach + 1) + rho + reach,
        weights=np.minimum(slope[ys, xs], SLOPE_CAP),
        minlength=ANGLES * (2 * reach + 1),
    ).reshape(ANGLES, 2 * reach + 1)
    smooth = votes.copy()  # each bin with its neighbours, across and turned
    smooth[:, 1:-1] += votes[:, :-2] + votes[:, 2:]
    smooth += np.roll(smooth, 1, axis=0) + np.roll(smooth, -1, axis=0)
    flat = smooth.ravel()
    strong = np.flatnonzero(flat >= MIN_SPAN * MIN_STEP * side)
    tried: list[tuple[int, int]] = []
    for k in strong[np.argsort(flat[strong])[::-1]]:
        if len(tried) >= CANDIDATES:
            break
        a, r = divmod(int(k), 2 * reach + 1)
        if any(abs((a - b + ANGLES // 2) % ANGLES - ANGLES // 2) <= 2 and abs(r - s) <= 6
               for b, s in tried):  # fmt: skip
            continue  # the same line again, a bin or two off
        tried.append((a, r))
        light = _light_along(lg, a * 2 * np.pi / ANGLES, float(r - reach))
        if light is not None:
            return light
    return None


def _two_lights(grey: np.ndarray) -> bool:
    """The quick look: whether the paper (each cell's light tail, on every other pixel) is
    darker by :data:`MIN_STEP` in a share of the picture than in as large a share of it."""
    sample = grey[::2, ::2]
    cell = max(4, min(sample.shape) // QUICK_CELLS)
    ny, nx = sample.shape[0] // cell, sample.shape[1] // cell
    cells = sample[: ny * cell, : nx * cell].reshape(ny, cell, nx, cell).transpose(0, 2, 1, 3)
    levels = np.sort(cells.reshape(ny, nx, -1), axis=2)[:, :, int(0.85 * cell * cell)]
    shade, lit = quantiles(levels, (QUICK_SHARE, 1 - QUICK_SHARE))
    return bool(np.log(lit + LOG_OFFSET) - np.log(shade + LOG_OFFSET) >= MIN_STEP)


def _medians(keys: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """The median (upper, by rank) of ``values`` (log-levels, in [0, 8)) for each key 0..n-1,
    NaN for a key with none: one sort of ``key * 8 + value``."""
    ordered = np.sort(keys * 8.0 + values)
    counts = np.bincount(keys, minlength=n)
    starts = np.cumsum(counts) - counts
    middle = ordered[np.minimum(starts + counts // 2, max(ordered.size - 1, 0))]
    return np.where(counts > 0, middle - np.arange(n) * 8.0, np.nan)


class _Across:
    """Distances from a line (phi: its normal's direction, into the light; rho: its offset from
    the picture's centre) of every pixel, and those near it binned by half pixels."""

    def __init__(self, lg: np.ndarray, phi: float, rho: float, near: float) -> None:
        h, w = lg.shape
        y = np.arange(h, dtype=np.float32)[:, None] - (h - 1) / 2
        x = np.arange(w, dtype=np.float32)[None, :] - (w - 1) / 2
        self.dist = (x * np.float32(np.cos(phi)) - np.float32(rho)) + y * np.float32(np.sin(phi))
        self.close = np.abs(self.dist) <= near
        self.nb = int(near * 2)
        self.bins = np.clip(np.round(self.dist[self.close] * 2).astype(np.int64) + self.nb,
                            0, 2 * self.nb)  # fmt: skip
        self.centres = (np.arange(2 * self.nb + 1) - self.nb) / 2
        self.values = lg[self.close]
        # the position along the line
        ys = np.broadcast_to(y, lg.shape)[self.close]
        xs = np.broadcast_to(x, lg.shape)[self.close]
        self.along = ys * np.float32(np.cos(phi)) - xs * np.float32(np.sin(phi))

    def profile(self) -> np.ndarray:
        """The median log-level at each distance (bins of half a pixel)."""
        return _medians(self.bins, self.values, 2 * self.nb + 1)

    def segments(self) -> tuple[np.ndarray, np.ndarray]:
        """The profile of each of :data:`SEGMENTS` pieces of the line's length inside the
        picture, and the position of each piece's middle along it."""
        t0, t1 = float(self.along.min()), float(self.along.max())
        piece = ((self.along - t0) / max(t1 - t0, 1e-6) * SEGMENTS).astype(np.int64)
        piece = np.minimum(piece, SEGMENTS - 1)
        n = 2 * self.nb + 1
        profiles = _medians(piece * n + self.bins, self.values, SEGMENTS * n).reshape(SEGMENTS, n)
        return profiles, t0 + (np.arange(SEGMENTS) + 0.5) * (t1 - t0) / SEGMENTS


def _filled(centres: np.ndarray, m: np.ndarray) -> np.ndarray | None:
    """A profile with its empty bins interpolated, or None when it has fewer than two."""
    ok = ~np.isnan(m)
    return np.interp(centres, centres[ok], m[ok]) if np.count_nonzero(ok) >= 2 else None


def _crossing(centres: np.ndarray, m: np.ndarray, level: float) -> float | None:
    """Where the profile ``m`` crosses ``level``, the crossing nearest the line."""
    above = m >= level
    idx = np.flatnonzero(above[1:] != above[:-1])
    if not idx.size:
        return None
    k = int(idx[np.argmin(np.abs(centres[idx]))])
    a, b = m[k], m[k + 1]
    return float(centres[k] + (level - a) / (b - a) * (centres[k + 1] - centres[k]))


def _sides(centres: np.ndarray, m: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """The profile's median level at distances from ``lo`` to ``hi``, on the lit side and on the
    shadow side (NaN where it has none)."""
    lit, dark = m[(centres >= lo) & (centres <= hi)], m[(centres <= -lo) & (centres >= -hi)]
    lit, dark = lit[~np.isnan(lit)], dark[~np.isnan(dark)]
    return (quantile(lit, 0.5) if lit.size >= 3 else np.nan,
            quantile(dark, 0.5) if dark.size >= 3 else np.nan)  # fmt: skip


def _light_along(lg: np.ndarray, phi: float, rho: float) -> np.ndarray | None:
    """The light across the candidate line, or None when it is not a shadow's edge (see the
    module doc)."""
    side = min(lg.shape)
    near = NEAR_LINE * side
    sharp = max(4.0, SHARP * side)
    across = _Across(lg, phi, rho, near)
    if np.ptp(across.along) < MIN_CHORD * side:
        return None
    profiles, middles = across.segments()
    centres = across.centres
    held: list[int] = []
    good: list[int] = []
    offsets: list[float] = []
    for i in range(SEGMENTS):
        lit, dark = _sides(centres, profiles[i], sharp, 2 * sharp)
        if np.isnan(lit) or np.isnan(dark):
            continue  # in a corner of the picture: too little of it on one side
        held.append(i)
        filled = _filled(centres, profiles[i])
        if filled is None or not lit - dark >= 0.5 * MIN_STEP:
            continue
        x = _crossing(centres, filled, (lit + dark) / 2)
        if x is not None and abs(x) <= near / 3:
            good.append(i)
            offsets.append(x)
    if len(good) < SEG_AGREE or good[0] != held[0] or good[-1] != held[-1]:
        return None
    # the line through the crossings (Theil-Sen: a stroke crossing a piece moves its crossing)
    t, o = middles[good], np.array(offsets)
    first, second = np.triu_indices(len(t), 1)
    b1 = quantile((o[second] - o[first]) / (t[second] - t[first]), 0.5)
    b0 = quantile(o - b1 * t, 0.5)
    if np.count_nonzero(np.abs(o - b0 - b1 * t) <= max(2.0, 0.5 * sharp)) < SEG_AGREE:
        return None
    turn = float(np.arctan(b1))
    across = _Across(lg, phi - turn, (rho + b0) * np.cos(turn), near)
    m = _filled(centres, across.profile())
    if m is None:
        return None
    lit, dark = _sides(centres, m, near / 2, near)
    step = lit - dark
    if not MIN_STEP <= step <= MAX_STEP:
        return None
    rise = np.maximum.accumulate(np.clip(m, dark, lit))
    x0 = _crossing(centres, rise, dark + 0.2 * step)
    x1 = _crossing(centres, rise, lit - 0.2 * step)
    if x0 is None or x1 is None or x1 - x0 > sharp:
        return None
    # each side of the edge a good part of the picture, and even
    dist = across.dist
    shade, lit_side = dist[::2, ::2] < -sharp, dist[::2, ::2] > sharp
    if min(shade.mean(), lit_side.mean()) < HALF:
        return None
    sample = lg[::2, ::2]
    in_shade = quantiles(sample[shade], (0.5, 0.98))
    if (
        in_shade[0] > dark + EVEN * step
        or quantile(sample[lit_side], 0.5) < lit - EVEN * step
        or in_shade[1] > dark + LIGHT_MARKS * step
    ):
        return None
    # the light: the profile rising across the edge, level on each side beyond it
    rise[centres < x0 - sharp] = dark
    rise[centres > x1 + sharp] = lit
    rise = np.maximum.accumulate(rise)
    return np.exp(np.interp(dist, centres, rise) - lit).astype(np.float32)
