"""The V2 (Open Inference Protocol) adapter in-process, with tritonclient's own codecs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import tritonclient.grpc.model_config_pb2 as model_config_pb2
import tritonclient.grpc.service_pb2 as service_pb2
import tritonclient.http as triton
from google.protobuf import json_format

from tests.helpers.apps import serve
from tests.helpers.models import PIMA_ROW

pytestmark = pytest.mark.anyio

IMAGES = np.random.default_rng(9).random((4, 28, 28), dtype=np.float32)
PIMA = np.array([PIMA_ROW, [1, 85, 66, 29, 0, 26.6, 0.351, 31]], np.float32)


async def infer_json(
    dialect_client: httpx.AsyncClient, path: str, doc: dict[str, Any]
) -> httpx.Response:
    return await dialect_client.post(f"/v2/models/{path}/infer", json=doc)


async def infer_triton(
    dialect_client: httpx.AsyncClient,
    path: str,
    inputs: list[triton.InferInput],
    outputs: list[triton.InferRequestedOutput] | None = None,
    **kw: Any,
) -> triton.InferResult:
    body, json_size = triton.InferenceServerClient.generate_request_body(inputs, outputs, **kw)
    headers = {} if json_size is None else {"Inference-Header-Content-Length": str(json_size)}
    r = await dialect_client.post(f"/v2/models/{path}/infer", content=body, headers=headers)
    assert r.status_code == 200, r.text
    return triton.InferenceServerClient.parse_response_body(
        r.content, header_length=r.headers.get("inference-header-content-length")
    )


def tensor(name: str, x: np.ndarray, binary: bool) -> triton.InferInput:
    datatype = {np.float32: "FP32", np.uint8: "UINT8", np.float64: "FP64", np.int64: "INT64"}
    inp = triton.InferInput(name, list(x.shape), datatype[x.dtype.type])
    return inp.set_data_from_numpy(x, binary_data=binary)


async def test_server_metadata_and_health(dialect_client: httpx.AsyncClient) -> None:
    meta = (await dialect_client.get("/v2")).json()
    assert meta["name"] and meta["version"]
    assert {"binary_tensor_data", "classification"} <= set(meta["extensions"])
    assert {"model_configuration", "statistics"} <= set(meta["extensions"])
    assert (await dialect_client.get("/v2/health/live")).json() == {"live": True}
    r = await dialect_client.get("/v2/health/ready")  # broken models in this repository
    assert r.status_code == 503 and "broken" in r.json()["error"]


async def test_ready_server(dialect_ready_client: httpx.AsyncClient) -> None:
    r = await dialect_ready_client.get("/v2/health/ready")
    assert r.status_code == 200 and r.json() == {"ready": True}


async def test_model_metadata(dialect_client: httpx.AsyncClient) -> None:
    meta = (await dialect_client.get("/v2/models/mnist")).json()
    assert meta["name"] == "mnist" and meta["versions"] == ["1", "2"]
    assert meta["platform"] in ("tensorflow_lite", "tensorflow_savedmodel")
    assert meta["inputs"] == [{"name": "pixels", "datatype": "FP32", "shape": [-1, 28, 28]}]
    assert meta["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}]
    pima = (await dialect_client.get("/v2/models/pima/versions/1")).json()
    assert pima["inputs"][0]["shape"] == [-1, 8] and pima["outputs"][0]["shape"] == [-1, 1]
    fashion = (await dialect_client.get("/v2/models/fashion_mnist")).json()
    assert fashion["platform"] == "tensorflow_savedmodel"  # exported without TFLite


async def test_model_configuration_is_triton_model_config(
    dialect_client: httpx.AsyncClient,
) -> None:
    r = await dialect_client.get("/v2/models/mnist/config")
    assert r.status_code == 200, r.text
    config = r.json()
    # Triton's own schema: an unknown field or a wrong type or enum name fails to parse
    json_format.ParseDict(config, model_config_pb2.ModelConfig())
    meta = (await dialect_client.get("/v2/models/mnist")).json()
    assert config["name"] == "mnist" and config["platform"] == meta["platform"]
    # what image_client.py reads: the batch limit (the app's max_instances), the input's name,
    # format and dims without the batch dimension, the output's name, type and dims
    assert config["max_batch_size"] == 64
    assert config["input"] == [
        {"name": "pixels", "data_type": "TYPE_FP32", "format": "FORMAT_NONE", "dims": [28, 28]}
    ]
    assert config["output"][0] == {"name": "probabilities", "data_type": "TYPE_FP32", "dims": [10]}
    assert [o["name"] for o in config["output"]] == [o["name"] for o in meta["outputs"]]
    for extra in config["output"][1:]:  # one value per instance
        assert extra["dims"] == [1] and extra["reshape"] == {"shape": []}
    assert config["version_policy"] == {"specific": {"versions": [1, 2]}}
    assert config["dynamic_batching"]["preferred_batch_size"] == [64]  # the batcher's group
    pima = (await dialect_client.get("/v2/models/pima/versions/1/config")).json()
    assert pima["input"][0]["dims"] == [8] and pima["output"][0]["dims"] == [1]


async def test_configuration_and_statistics_of_unknown_and_unready_models(
    dialect_client: httpx.AsyncClient,
) -> None:
    for kind in ("config", "stats"):
        ok = await dialect_client.get(f"/v2/models/mnist/versions/1/{kind}")
        assert ok.status_code == 200, ok.text
        for path in (f"nope/{kind}", f"mnist/versions/3/{kind}", f"mnist/versions/x/{kind}"):
            r = await dialect_client.get(f"/v2/models/{path}")
            assert r.status_code == 404 and "model" in r.json()["error"], r.text
        r = await dialect_client.get(f"/v2/models/broken/{kind}")
        assert r.status_code == 503 and "broken" in r.json()["error"], r.text


async def _version_stats(dialect_client: httpx.AsyncClient, path: str) -> dict[str, Any]:
    r = await dialect_client.get(f"/v2/models/{path}/stats")
    assert r.status_code == 200, r.text
    json_format.ParseDict(r.json(), service_pb2.ModelStatisticsResponse())  # Triton's schema
    (stat,) = r.json()["model_stats"]
    return stat  # type: ignore[no-any-return]


async def test_statistics_count_requests_rows_and_calls(dialect_client: httpx.AsyncClient) -> None:
    before = await _version_stats(dialect_client, "pima/versions/1")
    started_ms = time.time() * 1000
    doc = {
        "inputs": [{"name": "features", "shape": [2, 8], "datatype": "FP32", "data": PIMA.tolist()}]
    }
    assert (await infer_json(dialect_client, "pima/versions/1", doc)).status_code == 200
    bad = {"inputs": [_pima_input(name="x")]}
    assert (await infer_json(dialect_client, "pima/versions/1", bad)).status_code == 422
    after = await _version_stats(dialect_client, "pima/versions/1")
    assert (after["name"], after["version"]) == ("pima", "1")
    assert after["inference_count"] - before["inference_count"] == 2  # rows
    assert after["execution_count"] - before["execution_count"] == 1  # model calls
    assert started_ms - 1 <= after["last_inference"] <= time.time() * 1000 + 1
    was, now = before["inference_stats"], after["inference_stats"]
    for key, requests in (("success", 1), ("fail", 1), ("compute_infer", 1)):
        assert now[key]["count"] - was[key]["count"] == requests, key
        assert now[key]["ns"] > was[key]["ns"], key
    for key in ("queue", "compute_input", "compute_output"):  # not measured: said so, as 0
        assert now[key] == {"count": 0, "ns": 0}
    # the request's own time covers the model call's
    assert now["success"]["ns"] - was["success"]["ns"] > (
        now["compute_infer"]["ns"] - was["compute_infer"]["ns"]
    )
    sizes = {b["batch_size"]: b["compute_infer"] for b in after["batch_stats"]}
    sizes_before = {b["batch_size"]: b["compute_infer"] for b in before["batch_stats"]}
    assert sizes[2]["count"] - sizes_before.get(2, {"count": 0})["count"] == 1
    assert sum(n * s["count"] for n, s in sizes.items()) == after["inference_count"]


async def test_statistics_count_from_the_versions_last_load(tiny_repo: Path) -> None:
    """An unload and load restarts the version's model calls (a new batcher): its request
    counts restart with them, as Triton's do, so the two never disagree."""
    doc = {"inputs": [_pima_input()]}
    async with serve(tiny_repo, models=["pima"]) as (app, client):
        for _ in range(3):
            assert (await infer_json(client, "pima/versions/1", doc)).status_code == 200
        stat = await _version_stats(client, "pima/versions/1")
        assert stat["inference_stats"]["success"]["count"] == 3 and stat["execution_count"] == 3
        await app.state.registry.unload("pima", 1)
        await app.state.registry.load("pima", 1)
        stat = await _version_stats(client, "pima/versions/1")
        assert stat["execution_count"] == 0
        assert stat["inference_stats"]["success"] == {"count": 0, "ns": 0}
        assert (await infer_json(client, "pima/versions/1", doc)).status_code == 200
        stat = await _version_stats(client, "pima/versions/1")
        assert stat["inference_stats"]["success"]["count"] == 1 and stat["execution_count"] == 1
        # the Prometheus series keep counting across the reload
        assert "serve_requests_total{" in (await client.get("/metrics")).text


