"""Explanations in every dialect, in-process on the tiny repository: the own API's /explain,
TF Serving's :explain and the V2 explain extension, their answers and their errors, and the
background sample a version ships."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from service.serving.explanations import MAX_INSTANCES
from tests.helpers.apps import serve
from tests.helpers.models import PIMA_FEATURES, PIMA_ROW

pytestmark = pytest.mark.anyio

OTHER_ROW = [1, 85, 66, 29, 0, 26.6, 0.351, 31]


def stroke() -> np.ndarray:
    image = np.zeros((28, 28), np.float32)
    image[4:24, 12:16] = 1.0
    return image


def check_pima_item(item: dict[str, Any], row: list[float]) -> None:
    attributions = item["attributions"]
    assert [a["feature"] for a in attributions] == [f[0] for f in PIMA_FEATURES]
    assert [a["unit"] for a in attributions] == [f[1] for f in PIMA_FEATURES]
    assert [a["value"] for a in attributions] == pytest.approx(row)
    total_p = sum(a["probability"] for a in attributions)
    total_l = sum(a["log_odds"] for a in attributions)
    assert total_p == pytest.approx(item["probability"] - item["base"]["probability"], abs=1e-5)
    assert total_l == pytest.approx(item["log_odds"] - item["base"]["log_odds"], abs=1e-5)
    for a in attributions:
        expected = (
            "raises"
            if a["probability"] > 1e-6
            else "lowers"
            if a["probability"] < -1e-6
            else "none"
        )
        assert a["effect"] == expected


# --- own API ------------------------------------------------------------------------------------
async def test_pima_exact_shapley_in_probability_and_log_odds(
    dialect_client: httpx.AsyncClient,
) -> None:
    r = await dialect_client.post("/models/pima/explain", json={"instances": [PIMA_ROW, OTHER_ROW]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "pima" and body["method"] == "exact_shapley"
    assert body["background"] == "golden sample (2 rows)"  # the tiny version ships no sample
    assert set(body["units"]) == {"probability", "log_odds"}
    predicted = await dialect_client.post(
        "/models/pima/predict", json={"instances": [PIMA_ROW, OTHER_ROW]}
    )
    for item, row, p in zip(
        body["explanations"], (PIMA_ROW, OTHER_ROW), predicted.json()["predictions"], strict=True
    ):
        check_pima_item(item, row)
        assert item["probability"] == pytest.approx(p["probability"], abs=1e-6)


async def test_records_by_name_and_a_version_path(dialect_client: httpx.AsyncClient) -> None:
    record = dict(zip([f[0] for f in PIMA_FEATURES], PIMA_ROW, strict=True))
    r = await dialect_client.post("/models/pima/versions/1/explain", json={"instances": [record]})
    assert r.status_code == 200 and r.json()["version"] == 1
    check_pima_item(r.json()["explanations"][0], PIMA_ROW)


async def test_image_occlusion_map_from_json_and_from_a_png(
    dialect_client: httpx.AsyncClient,
) -> None:
    image = stroke()
    r = await dialect_client.post("/models/mnist/explain", json={"instances": [image.tolist()]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["method"] == "occlusion" and body["patch"] == 4 and body["baseline"] == 0.0
    item = body["explanations"][0]
    attributions = np.asarray(item["attributions"])
    assert attributions.shape == (28, 28)
    assert (attributions[image == 0] == 0).all()  # no ink, nothing to remove
    predicted = (
        await dialect_client.post("/models/mnist/predict", json={"instances": [image.tolist()]})
    ).json()
    assert item["label"] == predicted["predictions"][0]["label"]
    assert item["probability"] == pytest.approx(
        predicted["predictions"][0]["probabilities"][item["label"]], abs=1e-6
    )

    buffer = io.BytesIO()
    Image.fromarray((image * 255).astype(np.uint8), mode="L").save(buffer, format="PNG")
    r = await dialect_client.post(
        "/models/mnist/versions/1/explain?target=3",
        content=buffer.getvalue(),
        headers={"content-type": "image/png"},
    )
    assert r.status_code == 200, r.text
    item = r.json()["explanations"][0]
    assert item["class_index"] == 3 and item["label"] == "3"
    both = {"instances": [image.tolist()], "target": 7}
    r = await dialect_client.post("/models/mnist/versions/1/explain?target=3", json=both)
    assert r.status_code == 422 and "target is given both" in r.json()["error"]
    r = await dialect_client.post("/models/mnist/versions/1/explain?target=7", json=both)
    assert r.status_code == 200 and r.json()["explanations"][0]["class_index"] == 7


async def test_target_by_label_or_index(dialect_client: httpx.AsyncClient) -> None:
    image = stroke().tolist()
    for target in ("7", 7):
        r = await dialect_client.post(
            "/models/mnist/explain", json={"instances": [image], "target": target}
        )
        assert r.status_code == 200 and r.json()["explanations"][0]["class_index"] == 7


@pytest.mark.parametrize(
    ("path", "kwargs", "status", "message"),
    [
        ("/models/nope/explain", {"json": {"instances": [PIMA_ROW]}}, 404, "not found"),
        ("/models/pima/versions/9/explain", {"json": {"instances": [PIMA_ROW]}}, 404, ""),
        (
            "/models/pima/explain",
            {"content": b"\x89PNG\r\n\x1a\n", "headers": {"content-type": "image/png"}},
            415,
            "JSON records",
        ),
        ("/models/pima/explain", {"json": {"instances": [PIMA_ROW[:7]]}}, 422, ""),
        ("/models/pima/explain", {"json": {"instances": [PIMA_ROW], "target": 1}}, 422, "image"),
        ("/models/pima/explain", {"json": {"instances": [PIMA_ROW], "top_k": 1}}, 422, "top_k"),
        ("/models/pima/explain", {"json": {"instances": []}}, 422, ""),
        (
            "/models/mnist/explain",
            {"json": {"instances": [[[0.5] * 28] * 28], "target": 10}},
            422,
            "target",
        ),
        (
            "/models/mnist/explain",
            {"json": {"instances": [[[0.5] * 28] * 28], "target": "\u00b2"}},  # isdigit, not int
            422,
            "target",
        ),
        (
            "/models/mnist/explain?target=\u00b2",
            {"json": {"instances": [[[0.5] * 28] * 28]}},
            422,
            "target",
        ),
        (
            "/models/mnist/explain?digits=many",  # predict's; explain reads one digit
            {"json": {"instances": [[[0.5] * 28] * 28]}},
            422,
            "unknown query parameter 'digits'; allowed: target",
        ),
        (
            "/models/pima/explain",
            {"json": {"instances": [PIMA_ROW] * (MAX_INSTANCES + 1)}},
            422,
            "too many instances",
        ),
        (
            "/models/pima/explain",
            {"content": b"a=1", "headers": {"content-type": "text/csv"}},
            415,
            "",
        ),
        ("/models/broken/explain", {"json": {"instances": [PIMA_ROW]}}, 503, ""),
    ],
)
async def test_own_api_errors(
    dialect_client: httpx.AsyncClient, path: str, kwargs: dict[str, Any], status: int, message: str
) -> None:
    r = await dialect_client.post(path, **kwargs)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


# --- TF Serving :explain (KServe v1) ------------------------------------------------------------
async def test_tfserving_explain(dialect_client: httpx.AsyncClient) -> None:
    r = await dialect_client.post("/v1/models/pima:explain", json={"instances": [PIMA_ROW]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["predictions"]) == 1 and len(body["predictions"][0]) == 1
    assert body["method"] == "exact_shapley"
    check_pima_item(body["explanations"][0], PIMA_ROW)
    columnar = await dialect_client.post(
        "/v1/models/mnist/versions/1:explain", json={"inputs": [stroke().tolist()]}
    )
    assert columnar.status_code == 200
    assert np.asarray(columnar.json()["explanations"][0]["attributions"]).shape == (28, 28)
    assert len(columnar.json()["predictions"][0]) == 10
    labelled = await dialect_client.post(
        "/v1/models/mnist/labels/stable:explain", json={"instances": [stroke().tolist()]}
    )
    assert labelled.status_code == 200
    bad = await dialect_client.post("/v1/models/pima:explain", json={"instances": [[1, 2]]})
    assert bad.status_code == 422
    unknown = await dialect_client.post("/v1/models/nope:explain", json={"instances": [PIMA_ROW]})
    assert unknown.status_code == 404
    verb = await dialect_client.post("/v1/models/pima:explainn", json={"instances": [PIMA_ROW]})
    assert verb.status_code == 404 and ":explain" in verb.json()["error"]
    for target, status in (("7", 200), (7, 200), (10, 422), ("9" * 4301, 422)):  # int() refuses
        r = await dialect_client.post(
            "/v1/models/mnist:explain", json={"instances": [stroke().tolist()], "target": target}
        )
        assert r.status_code == status, r.text
        assert status != 200 or r.json()["explanations"][0]["class_index"] == 7
    r = await dialect_client.post(  # :predict has no target
        "/v1/models/mnist:predict", json={"instances": [stroke().tolist()], "target": 7}
    )
    assert r.status_code == 400 and "target" in r.json()["error"]


# --- V2 explain extension -----------------------------------------------------------------------
async def test_v2_extension_is_advertised(dialect_client: httpx.AsyncClient) -> None:
    assert "explain" in (await dialect_client.get("/v2")).json()["extensions"]


async def test_v2_explain_pima(dialect_client: httpx.AsyncClient) -> None:
    rows = np.array([PIMA_ROW, OTHER_ROW], np.float32)
    request = {
        "id": "e1",
        "inputs": [
            {"name": "features", "shape": [2, 8], "datatype": "FP32", "data": rows.ravel().tolist()}
        ],
    }
    r = await dialect_client.post("/v2/models/pima/explain", json=request)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "e1" and body["model_name"] == "pima"
    assert body["parameters"]["method"] == "exact_shapley"
    assert body["parameters"]["background"] == "golden sample (2 rows)"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert set(outputs) == {"probabilities", "attributions", "attributions_log_odds", "base"}
    assert outputs["attributions"]["shape"] == [2, 8] and outputs["base"]["shape"] == [2, 2]
    phi = np.asarray(outputs["attributions"]["data"]).reshape(2, 8)
    base = np.asarray(outputs["base"]["data"]).reshape(2, 2)
    p = np.asarray(outputs["probabilities"]["data"])
    np.testing.assert_allclose(phi.sum(axis=1), p - base[:, 0], atol=1e-5)


async def test_v2_explain_image_binary_output_and_selection(
    dialect_client: httpx.AsyncClient,
) -> None:
    image = (stroke() * 255).astype(np.uint8)
    request = {
        "inputs": [
            {
                "name": "pixels",
                "shape": [1, 28, 28],
                "datatype": "UINT8",
                "data": image.ravel().tolist(),
            }
        ],
        "outputs": [{"name": "attributions"}, {"name": "class_index"}],
        "parameters": {"target": 1},
    }
    r = await dialect_client.post("/v2/models/mnist/versions/1/explain", json=request)
    assert r.status_code == 200, r.text
    outputs = {o["name"]: o for o in r.json()["outputs"]}
    assert set(outputs) == {"attributions", "class_index"}
    assert outputs["attributions"]["shape"] == [1, 28, 28]
    assert outputs["attributions"]["datatype"] == "FP32"
    assert outputs["class_index"]["data"] == [1]
    request["parameters"] = {"binary_data_output": True}
    r = await dialect_client.post("/v2/models/mnist/explain", json=request)
    assert r.headers["content-type"] == "application/octet-stream"
    assert int(r.headers["inference-header-content-length"]) < len(r.content)


async def test_v2_explain_errors(dialect_client: httpx.AsyncClient) -> None:
    good = {"inputs": [{"name": "features", "shape": [1, 8], "datatype": "FP32", "data": PIMA_ROW}]}
    unknown = await dialect_client.post("/v2/models/nope/explain", json=good)
    assert unknown.status_code == 404
    output = await dialect_client.post(
        "/v2/models/pima/explain", json={**good, "outputs": [{"name": "shap"}]}
    )
    assert output.status_code == 400 and "attributions" in output.json()["error"]
    shape = await dialect_client.post(
        "/v2/models/pima/explain",
        json={
            "inputs": [
                {"name": "features", "shape": [1, 7], "datatype": "FP32", "data": PIMA_ROW[:7]}
            ]
        },
    )
    assert shape.status_code == 422
    image = await dialect_client.post(
        "/v2/models/pima/explain", content=b"\x89PNG", headers={"content-type": "image/png"}
    )
    assert image.status_code == 415


# --- the background sample a version ships ------------------------------------------------------
def ship_background(version: Path, rows: np.ndarray, declared: int | None = None) -> None:
    np.save(version / "background.npy", rows)
    meta = json.loads((version / "metadata.json").read_text())
    meta["files"]["background.npy"] = hashlib.sha256(
        (version / "background.npy").read_bytes()
    ).hexdigest()
    meta["explain"] = {"background": {"file": "background.npy", "rows": declared or len(rows)}}
    (version / "metadata.json").write_text(json.dumps(meta))


async def test_a_shipped_training_sample_is_the_background(repo_copy: Path) -> None:
    rng = np.random.default_rng(0)
    highs = np.array([f[3] for f in PIMA_FEATURES], np.float32)
    ship_background(repo_copy / "pima" / "1", rng.random((32, 8), dtype=np.float32) * highs / 2)
    async with serve(repo_copy, models=["pima"]) as (_, client):
        r = await client.post("/models/pima/explain", json={"instances": [PIMA_ROW]})
        assert r.status_code == 200, r.text
        assert r.json()["background"] == "training sample (32 rows)"
        check_pima_item(r.json()["explanations"][0], PIMA_ROW)


async def test_a_broken_background_fails_the_version(repo_copy: Path) -> None:
    ship_background(repo_copy / "pima" / "1", np.zeros((4, 8), np.float32), declared=5)
    async with serve(repo_copy, models=["pima"]) as (_, client):
        r = await client.get("/models/pima/versions/1")
        assert r.json()["state"] == "failed"
        assert "explain.background" in r.json()["reason"]


async def test_an_explanation_leaves_room_in_the_queue_for_predictions(repo_copy: Path) -> None:
    """A Pima row's explanation is 2^8 coalitions times the background; queued at once, its
    rows filled the version's queue and other clients' predictions were refused (503)."""
    async with serve(repo_copy, models=["pima"], max_instances=64, queue_size=256) as (app, client):
        batcher = app.state.registry.resolve("pima").batcher
        submit, sizes = batcher.submit, []

        async def recorded(
            x: np.ndarray, timeout: float | None = None, cost: list[float] | None = None
        ) -> np.ndarray:
            sizes.append(len(x))
            return await submit(x, timeout, cost)

        batcher.submit = recorded
        r = await client.post("/models/pima/explain", json={"instances": [PIMA_ROW, OTHER_ROW]})
        assert r.status_code == 200, r.text
        check_pima_item(r.json()["explanations"][1], OTHER_ROW)
        assert sum(sizes) > 256 and max(sizes) <= 256 // 8
        sizes.clear()
        r = await client.post("/models/pima/predict", json={"instances": [PIMA_ROW]})
        assert r.status_code == 200 and sizes == [1]


async def test_an_explanation_counts_in_the_v2_statistics_as_one_inference_of_its_rows(
    tiny_repo: Path,
) -> None:
    """Its thousands of perturbed rows are its own doing, not the client's inferences: the
    statistics see one call of the two rows explained, timed by the calls it made."""
    rows = np.array([PIMA_ROW, OTHER_ROW], np.float32)
    request = {
        "inputs": [
            {"name": "features", "shape": [2, 8], "datatype": "FP32", "data": rows.ravel().tolist()}
        ],
    }
    async with serve(tiny_repo, models=["pima"]) as (app, client):
        batcher = app.state.registry.resolve("pima").batcher
        r = await client.post("/v2/models/pima/explain", json=request)
        assert r.status_code == 200, r.text
        r = await client.get("/v2/models/pima/versions/1/stats")
        (stat,) = r.json()["model_stats"]
        assert batcher.last_call_epoch_s() is not None  # the model did run
        assert (stat["inference_count"], stat["execution_count"]) == (2, 1)
        assert stat["inference_stats"]["success"]["count"] == 1
        assert stat["inference_stats"]["compute_infer"]["count"] == 1
        assert stat["inference_stats"]["compute_infer"]["ns"] > 0
        assert stat["batch_stats"] == []  # the explanation's calls are of its perturbed rows
        predict = {"instances": [PIMA_ROW]}
        assert (await client.post("/models/pima/predict", json=predict)).status_code == 200
        (stat,) = (await client.get("/v2/models/pima/versions/1/stats")).json()["model_stats"]
        assert (stat["inference_count"], stat["execution_count"]) == (3, 2)
