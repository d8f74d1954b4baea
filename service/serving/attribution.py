"""Model-agnostic attributions: exact Shapley values for a few features, occlusion for images.

Both methods need only the model's outputs for a batch of perturbed inputs, built here from the
instance and run through the version's batcher in one call, so they work the same on every
runtime (LiteRT without TensorFlow included). The task classes decide which method a model gets
and turn the arrays here into answers.

Shapley values (interventional, against a background sample): for a coalition S of features, the
model sees x on S and a background row b elsewhere, and the value of S is the mean over the
background, v(S) = E_b[g(f(x_S, b_rest))]. With n features all 2^n coalitions are enumerated, so
the values are exact for that background: phi_i = sum over S without i of
|S|! (n - |S| - 1)! / n! * (v(S + i) - v(S)). They add up to v(N) - v({}) = g(f(x)) - E_b[g(f(b))]
exactly (up to rounding), whatever g is: g is the identity for attributions in probability and
the logit for attributions in log-odds.

Occlusion: square patches slide over the image; each copy has one patch set to the baseline (0,
no ink). A patch's effect is the drop in the explained class's probability, shared among its
pixels in proportion to how far each is from the baseline (a pixel already at the baseline
cannot be removed, so it gets none) and averaged over the patches that cover a pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from service.repository.disk import read_numpy

MAX_SHAPLEY_FEATURES = 12  # 2^n coalitions times the background rows go through one model call
MAX_BACKGROUND_ROWS = 256
_LOGIT_EPS = 1e-7  # probabilities are clipped into [eps, 1 - eps] before the logit


# --- Shapley ----------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def coalitions(n: int) -> np.ndarray:
    """Every subset of ``n`` features as a bool mask ``(2^n, n)``; row s holds bit i of s."""
    if not 1 <= n <= MAX_SHAPLEY_FEATURES:
        raise ValueError(f"exact Shapley values need 1 to {MAX_SHAPLEY_FEATURES} features")
    s = np.arange(2**n)[:, None]
    masks = ((s >> np.arange(n)[None, :]) & 1).astype(bool)
    masks.flags.writeable = False
    return masks


@lru_cache(maxsize=8)
def shapley_matrix(n: int) -> np.ndarray:
    """The ``(n, 2^n)`` matrix W with phi = W @ v for coalition values v (indexed as
    :func:`coalitions`)."""
    masks = coalitions(n)
    sizes = masks.sum(axis=1)
    weight = np.array(
        [math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n) for k in range(n)]
    )
    w = np.zeros((n, 2**n))
    index = np.arange(2**n)
    for i in range(n):
        without = index[~masks[:, i]]
        w[i, without | (1 << i)] += weight[sizes[without]]
        w[i, without] -= weight[sizes[without]]
    w.flags.writeable = False
    return w


def coalition_inputs(x: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The model inputs for every coalition and background row: ``(2^n * B, n)`` float32, row
    ``s * B + b`` holding ``x`` on the features of coalition s and background row b elsewhere."""
    n = x.shape[-1]
    masks = coalitions(n)
    mixed = np.where(masks[:, None, :], x[None, None, :], background[None, :, :])
    return np.ascontiguousarray(mixed.reshape(-1, n), dtype=np.float32)


def logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, np.float64), _LOGIT_EPS, 1.0 - _LOGIT_EPS)
    return np.log(q) - np.log1p(-q)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Shapley:
    """Attributions of one instance and the values they split."""

    values: np.ndarray  # (n,) per feature
    base: float  # v({}) = E_b[g(f(b))]
    full: float  # v(N) = g(f(x))


def shapley_values(outputs: np.ndarray, n: int, link: str = "identity") -> Shapley:
    """Exact Shapley values from the model's outputs ``(2^n * B,)`` for :func:`coalition_inputs`
    (``link`` ``"identity"`` or ``"logit"`` is applied to each output before averaging)."""
    f = np.asarray(outputs, np.float64).reshape(2**n, -1)
    g = logit(f) if link == "logit" else f
    v = g.mean(axis=1)
    return Shapley(values=shapley_matrix(n) @ v, base=float(v[0]), full=float(v[-1]))