async def test_statistics_of_a_model_and_of_every_model(dialect_client: httpx.AsyncClient) -> None:
    r = await dialect_client.get("/v2/models/mnist/stats")
    assert r.status_code == 200, r.text
    assert [(s["name"], s["version"]) for s in r.json()["model_stats"]] == [
        ("mnist", "1"),
        ("mnist", "2"),
    ]
    r = await dialect_client.get("/v2/models/stats")
    assert r.status_code == 200, r.text
    json_format.ParseDict(r.json(), service_pb2.ModelStatisticsResponse())
    served = {(s["name"], s["version"]) for s in r.json()["model_stats"]}
    assert {("mnist", "1"), ("mnist", "2"), ("pima", "1"), ("fashion_mnist", "1")} <= served
    assert not any(name == "broken" for name, _ in served)  # only versions that serve


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v2/models/mnist/ready", 200),
        ("/v2/models/mnist/versions/1/ready", 200),
        ("/v2/models/broken/ready", 503),
        ("/v2/models/nope/ready", 404),
        ("/v2/models/mnist/versions/3/ready", 404),
        ("/v2/models/nope", 404),
        ("/v2/models/mnist/versions/x", 404),
    ],
)
async def test_readiness_and_errors(
    dialect_client: httpx.AsyncClient, path: str, status: int
) -> None:
    r = await dialect_client.get(path)
    assert r.status_code == status, r.text
    if status != 200:
        assert r.json()["error"]


