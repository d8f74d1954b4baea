"""Prometheus metrics: one :class:`Metrics` object per app, with its own collector registry.

What is measured, and who reports it:

* HTTP requests (the request middleware calls :meth:`Metrics.observe_request` once per request):
  ``serve_requests_total`` and ``serve_request_duration_seconds`` by model, version, protocol,
  route template and status; ``serve_requests_in_flight``.
* Batches (the registry's ``batch_listeners`` hook, on the inference thread):
  ``serve_batch_size`` (rows per runtime call) and ``serve_inference_seconds``.
* Models, read from the model registry at scrape time: ``serve_model_state`` (1 for the current
  state of each version), ``serve_model_load_seconds``, ``serve_queue_depth`` (queued rows) and
  ``serve_model_default_version``.

Label values are bounded: a model label is only ever a name the registry knows, a version label
only a version the registry has registered for that model, and the route is the route template
(``/models/{name}/predict``), never the raw path. Anything else becomes ``""``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from service.model import ModelVersion
    from service.registry import ModelRegistry

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
STATES = ("loading", "available", "failed", "unloading")
REQUEST_LABELS = ("model", "version", "protocol", "route", "status")


def protocol_of(path: str) -> str:
    """Which API a request path belongs to: own, tfserving, v2, ui or other."""
    if path.startswith("/v1/"):
        return "tfserving"
    if path.startswith("/v2"):
        return "v2"
    if path == "/models" or path.startswith("/models/"):
        return "own"
    if path == "/" or path.startswith("/static/"):
        return "ui"
    return "other"


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


class Metrics:
    """The app's metrics. Bind a model registry with :meth:`bind` to get model-level metrics."""

    def __init__(self, *, process: bool = True) -> None:
        disable_created_metrics()  # no *_created series: they double the output, nobody reads them
        self.registry = CollectorRegistry(auto_describe=True)
        self._models: ModelRegistry | None = None
        r = self.registry
        self.requests = Counter(
            "serve_requests", "HTTP requests answered", REQUEST_LABELS, registry=r
        )
        self.latency = Histogram(
            "serve_request_duration_seconds",
            "Time from request start to the end of the response",
            REQUEST_LABELS,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge("serve_requests_in_flight", "Requests being handled", registry=r)
        self.batch_size = Histogram(
            "serve_batch_size",
            "Rows per inference call (after micro-batching)",
            ["model", "version"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.inference = Histogram(
            "serve_inference_seconds",
            "Wall time of one batched inference call",
            ["model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        r.register(_RegistryCollector(self))
        if process:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)

    # --- wiring -----------------------------------------------------------------------------
    def bind(self, models: ModelRegistry) -> None:
        """Read model state from ``models`` and receive its batch observations."""
        self._models = models
        if self.observe_batch not in models.batch_listeners:
            models.batch_listeners.append(self.observe_batch)

    @property
    def models(self) -> ModelRegistry | None:
        return self._models

    def versions(self) -> list[ModelVersion]:
        if self._models is None:
            return []
        return [mv for name in self._models.model_names() for mv in self._models.versions(name)]

    # --- label hygiene ----------------------------------------------------------------------
    def model_label(self, name: object) -> str:
        """``name`` when the registry knows the model, else ``""``."""
        if self._models is None or not isinstance(name, str):
            return ""
        return name if name in self._models.model_names() else ""

    def version_label(self, model: str, version: object) -> str:
        """The version number when that version of ``model`` is registered, else ``""``."""
        if not model or self._models is None or version is None:
            return ""
        text = str(version)
        known = {str(mv.version) for mv in self._models.versions(model)}
        return text if text in known else ""

    # --- observations -----------------------------------------------------------------------
    def observe_request(
        self,
        *,
        model: object,
        version: object,
        path: str,
        route: str,
        status: int,
        seconds: float,
    ) -> None:
        """One finished HTTP request. Raw values are sanitised into bounded label values."""
        m = self.model_label(model)
        labels = (m, self.version_label(m, version), protocol_of(path), route, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def observe_batch(self, mv: ModelVersion, rows: int, seconds: float) -> None:
        """Registry batch listener: one runtime call of ``rows`` rows took ``seconds``."""
        labels = (mv.name, str(mv.version))
        self.batch_size.labels(*labels).observe(rows)
        self.inference.labels(*labels).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def build_router(metrics: Metrics) -> APIRouter:
    """``GET /metrics`` in the Prometheus text format (hidden from the OpenAPI schema)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/metrics")
    def scrape() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router
