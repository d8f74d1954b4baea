"""/metrics after known traffic: counters move by exactly the right amounts; labels stay bounded."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families

from service.app import create_app
from service.observability.metrics import Metrics
from tests.helpers.models import PIMA_ROW
from tests.helpers.settings import make_settings

pytestmark = pytest.mark.anyio
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
PREDICT = "/models/{name}/predict"
PREDICT_VERSION = "/models/{name}/versions/{version}/predict"


@pytest.fixture
async def client(tiny_repo: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(tiny_repo))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


async def scrape(client: httpx.AsyncClient) -> tuple[str, Samples]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over every series of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= lab)


def req(model: str, version: str, route: str, status: int, protocol: str = "own") -> dict[str, str]:
    return {
        "model": model,
        "version": version,
        "protocol": protocol,
        "route": route,
        "status": str(status),
    }


async def test_counters_move_by_the_traffic_sent(client: httpx.AsyncClient) -> None:
    _, before = await scrape(client)
    images = np.random.default_rng(1).random((3, 28, 28)).round(3).tolist()

    for _ in range(4):  # 4 requests of 3 images, default version (2)
        r = await client.post("/models/mnist/predict", json={"instances": images})
        assert r.status_code == 200 and r.json()["version"] == 2
    for _ in range(2):  # 2 requests of 1 image on version 1
        r = await client.post("/models/mnist/versions/1/predict", json={"instances": images[:1]})
        assert r.status_code == 200
    r = await client.post("/models/pima/predict", json={"instances": [PIMA_ROW, PIMA_ROW]})
    assert r.status_code == 200
    for bad in (
        "no_such_model_a",
        "no_such_model_b",
        "x" * 300,
    ):  # unknown names: 404, no new labels
        assert (
            await client.post(f"/models/{bad}/predict", json={"instances": images})
        ).status_code == 404
    r = await client.post("/models/mnist/predict", json={"instances": [[1, 2, 3]]})
    assert r.status_code == 422
    assert (
        await client.post("/models/mnist/versions/99/predict", json={"instances": images})
    ).status_code == 404

    text, after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("serve_requests_total", **req("mnist", "2", PREDICT, 200)) == 4
    assert delta("serve_requests_total", **req("mnist", "1", PREDICT_VERSION, 200)) == 2
    assert delta("serve_requests_total", **req("pima", "1", PREDICT, 200)) == 1
    assert delta("serve_requests_total", **req("", "", PREDICT, 404)) == 3
    assert delta("serve_requests_total", **req("mnist", "2", PREDICT, 422)) == 1  # the default
    assert delta("serve_requests_total", **req("mnist", "", PREDICT_VERSION, 404)) == 1
    assert delta("serve_request_duration_seconds_count", **req("mnist", "2", PREDICT, 200)) == 4
    assert delta("serve_request_duration_seconds_sum", **req("mnist", "2", PREDICT, 200)) > 0
    # sequential requests run one batch each: rows and batches add up exactly
    assert delta("serve_batch_size_sum", model="mnist", version="2") == 12
    assert delta("serve_batch_size_count", model="mnist", version="2") == 4
    assert delta("serve_batch_size_sum", model="mnist", version="1") == 2
    assert delta("serve_batch_size_sum", model="pima", version="1") == 2
    assert delta("serve_inference_seconds_count", model="mnist", version="2") == 4
    assert delta("serve_batch_size_bucket", model="mnist", version="2", le="2.0") == 0
    assert delta("serve_batch_size_bucket", model="mnist", version="2", le="4.0") == 4
    # unknown names never become label values
    for bad in ("no_such_model_a", "no_such_model_b", "xxxxxxxx", 'version="99"'):
        assert bad not in text


async def test_model_state_load_time_queue_and_default(client: httpx.AsyncClient) -> None:
    _, samples = await scrape(client)
    for model, version in (("mnist", "1"), ("mnist", "2"), ("pima", "1"), ("fashion_mnist", "1")):
        assert (
            value(samples, "serve_model_state", model=model, version=version, state="available")
            == 1
        )
        assert (
            value(samples, "serve_model_state", model=model, version=version, state="failed") == 0
        )
        assert value(samples, "serve_model_load_seconds", model=model, version=version) > 0
        assert value(samples, "serve_queue_depth", model=model, version=version) == 0
    for broken in ("broken", "selftest"):  # checksum mismatch, self-test mismatch
        assert value(samples, "serve_model_state", model=broken, version="1", state="failed") == 1
        assert (
            value(samples, "serve_model_state", model=broken, version="1", state="available") == 0
        )
    assert value(samples, "serve_model_default_version", model="mnist") == 2
    assert total(samples, "serve_model_state", model="mnist", version="3") == 0  # unfinished
    assert value(samples, "serve_requests_in_flight") == 1  # the scrape itself


async def test_other_protocols_are_labelled(client: httpx.AsyncClient) -> None:
    _, before = await scrape(client)
    image = np.zeros((28, 28)).tolist()
    assert (
        await client.post("/v1/models/mnist:predict", json={"instances": [image]})
    ).status_code == 200
    body = {
        "inputs": [
            {"name": "pixels", "shape": [1, 28, 28], "datatype": "FP32", "data": [0.0] * 784}
        ]
    }
    assert (await client.post("/v2/models/mnist/infer", json=body)).status_code == 200
    assert (await client.get("/healthz")).status_code == 200
    _, after = await scrape(client)
    for protocol in ("tfserving", "v2"):
        moved = total(after, "serve_requests_total", protocol=protocol, model="mnist", status="200")
        assert moved - total(before, "serve_requests_total", protocol=protocol, model="mnist") == 1
    assert total(after, "serve_requests_total", protocol="other", route="/healthz") >= 1


def test_labels_without_a_registry_are_empty() -> None:
    metrics = Metrics(process=False)
    metrics.observe_request(
        model="mnist",
        version=1,
        protocol="own",
        route=PREDICT,
        status=200,
        seconds=0.01,
    )
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for f in text_string_to_metric_families(metrics.render().decode())
        for s in f.samples
    }
    assert value(samples, "serve_requests_total", **req("", "", PREDICT, 200)) == 1


def test_request_totals_of_a_version_on_the_routes_asked() -> None:
    """Direct observations (no registry bound: labels are kept as given)."""
    from service.observability.metrics import RequestStats

    metrics = Metrics(process=False)
    stats: RequestStats = metrics.requests
    for labels, seconds in (
        (("pima", "1", "own", PREDICT, "200"), 0.25),
        (("pima", "1", "v2", "/v2/models/{name}/infer", "200"), 0.5),
        (("pima", "1", "own", PREDICT, "422"), 0.125),
        (("pima", "1", "own", PREDICT, "503"), 0.125),
        (("pima", "1", "own", "/models/{name}", "200"), 1.0),  # not a route asked
        (("pima", "2", "own", PREDICT, "200"), 1.0),  # another version
        (("mnist", "1", "own", PREDICT, "200"), 1.0),  # another model
    ):
        stats.observe(labels, seconds)
    by_version = metrics.request_totals_by_version({PREDICT, "/v2/models/{name}/infer"})
    ok, failed = by_version[("pima", "1")]
    assert ok == (2, 0.75) and failed == (2, 0.25)
    assert ("pima", "3") not in metrics.request_totals_by_version({PREDICT})


def test_request_stats_render_as_prometheus_client_would() -> None:
    """The plain-number request stats give the same samples as prometheus_client's own types."""
    from prometheus_client import CollectorRegistry, Counter, Histogram

    from service.observability.metrics import LATENCY_BUCKETS, REQUEST_LABELS, RequestStats

    reference = CollectorRegistry()
    counter = Counter("serve_requests", "x", REQUEST_LABELS, registry=reference)
    histogram = Histogram(
        "serve_request_duration_seconds",
        "x",
        REQUEST_LABELS,
        buckets=LATENCY_BUCKETS,
        registry=reference,
    )
    stats = RequestStats()
    rng = np.random.default_rng(7)
    label_sets = [("mnist", "1", "own", PREDICT, "200"), ("", "", "other", "/healthz", "404")]
    # exact bucket bounds, values in between, and beyond the last bound
    seconds = [*LATENCY_BUCKETS, 0.0, 20.0, *rng.exponential(0.01, 200).tolist()]
    for i, s in enumerate(seconds):
        labels = label_sets[i % 2]
        stats.observe(labels, s)
        counter.labels(*labels).inc()
        histogram.labels(*labels).observe(s)
    ours = CollectorRegistry()
    ours.register(stats)

    def samples(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in registry.collect()
            for s in family.samples
            if not s.name.endswith("_created") and s.name != "serve_requests_in_flight"
        }

    got, want = samples(ours), samples(reference)
    assert got.keys() == want.keys()
    for key, expected in want.items():
        assert got[key] == pytest.approx(expected), key