async def test_json_infer_nested_and_flat_with_id(dialect_client: httpx.AsyncClient) -> None:
    base = {"name": "pixels", "shape": [4, 28, 28], "datatype": "FP32"}
    nested = await infer_json(
        dialect_client, "mnist", {"id": "abc", "inputs": [{**base, "data": IMAGES.tolist()}]}
    )
    assert nested.status_code == 200, nested.text
    doc = nested.json()
    assert doc["id"] == "abc" and doc["model_name"] == "mnist" and doc["model_version"] == "2"
    (out,) = doc["outputs"]
    assert out["name"] == "probabilities" and out["datatype"] == "FP32" and out["shape"] == [4, 10]
    flat = await infer_json(
        dialect_client, "mnist", {"inputs": [{**base, "data": IMAGES.ravel().tolist()}]}
    )
    assert "id" not in flat.json()
    assert flat.json()["outputs"][0]["data"] == out["data"]


@pytest.mark.parametrize("binary_in", [False, True])
@pytest.mark.parametrize("binary_out", [False, True])
async def test_tritonclient_bodies_mnist(
    dialect_client: httpx.AsyncClient, binary_in: bool, binary_out: bool
) -> None:
    ref = await infer_triton(dialect_client, "mnist/versions/1", [tensor("pixels", IMAGES, False)])
    expected = ref.as_numpy("probabilities")
    assert expected.shape == (4, 10)
    result = await infer_triton(
        dialect_client,
        "mnist/versions/1",
        [tensor("pixels", IMAGES, binary_in)],
        [triton.InferRequestedOutput("probabilities", binary_data=binary_out)],
        request_id="r-7",
    )
    assert result.get_response()["id"] == "r-7"
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected, atol=1e-6)


