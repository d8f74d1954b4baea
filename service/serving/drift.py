"""Input drift per version: the training-time reference against a rolling window of inputs.

The reference ships in the version folder: ``metadata.drift.file`` names a JSON file listed in
``metadata.files`` (so its checksum is verified with the others)::

    {"format": 1, "rows": 614,
     "features": {"glucose": {"kind": "continuous", "quantiles": [101 values]},
                  "predicted_class": {"kind": "categorical", "proportions": [...]}}}

``quantiles`` are the 0th, 1st, ..., 100th percentiles of the training values (numpy's default
linear method), ``proportions`` the share of each class, ``rows`` how many training rows they
come from. Which features a version has is the file's business; the server computes the ones it
knows: each Pima input feature by name, and for images ``ink_mass``, ``ink_width``,
``ink_height`` (see :func:`image_features`), and ``predicted_class`` for any classifier. Any
other is reported with ``"computed": false``, no statistic, and no share of alpha.

Statistics, computed when read over the newest ``window`` rows: the KS statistic against the
reference CDF (linear between its percentiles, exact at repeated values), with its asymptotic
p-value for a two-sample test of ``n`` window rows against ``rows`` reference rows; PSI over the
reference deciles (classes for a categorical feature), whose p-value uses ``n_eff * PSI`` as a
chi-square with one degree fewer than bins. The alarm is up when any feature's p-value is below
``alpha / features`` (Bonferroni): a window of inputs drawn like the training data raises it with
probability at most ``alpha``.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

INK_LEVEL = 0.2  # a pixel at or above this counts as ink for the ink box
IMAGE_FEATURES = ("ink_mass", "ink_width", "ink_height")
PREDICTED = "predicted_class"
_PSI_FLOOR = 1e-4


@dataclass(frozen=True)
class FeatureReference:
    name: str
    kind: str  # continuous | categorical
    quantiles: np.ndarray | None = None  # 101 values, non-decreasing
    proportions: np.ndarray | None = None
    psi_edges: np.ndarray | None = None  # inner bin edges (deduplicated deciles)
    psi_expected: np.ndarray | None = None


@dataclass(frozen=True)
class Reference:
    rows: int
    features: tuple[FeatureReference, ...]


def reference_cdf(quantiles: np.ndarray, t: np.ndarray, side: str = "right") -> np.ndarray:
    """The reference CDF at ``t``: linear between percentiles; at a repeated percentile value
    (an atom) the right limit (``side="right"``) or the left limit (``"left"``)."""
    q = quantiles
    p = np.linspace(0.0, 1.0, len(q))
    idx = np.searchsorted(q, t, side=side)  # type: ignore[call-overload]
    out = np.empty(len(t), dtype=np.float64)
    below, above = idx == 0, idx >= len(q)
    out[below], out[above] = 0.0, 1.0
    mid = ~(below | above)
    i = idx[mid]
    lo_q, hi_q = q[i - 1], q[i]
    span = np.where(hi_q > lo_q, hi_q - lo_q, 1.0)
    frac = np.clip((t[mid] - lo_q) / span, 0.0, 1.0)
    out[mid] = p[i - 1] + frac * (p[i] - p[i - 1])
    return out


def load_reference(meta: dict[str, Any], folder: Path) -> Reference | None:
    """The version's drift reference, or None when it ships none. A malformed one raises."""
    block = meta.get("drift")
    if block is None:
        return None
    name = block.get("file") if isinstance(block, dict) else None
    if not isinstance(name, str) or name not in meta.get("files", {}):
        raise ValueError("metadata drift.file must name a file listed in metadata files")
    data = json.loads((folder / name).read_bytes())
    if not isinstance(data, dict) or data.get("format") != 1:
        raise ValueError("drift reference must be format 1")
    rows = data.get("rows")
    if not isinstance(rows, int) or rows < 1:
        raise ValueError("drift reference rows must be a positive integer")
    features = []
    for fname, spec in dict(data.get("features") or {}).items():
        kind = spec.get("kind")
        if kind == "continuous":
            q = np.asarray(spec["quantiles"], dtype=np.float64)
            if q.ndim != 1 or len(q) != 101 or np.any(np.diff(q) < 0):
                raise ValueError(f"drift reference {fname}: 101 non-decreasing quantiles")
            edges = np.unique(q[10:100:10])
            cdf = reference_cdf(q, edges)
            expected = np.diff(np.concatenate([[0.0], cdf, [1.0]]))
            features.append(FeatureReference(fname, kind, q, None, edges, expected))
        elif kind == "categorical":
            p = np.asarray(spec["proportions"], dtype=np.float64)
            if p.ndim != 1 or np.any(p < 0) or not math.isclose(p.sum(), 1.0, abs_tol=1e-6):
                raise ValueError(f"drift reference {fname}: proportions must sum to 1")
            features.append(FeatureReference(fname, kind, None, p))
        else:
            raise ValueError(f"drift reference {fname}: kind must be continuous or categorical")
    return Reference(rows, tuple(features))


