"""Split-conformal prediction sets, and the abstention they allow.

The training side scores each example of a calibration split held out from training (never the
test set) with the version's own, calibrated probabilities: ``1 - p(true label)`` (the LAC score,
"least ambiguous set-valued classifier"). It ships the sorted scores with the version
(``metadata.conformal``, the array in the file it names, covered by the checksums), so any
``alpha`` works per request: the threshold is the ``ceil((n + 1)(1 - alpha))``-th smallest score,
and the set holds every label whose probability is at least ``1 - threshold``. On exchangeable
data such a set holds the true label with probability at least ``1 - alpha``.

A LAC set can be empty (no label is likely enough) or hold several labels; either way the model
cannot name one label at the requested coverage, so an abstaining answer abstains on both. The
trainer computes the scores with these functions, so what it measures is what the server does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

METHOD = "lac"
DEFAULT_ALPHA = 0.1
# Why an answer abstains (``abstain_reason``); the OOD flag is checked first.
OUT_OF_DISTRIBUTION = "out_of_distribution"
SEVERAL_LABELS = "several_labels"
NO_LABEL = "no_label"


def scores(class_probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The sorted LAC scores ``1 - p(true label)`` of calibration examples, float32.

    ``class_probs`` is ``[n, classes]`` (a sigmoid column must be expanded to ``[1 - p, p]``).
    """
    p = np.asarray(class_probs, np.float64)
    y = np.asarray(labels, np.int64).reshape(-1)
    return np.sort(1.0 - p[np.arange(len(y)), y]).astype(np.float32)


def quantile(sorted_scores: np.ndarray, alpha: float) -> float:
    """The conformal threshold: the ``ceil((n + 1)(1 - alpha))``-th smallest score; infinite
    (every label) when ``alpha`` is too small for ``n`` scores to vouch for."""
    n = len(sorted_scores)
    rank = math.ceil((n + 1) * (1.0 - alpha) - 1e-9)  # the slack keeps exact products exact
    if rank > n:
        return math.inf
    return float(sorted_scores[max(rank, 1) - 1])


def set_mask(class_probs: np.ndarray, threshold: float) -> np.ndarray:
    """``[n, classes]`` booleans: the labels in each prediction set."""
    return (1.0 - np.asarray(class_probs, np.float64)) <= threshold


def check_alpha(value: Any) -> float:
    """``alpha`` as a float in (0, 1), or ValueError saying so."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("alpha must be a number between 0 and 1 (exclusive)")
    alpha = float(value)
    if not (math.isfinite(alpha) and 0.0 < alpha < 1.0):
        raise ValueError("alpha must be a number between 0 and 1 (exclusive)")
    return alpha


@dataclass
class Conformal:
    """A version's calibration scores and its default ``alpha``."""

    scores: np.ndarray  # sorted, float32
    default_alpha: float = DEFAULT_ALPHA
    _thresholds: dict[float, float] = field(default_factory=dict, repr=False)

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], folder: Path) -> Conformal | None:
        """The version's conformal scores, or None when it ships none; ValueError if broken."""
        block = meta.get("conformal")
        if block is None:
            return None
        if not isinstance(block, dict) or block.get("method") != METHOD:
            raise ValueError(f"metadata conformal must be a {METHOD!r} block")
        name = block.get("file")
        if not isinstance(name, str) or name not in meta.get("files", {}):
            raise ValueError("metadata conformal.file must name a file listed in metadata files")
        alpha = check_alpha(block.get("alpha", DEFAULT_ALPHA))
        values = np.load(folder / name, allow_pickle=False)
        if values.ndim != 1 or len(values) == 0 or not np.isfinite(values).all():
            raise ValueError("conformal scores must be a non-empty 1-d array of finite numbers")
        if block.get("n") is not None and block["n"] != len(values):
            raise ValueError(f"conformal.n is {block['n']}, the file holds {len(values)} scores")
        return cls(np.sort(values.astype(np.float32)), alpha)

    @property
    def n(self) -> int:
        return len(self.scores)

    def threshold(self, alpha: float | None = None) -> float:
        key = self.default_alpha if alpha is None else alpha
        cached = self._thresholds.get(key)
        if cached is None:
            if len(self._thresholds) > 256:  # alphas come from requests: keep the cache small
                self._thresholds.clear()
            cached = self._thresholds[key] = quantile(self.scores, key)
        return cached

    def mask(self, class_probs: np.ndarray, alpha: float | None = None) -> np.ndarray:
        return set_mask(class_probs, self.threshold(alpha))


def abstentions(mask: np.ndarray, ood_flags: np.ndarray | None) -> list[str | None]:
    """Per instance, why the answer abstains (None: it answers): out of distribution first,
    then a set with several labels or none."""
    sizes = mask.sum(axis=1)
    reasons: list[str | None] = []
    for i, size in enumerate(sizes.tolist()):
        if ood_flags is not None and bool(ood_flags[i]):
            reasons.append(OUT_OF_DISTRIBUTION)
        elif size > 1:
            reasons.append(SEVERAL_LABELS)
        elif size == 0:
            reasons.append(NO_LABEL)
        else:
            reasons.append(None)
    return reasons


def save(sorted_scores: np.ndarray, path: Path) -> None:
    np.save(path, np.asarray(sorted_scores, np.float32), allow_pickle=False)