async def test_uint8_pixels_are_scaled(dialect_client: httpx.AsyncClient) -> None:
    raw = (IMAGES * 255).round().astype(np.uint8)
    as_bytes = await infer_triton(dialect_client, "mnist", [tensor("pixels", raw, True)])
    as_float = await infer_triton(
        dialect_client, "mnist", [tensor("pixels", raw.astype(np.float32) / 255, True)]
    )
    np.testing.assert_allclose(
        as_bytes.as_numpy("probabilities"), as_float.as_numpy("probabilities"), atol=1e-6
    )
    # the same pixels as 0-255 JSON through the own API: the very same input, to the last bit
    own = await dialect_client.post(
        "/models/mnist/predict", json={"instances": raw.tolist(), "scale": "byte"}
    )
    probs = [[p["probabilities"][str(d)] for d in range(10)] for p in own.json()["predictions"]]
    assert np.array_equal(np.asarray(probs, np.float32), as_bytes.as_numpy("probabilities"))


async def test_flat_instances_and_other_datatypes(dialect_client: httpx.AsyncClient) -> None:
    ref = (await infer_triton(dialect_client, "pima", [tensor("features", PIMA, True)])).as_numpy(
        "probabilities"
    )
    assert ref.shape == (2, 1)
    f64 = await infer_triton(
        dialect_client, "pima", [tensor("features", PIMA.astype(np.float64), False)]
    )
    np.testing.assert_allclose(f64.as_numpy("probabilities"), ref, atol=1e-6)
    ints = np.array([[6, 148, 72, 35, 0, 33, 1, 50]], np.int64)
    r = await infer_triton(dialect_client, "pima", [tensor("features", ints, True)])
    assert r.as_numpy("probabilities").shape == (1, 1)
    flat = await infer_triton(
        dialect_client, "mnist", [tensor("pixels", IMAGES.reshape(4, 784), True)]
    )
    assert flat.as_numpy("probabilities").shape == (4, 10)


async def test_images_with_a_channel_axis_of_one_read_as_grey(
    dialect_client: httpx.AsyncClient,
) -> None:
    ref = (await infer_triton(dialect_client, "mnist", [tensor("pixels", IMAGES, True)])).as_numpy(
        "probabilities"
    )
    for binary in (False, True):
        keras = tensor("pixels", IMAGES[..., None], binary)  # a Keras CNN's (N, 28, 28, 1)
        got = (await infer_triton(dialect_client, "mnist", [keras])).as_numpy("probabilities")
        assert np.array_equal(got, ref)


async def test_classification_extension(dialect_client: httpx.AsyncClient) -> None:
    probs = (
        await infer_triton(dialect_client, "mnist", [tensor("pixels", IMAGES, True)])
    ).as_numpy("probabilities")
    for binary in (False, True):
        result = await infer_triton(
            dialect_client,
            "mnist",
            [tensor("pixels", IMAGES, True)],
            [triton.InferRequestedOutput("probabilities", binary_data=binary, class_count=3)],
        )
        classes = result.as_numpy("probabilities")
        assert classes.shape == (4, 3)
        top = [s.decode() if isinstance(s, bytes) else s for s in classes[:, 0]]
        for row, text in zip(probs, top, strict=True):
            value, index, label = text.split(":")
            assert int(index) == int(row.argmax()) and label == str(row.argmax())
            assert float(value) == pytest.approx(float(row.max()), rel=1e-5)
    pima = await infer_triton(
        dialect_client,
        "pima",
        [tensor("features", PIMA, False)],
        [triton.InferRequestedOutput("probabilities", binary_data=False, class_count=2)],
    )
    labels = {str(s).split(":")[2] for s in pima.as_numpy("probabilities").ravel()}
    assert labels == {"no diabetes", "diabetes"}


async def test_binary_data_output_parameter(dialect_client: httpx.AsyncClient) -> None:
    doc = {
        "parameters": {"binary_data_output": True},
        "inputs": [{"name": "features", "shape": [1, 8], "datatype": "FP32", "data": PIMA_ROW}],
    }
    r = await infer_json(dialect_client, "pima", doc)
    assert r.headers["content-type"] == "application/octet-stream"
    head = int(r.headers["inference-header-content-length"])
    assert len(r.content) == head + 4
    p = np.frombuffer(r.content[head:], np.float32)
    assert 0 < p[0] < 1


def _pima_input(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "features",
        "shape": [1, 8],
        "datatype": "FP32",
        "data": PIMA_ROW,
    }
    return {**base, **over}


