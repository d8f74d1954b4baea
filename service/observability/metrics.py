"""Prometheus metrics: one :class:`Metrics` object per app, with its own collector registry.

What is measured, and who reports it:

* HTTP requests (the request edge, ``service.http.edge``, calls :meth:`Metrics.observe_request` once
  per request): ``serve_requests_total`` and ``serve_request_duration_seconds`` by model, version,
  protocol, route template and status; ``serve_requests_in_flight``. These are kept as plain
  numbers by :class:`RequestStats` (one dictionary look-up and three additions per request, on the
  event-loop thread) and turned into Prometheus families only when scraped: prometheus_client's
  own ``Counter``/``Histogram`` take a lock and walk the buckets in Python on every observation,
  which cost about as much as running the model.
  The V2 statistics read a version's totals from the same series
  (:meth:`Metrics.request_totals_by_version`, through ``app.state.metrics``).
* Batches (the registry's ``batch_listeners`` hook, on the inference thread, or the event loop
  for a call run there): ``serve_batch_size`` (rows per runtime call) and
  ``serve_inference_seconds``, kept as plain numbers by :class:`BatchStats`.
* Models, read from the model registry at scrape time: ``serve_model_state`` (1 for the current
  state of each version), ``serve_model_load_seconds``, ``serve_queue_depth`` (queued rows) and
  ``serve_model_default_version``.
* Uploads: ``serve_decode_workers``, the processes decoding uploaded pictures
  (``service.api.uploads``), read at scrape time.

Label values are bounded: a model label is only ever a name the registry knows, a version label
only a version the registry has registered for that model, and the route is the route template
(``/models/{name}/predict``), never the raw path. Anything else becomes ``""``.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Collection, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from service.api.common import Totals
from service.api.routing import RouteKind, dialect_router, route_kind
from service.api.uploads import running_decode_workers

if TYPE_CHECKING:
    from service.serving.model import ModelVersion
    from service.serving.operations import Operations
    from service.serving.registry import ModelRegistry

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
STATES = ("loading", "available", "failed", "unloading")
REQUEST_LABELS = ("model", "version", "protocol", "route", "status")


class RequestStats(Collector):
    """Per-request counters and latency histograms, observed on the event-loop thread.

    A series is ``[bucket counts..., sum]`` per label tuple; the count is the buckets' total, so a
    scrape from another thread always sees a consistent count and ``+Inf`` bucket.
    """

    def __init__(self, buckets: Iterable[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(buckets)
        self.series: dict[tuple[str, ...], list[float]] = {}
        self.in_flight = 0

    def observe(self, labels: tuple[str, ...], seconds: float) -> None:
        series = self.series.get(labels)
        if series is None:
            series = self.series[labels] = [0] * (len(self.bounds) + 1) + [0.0]
        series[bisect_left(self.bounds, seconds)] += 1  # le=bound counts seconds <= bound
        series[-1] += seconds

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily | GaugeMetricFamily]:
        requests = CounterMetricFamily(
            "serve_requests", "HTTP requests answered", labels=REQUEST_LABELS
        )
        latency = HistogramMetricFamily(
            "serve_request_duration_seconds",
            "Time from request start to the end of the response",
            labels=REQUEST_LABELS,
        )
        for labels, series in self._snapshot():
            buckets = _buckets(self.bounds, series)
            requests.add_metric(list(labels), buckets[-1][1])
            latency.add_metric(list(labels), buckets, series[-1])
        in_flight = GaugeMetricFamily("serve_requests_in_flight", "Requests being handled")
        in_flight.add_metric([], self.in_flight)
        yield from (requests, latency, in_flight)

    def describe(self) -> Iterable[Any]:
        return []

    def _snapshot(self) -> list[tuple[tuple[str, ...], list[float]]]:
        """The series, copied while the event loop may add one (scrapes run on another thread)."""
        for _ in range(10):
            try:
                return list(self.series.items())
            except RuntimeError:  # "dictionary changed size during iteration": copy again
                continue
        return list(self.series.copy().items())


class BatchStats(Collector):
    """Rows per runtime call and the call's wall time, per (model, version) label pair.

    Plain numbers, like :class:`RequestStats`, turned into histogram families when scraped:
    prometheus_client's ``labels().observe()`` walks its buckets in Python, twice per call, and a
    call runs on the event loop when the model is fast (``serving.batcher``). Observations come
    from the inference threads and the loop, so each takes a lock (uncontended, as a rule).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.series: dict[tuple[str, str], tuple[list[float], list[float]]] = {}

    def observe(self, labels: tuple[str, str], rows: int, seconds: float) -> None:
        with self.lock:
            series = self.series.get(labels)
            if series is None:
                series = self.series[labels] = (
                    [0] * (len(BATCH_BUCKETS) + 1) + [0.0],
                    [0] * (len(LATENCY_BUCKETS) + 1) + [0.0],
                )
            sizes, times = series
            sizes[bisect_left(BATCH_BUCKETS, rows)] += 1
            sizes[-1] += rows
            times[bisect_left(LATENCY_BUCKETS, seconds)] += 1
            times[-1] += seconds

    def collect(self) -> Iterator[HistogramMetricFamily]:
        sizes = HistogramMetricFamily(
            "serve_batch_size",
            "Rows per inference call (after micro-batching)",
            labels=["model", "version"],
        )
        times = HistogramMetricFamily(
            "serve_inference_seconds",
            "Wall time of one batched inference call",
            labels=["model", "version"],
        )
        with self.lock:
            snapshot = [(k, list(a), list(b)) for k, (a, b) in self.series.items()]
        for labels, size_series, time_series in snapshot:
            sizes.add_metric(list(labels), _buckets(BATCH_BUCKETS, size_series), size_series[-1])
            times.add_metric(list(labels), _buckets(LATENCY_BUCKETS, time_series), time_series[-1])
        yield from (sizes, times)

    def describe(self) -> Iterable[Any]:
        return []


