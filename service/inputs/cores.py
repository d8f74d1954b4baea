"""The cores of strokes wider than the paper's cells, which the paper's first estimate takes for
paper (a marker across a tight crop)."""

from __future__ import annotations

import numpy as np

from service.inputs.components import components
from service.inputs.paper import quantile

__all__ = ["with_cores"]

# A stroke's core the paper's first estimate missed (see with_cores): its middle level within
# CORE_LEVEL of the way from the rim's ink to the paper, at least CORE_RIM of its surround rim
CORE_LEVEL = 0.25
CORE_RIM = 0.6


def with_cores(grey: np.ndarray, rough: np.ndarray, cell: int) -> np.ndarray:
    """The rough ink with the cores of strokes wider than the paper's cells added (a marker
    across a tight crop): the first estimate takes such a core for paper, so only the stroke's
    rim stands out, around pixels as dark as the rim. A dark piece at least a cell in area,
    about as dark as the rim's ink and enclosed by it (its surround mostly rough ink) is ink;
    the loop of a digit or a shadow, lighter than the ink or bounded by paper, stays paper."""
    if not rough.any():
        return rough
    ink = quantile(grey[rough], 0.5)
    paper = quantile(grey[::2, ::2][~rough[::2, ::2]], 0.5)  # a sample is enough for a level
    dark = (grey < (ink + paper) / 2) & ~rough
    if np.count_nonzero(dark) < cell * cell:
        return rough
    comp = components(dark)
    big = comp.area >= cell * cell
    if not big.any():
        return rough
    # every big piece's pixels at once, labelled 1.., in the picture padded by one pixel: the
    # surround beyond its edges counts as paper (a stroke is cut short by a crop, a region along
    # an edge, a lit or shaded strip, is not enclosed)
    h, w = rough.shape
    runs = big[comp.label]
    lengths = comp.ends[runs] - comp.starts[runs]
    first = (comp.rows[runs] + 1) * (w + 2) + comp.starts[runs] + 1
    pixels = np.repeat(first - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
    owner = np.repeat(comp.label[runs] + 1, lengths)
    labels = np.zeros((h + 2) * (w + 2), np.int64)
    labels[pixels] = owner
    n = comp.n + 1
    # each piece's middle level (nearest rank, as quantile), from its pixels sorted by level
    levels = np.pad(grey, 1).ravel()[pixels]
    order = np.lexsort((levels, owner))
    counts = np.bincount(owner, minlength=n)
    starts = np.cumsum(counts) - counts
    middle = levels[order][
        np.minimum(starts + np.round(0.5 * (counts - 1)).astype(np.int64), len(order) - 1)
    ]
    # each piece's surround: the (pixel, piece) pairs of unlabelled pixels beside it (up, down,
    # left, right, as a dilation reaches); a pixel beside two pieces counts for each
    grid = labels.reshape(h + 2, w + 2)
    pairs = np.concatenate(
        [
            np.flatnonzero((grid == 0) & (nb > 0)) * n + nb[(grid == 0) & (nb > 0)]
            for shift in ((-1, 0), (1, 0), (0, -1), (0, 1))
            for nb in [np.roll(grid, shift, axis=(0, 1))]
        ]
    )
    pairs.sort()  # distinct pairs by a sort (numpy's hash-based unique is slower here)
    ring = pairs[np.concatenate(([True], pairs[1:] != pairs[:-1]))]
    ring_owner = ring % n
    on_rough = np.pad(rough, 1).ravel()[ring // n]
    around = np.bincount(ring_owner, minlength=n)
    rimmed = np.bincount(ring_owner[on_rough], minlength=n)
    core = (
        (counts > 0) & (middle <= ink + CORE_LEVEL * (paper - ink)) & (rimmed >= CORE_RIM * around)
    )
    core[0] = False
    return rough | core[labels].reshape(h + 2, w + 2)[1:-1, 1:-1]