@pytest.mark.parametrize(
    ("doc", "status", "needle"),
    [
        ({"inputs": [_pima_input(name="x")]}, 422, "this model's input is 'features'"),
        *(
            (
                {"inputs": [_pima_input(datatype="BOOL", data=data)]},
                422,
                "input 'features': datatype 'BOOL' is not supported: the models take numbers; "
                "use one of UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, "
                "FP64",
            )
            for data in ([True] * 8, [1, 0] * 4)  # the same answer, whatever the data holds
        ),
        ({"inputs": [_pima_input(datatype="BYTES")]}, 422, "not supported"),
        ({"inputs": [_pima_input(shape=[8])]}, 422, "no batch dimension"),
        ({"inputs": [_pima_input(shape=[2, 8])]}, 422, "needs 16 values"),
        ({"inputs": [_pima_input(shape=[1, 7], data=PIMA_ROW[:7])]}, 422, "expected shape [-1, 8]"),
        ({"inputs": [_pima_input(data=[1e6] * 8)]}, 422, "outside"),
        (
            {"inputs": [_pima_input(datatype="FP64", data=[1e300, *PIMA_ROW[1:]])]},
            422,
            "input 'features': a value is beyond float32's range",  # finite: not "NaN or Inf"
        ),
        (
            {"inputs": [_pima_input()], "outputs": [{"name": "label"}]},
            400,
            "unexpected inference output",
        ),
        (
            {
                "inputs": [_pima_input()],
                "outputs": [{"name": "probabilities", "parameters": {"classification": 3}}],
            },
            422,
            "exceeds the 2 classes",
        ),
        ({"inputs": [_pima_input(), _pima_input(name="b")]}, 422, "one input"),
        ({"inputs": "x"}, 400, "'inputs'"),
    ],
)
async def test_infer_errors(
    dialect_client: httpx.AsyncClient, doc: dict[str, Any], status: int, needle: str
) -> None:
    r = await infer_json(dialect_client, "pima", doc)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]


async def test_binary_framing_errors(dialect_client: httpx.AsyncClient) -> None:
    inp = {
        "name": "features",
        "shape": [1, 8],
        "datatype": "FP32",
        "parameters": {"binary_data_size": 32},
    }
    head = orjson.dumps({"inputs": [inp]})
    good = PIMA[:1].tobytes()
    cases = [
        (head + good[:-4], str(len(head)), 400),  # too few bytes
        (head + good + b"x", str(len(head)), 400),  # trailing bytes
        (head + good, "nope", 400),  # bad header value
        (head + good, str(len(head) + 100), 400),  # header past the body
    ]
    for body, hl, status in cases:
        r = await dialect_client.post(
            "/v2/models/pima/infer", content=body, headers={"Inference-Header-Content-Length": hl}
        )
        assert r.status_code == status, (hl, r.text)
        assert r.json()["error"]
    wrong = orjson.dumps({"inputs": [{**inp, "parameters": {"binary_data_size": 31}}]})
    r = await dialect_client.post(
        "/v2/models/pima/infer",
        content=wrong + good[:31],
        headers={"Inference-Header-Content-Length": str(len(wrong))},
    )
    assert r.status_code == 422 and "needs 32 bytes" in r.json()["error"]


async def test_a_key_given_twice_is_400_and_not_blamed_on_the_json_length(
    dialect_client: httpx.AsyncClient,
) -> None:
    one = orjson.dumps(_pima_input())
    for body, headers in (
        (b'{"inputs": [%s], "inputs": [%s]}' % (one, one), {}),
        (b'{"id": "a", "id": "b", "inputs": [%s]}' % one, {}),
    ):
        with_length = {"Inference-Header-Content-Length": str(len(body))}
        for sent in (headers, with_length):
            r = await dialect_client.post("/v2/models/pima/infer", content=body, headers=sent)
            assert r.status_code == 400, r.text
            error = r.json()["error"]
            assert "is given twice" in error and "Inference-Header-Content-Length" not in error
    rows = [orjson.dumps(row.tolist()) for row in PIMA]
    r = await dialect_client.post(  # TF Serving's route reads its body the same way
        "/v1/models/pima:predict", content=b'{"instances": [%s], "instances": [%s]}' % tuple(rows)
    )
    assert r.status_code == 400 and "'instances' is given twice" in r.json()["error"], r.text


async def test_unknown_and_unready_models(dialect_client: httpx.AsyncClient) -> None:
    doc = {"inputs": [_pima_input()]}
    assert (await infer_json(dialect_client, "nope", doc)).status_code == 404
    assert (await infer_json(dialect_client, "pima/versions/5", doc)).status_code == 404
    r = await infer_json(dialect_client, "broken", doc)
    assert r.status_code == 503 and r.json()["error"]


