"""Live quality per version: the predictions waiting for a label, and a window of labelled rows.

A prediction's request id is remembered with the probabilities the client got (``Pending``),
bounded by rows and by age. A label posted for that id moves the rows into the version's
``QualityWindow``: the newest ``window`` labelled rows, from which accuracy, the confusion
matrix, the Brier score, the ECE and (two classes) the ROC AUC are computed when read. The
predicted class (argmax, or ``p >= threshold`` for a single sigmoid output) and the ECE (top-class
confidence in 15 equal bins) are defined here once; the training report imports them. The Brier
score is the mean squared distance between the class probabilities and the one-hot label: for a
sigmoid output twice the one-column form that the training report's calibration figures use.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

ECE_BINS = 15
DEFAULT_THRESHOLD = 0.5  # a sigmoid output without a threshold of its own
GONE_REASONS = ("expired", "already labelled", "its prediction had too many rows to keep")


@dataclass(slots=True)
class PendingEntry:
    model: str
    version: int
    serial: int  # the ModelVersion that answered (a number may be republished meanwhile)
    probs: np.ndarray  # (n, *output_shape) float32, as answered
    at: float


class UnknownRequest(LookupError):
    """No prediction with this request id was ever remembered (or it is long forgotten)."""


class GoneRequest(LookupError):
    """The prediction was remembered, but has expired or already has its label; ``model`` is
    the model that answered it (a label sent to another model's route is 404, not 410)."""

    def __init__(self, reason: str, model: str) -> None:
        super().__init__(reason)
        self.model = model


class Pending:
    """Request id -> the probabilities answered, oldest first, at most ``max_rows`` rows and
    ``ttl_s`` seconds old. Forgotten ids are kept (ids only) as long again, to answer 410."""

    def __init__(self, max_rows: int, ttl_s: float) -> None:
        self.max_rows = max_rows
        self.ttl_s = ttl_s
        self.rows = 0
        self._items: OrderedDict[str, PendingEntry] = OrderedDict()
        # id -> (index into GONE_REASONS, model): one shared tuple per pair, so an id costs
        # no more than with the reason alone
        self._gone: OrderedDict[str, tuple[int, str]] = OrderedDict()
        self._marks: dict[tuple[int, str], tuple[int, str]] = {}
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._items)

    def remember(
        self, request_id: str, model: str, version: int, serial: int, probs: np.ndarray
    ) -> None:
        n = len(probs)
        if n > self.max_rows:  # its id still answers 410 with the reason, not 404 "unknown"
            old = self._items.pop(request_id, None)
            if old is not None:
                self.rows -= len(old.probs)
            self._forget(request_id, 2, model)
            return
        now = time.monotonic()
        old = self._items.pop(request_id, None)
        if old is not None:
            self.rows -= len(old.probs)
        self._items[request_id] = PendingEntry(model, version, serial, probs.copy(), now)
        self.rows += n
        self._expire(now)

    def _expire(self, now: float) -> None:
        items = self._items
        limit = now - self.ttl_s
        while items:
            first = next(iter(items.values()))
            if self.rows <= self.max_rows and first.at >= limit:
                break
            key, entry = items.popitem(last=False)
            self.rows -= len(entry.probs)
            self.evicted += 1
            self._forget(key, 0, entry.model)

    def _forget(self, request_id: str, reason: int, model: str) -> None:
        mark = (reason, model)
        self._gone[request_id] = self._marks.setdefault(mark, mark)
        self._gone.move_to_end(request_id)
        while len(self._gone) > max(len(self._items), 1) + self.max_rows:
            self._gone.popitem(last=False)

    def take(self, request_id: str) -> PendingEntry:
        """The entry for ``request_id``, removed; UnknownRequest or GoneRequest otherwise."""
        now = time.monotonic()
        self._expire(now)
        entry = self._items.pop(request_id, None)
        if entry is None:
            gone = self._gone.get(request_id)
            if gone is None:
                raise UnknownRequest(request_id)
            raise GoneRequest(GONE_REASONS[gone[0]], gone[1])
        self.rows -= len(entry.probs)
        if entry.at < now - self.ttl_s:  # put back behind newer ones, out of _expire's sight
            self.evicted += 1
            self._forget(request_id, 0, entry.model)
            raise GoneRequest(GONE_REASONS[0], entry.model)
        self._forget(request_id, 1, entry.model)
        return entry

    def put_back(self, request_id: str, entry: PendingEntry) -> None:
        """Undo a :meth:`take` whose label was refused (it keeps its age: :meth:`take` checks
        it, wherever it now stands in the order)."""
        self._gone.pop(request_id, None)
        self._items[request_id] = entry
        self.rows += len(entry.probs)


