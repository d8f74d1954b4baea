"""Split-conformal prediction sets, and the abstention they allow.

The training side scores each example of a calibration split held out from training (never the
test set) with the version's own, calibrated probabilities: ``1 - p(true label)`` (the LAC score,
"least ambiguous set-valued classifier"). It ships the sorted scores with the version
(``metadata.conformal``, the array in the file it names, covered by the checksums), so any
``alpha`` works per request: the threshold is the ``ceil((n + 1)(1 - alpha))``-th smallest score,
and the set holds every label whose probability is at least ``1 - threshold``. On exchangeable
data such a set holds the true label with probability at least ``1 - alpha``.

That guarantee is an average over calibration draws: the coverage one draw of n scores delivers
varies around it by about ``sqrt(alpha (1 - alpha) / n)``, so one version in six or so covers a
standard error or more below ``1 - alpha``, on any number of test inputs. A version may
therefore ship ``delta`` as well: the threshold is then the smallest order statistic whose
coverage is at least ``1 - alpha`` with probability ``1 - delta`` over the calibration draw (a
training-conditional guarantee; the coverage of the k-th smallest of n scores is Beta(k,
n + 1 - k) distributed).

A LAC set can be empty (no label is likely enough) or hold several labels; either way the model
cannot name one label at the requested coverage, so an abstaining answer abstains on both. For a
very accurate model any ``alpha`` above its error rate empties sets of real inputs, so each
version ships its own default ``alpha`` (:func:`choose_alpha`). The trainer computes the scores
and the default with these functions, so what it measures is what the server does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from service.repository.disk import read_numpy

METHOD = "lac"
DEFAULT_ALPHA = 0.1  # a version whose metadata names no alpha
# The defaults a new version chooses from, and the chance it accepts that its calibration draw
# leaves the coverage below 1 - alpha.
ALPHA_CANDIDATES = (0.1, 0.05, 0.02, 0.01)
DELTA = 0.1
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


def rank(n: int, alpha: float, delta: float | None = None) -> int:
    """The rank of the conformal threshold among ``n`` sorted scores (``n + 1``: none will do).

    Without ``delta``: ``ceil((n + 1)(1 - alpha))``, coverage at least ``1 - alpha`` on average
    over calibration draws. With it: the smallest ``k`` with ``P(Binomial(n, 1 - alpha) <= k - 1)
    >= 1 - delta``, the probability that the k-th smallest score covers ``1 - alpha``.
    """
    if delta is None:
        return max(math.ceil((n + 1) * (1.0 - alpha) - 1e-9), 1)  # slack: exact stays exact
    j = np.arange(n + 1, dtype=np.float64)
    log_factorial = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1)))])
    log_pmf = (
        log_factorial[n]
        - log_factorial
        - log_factorial[::-1]
        + j * math.log1p(-alpha)
        + (n - j) * math.log(alpha)
    )
    cdf = np.cumsum(np.exp(log_pmf))  # cdf[k - 1] = P(Binomial <= k - 1)
    enough = np.flatnonzero(cdf[:n] >= 1.0 - delta - 1e-12)
    return int(enough[0]) + 1 if len(enough) else n + 1


def quantile(sorted_scores: np.ndarray, alpha: float, delta: float | None = None) -> float:
    """The conformal threshold: the :func:`rank`-th smallest score; infinite (every label) when
    ``alpha`` is too small for ``n`` scores to vouch for."""
    n = len(sorted_scores)
    k = rank(n, alpha, delta)
    if k > n:
        return math.inf
    return float(sorted_scores[k - 1])


def set_mask(class_probs: np.ndarray, threshold: float) -> np.ndarray:
    """``[n, classes]`` booleans: the labels in each prediction set."""
    return (1.0 - np.asarray(class_probs, np.float64)) <= threshold


def check_alpha(value: Any, name: str = "alpha") -> float:
    """``value`` as a float in (0, 1), or ValueError saying so."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number between 0 and 1 (exclusive)")
    alpha = float(value)
    if not (math.isfinite(alpha) and 0.0 < alpha < 1.0):
        raise ValueError(f"{name} must be a number between 0 and 1 (exclusive)")
    return alpha


def set_figures(
    sorted_scores: np.ndarray,
    class_probs: np.ndarray,
    alpha: float,
    delta: float | None = None,
    labels: np.ndarray | None = None,
) -> dict[str, Any]:
    """Set sizes at ``alpha`` on ``class_probs`` (and coverage, given the ``labels``)."""
    threshold = quantile(sorted_scores, alpha, delta)
    mask = set_mask(class_probs, threshold)
    sizes = mask.sum(axis=1)
    figures: dict[str, Any] = {
        "alpha": alpha,
        "threshold": threshold if math.isfinite(threshold) else None,
        "mean_set_size": round(float(sizes.mean()), 6),
        "single_label": round(float((sizes == 1).mean()), 6),
        "empty": round(float((sizes == 0).mean()), 6),
        "examples": len(sizes),
    }
    if labels is not None:
        covered = mask[np.arange(len(sizes)), np.asarray(labels, np.int64).reshape(-1)]
        figures["coverage"] = round(float(covered.mean()), 6)
    return figures


def choose_alpha(
    sorted_scores: np.ndarray,
    class_probs: np.ndarray,
    delta: float | None = DELTA,
    candidates: tuple[float, ...] = ALPHA_CANDIDATES,
) -> tuple[float, list[dict[str, Any]]]:
    """A version's default ``alpha``: the candidate whose sets on the calibration split
    (``class_probs``, the examples ``sorted_scores`` came from) most often hold exactly one
    label, the smaller alpha on a tie; and the figures of every candidate.

    An answer with one label is the one an abstaining request gets, so this is the default that
    abstains least on data like the calibration split: too large an alpha empties the sets of
    inputs the model is sure of, too small a one fills them with a second label. Choosing among
    four candidates on the same scores bends the guarantee only slightly.
    """
    figures = [set_figures(sorted_scores, class_probs, a, delta) for a in candidates]
    best = max(figures, key=lambda f: (f["single_label"], -f["alpha"]))
    return float(best["alpha"]), figures


@dataclass
class Conformal:
    """A version's calibration scores, its default ``alpha`` and its ``delta`` (None: the
    guarantee holds on average over calibration draws)."""

    scores: np.ndarray  # sorted, float32
    default_alpha: float = DEFAULT_ALPHA
    delta: float | None = None
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
        delta = None if block.get("delta") is None else check_alpha(block["delta"], "delta")
        values = read_numpy(folder, name)
        if not isinstance(values, np.ndarray):
            raise ValueError(f"{name} is not an .npy array of conformal scores")
        if values.ndim != 1 or len(values) == 0 or not np.isfinite(values).all():
            raise ValueError("conformal scores must be a non-empty 1-d array of finite numbers")
        if block.get("n") is not None and block["n"] != len(values):
            raise ValueError(f"conformal.n is {block['n']}, the file holds {len(values)} scores")
        return cls(np.sort(values.astype(np.float32)), alpha, delta)

    @property
    def n(self) -> int:
        return len(self.scores)

    def threshold(self, alpha: float | None = None) -> float:
        key = self.default_alpha if alpha is None else alpha
        cached = self._thresholds.get(key)
        if cached is None:
            if len(self._thresholds) > 256:  # alphas come from requests: keep the cache small
                self._thresholds.clear()
            cached = self._thresholds[key] = quantile(self.scores, key, self.delta)
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
