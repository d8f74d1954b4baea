"""How much an ECE figure can be trusted: its noise floor and a bootstrap interval.

ECE bins the top-class confidence and adds up, per bin, the gap between the bin's accuracy and
its mean confidence, weighted by the bin's share. On a small set each bin holds a handful of
examples, so even a perfectly calibrated model shows a sizeable ECE: its labels are coin flips
with the stated probabilities. :func:`noise_floor` measures that by simulation (same predicted
probabilities, labels drawn from them), so a measured ECE can be compared with what chance alone
gives at that size; :func:`bootstrap_interval` gives the spread of the measured figure itself.

Bins are equal-width on [0, 1] (``"width"``, the ECE the metadata records) or hold equal numbers
of examples (``"mass"``), which keeps every bin populated on a small set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from training.metrics import ECE_BINS, class_probabilities

SCHEMES = ("width", "mass")
DRAWS = 2000
SEED = 0
# A draw is a row of n values: on large sets fewer draws keep memory near this many values,
# and a large set's ECE varies little from draw to draw anyway.
VALUE_BUDGET = 2_000_000
MIN_DRAWS = 200


def top_class(y: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The top-class confidence and whether the top class is the label (0/1), float64."""
    p = class_probabilities(probs)
    correct = (p.argmax(axis=1) == np.asarray(y, np.int64).reshape(-1)).astype(np.float64)
    return p.max(axis=1), correct


def bin_index(confidence: np.ndarray, bins: int, scheme: str) -> np.ndarray:
    """Each example's bin: equal-width on [0, 1], or equal-count by rank of confidence."""
    if scheme == "width":
        edges = np.linspace(0.0, 1.0, bins + 1)
        return np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    if scheme == "mass":
        # By rank, so ties and a narrow range still give ``bins`` bins of near-equal size.
        order = np.argsort(confidence, kind="stable")
        index = np.empty(len(confidence), np.int64)
        index[order] = np.arange(len(confidence)) * bins // max(len(confidence), 1)
        return index
    raise ValueError(f"unknown binning {scheme!r} (known: {', '.join(SCHEMES)})")


def _ece_rows(confidence: np.ndarray, correct: np.ndarray, index: np.ndarray, bins: int) -> Any:
    """ECE of each row of ``correct`` ``[draws, n]`` (or a single row), bins fixed by ``index``."""
    correct = np.atleast_2d(correct)
    draws, n = correct.shape
    index = np.broadcast_to(index, (draws, n))
    confidence = np.broadcast_to(confidence, (draws, n))
    flat = (index + bins * np.arange(draws)[:, None]).ravel()
    conf_sum = np.bincount(flat, confidence.ravel(), draws * bins).reshape(draws, bins)
    hit_sum = np.bincount(flat, correct.ravel(), draws * bins).reshape(draws, bins)
    return np.abs(hit_sum - conf_sum).sum(axis=1) / n  # sum over bins of |acc - conf| * n_b / n


def ece(y: np.ndarray, probs: np.ndarray, bins: int = ECE_BINS, scheme: str = "width") -> float:
    """Top-class ECE with ``bins`` bins of the given scheme."""
    confidence, correct = top_class(y, probs)
    return float(_ece_rows(confidence, correct, bin_index(confidence, bins, scheme), bins)[0])


def noise_floor(
    probs: np.ndarray,
    bins: int = ECE_BINS,
    scheme: str = "width",
    draws: int = DRAWS,
    seed: int = SEED,
) -> np.ndarray:
    """ECEs of a perfectly calibrated model with these probabilities, one per simulated draw.

    Its top class is right with exactly the probability it states, so each draw keeps the
    confidences and flips each example's "top class is right" with that probability.
    """
    confidence = class_probabilities(probs).max(axis=1)
    rng = np.random.default_rng(seed)
    correct = (rng.random((draws, len(confidence))) < confidence).astype(np.float64)
    return np.asarray(_ece_rows(confidence, correct, bin_index(confidence, bins, scheme), bins))


def bootstrap_eces(
    y: np.ndarray,
    probs: np.ndarray,
    bins: int = ECE_BINS,
    scheme: str = "width",
    draws: int = DRAWS,
    seed: int = SEED,
) -> np.ndarray:
    """ECEs of ``draws`` resamples (with replacement) of the examples."""
    confidence, correct = top_class(y, probs)
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(confidence), (draws, len(confidence)))
    conf, hit = confidence[rows], correct[rows]
    if scheme == "width":
        index = bin_index(conf.ravel(), bins, scheme).reshape(rows.shape)
    else:
        index = np.stack([bin_index(c, bins, scheme) for c in conf])
    return np.asarray(_ece_rows(conf, hit, index, bins))


@dataclass(frozen=True)
class EceReport:
    """One ECE with its bootstrap interval and what a calibrated model would show."""

    examples: int
    bins: int
    scheme: str
    ece: float
    interval: tuple[float, float]  # 95% percentile bootstrap
    floor_mean: float  # mean ECE of a perfectly calibrated model with these probabilities
    floor_p95: float
    p_value: float
    draws: int  # share of those calibrated draws with an ECE at least the measured one

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["interval"] = list(self.interval)
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in out.items()}


def ece_report(
    y: np.ndarray,
    probs: np.ndarray,
    bins: int = ECE_BINS,
    scheme: str = "width",
    draws: int | None = None,
    seed: int = SEED,
) -> EceReport:
    """The ECE, its bootstrap interval and noise floor (``draws`` None: as many as
    :data:`VALUE_BUDGET` allows, between :data:`MIN_DRAWS` and :data:`DRAWS`)."""
    n = len(np.asarray(y).reshape(-1))
    if draws is None:
        draws = min(DRAWS, max(MIN_DRAWS, VALUE_BUDGET // max(n, 1)))
    measured = ece(y, probs, bins, scheme)
    boot = bootstrap_eces(y, probs, bins, scheme, draws, seed)
    floor = noise_floor(probs, bins, scheme, draws, seed + 1)
    low, high = np.quantile(boot, [0.025, 0.975])
    return EceReport(
        examples=n,
        bins=bins,
        scheme=scheme,
        ece=measured,
        interval=(float(low), float(high)),
        floor_mean=float(floor.mean()),
        floor_p95=float(np.quantile(floor, 0.95)),
        p_value=float((floor >= measured - 1e-12).mean()),
        draws=draws,
    )