def _buckets(bounds: tuple[float, ...], series: list[float]) -> list[tuple[str, float]]:
    """Cumulative ``(le, count)`` pairs of a ``[bucket counts..., sum]`` series, ``+Inf`` last."""
    cumulative = 0
    buckets: list[tuple[str, float]] = []
    for bound, count in zip((*bounds, float("inf")), series[:-1], strict=True):
        cumulative += int(count)
        buckets.append((_bound(bound), cumulative))
    return buckets


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(float(value))


class _RegistryCollector(Collector):
    """Model state, load time and queue depth, read from the registry when scraped."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state = GaugeMetricFamily(
            "serve_model_state",
            "1 for the current state of each registered model version, 0 for the others",
            labels=["model", "version", "state"],
        )
        load = GaugeMetricFamily(
            "serve_model_load_seconds",
            "Seconds to load, warm up and self-test a version",
            labels=["model", "version"],
        )
        depth = GaugeMetricFamily(
            "serve_queue_depth",
            "Rows waiting in a version's batch queue",
            labels=["model", "version"],
        )
        default = GaugeMetricFamily(
            "serve_model_default_version",
            "The version a request without a version goes to",
            labels=["model"],
        )
        models = self._metrics.models
        if models is not None:
            for name in models.model_names():
                number = models.default_version(name)
                if number is not None:
                    default.add_metric([name], float(number))
        for mv in self._metrics.versions():
            labels = [mv.name, str(mv.version)]
            for s in STATES:
                state.add_metric([*labels, s], 1.0 if mv.state.value == s else 0.0)
            if mv.load_seconds is not None:
                load.add_metric(labels, float(mv.load_seconds))
            if mv.batcher is not None:
                depth.add_metric(labels, float(mv.batcher.queued_rows))
        yield from (state, load, depth, default)

    def describe(self) -> Iterable[Any]:
        return []


class _OperationsCollector(Collector):
    """Payload log, feedback, live quality, drift and shadow traffic, read when scraped.

    Label values are bounded: model and version are those of registered versions (windows of
    unregistered ones are dropped), features those a version's drift reference names, classes
    those of its labels.
    """

    def __init__(self, operations: Operations) -> None:
        self._ops = operations

    def collect(self) -> Iterator[Any]:
        ops = self._ops
        mv_labels = ["model", "version"]
        if ops.payload is not None:
            p = ops.payload
            for name, value, text in (
                ("lines", p.lines, "Payload log lines written"),
                ("dropped", p.dropped, "Payload log lines dropped: the buffer was full"),
                ("errors", p.errors, "Payload log lines lost to write errors (disk full, ...)"),
            ):
                family = CounterMetricFamily(f"serve_payload_log_{name}", text)
                family.add_metric([], value)
                yield family
        if ops.pending is not None:
            pending = GaugeMetricFamily(
                "serve_feedback_pending_rows", "Answered rows waiting for a label"
            )
            pending.add_metric([], ops.pending.rows)
            yield pending
            rows = CounterMetricFamily(
                "serve_feedback_rows", "Labelled rows received", labels=mv_labels
            )
            gauges = {
                key: GaugeMetricFamily(
                    f"serve_quality_{key}",
                    f"{text} over the window of labelled rows",
                    labels=mv_labels,
                )
                for key, text in (
                    ("accuracy", "Accuracy"),
                    ("brier", "Brier score"),
                    ("ece", "Expected calibration error (15 bins)"),
                    ("roc_auc", "ROC AUC (two classes)"),
                    ("window_rows", "Labelled rows"),
                )
            }
            confusion = GaugeMetricFamily(
                "serve_quality_confusion",
                "Confusion matrix over the window (true class, predicted class)",
                labels=[*mv_labels, "true", "predicted"],
            )
            for (name, version), window in list(ops.quality.items()):
                labels = [name, str(version)]
                rows.add_metric(labels, window.total)
                m = window.metrics()
                if m is None:
                    continue
                gauges["window_rows"].add_metric(labels, m["rows"])
                for key in ("accuracy", "brier", "ece", "roc_auc"):
                    if m.get(key) is not None:
                        gauges[key].add_metric(labels, m[key])
                for i, row in enumerate(m["confusion_matrix"]):
                    for j, count in enumerate(row):
                        confusion.add_metric([*labels, str(i), str(j)], count)
            yield rows
            yield from gauges.values()
            yield confusion
        if ops.drift_window > 0:
            psi = GaugeMetricFamily(
                "serve_drift_psi",
                "PSI of a feature over the drift window",
                labels=[*mv_labels, "feature"],
            )
            ks = GaugeMetricFamily(
                "serve_drift_ks",
                "KS statistic of a feature over the drift window",
                labels=[*mv_labels, "feature"],
            )
            p_value = GaugeMetricFamily(
                "serve_drift_p_value",
                "p-value of a feature's drift test",
                labels=[*mv_labels, "feature"],
            )
            alarm = GaugeMetricFamily(
                "serve_drift_alarm", "1 when the drift alarm is up", labels=mv_labels
            )
            threshold = GaugeMetricFamily(
                "serve_drift_p_value_threshold",
                "A feature's p-value below this raises the alarm",
                labels=mv_labels,
            )
            for (name, version), drift_window in list(ops.drift.items()):
                if drift_window is None:
                    continue
                labels = [name, str(version)]
                report = drift_window.report()
                alarm.add_metric(labels, 1.0 if report["alarm"] else 0.0)
                threshold.add_metric(labels, report["threshold"]["p_value_per_feature"])
                for feature, entry in report["features"].items():
                    for gauge, key in ((psi, "psi"), (ks, "ks"), (p_value, "p_value")):
                        if entry.get(key) is not None:
                            gauge.add_metric([*labels, feature], entry[key])
            yield from (psi, ks, p_value, alarm, threshold)
        if ops.shadow is not None:
            shadow_labels = [*mv_labels, "shadow_version"]
            runs = CounterMetricFamily(
                "serve_shadow_runs",
                "Shadow runs by outcome",
                labels=[*shadow_labels, "outcome"],
            )
            agreement = GaugeMetricFamily(
                "serve_shadow_agreement",
                "Share of shadowed rows where both versions predict the same class",
                labels=shadow_labels,
            )
            latency = HistogramMetricFamily(
                "serve_shadow_latency_seconds",
                "Time of a shadow run on the shadow version (queue and model)",
                labels=shadow_labels,
            )
            from service.serving.shadow import LATENCY_BUCKETS as SHADOW_BUCKETS

            for (name, version, other), stats in list(ops.shadow.stats.items()):
                labels = [name, str(version), str(other)]
                runs.add_metric([*labels, "run"], stats.runs)
                runs.add_metric([*labels, "dropped"], stats.dropped)
                runs.add_metric([*labels, "error"], stats.errors)
                if stats.rows:
                    agreement.add_metric(labels, stats.agreed / stats.rows)
                cumulative, buckets = 0, []
                for bound, count in zip(
                    (*SHADOW_BUCKETS, float("inf")), stats.latency[:-1], strict=True
                ):
                    cumulative += int(count)
                    buckets.append((_bound(bound), cumulative))
                latency.add_metric(labels, buckets, stats.latency[-1])
            for (name, version), count in list(ops.shadow.no_target.items()):
                runs.add_metric([name, str(version), "", "no_target"], count)
            yield from (runs, agreement, latency)

    def describe(self) -> Iterable[Any]:
        return []


class _DecodeWorkersCollector(Collector):
    """How many processes decode uploaded pictures, read when scraped: fewer than configured
    means they are starting or a dead one is being replaced."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "serve_decode_workers", "Processes decoding uploaded pictures, running now"
        )
        gauge.add_metric([], float(running_decode_workers()))
        yield gauge

    def describe(self) -> Iterable[Any]:
        return []