def load_background(meta: dict[str, Any], folder: Path | None, n: int) -> tuple[np.ndarray, str]:
    """The version's background sample ``(B, n)`` float32 and how to describe it.

    A training-time sample ships as ``metadata.explain.background.file`` (an ``.npy`` of raw
    feature rows, listed in ``metadata.files`` so the repository checks its checksum); without
    one the golden inputs (real test rows) stand in. ValueError when neither is usable.
    """
    block = meta.get("explain")
    spec = block.get("background") if isinstance(block, dict) else None
    if spec is not None:
        if not isinstance(spec, dict):
            raise ValueError("metadata explain.background must be an object")
        name = spec.get("file")
        if not isinstance(name, str) or name not in meta.get("files", {}):
            raise ValueError("metadata explain.background.file must name a file in metadata files")
        if folder is None:
            raise ValueError("the background sample needs the version folder")
        rows = read_numpy(folder, name)
        if not isinstance(rows, np.ndarray):
            raise ValueError(f"{name} is not an .npy array of background rows")
        rows = _check_rows(rows, n, "explain.background")
        if spec.get("rows") is not None and spec.get("rows") != len(rows):
            said = spec["rows"]
            raise ValueError(f"explain.background has {len(rows)} rows, metadata says {said}")
        return rows, f"training sample ({len(rows)} rows)"
    golden = meta.get("golden")
    inputs = golden.get("inputs") if isinstance(golden, dict) else None
    if inputs is None:
        raise ValueError("no background sample: neither explain.background nor golden inputs")
    rows = _check_rows(np.asarray(inputs, np.float32), n, "golden.inputs")
    return rows, f"golden sample ({len(rows)} rows)"


def _check_rows(rows: np.ndarray, n: int, where: str) -> np.ndarray:
    rows = np.asarray(rows, np.float32)
    if rows.ndim != 2 or rows.shape[1] != n or not 1 <= len(rows) <= MAX_BACKGROUND_ROWS:
        raise ValueError(
            f"{where} must be 1 to {MAX_BACKGROUND_ROWS} rows of {n} features, "
            f"got shape {list(rows.shape)}"
        )
    if not np.isfinite(rows).all():
        raise ValueError(f"{where} holds NaN or Inf")
    return np.ascontiguousarray(rows)


# --- occlusion --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Occlusion:
    """A sliding grid of square patches over a ``side`` x ``side`` image."""

    side: int
    patch: int
    stride: int
    baseline: float = 0.0

    @property
    def starts(self) -> list[int]:
        last = self.side - self.patch
        starts = list(range(0, last + 1, self.stride))
        if starts[-1] != last:  # the last row and column of pixels are covered too
            starts.append(last)
        return starts

    @property
    def masks(self) -> np.ndarray:
        """One bool mask ``(side, side)`` per patch: ``(patches, side, side)``."""
        return _patch_masks(self.side, self.patch, tuple(self.starts))

    @property
    def copies(self) -> int:
        return len(self.starts) ** 2

    def inputs(self, image: np.ndarray) -> np.ndarray:
        """The image itself followed by one occluded copy per patch: ``(1 + patches, side,
        side)``."""
        masks = self.masks
        out = np.empty((1 + len(masks), self.side, self.side), np.float32)
        out[0] = image
        out[1:] = np.where(masks, np.float32(self.baseline), image[None])
        return out

    def attribution(self, image: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """The ``(side, side)`` map from the explained class's score for :meth:`inputs`
        (``scores[0]`` the image's own, then one per patch)."""
        masks = self.masks.astype(np.float64)
        drops = float(scores[0]) - np.asarray(scores[1:], np.float64)  # (patches,)
        ink = np.abs(np.asarray(image, np.float64) - self.baseline)  # what a patch removes
        share = masks * ink[None]
        total = share.reshape(len(masks), -1).sum(axis=1)
        weights = np.divide(drops, total, out=np.zeros_like(drops), where=total > 0)
        summed = np.tensordot(weights, share, axes=1)
        coverage = masks.sum(axis=0)
        return (summed / np.maximum(coverage, 1)).astype(np.float32)  # type: ignore[no-any-return]


@lru_cache(maxsize=8)
def _patch_masks(side: int, patch: int, starts: tuple[int, ...]) -> np.ndarray:
    masks = np.zeros((len(starts) ** 2, side, side), bool)
    k = 0
    for r in starts:
        for c in starts:
            masks[k, r : r + patch, c : c + patch] = True
            k += 1
    masks.flags.writeable = False
    return masks