def test_batch_stats_count_every_call_from_several_threads() -> None:
    import threading

    from service.observability.metrics import BatchStats

    stats = BatchStats()

    def observe() -> None:
        for _ in range(20_000):
            stats.observe(("mnist", "1"), 3, 0.002)

    threads = [threading.Thread(target=observe) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    families = {family.name: family for family in stats.collect()}
    sizes = {(s.name, s.labels.get("le")): s.value for s in families["serve_batch_size"].samples}
    assert sizes[("serve_batch_size_count", None)] == 60_000
    assert sizes[("serve_batch_size_sum", None)] == 180_000
    assert sizes[("serve_batch_size_bucket", "2.0")] == 0
    assert sizes[("serve_batch_size_bucket", "4.0")] == 60_000
    times = {
        (s.name, s.labels.get("le")): s.value for s in families["serve_inference_seconds"].samples
    }
    assert times[("serve_inference_seconds_bucket", "0.001")] == 0
    assert times[("serve_inference_seconds_bucket", "0.0025")] == 60_000


class _Pool:
    def __init__(self, ready: int) -> None:
        self.ready = ready


async def test_decode_workers_gauge_reads_the_running_processes(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.api import uploads

    monkeypatch.setattr(uploads, "_workers", None)
    _, samples = await scrape(client)
    assert ("serve_decode_workers", frozenset()) in samples
    assert value(samples, "serve_decode_workers") == 0
    monkeypatch.setattr(uploads, "_workers", _Pool(3))
    _, samples = await scrape(client)
    assert value(samples, "serve_decode_workers") == 3


async def test_a_bad_body_is_counted_under_the_version_it_was_sent_to(
    client: httpx.AsyncClient,
) -> None:
    """However the URL names the version (a number, with zeros, a label, the default), a 422 for
    the body is counted under the version's number, in every dialect."""
    _, before = await scrape(client)
    bad = {"instances": [[1.0]]}
    for path in (
        "/models/mnist/versions/1/predict",
        "/models/mnist/versions/01/predict",
        "/models/mnist/versions/baseline/predict",
        "/v1/models/mnist/versions/1:predict",
        "/v1/models/mnist/labels/baseline:predict",
    ):
        assert (await client.post(path, json=bad)).status_code == 422, path
    _, after = await scrape(client)
    name = "serve_requests_total"
    for labels, n in (
        (req("mnist", "1", PREDICT_VERSION, 422), 3),
        (req("mnist", "1", "/v1/models/{name}/versions/{version}:{verb}", 422, "tfserving"), 1),
        (req("mnist", "1", "/v1/models/{name}/labels/{label}:{verb}", 422, "tfserving"), 1),
    ):
        assert value(after, name, **labels) - value(before, name, **labels) == n, labels


async def test_an_admin_unload_and_load_keeps_the_versions_counts(repo_copy: Path) -> None:
    """Still on disk, the version may come back: its counters must not restart at 0."""
    app = create_app(make_settings(repo_copy))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            image = {"instances": [[[0.5] * 28] * 28]}
            for _ in range(3):
                r = await client.post("/models/mnist/versions/1/predict", json=image)
                assert r.status_code == 200
            labels = req("mnist", "1", PREDICT_VERSION, 200)
            _, before = await scrape(client)
            await app.state.registry.unload("mnist", 1)
            await app.state.registry.load("mnist", 1)
            _, after = await scrape(client)
    assert value(before, "serve_requests_total", **labels) == 3
    assert value(after, "serve_requests_total", **labels) == 3


async def test_series_of_a_version_no_longer_held_are_dropped_at_the_next_scrape(
    repo_copy: Path,
) -> None:
    app = create_app(make_settings(repo_copy))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            image = {"instances": [[[0.5] * 28] * 28]}
            for version in (1, 2):
                r = await client.post(f"/models/mnist/versions/{version}/predict", json=image)
                assert r.status_code == 200
            text, _ = await scrape(client)
            assert 'serve_batch_size_count{model="mnist",version="1"}' in text
            shutil.rmtree(repo_copy / "mnist" / "1")  # deleted from the repository
            await app.state.registry.rescan()
            text, _ = await scrape(client)
    for family in ("serve_requests_total", "serve_batch_size_count", "serve_inference_seconds"):
        assert not [line for line in text.splitlines()
                    if line.startswith(family) and 'model="mnist",version="1"' in line]  # fmt: skip
    assert 'serve_batch_size_count{model="mnist",version="2"}' in text


def test_request_totals_by_version_in_one_pass() -> None:
    metrics = Metrics(process=False)
    for labels, seconds in (
        (("pima", "1", "own", PREDICT, "200"), 0.25),
        (("pima", "1", "own", PREDICT, "422"), 0.125),
        (("pima", "2", "own", PREDICT, "200"), 1.0),
        (("pima", "2", "own", "/models/{name}", "200"), 1.0),  # not a route asked
    ):
        metrics.requests.observe(labels, seconds)
    by_version = metrics.request_totals_by_version({PREDICT})
    assert by_version == {
        ("pima", "1"): ((1, 0.25), (1, 0.125)),
        ("pima", "2"): ((1, 1.0), (0, 0.0)),
    }


def test_request_totals_count_from_the_versions_last_load() -> None:
    from types import SimpleNamespace

    metrics = Metrics(process=False)
    pima1, pima2 = SimpleNamespace(name="pima", version=1), SimpleNamespace(name="pima", version=2)
    for labels, seconds in (
        (("pima", "1", "own", PREDICT, "200"), 0.25),
        (("pima", "1", "own", PREDICT, "422"), 0.125),
        (("pima", "2", "own", PREDICT, "200"), 1.0),
    ):
        metrics.requests.observe(labels, seconds)
    metrics.note_loaded(pima1)  # type: ignore[arg-type]
    metrics.requests.observe(("pima", "1", "own", PREDICT, "200"), 0.5)
    by_version = metrics.request_totals_by_version({PREDICT})
    assert by_version[("pima", "1")] == ((1, 0.5), (0, 0.0))  # what came after the load
    assert by_version[("pima", "2")] == ((1, 1.0), (0, 0.0))  # another version: untouched
    metrics.forget_version(pima2)  # type: ignore[arg-type]  # no registry: nothing is on disk
    assert metrics._counted_before_load == {}