def image_features(x: np.ndarray) -> dict[str, np.ndarray]:
    """Per image in ``x`` (n, side, side) of values in [0, 1]: ``ink_mass``, the mean pixel
    value; ``ink_width``/``ink_height``, the columns/rows from the first to the last that hold a
    pixel >= INK_LEVEL (0 for an image without one)."""
    n = len(x)
    ink: np.ndarray = np.asarray(x.reshape(n, x.shape[1], -1) >= INK_LEVEL)
    mass = x.reshape(n, -1).mean(axis=1, dtype=np.float64)

    def extent(any_along: np.ndarray) -> np.ndarray:
        has = any_along.any(axis=1)
        first = np.argmax(any_along, axis=1)
        last = any_along.shape[1] - 1 - np.argmax(any_along[:, ::-1], axis=1)
        return np.where(has, last - first + 1, 0).astype(np.float64)

    return {
        "ink_mass": mass,
        "ink_width": extent(np.asarray(ink.any(axis=1))),
        "ink_height": extent(np.asarray(ink.any(axis=2))),
    }


REFERENCE_FILE = "drift_reference.json"


def continuous_reference(values: np.ndarray) -> dict[str, Any]:
    """A continuous feature's reference: its percentiles 0, 1, ..., 100."""
    return {"kind": "continuous", "quantiles": np.percentile(values, np.arange(101)).tolist()}


def categorical_reference(classes: np.ndarray, k: int) -> dict[str, Any]:
    counts = np.bincount(classes.astype(np.int64), minlength=k).astype(np.float64)
    return {"kind": "categorical", "proportions": (counts / max(counts.sum(), 1.0)).tolist()}


def image_reference(
    images: np.ndarray, predicted: np.ndarray | None, classes: int
) -> dict[str, Any]:
    """The reference of an image model: ink features and (given) the predicted-class shares."""
    features: dict[str, Any] = {
        name: continuous_reference(values)
        for name, values in image_features(images.astype(np.float32)).items()
    }
    if predicted is not None:
        features[PREDICTED] = categorical_reference(predicted, classes)
    return {"format": 1, "rows": len(images), "features": features}


def record_reference(
    rows: np.ndarray, names: list[str], predicted: np.ndarray | None = None
) -> dict[str, Any]:
    """The reference of a tabular model: each feature's percentiles (and predicted classes)."""
    features: dict[str, Any] = {n: continuous_reference(rows[:, i]) for i, n in enumerate(names)}
    if predicted is not None:
        features[PREDICTED] = categorical_reference(predicted, 2)
    return {"format": 1, "rows": len(rows), "features": features}


def ks_p_value(d: float, n_eff: float) -> float:
    """Asymptotic Kolmogorov p-value, with Stephens' small-sample correction."""
    if d <= 0:
        return 1.0
    root = math.sqrt(n_eff)
    lam = (root + 0.12 + 0.11 / root) * d
    if lam < 0.2:
        return 1.0
    total = 0.0
    for k in range(1, 101):
        term = 2 * (-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam)
        total += term
        if abs(term) < 1e-12:
            break
    return min(1.0, max(0.0, total))


def chi2_sf(x: float, dof: int) -> float:
    from scipy.special import chdtrc  # off the request path: read only when drift is read

    return float(chdtrc(dof, x))


def ks_statistic(values: np.ndarray, quantiles: np.ndarray) -> float:
    w = np.sort(values)
    n = len(w)
    t = np.unique(np.concatenate([w, quantiles]))
    right = np.searchsorted(w, t, side="right") / n - reference_cdf(quantiles, t, "right")
    left = np.searchsorted(w, t, side="left") / n - reference_cdf(quantiles, t, "left")
    return float(max(np.abs(right).max(), np.abs(left).max()))


