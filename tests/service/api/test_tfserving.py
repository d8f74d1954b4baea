"""The TF Serving REST adapter in-process (tiny random models; see tests/helpers/models.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.helpers.apps import serve
from tests.helpers.models import PIMA_LABEL_NAMES, PIMA_ROW

pytestmark = pytest.mark.anyio

FEATURES = ["pregnant", "glucose", "pressure", "triceps", "insulin", "mass", "pedigree", "age"]
IMAGES = np.random.default_rng(5).random((3, 28, 28), dtype=np.float32)


async def predict(dialect_client: httpx.AsyncClient, path: str, body: Any) -> httpx.Response:
    return await dialect_client.post(f"/v1/models/{path}", json=body)


async def test_model_status_lists_versions(dialect_client: httpx.AsyncClient) -> None:
    r = await dialect_client.get("/v1/models/mnist")
    assert r.status_code == 200
    statuses = r.json()["model_version_status"]
    assert [s["version"] for s in statuses] == ["1", "2"]
    assert all(s["state"] == "AVAILABLE" for s in statuses)
    assert statuses[0]["status"] == {"error_code": "OK", "error_message": ""}
    for path in ("/v1/models/mnist/versions/2", "/v1/models/mnist/versions/02"):
        r = await dialect_client.get(path)  # "02" names version 2, as in :predict and metadata
        assert [s["version"] for s in r.json()["model_version_status"]] == ["2"]


async def test_the_model_names_are_listed_as_kserve_lists_them(
    dialect_client: httpx.AsyncClient,
) -> None:
    r = await dialect_client.get("/v1/models")
    assert r.status_code == 200, r.text
    names = (await dialect_client.get("/models")).json()["models"]
    assert r.json() == {"models": [model["name"] for model in names]}
    assert "mnist" in r.json()["models"]
    r = await dialect_client.post("/v1/models", json={})
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"


async def test_failed_version_status_says_why(dialect_client: httpx.AsyncClient) -> None:
    (status,) = (await dialect_client.get("/v1/models/broken")).json()["model_version_status"]
    assert status["state"] == "END"
    assert status["status"]["error_code"] != "OK" and status["status"]["error_message"]


@pytest.mark.parametrize(
    "path", ["/v1/models/nope", "/v1/models/mnist/versions/9", "/v1/models/nope/metadata"]
)
async def test_unknown_model_or_version_is_404(
    dialect_client: httpx.AsyncClient, path: str
) -> None:
    r = await dialect_client.get(path)
    assert r.status_code == 404
    assert set(r.json()) == {"error"}


async def test_metadata_is_a_signature_def(dialect_client: httpx.AsyncClient) -> None:
    for path in ("/v1/models/mnist/metadata", "/v1/models/mnist/versions/1/metadata"):
        doc = (await dialect_client.get(path)).json()
        assert doc["model_spec"]["name"] == "mnist"
        sig = doc["metadata"]["signature_def"]["signature_def"]["serving_default"]
        pixels = sig["inputs"]["pixels"]
        assert pixels["dtype"] == "DT_FLOAT"
        assert [d["size"] for d in pixels["tensor_shape"]["dim"]] == ["-1", "28", "28"]
        out = sig["outputs"]["probabilities"]
        assert [d["size"] for d in out["tensor_shape"]["dim"]] == ["-1", "10"]
        assert sig["method_name"] == "tensorflow/serving/predict"
    doc = (await dialect_client.get("/v1/models/mnist/metadata")).json()
    assert doc["model_spec"]["version"] == "2"  # the default is the newest


async def test_row_and_columnar_predict_agree(dialect_client: httpx.AsyncClient) -> None:
    row = await predict(dialect_client, "mnist:predict", {"instances": IMAGES.tolist()})
    assert row.status_code == 200, row.text
    assert row.headers["content-type"] == "application/json"
    preds = np.array(row.json()["predictions"])
    assert preds.shape == (3, 10)
    np.testing.assert_allclose(preds.sum(axis=1), 1.0, atol=1e-5)
    col = await predict(
        dialect_client, "mnist:predict", {"inputs": IMAGES.reshape(3, 784).tolist()}
    )
    np.testing.assert_allclose(np.array(col.json()["outputs"]), preds, atol=1e-6)
    named = await predict(dialect_client, "mnist:predict", {"inputs": {"pixels": IMAGES.tolist()}})
    np.testing.assert_allclose(np.array(named.json()["outputs"]), preds, atol=1e-6)


async def test_images_with_a_channel_axis_of_one_read_as_grey(
    dialect_client: httpx.AsyncClient,
) -> None:
    # a Keras CNN's input is (28, 28, 1): TF Serving clients of such a model send that layout
    plain = await predict(dialect_client, "mnist:predict", {"instances": IMAGES.tolist()})
    keras = IMAGES[..., None].tolist()
    row = await predict(dialect_client, "mnist:predict", {"instances": keras})
    col = await predict(dialect_client, "mnist:predict", {"inputs": keras})
    assert row.status_code == 200, row.text
    assert row.json()["predictions"] == plain.json()["predictions"] == col.json()["outputs"]
    three = await predict(dialect_client, "mnist:predict", {"instances": [[[[0.5] * 3] * 28] * 28]})
    assert three.status_code == 422 and "[-1, 28, 28, 1]" in three.json()["error"]
    pima = await predict(dialect_client, "pima:predict", {"instances": [[[v] for v in PIMA_ROW]]})
    assert pima.status_code == 422  # only images have a channel


async def test_versions_and_labels_route_to_their_version(
    dialect_client: httpx.AsyncClient,
) -> None:
    body = {"instances": IMAGES[:1].tolist(), "signature_name": "serving_default"}
    v1 = (await predict(dialect_client, "mnist/versions/1:predict", body)).json()["predictions"]
    v2 = (await predict(dialect_client, "mnist/versions/2:predict", body)).json()["predictions"]
    stable = (await predict(dialect_client, "mnist/labels/stable:predict", body)).json()[
        "predictions"
    ]
    canary = (await predict(dialect_client, "mnist/labels/canary:predict", body)).json()[
        "predictions"
    ]
    baseline = (await predict(dialect_client, "mnist/labels/baseline:predict", body)).json()[
        "predictions"
    ]
    latest = (await predict(dialect_client, "mnist:predict", body)).json()["predictions"]
    assert stable == v1 == baseline and canary == v2 == latest
    assert v1 != v2  # two different random models
    status = (await dialect_client.get("/v1/models/mnist/labels/canary")).json()
    assert [s["version"] for s in status["model_version_status"]] == ["2"]
    meta = (await dialect_client.get("/v1/models/mnist/labels/stable/metadata")).json()
    assert meta["model_spec"]["version"] == "1"
    for path in ("/v1/models/mnist/labels/gold", "/v1/models/mnist/labels/1/metadata"):
        assert (await dialect_client.get(path)).status_code == 404


async def test_pima_row_objects_and_tensors(dialect_client: httpx.AsyncClient) -> None:
    record = dict(zip(FEATURES, PIMA_ROW, strict=True))
    by_name = await predict(dialect_client, "pima:predict", {"instances": [record, record]})
    by_tensor = await predict(dialect_client, "pima:predict", {"instances": [PIMA_ROW, PIMA_ROW]})
    by_input = await predict(
        dialect_client, "pima:predict", {"instances": [{"features": PIMA_ROW}]}
    )
    assert by_name.status_code == 200, by_name.text
    p = by_tensor.json()["predictions"]
    assert np.array(p).shape == (2, 1) and 0 < p[0][0] < 1
    assert by_name.json()["predictions"] == p
    assert by_input.json()["predictions"] == p[:1]


async def test_classify_and_regress(dialect_client: httpx.AsyncClient) -> None:
    record = dict(zip(FEATURES, PIMA_ROW, strict=True))
    r = await predict(dialect_client, "pima:classify", {"examples": [record]})
    assert r.status_code == 200, r.text
    ((neg, pos),) = r.json()["result"]
    p = (await predict(dialect_client, "pima:predict", {"instances": [PIMA_ROW]})).json()[
        "predictions"
    ]
    assert neg[0] == "no diabetes" and pos[0] == "diabetes"
    assert pos[1] == pytest.approx(p[0][0]) and neg[1] + pos[1] == pytest.approx(1.0)
    r = await predict(
        dialect_client, "mnist:classify", {"examples": [{"pixels": IMAGES[0].tolist()}]}
    )
    assert [label for label, _ in r.json()["result"][0]] == [str(d) for d in range(10)]
    r = await predict(dialect_client, "pima:regress", {"examples": [record]})
    assert r.status_code == 400 and "regress" in r.json()["error"]


async def test_a_feature_as_a_one_value_list_is_that_value(
    dialect_client: httpx.AsyncClient,
) -> None:
    """A tf.Example's features are lists of values, and clients built on them send a list of
    one for a number."""
    record = dict(zip(FEATURES, PIMA_ROW, strict=True))
    listed = {name: [value] for name, value in record.items()}
    for verb, key in (("classify", "examples"), ("predict", "instances")):
        plain = await predict(dialect_client, f"pima:{verb}", {key: [record]})
        r = await predict(dialect_client, f"pima:{verb}", {key: [listed]})
        assert r.status_code == 200, r.text
        assert r.json() == plain.json()
    listed["glucose"] = [148, 150]
    r = await predict(dialect_client, "pima:classify", {"examples": [listed]})
    assert r.status_code == 422
    assert "feature 'glucose' must be a number (or a list of one)" in r.json()["error"]


async def test_a_record_of_the_label_alone_is_told_so_once_in_both_dialects(
    tiny_repo: Path, tmp_path: Path
) -> None:
    """The label's column is skipped, so such a record holds no input: said once, not the
    feature list twice (as missing and as expected)."""
    repo = tmp_path / "models"
    shutil.copytree(tiny_repo / "pima", repo / "pima")
    metadata = repo / "pima" / "1" / "metadata.json"  # not among its own checksums
    meta = json.loads(metadata.read_text())
    meta["input"]["label_names"] = PIMA_LABEL_NAMES
    metadata.write_text(json.dumps(meta))
    names = "pregnant, glucose, pressure, triceps, insulin, mass, pedigree, age"
    async with serve(repo, models=["pima"]) as (_, client):
        for label in PIMA_LABEL_NAMES:
            for url in ("/models/pima/predict", "/v1/models/pima:predict"):
                r = await client.post(url, json={"instances": [{label: 1}]})
                assert r.status_code == 422
                assert r.json()["error"] == (
                    f"instances[0]: the record holds only the label ({label}), not the inputs "
                    f"(expected fields: {names})"
                ), url


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        (
            "mnist:predict",
            {"instances": IMAGES.tolist(), "signature_name": "x"},
            400,
            '"x" not found',
        ),
        ("mnist:predict", {}, 400, "Missing 'inputs' or 'instances' key"),
        ("mnist:predict", {"instances": [[0.5] * 10]}, 422, "expected shape [-1, 28, 28]"),
        ("mnist:predict", {"instances": (IMAGES * 255).tolist()}, 422, "0-255 are divided by 255"),
        ("mnist:predict", {"instances": []}, 422, "empty"),
        ("pima:predict", {"instances": [{"glucose": 1}]}, 422, "missing fields pregnant"),
        ("pima:predict", {"instances": [[1e9] * 8]}, 422, "outside"),
        ("nope:predict", {"instances": [PIMA_ROW]}, 404, "nope"),
        ("mnist/versions/7:predict", {"instances": [PIMA_ROW]}, 404, "7"),
        ("mnist/labels/gold:predict", {"instances": [PIMA_ROW]}, 404, "gold"),
        ("mnist:interpret", {"instances": [PIMA_ROW]}, 404, ":interpret"),
        ("mnist", {"instances": [PIMA_ROW]}, 405, "method POST is not allowed on /v1/models/mnist"),
        ("mnist/labels/1:predict", {"instances": [PIMA_ROW]}, 404, "use /versions/"),
        ("mnist/versions/x:predict", {"instances": [PIMA_ROW]}, 404, "number"),
    ],
)
async def test_errors(
    dialect_client: httpx.AsyncClient, path: str, body: Any, status: int, needle: str
) -> None:
    r = await predict(dialect_client, path, body)
    assert r.status_code == status, r.text
    assert list(r.json()) == ["error"]
    assert needle in r.json()["error"]


async def test_malformed_json_is_400(dialect_client: httpx.AsyncClient) -> None:
    r = await dialect_client.post("/v1/models/mnist:predict", content=b"{instances")
    assert r.status_code == 400 and "malformed JSON" in r.json()["error"]


async def test_too_many_instances_is_422(dialect_client: httpx.AsyncClient) -> None:
    r = await predict(dialect_client, "pima:predict", {"instances": [PIMA_ROW] * 65})
    assert r.status_code == 422 and "too many instances" in r.json()["error"]


async def test_percent_encoded_colon_works(dialect_client: httpx.AsyncClient) -> None:
    r = await dialect_client.post("/v1/models/pima%3Apredict", json={"instances": [PIMA_ROW]})
    assert r.status_code == 200, r.text
    r = await dialect_client.post(
        "/v1/models/pima/versions/1%3Apredict", json={"instances": [PIMA_ROW]}
    )
    assert r.status_code == 200, r.text


async def test_allow_header_of_verb_urls(dialect_client: httpx.AsyncClient) -> None:
    for path in ("/v1/models/pima:predict", "/v1/models/pima/versions/1:predict"):
        r = await dialect_client.get(path)  # the status routes match "pima:predict" as a name
        assert r.status_code == 405 and r.headers["allow"] == "POST", r.text
        assert r.json() == {"error": f"method GET is not allowed on {path}: use POST"}
    r = await dialect_client.put("/v1/models/pima:predict", json={})
    assert r.status_code == 405 and "POST" in r.headers["allow"]


METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")


async def test_a_verb_url_missing_its_verb_or_name_is_404_whatever_the_method(
    dialect_client: httpx.AsyncClient,
) -> None:
    """Every method agrees: a missing or unknown verb is named, never "use POST" to a GET (or a
    PUT) and "use GET" to a POST of the same URL."""
    for path in (
        "/v1/models/pima:",
        "/v1/models/pima/versions/1:",
        "/v1/models/pima/labels/baseline:",
        "/v1/models/pima:infer",
    ):
        said = "no method after ':'" if path.endswith(":") else "unknown method :infer"
        for method in METHODS:
            r = await dialect_client.request(method, path, json={"instances": [PIMA_ROW]})
            assert r.status_code == 404, (method, path, r.text)
            assert r.json()["error"].startswith(said), r.text
            assert r.json()["error"].endswith("use :predict, :classify, :regress or :explain")
    for path in ("/v1/models/:predict", "/v1/models/pima:predict:predict"):
        for method in METHODS:  # nothing named so: 404 either way
            r = await dialect_client.request(method, path, json={"instances": [PIMA_ROW]})
            assert r.status_code == 404, (method, path, r.text)
            assert set(r.json()) == {"error"} and "allow" not in r.headers


async def test_status_of_a_model_unloaded_whole_says_so(tiny_repo: Path) -> None:
    async with serve(tiny_repo, models=["pima"]) as (app, client):
        await app.state.registry.unload("pima")
        r = await client.get("/v1/models/pima")
    assert r.status_code == 404
    assert r.json()["error"] == (
        "Could not find any versions of model pima: every version of model pima was unloaded "
        "by an admin request"
    )
