"""The real service (``python -m service`` under uvicorn) on the real trained models, over loopback.

Predicts the first 100 MNIST test images as JSON and as PNG files, a Fashion-MNIST image and Pima
records, and checks that they agree with the same model version run offline through the runtime;
then sends a table of bad inputs, each with its expected status and message.
"""

from __future__ import annotations

import io
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from service.inputs.images import decode_image
from service.runtimes import ModelRuntime, create_runtime
from tests.helpers.live_server import Server, run_server, trained_repository

pytestmark = pytest.mark.integration

N_IMAGES = 100
MAX_INSTANCES = 256
MAX_BODY = 2_000_000
PIMA_NAMES = ["pregnant", "glucose", "pressure", "triceps", "insulin", "mass", "pedigree", "age"]


@pytest.fixture(scope="module")
def models_dir() -> Path:
    return trained_repository()


@pytest.fixture(scope="module")
def server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "SERVE_VERSION_POLICY": "latest",
        "SERVE_MAX_INSTANCES": str(MAX_INSTANCES),
        "SERVE_MAX_BODY_BYTES": str(MAX_BODY),
        "SERVE_LOG_FORMAT": "json",
    }
    log = tmp_path_factory.mktemp("service") / "server.log"
    with run_server(models_dir, log, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def offline_runtime(models_dir: Path, http: httpx.Client, name: str) -> tuple[int, ModelRuntime]:
    """The served default version of ``name``, loaded here through the runtime directly."""
    version = http.get(f"/models/{name}").json()["default_version"]
    path = models_dir / name / str(version)
    runtime = create_runtime(path, json.loads((path / "metadata.json").read_text()))
    runtime.load()
    return version, runtime


@pytest.fixture(scope="module")
def mnist_test() -> tuple[np.ndarray, np.ndarray]:
    from training.datasets import load_images

    data = load_images("mnist")
    return data.x_test[:N_IMAGES], data.y_test[:N_IMAGES]


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image.astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def test_ready_and_no_tensorflow_in_the_server(server: Server, http: httpx.Client) -> None:
    body = http.get("/readyz").json()
    assert body["status"] == "ready"
    assert set(body["models"]) >= {"mnist", "fashion_mnist", "pima"}
    models = http.get("/models").json()["models"]
    runtimes = {v["runtime"] for m in models for v in m["versions"] if v["state"] == "available"}
    if runtimes == {"tflite"}:  # TFLite everywhere: TensorFlow must not be loaded at all
        maps = Path(f"/proc/{server.process.pid}/maps").read_text()
        assert "libtensorflow" not in maps


def test_mnist_json_matches_offline_accuracy(
    models_dir: Path, http: httpx.Client, mnist_test: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = mnist_test
    version, runtime = offline_runtime(models_dir, http, "mnist")
    offline = runtime.predict(x.astype(np.float32) / 255).argmax(axis=1)
    r = http.post("/models/mnist/predict", json={"instances": x.tolist()})  # 0-255 integers
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["version"] == version
    served = np.array([p["class_index"] for p in body["predictions"]])
    np.testing.assert_array_equal(served, offline)
    accuracy = float(np.mean(served == y))
    assert accuracy == float(np.mean(offline == y))
    assert accuracy >= 0.8, f"the trained model is unexpectedly poor: {accuracy}"


def test_mnist_png_files_match_offline_accuracy(
    models_dir: Path, http: httpx.Client, mnist_test: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = mnist_test
    files = [png(image) for image in x]
    _, runtime = offline_runtime(models_dir, http, "mnist")
    decoded = np.stack([decode_image(f, max_pixels=10**6, content_type="image/png") for f in files])
    offline = runtime.predict(decoded).argmax(axis=1)
    raw_accuracy = float(np.mean(runtime.predict(x.astype(np.float32) / 255).argmax(axis=1) == y))
    served = []
    for start in range(0, N_IMAGES, 25):  # multipart, 25 files per request
        parts = [(f"f{i}", (f"{i}.png", files[i], "image/png")) for i in range(start, start + 25)]
        r = http.post("/models/mnist/predict", files=parts)
        assert r.status_code == 200, r.text
        served += [p["class_index"] for p in r.json()["predictions"]]
    for i in (0, 1):  # and one file as the raw body
        r = http.post(
            "/models/mnist/predict", content=files[i], headers={"content-type": "image/png"}
        )
        assert r.json()["predictions"][0]["class_index"] == served[i]
    served_arr = np.array(served)
    np.testing.assert_array_equal(served_arr, offline)
    png_accuracy = float(np.mean(served_arr == y))
    assert png_accuracy == float(np.mean(offline == y))
    assert png_accuracy >= raw_accuracy - 0.03, (png_accuracy, raw_accuracy)


def test_fashion_mnist_image(models_dir: Path, http: httpx.Client) -> None:
    from training.datasets import load_images

    data = load_images("fashion_mnist")
    image, label = data.x_test[0], int(data.y_test[0])
    _, runtime = offline_runtime(models_dir, http, "fashion_mnist")
    expected = runtime.predict(image[None].astype(np.float32) / 255)[0]
    r = http.post("/models/fashion_mnist/predict", json={"instances": image.tolist(), "top_k": 3})
    assert r.status_code == 200, r.text
    pred = r.json()["predictions"][0]
    probs = np.array(list(pred["probabilities"].values()))
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    assert pred["class_index"] == int(expected.argmax())
    assert pred["label"] == list(pred["probabilities"])[pred["class_index"]]
    assert label == 9 and pred["label"] in {"Ankle boot", "Sneaker", "Sandal"}


def test_pima_records(models_dir: Path, http: httpx.Client) -> None:
    from training.datasets import load_pima

    data = load_pima()
    rows = data.features[:10]
    _, runtime = offline_runtime(models_dir, http, "pima")
    expected = runtime.predict(rows.astype(np.float32))[:, 0]
    records: list[Any] = [dict(zip(PIMA_NAMES, row.tolist(), strict=True)) for row in rows[:5]]
    records += [row.tolist() for row in rows[5:]]
    r = http.post("/models/pima/predict", json={"instances": records})
    assert r.status_code == 200, r.text
    body = r.json()
    threshold = body["threshold"]
    got = np.array([p["probability"] for p in body["predictions"]])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert [p["outcome_index"] for p in body["predictions"]] == [
        int(p >= threshold) for p in expected
    ]
    assert {p["outcome"] for p in body["predictions"]} <= {"diabetes", "no diabetes"}


IMG = [[0] * 28] * 28
PIMA = [6, 148, 72, 35, 0, 33.6, 0.627, 50]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def raw(body: bytes, content_type: str = "application/json") -> dict[str, Any]:
    return {"content": body, "headers": {"content-type": content_type}}


def js(instances: Any, **fields: Any) -> dict[str, Any]:
    return {"json": {"instances": instances, **fields}}


BAD_INPUTS: list[tuple[str, dict[str, Any], int, str]] = [
    ("/models/unknown/predict", {"json": {"instances": [IMG]}}, 404, "not found"),
    ("/models/mnist/versions/999/predict", {"json": {"instances": [IMG]}}, 404, "no version 999"),
    ("/models/mnist/versions/nightly/predict", {"json": {"instances": [IMG]}}, 404, "nightly"),
    ("/models/mnist/predict", raw(b'{"instances": [1,'), 400, "malformed JSON"),
    ("/models/mnist/predict", raw(b'{"instances": [NaN]}'), 422, "NaN"),
    ("/models/mnist/predict", {"json": {"instances": [[0] * 783]}}, 422, "784"),
    ("/models/mnist/predict", {"json": {"instances": []}}, 422, "empty"),
    ("/models/mnist/predict", {"json": {"instances": [IMG] * (MAX_INSTANCES + 1)}}, 422, "limit"),
    ("/models/mnist/predict", {"json": {"instances": [[[300] * 28] * 28]}}, 422, "above 255"),
    ("/models/mnist/predict", {"json": {"instances": [[["a"] * 28] * 28]}}, 422, "number"),
    ("/models/mnist/predict", {"json": {"instances": [IMG], "top_k": 0}}, 422, "top_k"),
    ("/models/mnist/predict", raw(b" " * (MAX_BODY + 1)), 413, "accepts at most"),
    ("/models/mnist/predict", raw(b"a,b", "text/csv"), 415, "content type"),
    ("/models/mnist/predict", raw(PNG_MAGIC + b"0000", "image/png"), 422, "decode"),
    ("/models/pima/predict", {"json": {"instances": [{"glucose": 148}]}}, 422, "pregnant"),
    ("/models/pima/predict", js([[*PIMA[:7], 500]]), 422, "age"),
    ("/models/pima/predict", js([PIMA], threshold=2), 422, "threshold"),
    ("/models/pima/predict", raw(PNG_MAGIC, "image/png"), 415, "records"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "kwargs", "status", "message"), BAD_INPUTS)
def test_bad_inputs(
    http: httpx.Client, path: str, kwargs: dict[str, Any], status: int, message: str
) -> None:
    r = http.post(path, **kwargs)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert list(body) == ["error"]
    assert message.lower() in body["error"].lower(), body["error"]
    assert "Traceback" not in body["error"]


def test_head_gets_no_body_and_a_wrong_method_405(http: httpx.Client) -> None:
    for path in ("/healthz", "/readyz", "/models", "/v1/models/pima", "/v2/health/live"):
        r = http.head(path)
        assert r.status_code == 200 and r.content == b"", path
        assert r.headers["content-length"] == http.get(path).headers["content-length"], path
    assert http.head("/v1/models/pima:predict").status_code == 405
    r = http.get("/v1/models/pima:predict")  # a verb URL: POST only
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert r.json() == {"error": "method GET is not allowed on /v1/models/pima:predict: use POST"}


def test_request_logs_and_graceful_exit(server: Server, http: httpx.Client) -> None:
    r = http.get("/healthz", headers={"X-Request-ID": "integration-1"})
    assert r.headers["x-request-id"] == "integration-1"
    http.head("/models", headers={"X-Request-ID": "integration-head"})
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0
    lines = [entry for entry in server.json_logs() if entry.get("request_id") == "integration-1"]
    assert lines and lines[0]["status"] == 200
    head = [e for e in server.json_logs() if e.get("request_id") == "integration-head"]
    assert head and (head[0]["method"], head[0]["status"]) == ("HEAD", 200)
