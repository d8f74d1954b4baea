"""Operating models in production: the payload log, label feedback and live quality, input drift
and shadow traffic, fed by one hook in the prediction path.

``inference.predict`` reads :data:`CURRENT` (set per request by the app when any of these is on;
unset, the hook costs one context-variable read) and calls :meth:`Operations.observe` with the
decoded inputs and the probabilities answered. On the event loop that does only O(1) work per
request: a sampled reference into the payload buffer, the answer remembered under its request id,
a reference into the drift queue, a shadow run scheduled. The operations thread serialises and
writes the payload log and computes the drift features; quality and drift statistics are
computed when read (``GET .../quality``, ``.../drift``, ``/metrics``), over bounded windows.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import deque
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import numpy as np

from service.errors import InvalidInput, NotFound, ServeError
from service.serving.drift import PREDICTED, DriftWindow, Reference, image_features, load_reference
from service.serving.model import VersionState
from service.serving.payload_log import PayloadLog
from service.serving.quality import (
    GoneRequest,
    Pending,
    PendingEntry,
    QualityWindow,
    UnknownRequest,
)
from service.serving.shadow import Shadow

if TYPE_CHECKING:
    from service.serving.model import ModelVersion
    from service.serving.registry import ModelRegistry
    from service.settings import Settings

log = logging.getLogger("service.operations")

# (operations, the request's ASGI state dict, where the edge puts "request_id")
CURRENT: ContextVar[tuple[Operations, dict[str, Any]] | None] = ContextVar(
    "operations", default=None
)
# Inputs waiting for the operations thread, all versions together, in bytes: an image row is
# 3 KB and a Pima row 32 bytes, so a bound in rows would be either tiny or hundreds of MB.
DRIFT_QUEUE_BYTES = 16 * 1024 * 1024
TICK_S = 0.2  # how often the operations thread wakes up


class Gone(ServeError):
    status_code = 410


class Operations:
    def __init__(self, settings: Settings, registry: ModelRegistry) -> None:
        s = settings
        self.registry = registry
        self.payload: PayloadLog | None = None
        if s.payload_log_rate > 0:
            self.payload = PayloadLog(
                s.payload_log_path,
                rate=s.payload_log_rate,
                max_bytes=s.payload_log_max_bytes,
                backups=s.payload_log_backups,
                buffer_bytes=s.payload_log_buffer_bytes,
                redact=s.payload_log_redact,
            )
        self.pending: Pending | None = None
        self.feedback_window = s.feedback_window
        if s.feedback_window > 0:
            self.pending = Pending(s.feedback_pending_rows, s.feedback_ttl_s)
        self.quality: dict[tuple[str, int], QualityWindow] = {}
        self.drift_window = s.drift_window
        self.drift_alpha = s.drift_alpha
        self.drift_min_rows = s.drift_min_rows
        self.drift: dict[tuple[str, int], DriftWindow | None] = {}  # None: no reference
        self.drift_problems: dict[tuple[str, int], str] = {}
        # the ModelVersion.serial whose windows are kept under each model and version
        self._owners: dict[tuple[str, int], int] = {}
        self._drift_queue: deque[tuple[ModelVersion, np.ndarray, np.ndarray]] = deque()
        self._drift_bytes = 0
        self.drift_dropped = 0  # rows
        self._drift_lock = threading.RLock()  # _own drops windows while holding it
        self.shadow = Shadow(registry, s.shadow) if s.shadow else None
        self.hook_errors = 0
        self.enabled = (
            self.payload is not None
            or self.pending is not None
            or s.drift_window > 0
            or self.shadow is not None
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        if self.shadow is not None:
            self.shadow.check_targets()
        # feedback and shadow need it too: it forgets what versions no longer served left behind
        if self._thread is None and self.enabled:
            self._stop.clear()
            self._thread = threading.Thread(target=self._worker, name="operations", daemon=True)
            self._thread.start()

    async def stop(self) -> None:
        if self.shadow is not None:
            await self.shadow.stop()
        self.finish()

    def finish(self) -> None:
        """Stop the operations thread and write out what the payload log holds, synchronously:
        also on a forced quit, which skips the lifespan's ``stop``. Calling it again is harmless."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=10)
        if self.payload is not None:
            self.payload.close()

    def _worker(self) -> None:
        while not self._stop.wait(TICK_S):
            self.process()
        self.process()

    def process(self) -> None:
        """One round of background work (the thread's; tests call it to skip the wait)."""
        try:
            if self.payload is not None:
                self.payload.drain()
            self._process_drift()
            registry = self.registry
            self.forget(
                {
                    (n, mv.version): mv.serial
                    for n in registry.model_names()
                    for mv in registry.versions(n)
                }
            )
        except Exception:
            log.exception("operations round failed")

    # --- the hook (event loop) --------------------------------------------------------------------
    def observe(
        self, mv: ModelVersion, x: np.ndarray, out: np.ndarray, state: dict[str, Any]
    ) -> None:
        """``mv`` answered ``out`` for ``x`` in the request whose ASGI state is ``state``."""
        try:
            request_id = state.get("request_id") or ""
            payload = self.payload
            if payload is not None and random.random() < payload.rate:
                fields = mv.task.record_fields if mv.task is not None else None
                payload.capture(request_id, mv.name, mv.version, fields, x, out)
            if self.pending is not None and request_id:
                self.pending.remember(request_id, mv.name, mv.version, mv.serial, out)
            if self.drift_window > 0:
                size = x.nbytes + out.nbytes
                with self._drift_lock:
                    if self._drift_bytes + size > DRIFT_QUEUE_BYTES:
                        self.drift_dropped += len(x)
                    else:
                        self._drift_bytes += size
                        self._drift_queue.append((mv, x, out))
            if self.shadow is not None:
                self.shadow.maybe_run(mv, x, out)
        except Exception:  # never into the primary path
            self.hook_errors += 1
            log.exception("operations hook failed")

    # --- feedback and quality ------------------------------------------------------------------
    def feedback(self, model: str, items: list[Any]) -> dict[str, Any]:
        """Record labels: each item ``{"request_id", "label"}`` (one instance) or ``{"request_id",
        "labels": [...]}`` (one per instance). All or nothing: every item is checked first, and
        the first that is wrong (422), unknown (404) or gone (410) records none of them, so a
        client can fix or drop it and send the same list again."""
        if self.pending is None:
            raise NotFound("feedback is off on this server (SERVE_FEEDBACK_WINDOW)")
        taken: list[tuple[str, PendingEntry]] = []
        seen: set[str] = set()
        checked: list[tuple[ModelVersion, PendingEntry, np.ndarray]] = []
        try:
            for i, item in enumerate(items):
                where = f"item {i}: " if len(items) > 1 else ""
                rid = self._request_id(item, where)
                if rid in seen:
                    raise InvalidInput(f"{where}request id {rid[:128]!r} is in the list twice")
                seen.add(rid)
                try:
                    entry = self.pending.take(rid)
                except UnknownRequest:
                    raise NotFound(f"{where}unknown request id {rid[:128]!r}") from None
                except GoneRequest as exc:
                    # another model's prediction is 404 whatever became of it, as documented
                    if exc.model != model:
                        raise NotFound(self._not_ours(rid, model, where)) from None
                    raise Gone(f"{where}request id {rid[:128]!r}: {exc}") from None
                taken.append((rid, entry))
                if entry.model != model:
                    raise NotFound(self._not_ours(rid, model, where))
                try:
                    mv = self.registry.lookup(entry.model, entry.version)
                except NotFound:
                    mv = None
                if mv is None or mv.task is None:  # gone, or in its place one that failed
                    raise Gone(
                        f"{where}request id {rid[:128]!r}: version {entry.version} of {model}, "
                        "which answered it, is no longer served"
                    )
                if mv.serial != entry.serial:
                    raise Gone(
                        f"{where}request id {rid[:128]!r}: version {entry.version} of {model} "
                        "was published again since it answered: the label would be credited "
                        "to another model"
                    )
                checked.append((mv, entry, self._labels(mv, item, len(entry.probs), where)))
        except Exception:  # a refusal (ServeError) or a bug: the labels wait as they were
            for rid, entry in reversed(taken):
                self.pending.put_back(rid, entry)
            raise
        for mv, entry, labels in checked:
            self._quality_window(mv).add(entry.probs, labels)
        return {"recorded": sum(len(labels) for _, _, labels in checked)}

    @staticmethod
    def _not_ours(rid: str, model: str, where: str) -> str:
        return f"{where}request id {rid[:128]!r} was not a {model} prediction"

    @staticmethod
    def _request_id(item: Any, where: str) -> str:
        if not isinstance(item, dict):
            raise InvalidInput(f"{where}feedback must be an object with request_id and label")
        unknown = sorted(set(item) - {"request_id", "label", "labels"})
        if unknown:
            raise InvalidInput(f"{where}unknown field {unknown[0][:64]!r}")
        rid = item.get("request_id")
        if not isinstance(rid, str) or not rid:
            raise InvalidInput(f"{where}request_id must be a non-empty string")
        return rid

    @staticmethod
    def _labels(mv: ModelVersion, item: dict[str, Any], n: int, where: str) -> np.ndarray:
        assert mv.task is not None
        names = mv.task.labels
        if "labels" not in item and "label" not in item:
            raise InvalidInput(f"{where}send the true class as label (or labels, one per instance)")
        if "labels" in item and "label" in item:
            raise InvalidInput(f"{where}send label or labels, not both")
        raw = item.get("labels") if "labels" in item else [item.get("label")]
        if not isinstance(raw, list) or len(raw) != n:
            raise InvalidInput(
                f"{where}the prediction had "
                + (
                    "1 instance: send label"
                    if n == 1
                    else f"{n} instances: send labels, a list of {n}"
                )
            )
        out = np.empty(n, dtype=np.int64)
        for k, value in enumerate(raw):
            if isinstance(value, bool) or value is None:
                index = -1
            elif isinstance(value, int):
                index = value
            elif isinstance(value, str) and value in names:
                index = names.index(value)
            else:
                index = -1
            if not 0 <= index < len(names):
                raise InvalidInput(
                    f"{where}label {str(value)[:64]!r} is not a class index or one of {list(names)}"
                )
            out[k] = index
        return out

    def _quality_window(self, mv: ModelVersion) -> QualityWindow:
        key = (mv.name, mv.version)
        self._own(mv)  # feedback checked that mv is the load now served
        window = self.quality.get(key)
        if window is None:
            assert mv.task is not None
            width = int(np.prod(mv.task.output_shape))
            threshold = float(getattr(mv.task, "threshold", 0.5))
            window = QualityWindow(self.feedback_window, width, len(mv.task.labels), threshold)
            self.quality[key] = window
        return window

    def quality_report(self, mv: ModelVersion) -> dict[str, Any]:
        window = self.quality.get((mv.name, mv.version)) if self._own(mv) else None
        metrics = window.metrics() if window is not None else None
        report: dict[str, Any] = {
            "model": mv.name,
            "version": mv.version,
            "enabled": self.pending is not None,
            "window": self.feedback_window or None,
            "labels": list(mv.task.labels) if mv.task is not None else None,
            "quality": metrics,
        }
        if self.shadow is not None:
            report["shadow"] = {
                str(shadow): stats.as_dict()
                for (name, version, shadow), stats in self.shadow.stats.items()
                if name == mv.name and version == mv.version
            }
        return report

    # --- drift ----------------------------------------------------------------------------------
    def _drift_window_for(self, mv: ModelVersion) -> DriftWindow | None:
        key = (mv.name, mv.version)
        if not self._own(mv):
            return None
        if key in self.drift:
            return self.drift[key]
        with self._drift_lock:  # the thread and a GET may both be first
            if key in self.drift:
                return self.drift[key]
            return self._new_drift_window(mv, key)

    def _new_drift_window(self, mv: ModelVersion, key: tuple[str, int]) -> DriftWindow | None:
        window: DriftWindow | None = None
        try:
            reference: Reference | None = load_reference(mv.metadata or {}, mv.path)
        except Exception as exc:
            reference = None
            # as the registry says a load failure: no host folder shown to the client
            why = self.registry.repository.relative(str(exc))
            self.drift_problems[key] = f"drift reference unreadable: {why}"
        if reference is not None:
            window = DriftWindow(
                reference, self.drift_window, self.drift_alpha, self.drift_min_rows
            )
        self.drift[key] = window
        return window

    def _process_drift(self) -> None:
        with self._drift_lock:
            queue, self._drift_queue = self._drift_queue, deque()
            self._drift_bytes = 0
        # One feature computation per version and round, not per request: numpy's fixed cost
        # per call dwarfs a one-image request's own work.
        grouped: dict[int, tuple[ModelVersion, list[np.ndarray], list[np.ndarray]]] = {}
        for mv, x, out in queue:
            entry = grouped.setdefault(id(mv), (mv, [], []))
            entry[1].append(x)
            entry[2].append(out)
        for mv, xs, outs in grouped.values():
            window = self._drift_window_for(mv)
            if window is None:
                continue
            x, out = np.concatenate(xs), np.concatenate(outs)
            features: dict[str, np.ndarray] = {}
            names = window.names
            fields = mv.task.record_fields if mv.task is not None else None
            if fields:
                for i, name in enumerate(fields):
                    if name in names:
                        features[name] = x[:, i].astype(np.float64)
            elif x.ndim == 3:
                features.update(image_features(x))
            if PREDICTED in names:
                threshold = float(getattr(mv.task, "threshold", 0.5))
                flat = out.reshape(len(out), -1)
                if flat.shape[1] == 1:
                    features[PREDICTED] = (flat[:, 0] >= threshold).astype(np.float64)
                else:
                    features[PREDICTED] = np.argmax(flat, axis=1).astype(np.float64)
            window.add(features)

    def drift_report(self, mv: ModelVersion) -> dict[str, Any]:
        report: dict[str, Any] = {
            "model": mv.name,
            "version": mv.version,
            "enabled": self.drift_window > 0,
        }
        if self.drift_window <= 0:
            report["drift"] = None
            report["reason"] = "drift is off on this server (SERVE_DRIFT_WINDOW)"
            return report
        if mv.state is VersionState.FAILED:  # its metadata may be unread: no reference to judge
            report["drift"] = None
            report["reason"] = f"this version failed to load ({mv.reason}): it serves no input"
            return report
        window = self._drift_window_for(mv)
        if window is None:
            report["drift"] = None
            report["reason"] = self.drift_problems.get(
                (mv.name, mv.version),
                "this version ships no drift reference (metadata.drift): drift is not computed",
            )
            return report
        report["drift"] = window.report()
        # rows never taken in because the queue was full (all versions): a window that lags
        report["queue_dropped_rows"] = self.drift_dropped
        return report

    def _own(self, mv: ModelVersion) -> bool:
        """Make the windows kept under ``mv``'s number its own: a republished version's start
        afresh at once, not at the next round's :meth:`forget`. False for a load older than
        the owner's (rows of a replaced load still queued): it records nothing."""
        key = (mv.name, mv.version)
        with self._drift_lock:
            owner = self._owners.get(key)
            if owner is not None and owner > mv.serial:
                return False
            if owner != mv.serial:
                if owner is not None:
                    self._drop({key})
                self._owners[key] = mv.serial
        return True

    def forget(self, served: dict[tuple[str, int], int]) -> None:
        """Drop the windows and shadow counts of versions no longer registered, or registered
        again since (``served``: model and version -> the serial of its ModelVersion). Bounded by
        served versions; a version republished under the same number starts afresh."""
        shadow = self.shadow
        keys: set[tuple[str, int]] = set(self.quality) | set(self.drift)
        if shadow is not None:
            keys |= set(shadow.no_target) | {(n, v) for n, v, _ in shadow.stats}
            keys |= {(n, v) for n, _, v in shadow.stats}
        keys |= set(self._owners)
        stale = {
            key
            for key in keys
            if key not in served or self._owners.get(key, served[key]) != served[key]
        }
        if stale:
            self._drop(stale)

    def _drop(self, keys: set[tuple[str, int]]) -> None:
        shadow = self.shadow
        with self._drift_lock:
            for key in keys:
                self.quality.pop(key, None)
                self.drift.pop(key, None)
                self.drift_problems.pop(key, None)
                self._owners.pop(key, None)
                if shadow is not None:
                    shadow.no_target.pop(key, None)
        if shadow is not None:  # keyed by (model, version, the shadow's version)
            for pair in list(shadow.stats):
                if (pair[0], pair[1]) in keys or (pair[0], pair[2]) in keys:
                    shadow.stats.pop(pair, None)