def psi(observed: np.ndarray, expected: np.ndarray) -> float:
    o = np.maximum(observed, _PSI_FLOOR)
    e = np.maximum(expected, _PSI_FLOOR)
    return float(np.sum((o - e) * np.log(o / e)))


class DriftWindow:
    """The newest ``size`` rows of a version's drift features (a ring per feature)."""

    def __init__(self, reference: Reference, size: int, alpha: float, min_rows: int) -> None:
        self.reference = reference
        self.size = size
        self.alpha = alpha
        self.min_rows = min_rows
        self.names = [f.name for f in reference.features]
        self._values = np.zeros((len(self.names), size), dtype=np.float64)
        # features this server computes: a reference may name others, which stay untested
        self._computed = np.zeros(len(self.names), dtype=bool)
        self._next = 0
        self._count = 0
        self.total = 0
        self._lock = threading.Lock()
        self._cached: tuple[int, dict[str, Any]] | None = None

    def add(self, features: dict[str, np.ndarray]) -> None:
        columns = [features.get(name) for name in self.names]
        n = next((len(c) for c in columns if c is not None), 0)
        if n == 0:
            return
        take = min(n, self.size)
        idx = (self._next + np.arange(take)) % self.size
        with self._lock:
            for i, column in enumerate(columns):
                if column is not None:
                    self._values[i, idx] = column[-take:]
                    self._computed[i] = True
            self._next = int((self._next + take) % self.size)
            self._count = min(self.size, self._count + take)
            self.total += n

    def report(self) -> dict[str, Any]:
        """Per feature: KS, PSI and their p-values; the alarm and its thresholds."""
        with self._lock:
            total, n = self.total, self._count
            if self._cached is not None and self._cached[0] == total:
                return self._cached[1]
            values = self._values[:, :n].copy()
            computed = self._computed.copy()
        m = self.reference.rows
        n_eff = n * m / (n + m) if n else 0.0
        # before the first input nothing tells which features this server computes: every one
        # the reference names is counted, which is what the first input shows for a reference of
        # this server's own trainer (the threshold the report and its gauge give stays put)
        tested = int(computed.sum()) if computed.any() else len(self.names)
        per_feature = self.alpha / max(1, tested)
        features: dict[str, Any] = {}
        alarm = False
        for i, ref in enumerate(self.reference.features):
            entry: dict[str, Any] = {"kind": ref.kind, "ks": None, "psi": None, "p_value": None}
            if n and not computed[i]:
                entry["computed"] = False
            elif n:
                column = values[i]
                if ref.kind == "continuous":
                    assert ref.quantiles is not None and ref.psi_edges is not None
                    d = ks_statistic(column, ref.quantiles)
                    bins = np.searchsorted(ref.psi_edges, column, side="left")
                    observed = np.bincount(bins, minlength=len(ref.psi_edges) + 1) / n
                    entry["ks"] = d
                    entry["psi"] = psi(observed, ref.psi_expected)  # type: ignore[arg-type]
                    entry["p_value"] = ks_p_value(d, n_eff)
                    entry["ks_threshold"] = ks_critical(per_feature, n_eff)
                else:
                    assert ref.proportions is not None
                    k = len(ref.proportions)
                    classes = np.clip(column.astype(np.int64), 0, k - 1)
                    observed = np.bincount(classes, minlength=k) / n
                    value = psi(observed, ref.proportions)
                    entry["psi"] = value
                    entry["p_value"] = chi2_sf(n_eff * value, max(1, k - 1))
                if n >= self.min_rows and entry["p_value"] < per_feature:
                    alarm = True
                    entry["alarm"] = True
                else:
                    entry["alarm"] = False
            features[ref.name] = entry
        result = {
            "rows": n,
            "window": self.size,
            "inputs_total": total,
            "reference_rows": m,
            "alarm": alarm,
            "threshold": {
                "alpha": self.alpha,
                "p_value_per_feature": per_feature,
                "min_rows": self.min_rows,
            },
            "features": features,
        }
        self._cached = (total, result)
        return result


def ks_critical(p: float, n_eff: float) -> float:
    """The KS statistic whose p-value (as :func:`ks_p_value`) is ``p``, by bisection."""
    if n_eff <= 0:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(50):
        mid = (lo + hi) / 2
        if ks_p_value(mid, n_eff) > p:
            lo = mid
        else:
            hi = mid
    return hi
