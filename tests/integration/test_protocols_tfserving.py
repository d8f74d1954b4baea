"""TF Serving REST conformance against a real server, and one answer through every API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient

from tests.helpers.protocol_server import (
    Golden,
    default_versions,
    golden_samples,
    protocol_server,
)

pytestmark = pytest.mark.integration

FEATURES = ["pregnant", "glucose", "pressure", "triceps", "insulin", "mass", "pedigree", "age"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    with protocol_server(tmp_path_factory.mktemp("tfs")) as (server, models_dir):
        yield server.url, models_dir


@pytest.fixture(scope="module")
def http(served: tuple[str, Path]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served[0], timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def golden(served: tuple[str, Path]) -> Golden:
    return golden_samples(served[1], default_versions(served[0]))


def test_model_status(http: httpx.Client) -> None:
    for name in ("mnist", "fashion_mnist", "pima"):
        r = http.get(f"/v1/models/{name}")
        assert r.status_code == 200
        # version policy "latest": the newest version, and older ones down to the default
        statuses = r.json()["model_version_status"]
        assert statuses
        for status in statuses:
            assert status["state"] == "AVAILABLE"
            assert status["status"] == {"error_code": "OK", "error_message": ""}
            one = http.get(f"/v1/models/{name}/versions/{status['version']}").json()
            assert one["model_version_status"] == [status]
    r = http.get("/v1/models/half")
    assert r.status_code == 404 and set(r.json()) == {"error"}


def test_metadata(http: httpx.Client) -> None:
    doc = http.get("/v1/models/pima/metadata").json()
    sig = doc["metadata"]["signature_def"]["signature_def"]["serving_default"]
    (inp,) = sig["inputs"].values()
    assert inp["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in inp["tensor_shape"]["dim"]] == ["-1", "8"]
    version = doc["model_spec"]["version"]
    assert http.get(f"/v1/models/pima/versions/{version}/metadata").json() == doc


@pytest.mark.parametrize("model", ["mnist", "fashion_mnist", "pima"])
def test_row_and_columnar_formats(http: httpx.Client, golden: Golden, model: str) -> None:
    x, expected, atol = golden[model]
    row = http.post(f"/v1/models/{model}:predict", json={"instances": x.tolist()})
    assert row.status_code == 200, row.text
    assert set(row.json()) == {"predictions"}
    np.testing.assert_allclose(np.array(row.json()["predictions"]), expected, atol=atol)
    body = {"signature_name": "serving_default", "inputs": x.tolist()}
    col = http.post(f"/v1/models/{model}:predict", json=body)
    assert set(col.json()) == {"outputs"}
    np.testing.assert_allclose(np.array(col.json()["outputs"]), expected, atol=atol)


def test_versions_labels_and_named_instances(http: httpx.Client, golden: Golden) -> None:
    x, expected, atol = golden["pima"]
    records = [dict(zip(FEATURES, row, strict=True)) for row in x.tolist()]
    version = http.get("/v1/models/pima").json()["model_version_status"][0]["version"]
    for path in (f"pima/versions/{version}:predict", "pima:predict"):
        r = http.post(f"/v1/models/{path}", json={"instances": records})
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(np.array(r.json()["predictions"]), expected, atol=atol)
    if version == "1":
        r = http.post("/v1/models/pima/labels/stable:predict", json={"instances": records})
        assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("mnist:predict", {"instances": [[0.0] * 784], "signature_name": "bad"}, 400, "bad"),
        ("mnist:predict", {"instances": [[0.0] * 10]}, 422, "expected shape"),
        ("mnist:predict", {"examples": []}, 400, "Missing 'inputs' or 'instances'"),
        ("pima:predict", {"instances": [[0] * 8], "inputs": [[0] * 8]}, 400, "not both"),
        ("pima:regress", {"examples": [{"x": 1.0}]}, 400, "regress"),
        ("half:predict", {"instances": [1.0, 5.0]}, 404, "half"),
        ("pima/labels/nolabel:predict", {"instances": [[0] * 8]}, 404, "nolabel"),
    ],
)
def test_errors(http: httpx.Client, path: str, body: Any, status: int, needle: str) -> None:
    r = http.post(f"/v1/models/{path}", json=body)
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error"} and needle in r.json()["error"]


def _own_api(http: httpx.Client, model: str, x: np.ndarray) -> np.ndarray:
    body: dict[str, Any] = {"instances": x.tolist()}
    if x.ndim == 3:
        body["scale"] = "unit"
    r = http.post(f"/models/{model}/predict", json=body)
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    if "probabilities" in preds[0]:
        return np.array([list(p["probabilities"].values()) for p in preds])
    return np.array([[p["probability"]] for p in preds])


@pytest.mark.parametrize("model", ["mnist", "fashion_mnist", "pima"])
def test_one_answer_everywhere(
    http: httpx.Client, served: tuple[str, Path], golden: Golden, model: str
) -> None:
    x, expected, atol = golden[model]
    own = _own_api(http, model, x)
    tfs = np.array(
        http.post(f"/v1/models/{model}:predict", json={"instances": x.tolist()}).json()[
            "predictions"
        ]
    )
    client = httpclient.InferenceServerClient(url=served[0].removeprefix("http://"))
    try:
        inp = httpclient.InferInput("pixels" if x.ndim == 3 else "features", list(x.shape), "FP32")
        v2 = client.infer(model, [inp.set_data_from_numpy(x)]).as_numpy("probabilities")
    finally:
        client.close()
    np.testing.assert_allclose(own, tfs, atol=1e-6)
    np.testing.assert_allclose(v2, tfs, atol=1e-6)
    np.testing.assert_allclose(tfs, expected, atol=atol)