class Metrics:
    """The app's metrics. Bind a model registry with :meth:`bind` to get model-level metrics."""

    def __init__(self, *, process: bool = True) -> None:
        disable_created_metrics()  # no *_created series: they double the output, nobody reads them
        self.registry = CollectorRegistry(auto_describe=True)
        self._models: ModelRegistry | None = None
        r = self.registry
        self.requests = RequestStats()
        r.register(self.requests)
        self._known_models: frozenset[str] = frozenset()
        self._known_versions: frozenset[tuple[str, str]] = frozenset()
        self._known_at = -1.0
        # per (model, version): each request series' (count, seconds) when the version last
        # loaded; the V2 statistics count from there
        self._counted_before_load: dict[
            tuple[str, str], dict[tuple[str, ...], tuple[int, float]]
        ] = {}
        self.batches = BatchStats()
        r.register(self.batches)
        r.register(_RegistryCollector(self))
        r.register(_DecodeWorkersCollector())
        if process:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)

    # --- wiring -----------------------------------------------------------------------------
    def bind(self, models: ModelRegistry) -> None:
        """Read model state from ``models`` and receive its batch observations."""
        self._models = models
        if self.observe_batch not in models.batch_listeners:
            models.batch_listeners.append(self.observe_batch)
        if self.forget_version not in models.unload_listeners:
            models.unload_listeners.append(self.forget_version)
        if self.note_loaded not in models.load_listeners:
            models.load_listeners.append(self.note_loaded)

    def bind_operations(self, operations: Operations) -> None:
        """Report the payload log, feedback, quality, drift and shadow state of ``operations``."""
        if operations.enabled:
            self.registry.register(_OperationsCollector(operations))

    @property
    def models(self) -> ModelRegistry | None:
        return self._models

    def versions(self) -> list[ModelVersion]:
        if self._models is None:
            return []
        return [mv for name in self._models.model_names() for mv in self._models.versions(name)]

    # --- label hygiene ----------------------------------------------------------------------
    # The known names and versions are cached: read again at most once a second, and at once
    # when a request names one the cache does not have (a version registered a moment ago).
    def _refresh_known(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self._models is None or (not force and now - self._known_at < 1.0):
            return
        names = self._models.model_names()
        self._known_models = frozenset(names)
        self._known_versions = frozenset(
            (name, str(mv.version)) for name in names for mv in self._models.versions(name)
        )
        self._known_at = now

    def model_label(self, name: object) -> str:
        """``name`` when the registry knows the model, else ``""``."""
        if self._models is None or not isinstance(name, str):
            return ""
        self._refresh_known()
        if name not in self._known_models:
            self._refresh_known(force=True)
        return name if name in self._known_models else ""

    def version_label(self, model: str, version: object) -> str:
        """The version number when that version of ``model`` is registered, else ``""``."""
        if not model or self._models is None or version is None:
            return ""
        pair = (model, str(version))
        if pair not in self._known_versions:
            self._refresh_known(force=True)
        return pair[1] if pair in self._known_versions else ""

    # --- observations -----------------------------------------------------------------------
    def observe_request(
        self,
        *,
        model: object,
        version: object,
        protocol: str,
        route: str,
        status: int,
        seconds: float,
    ) -> None:
        """One finished HTTP request. Raw values are sanitised into bounded label values."""
        m = self.model_label(model)
        labels = (m, self.version_label(m, version), protocol, route, str(status))
        self.requests.observe(labels, seconds)

    def observe_batch(self, mv: ModelVersion, rows: int, seconds: float) -> None:
        """Registry batch listener: one runtime call of ``rows`` rows took ``seconds``."""
        self.batches.observe((mv.name, str(mv.version)), rows, seconds)

    def request_totals_by_version(
        self, routes: Collection[str]
    ) -> dict[tuple[str, str], tuple[Totals, Totals]]:
        """Per (model, version label), the requests on ``routes`` (templates) it answered, from
        the request series: (count, seconds) of those under 400, then of the others. One pass
        over the series, however many versions are asked about (the V2 statistics of all the
        versions would otherwise walk every series once per version)."""
        sums: dict[tuple[str, str], list[float]] = {}
        for labels, series in self.requests._snapshot():
            name, number, _, route, status = labels
            if route not in routes:
                continue
            acc = sums.get((name, number))
            if acc is None:
                acc = sums[(name, number)] = [0, 0.0, 0, 0.0]
            at = 2 if int(status) >= 400 else 0
            count, seconds = int(sum(series[:-1])), series[-1]
            before = self._counted_before_load.get((name, number), {}).get(labels)
            if before is not None:
                count, seconds = count - before[0], seconds - before[1]
            acc[at] += count
            acc[at + 1] += seconds
        return {
            pair: (Totals(int(a[0]), a[1]), Totals(int(a[2]), a[3])) for pair, a in sums.items()
        }

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def note_loaded(self, mv: ModelVersion) -> None:
        """Registry load listener (on the event loop): what the request series of ``mv``'s
        version held when it (re)loaded, so that its request totals count from there, as its
        new batcher's model calls do (the series themselves keep counting, for Prometheus)."""
        pair = (mv.name, str(mv.version))
        self._counted_before_load[pair] = {
            labels: (int(sum(series[:-1])), series[-1])
            for labels, series in self.requests._snapshot()
            if labels[:2] == pair
        }

    def forget_version(self, mv: ModelVersion) -> None:
        """Registry unload listener (on the event loop, where request series are added): drop
        the request and batch series of every version no longer in the repository, so a server
        that polls its repository for months does not export every version it ever served.
        Those of a version unloaded but still on disk stay: it may be loaded again (an admin
        unload and load, a rollback), and a counter that vanished and came back at 0 would
        lose what it counted."""
        self._known_at = -1e9  # read the registry again at the next label check
        models = self._models
        held = set() if models is None else {(n, str(v)) for n, v in models.on_disk()}
        with self.batches.lock:
            for pair in list(self.batches.series):
                if pair not in held:
                    self.batches.series.pop(pair, None)
        for labels, _ in self.requests._snapshot():
            if labels[1] and labels[:2] not in held:  # "": a request no version answered
                self.requests.series.pop(labels, None)
        for pair in list(self._counted_before_load):
            if pair not in held:
                del self._counted_before_load[pair]


def build_router(metrics: Metrics) -> APIRouter:
    """``GET /metrics`` in the Prometheus text format (hidden from the OpenAPI schema)."""
    router = dialect_router("other", include_in_schema=False)

    @router.get("/metrics")
    @route_kind(RouteKind.READ)
    def scrape() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router