def class_probabilities(probs: np.ndarray) -> np.ndarray:
    """[N, C] float64 class probabilities; a single sigmoid column becomes [1 - p, p]."""
    flat = np.asarray(probs, dtype=np.float64).reshape(len(probs), -1)
    if flat.shape[1] == 1:
        return np.concatenate([1.0 - flat, flat], axis=1)
    return flat


def predicted_classes(probs: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """argmax, or ``p >= threshold`` for a single sigmoid column (0.5 when None)."""
    flat = np.asarray(probs, dtype=np.float64).reshape(len(probs), -1)
    if flat.shape[1] == 1:
        cut = DEFAULT_THRESHOLD if threshold is None else threshold
        return (flat[:, 0] >= cut).astype(np.int64)
    return np.argmax(flat, axis=1).astype(np.int64)


def expected_calibration_error(y: np.ndarray, probs: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of the top-class confidence over ``bins`` equal-width bins."""
    p = class_probabilities(probs)
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == np.asarray(y).reshape(-1)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def brier_score(y: np.ndarray, probs: np.ndarray) -> float:
    p = class_probabilities(probs)
    onehot = np.zeros_like(p)
    onehot[np.arange(len(y)), y] = 1.0
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def roc_auc(y: np.ndarray, scores: np.ndarray) -> float | None:
    """The Mann-Whitney form of the ROC AUC (ties count one half); None with one class only."""
    pos = int(np.sum(y == 1))
    neg = len(y) - pos
    if pos == 0 or neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranked = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    # average ranks over ties
    _, first, counts = np.unique(ranked, return_index=True, return_counts=True)
    average = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(average, counts)
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def quality_metrics(
    y: np.ndarray, probs: np.ndarray, n_classes: int, threshold: float
) -> dict[str, Any]:
    """accuracy, confusion matrix (rows: true, columns: predicted), Brier, ECE, AUC (2 classes)."""
    pred = predicted_classes(probs, threshold)
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (y, pred), 1)
    result: dict[str, Any] = {
        "rows": len(y),
        "accuracy": float(np.mean(pred == y)),
        "confusion_matrix": confusion.tolist(),
        "brier": brier_score(y, probs),
        "ece": expected_calibration_error(y, probs),
    }
    if n_classes == 2:
        result["roc_auc"] = roc_auc(y, class_probabilities(probs)[:, 1])
    return result


class QualityWindow:
    """The newest ``size`` labelled rows of one version (a ring), and their metrics when read."""

    def __init__(self, size: int, width: int, n_classes: int, threshold: float) -> None:
        self.size = size
        self.n_classes = n_classes
        self.threshold = threshold
        self._probs = np.zeros((size, width), dtype=np.float32)
        self._labels = np.zeros(size, dtype=np.int64)
        self._next = 0
        self._count = 0
        self.total = 0  # labelled rows ever
        self._lock = threading.Lock()  # scrapes read from another thread
        self._cached: tuple[int, dict[str, Any]] | None = None

    def add(self, probs: np.ndarray, labels: np.ndarray) -> None:
        flat = probs.reshape(len(probs), -1)
        with self._lock:
            for row, label in zip(flat[-self.size :], labels[-self.size :], strict=True):
                self._probs[self._next] = row
                self._labels[self._next] = label
                self._next = (self._next + 1) % self.size
            self._count = min(self.size, self._count + len(flat))
            self.total += len(flat)

    def metrics(self) -> dict[str, Any] | None:
        with self._lock:
            total = self.total
            if self._cached is not None and self._cached[0] == total:
                return self._cached[1]
            n = self._count
            if n == 0:
                return None
            probs, labels = self._probs[:n].copy(), self._labels[:n].copy()
        result = quality_metrics(labels, probs, self.n_classes, self.threshold)
        result["window"] = self.size
        result["labelled_total"] = total
        self._cached = (total, result)
        return result