@pytest.mark.parametrize(("label", "number"), [("stable", 1), ("canary", 2)])
async def test_a_version_asked_by_label_is_told_its_number(
    dialect_client: httpx.AsyncClient, label: str, number: int
) -> None:
    """The protocol has no labels: a client asking by one (tritonclient's model_version="canary")
    is told which version number it names, in the URL it asked for: the statistics' URL for the
    statistics, not the metadata's."""
    doc = {"inputs": [_pima_input()]}
    base = f"/v2/models/mnist/versions/{label}"
    for r, then in (
        (await infer_json(dialect_client, f"mnist/versions/{label}", doc), "/infer"),
        (await dialect_client.post(f"{base}/explain", json=doc), "/explain"),
        (await dialect_client.get(base), ""),
        (await dialect_client.get(f"{base}/ready"), "/ready"),
        (await dialect_client.get(f"{base}/config"), "/config"),
        (await dialect_client.get(f"{base}/stats"), "/stats"),
    ):
        assert r.status_code == 404
        assert r.json()["error"] == (
            f"model mnist has no version '{label}': versions are numbers; '{label}' is the label "
            f"of version {number}: /v2/models/mnist/versions/{number}{then}"
        )
    r = await dialect_client.get("/v2/models/mnist/versions/nolabel")
    assert r.json()["error"] == "model mnist has no version 'nolabel': versions are numbers"


async def test_timeout_parameter_and_content_types(dialect_client: httpx.AsyncClient) -> None:
    doc: dict[str, Any] = {"inputs": [_pima_input()], "parameters": {"timeout": 5_000_000}}
    assert (await infer_json(dialect_client, "pima", doc)).status_code == 200
    doc["parameters"] = {"timeout": -1}
    r = await infer_json(dialect_client, "pima", doc)
    assert r.status_code == 400 and "timeout" in r.json()["error"]
    ok = orjson.dumps({"inputs": [_pima_input(data=[0, 1, 2, 3, 4, 5, 0.5, 30])]})
    for ctype, status in [
        ("application/x-www-form-urlencoded", 200),  # what curl -d sends
        ("application/octet-stream", 200),
        ("multipart/form-data; boundary=x", 415),
        ("image/png", 415),
    ]:
        r = await dialect_client.post(
            "/v2/models/pima/infer", content=ok, headers={"Content-Type": ctype}
        )
        assert r.status_code == status, (ctype, r.text)
        t = await dialect_client.post(
            "/v1/models/pima:predict",
            content=b'{"instances": [[0,1,2,3,4,5,0.5,30]]}',
            headers={"Content-Type": ctype},
        )
        assert t.status_code == status, (ctype, t.text)
        if status == 415:  # binary tensor data is V2's; both point image files to the own API
            assert "binary tensor data" in r.json()["error"]
            assert "binary" not in t.json()["error"]
            assert all("POST /models/{name}/predict" in x.json()["error"] for x in (r, t))


async def test_statistics_of_every_version_read_the_request_series_once(
    dialect_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A poll of every model's statistics walks the request series once, not once per version
    (with many versions and routes, that was a second of the event loop per poll)."""
    app = dialect_client._transport.app  # type: ignore[attr-defined]
    stats = app.state.metrics.requests
    snapshot, walks = stats._snapshot, []

    def counted() -> list[tuple[tuple[str, ...], list[float]]]:
        walks.append(1)
        return snapshot()  # type: ignore[no-any-return]

    monkeypatch.setattr(stats, "_snapshot", counted)
    r = await dialect_client.get("/v2/models/stats")
    assert r.status_code == 200, r.text
    assert len(r.json()["model_stats"]) > 1
    assert len(walks) == 1


async def test_configuration_prefers_no_batch_above_its_max_batch_size(tiny_repo: Path) -> None:
    """Triton's rule: every preferred_batch_size <= max_batch_size (what one request may carry)."""
    async with serve(tiny_repo, models=["pima"], max_instances=8, max_batch_size=64) as (_, http):
        r = await http.get("/v2/models/pima/config")
    assert r.status_code == 200, r.text
    config = r.json()
    assert config["max_batch_size"] == 8
    assert config["dynamic_batching"]["preferred_batch_size"] == [8]
