"""The service's own API in-process, on the tiny repository: every endpoint and error case."""

from __future__ import annotations

import asyncio
import io
import struct
import time
import zlib
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from PIL import Image

from service.api.uploads import same_value
from service.app import create_app
from service.settings import Settings
from tests.helpers.models import PIMA_FEATURES, PIMA_ROW

pytestmark = pytest.mark.anyio

rng = np.random.default_rng(7)
IMAGES = rng.random((5, 28, 28), dtype=np.float32)


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((image * 255).round().astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def digit_png() -> bytes:
    """A white '1' stroke on black, 56x56 (so the decoder resizes it)."""
    arr = np.zeros((56, 56), np.float32)
    arr[8:48, 24:32] = 1.0
    return png_bytes(arr)


def runtime_probs(app: FastAPI, name: str, version: int, x: np.ndarray) -> np.ndarray:
    mv = app.state.registry.resolve(name, version)
    return mv.runtime.predict(x)


# --- health and status ----------------------------------------------------------------------
async def test_healthz(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "alive"}


async def test_every_get_answers_head_as_get(client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/readyz", "/models", "/v1/models/pima", "/v2/health/ready", "/"):
        got, head = await client.get(path), await client.head(path)
        assert head.status_code == got.status_code, path  # 200 and 503 (a broken model) here
        assert head.headers["content-type"] == got.headers["content-type"]


async def test_an_option_in_the_query_and_the_body_must_agree(client: httpx.AsyncClient) -> None:
    body = {"instances": [PIMA_ROW], "threshold": 0.1}
    r = await client.post("/models/pima/predict?threshold=0.9", json=body)
    assert r.status_code == 422
    assert "threshold is given both in the query string and in the body" in r.json()["error"]
    r = await client.post("/models/pima/predict?threshold=0.1", json=body)
    assert r.status_code == 200 and r.json()["predictions"][0]["threshold"] == 0.1
    same = {"instances": [[[0.5] * 28] * 28], "top_k": 2, "include_input": True}
    r = await client.post("/models/mnist/predict?top_k=2&include_input=true", json=same)
    assert r.status_code == 200, r.text  # the same values, spelt as a query does
    assert [same_value(q, b) for q, b in (("0.10", 0.1), ("true", True), (2, 2))] == [True] * 3
    assert [same_value(q, b) for q, b in (("0.2", 0.1), ("false", True), ("x", 1))] == [False] * 3


async def test_a_whole_number_sent_as_a_float_is_an_integer_option(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post("/models/mnist/predict", json={"instances": [IMG], "top_k": 3.0})
    assert r.status_code == 200, r.text
    assert len(r.json()["predictions"][0]["top_k"]) == 3


async def test_a_trailing_slash_is_an_unknown_path_not_a_redirect(
    client: httpx.AsyncClient,
) -> None:
    for method, path in (("POST", "/models/pima/predict/"), ("GET", "/v2/repository/index/")):
        r = await client.request(method, path, headers={"Host": "evil.example"})
        assert r.status_code == 404, path
        assert "location" not in r.headers
        assert r.json() == {
            "error": f"no route {method} {path}: no route ends with '/': try POST {path[:-1]}"
        }


async def test_readyz_names_failed_models_and_why(client: httpx.AsyncClient) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert set(body["models"]) == {"broken", "selftest"}
    assert "checksum mismatch" in body["models"]["broken"]
    assert "self-test failed" in body["models"]["selftest"]
    assert body["error"].startswith("not ready")


async def test_models_lists_versions_states_defaults_labels(client: httpx.AsyncClient) -> None:
    r = await client.get("/models")
    assert r.status_code == 200
    models = {m["name"]: m for m in r.json()["models"]}
    assert set(models) == {"broken", "fashion_mnist", "mnist", "pima", "selftest"}
    mnist = models["mnist"]
    assert mnist["default_version"] == 2
    assert mnist["labels"] == {"baseline": 1}
    assert [v["version"] for v in mnist["versions"]] == [1, 2]
    assert {v["state"] for v in mnist["versions"]} == {"available"}
    assert mnist["unfinished_versions"] == [3]
    assert models["fashion_mnist"]["versions"][0]["runtime"] == "savedmodel"
    assert mnist["versions"][0]["runtime"] == "tflite"
    broken = models["broken"]["versions"][0]
    assert broken["state"] == "failed"
    assert "checksum mismatch for model.tflite" in broken["reason"]
    assert models["broken"]["default_version"] is None
    assert models["broken"]["default_reason"] is None
    # the tiny models carry no stored latency: it is measured at load, and says so
    assert mnist["versions"][0]["latency"]["source"] == "measured at load"
    assert mnist["versions"][0]["latency"]["us_per_image_b1"] > 0


async def test_models_say_why_the_default_was_chosen(client: httpx.AsyncClient) -> None:
    models = {m["name"]: m for m in (await client.get("/models")).json()["models"]}
    # no accuracy target in the test settings; a tiny model always fits the latency budget
    assert models["mnist"]["default_reason"].startswith("version 2: no accuracy target, ")
    assert "µs budget" in models["mnist"]["default_reason"]
    detail = (await client.get("/models/mnist")).json()
    assert detail["default_reason"] == models["mnist"]["default_reason"]


async def test_model_detail_has_default_metadata_without_golden(client: httpx.AsyncClient) -> None:
    r = await client.get("/models/mnist")
    assert r.status_code == 200
    body = r.json()
    assert body["default_version"] == 2
    assert body["metadata"]["version"] == 2
    assert body["metadata"]["recipe"]["name"] == "best"
    assert "golden" not in body["metadata"]
    assert body["metadata"]["input"]["shape"] == [28, 28]


@pytest.mark.parametrize("version", ["1", "baseline"])
async def test_version_detail(client: httpx.AsyncClient, version: str) -> None:
    r = await client.get(f"/models/mnist/versions/{version}")
    assert r.status_code == 200
    body = r.json()
    assert body["version"] == 1
    assert body["state"] == "available"
    assert body["metadata"]["labels"][3] == "3"
    assert "golden" not in body["metadata"]


async def test_failed_version_detail_shows_reason(client: httpx.AsyncClient) -> None:
    r = await client.get("/models/selftest/versions/1")
    assert r.status_code == 200
    assert r.json()["state"] == "failed"
    assert "self-test failed" in r.json()["reason"]


async def test_report_file_served_only_when_listed(client: httpx.AsyncClient) -> None:
    r = await client.get("/models/mnist/versions/1/report/report.md")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/markdown")
    assert "tiny report" in r.text
    assert "Data: cache mnist.\n" in r.text and "/srv/host" not in r.text  # no host paths
    r = await client.get("/models/mnist/versions/1/report/history.png")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png"
    assert r.content.startswith(b"\x89PNG")
    for bad in ("unlisted.md", "..%2Fmetadata.json", "missing.png", ".hidden"):
        r = await client.get(f"/models/mnist/versions/1/report/{bad}")
        assert r.status_code == 404, bad
        assert "error" in r.json()
    r = await client.get("/models/mnist/versions/2/report/report.md")  # v2 has no report
    assert r.status_code == 404


# --- predictions ----------------------------------------------------------------------------
async def test_predict_json_images_match_the_runtime(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    r = await client.post("/models/mnist/predict", json={"instances": IMAGES.tolist(), "top_k": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["model"], body["version"]) == ("mnist", 2)
    expected = runtime_probs(app, "mnist", 2, IMAGES)
    assert len(body["predictions"]) == len(IMAGES)
    for pred, probs in zip(body["predictions"], expected, strict=True):
        got = np.array([pred["probabilities"][str(d)] for d in range(10)])
        np.testing.assert_allclose(got, probs, atol=1e-6)
        assert abs(got.sum() - 1) < 1e-5
        assert pred["class_index"] == int(np.argmax(probs))
        assert pred["label"] == str(pred["class_index"])
        assert [t["label"] for t in pred["top_k"]] == [str(i) for i in np.argsort(-probs)[:3]]
        assert "input" not in pred


async def test_predict_one_flat_image_byte_scale_with_input(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    pixels = (IMAGES[0] * 255).round()
    body = {"instances": pixels.reshape(-1).tolist(), "include_input": True}
    r = await client.post("/models/mnist/versions/1/predict", json=body)
    assert r.status_code == 200, r.text
    pred = r.json()["predictions"][0]
    seen = np.array(pred["input"])
    assert seen.shape == (28, 28)
    np.testing.assert_allclose(seen, pixels / 255, atol=1e-6)
    expected = runtime_probs(app, "mnist", 1, (pixels / 255)[None].astype(np.float32))[0]
    assert pred["class_index"] == int(np.argmax(expected))


async def test_predict_by_label_and_savedmodel_runtime(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/models/mnist/versions/baseline/predict", json={"instances": [IMAGES[0].tolist()]}
    )
    assert r.status_code == 200
    assert r.json()["version"] == 1
    r = await client.post("/models/fashion_mnist/predict", json={"instances": [IMAGES[1].tolist()]})
    assert r.status_code == 200
    labels = set(r.json()["predictions"][0]["probabilities"])
    assert "Ankle boot" in labels


async def test_predict_pima_records(app: FastAPI, client: httpx.AsyncClient) -> None:
    names = ["pregnant", "glucose", "pressure", "triceps", "insulin", "mass", "pedigree", "age"]
    record = dict(zip(names, PIMA_ROW, strict=True))
    rows = [record, [1, 85, 66, 29, 0, 26.6, 0.351, 31]]
    r = await client.post("/models/pima/predict", json={"instances": rows})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["threshold"] == 0.5
    expected = runtime_probs(app, "pima", 1, np.array([PIMA_ROW, rows[1]], np.float32))[:, 0]
    for pred, p in zip(body["predictions"], expected, strict=True):
        assert pred["probability"] == pytest.approx(float(p), abs=1e-6)
        assert pred["outcome_index"] == int(p >= 0.5)
        assert pred["outcome"] == ("diabetes" if p >= 0.5 else "no diabetes")
    # threshold per request flips the outcome around the probability
    p0 = float(expected[0])
    for threshold in (max(0.0, p0 - 0.01), min(1.0, p0 + 0.01)):
        r = await client.post(
            "/models/pima/predict", json={"instances": record, "threshold": threshold}
        )
        pred = r.json()["predictions"][0]
        assert r.json()["threshold"] == pytest.approx(threshold)
        assert pred["outcome_index"] == int(p0 >= threshold)


async def test_a_feature_given_twice_is_400_not_its_last_value(client: httpx.AsyncClient) -> None:
    fields = ", ".join(f'"{f[0]}": {v}' for f, v in zip(PIMA_FEATURES, PIMA_ROW, strict=True))
    body = f'{{"instances": [{{{fields}, "glucose": 85}}]}}'  # a valid record, glucose twice
    r = await client.post(
        "/models/pima/predict", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400, r.text
    assert "the key 'glucose' is given twice" in r.json()["error"]


async def test_predict_png_body_and_multipart(client: httpx.AsyncClient) -> None:
    png = digit_png()
    r = await client.post(
        "/models/mnist/predict?top_k=2&include_input=true",
        content=png,
        headers={"content-type": "image/png"},
    )
    assert r.status_code == 200, r.text
    pred = r.json()["predictions"][0]
    assert len(pred["top_k"]) == 2
    seen = np.array(pred["input"])
    assert seen.shape == (28, 28) and seen.max() > 0.5
    bar = np.zeros((28, 28), np.float32)
    bar[12:16, 4:24] = 1.0  # a horizontal stroke
    files = [
        ("a", ("one.png", png, "image/png")),
        ("b", ("two.png", png_bytes(bar), "image/png")),
    ]
    r = await client.post("/models/mnist/predict", files=files)
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert len(preds) == 2
    assert preds[0]["probabilities"] == pred["probabilities"]


async def test_a_multipart_picture_without_a_filename_is_explained(
    client: httpx.AsyncClient,
) -> None:
    boundary = "b0undary"
    body = (
        (  # what curl -F 'image=<digit.png' sends: a field, not a file
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + digit_png()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    r = await client.post(
        "/models/mnist/predict",
        content=body,
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.status_code == 422
    assert "a part without a filename is a text field" in r.json()["error"]


async def test_text_fields_beside_files_and_a_form_encoded_picture_are_explained(
    client: httpx.AsyncClient,
) -> None:
    files = [("image", ("digit.png", digit_png(), "image/png"))]
    r = await client.post("/models/mnist/predict", files=files, data={"top_k": "2"})
    assert r.status_code == 422  # as an unknown JSON field: never silently ignored
    assert "form field 'top_k' is not a file" in r.json()["error"]
    assert "?top_k=2" in r.json()["error"]
    r = await client.post(  # curl --data-binary @digit.png without a content type
        "/models/mnist/predict",
        content=digit_png(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 415 and "-H 'Content-Type: image/png'" in r.json()["error"]
    assert "-F 'file=@digit.png'" in r.json()["error"]
    r = await client.post(  # explain takes no multipart body: it is not suggested there
        "/models/mnist/explain",
        content=digit_png(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 415 and "-H 'Content-Type: image/png'" in r.json()["error"]
    assert "-F" not in r.json()["error"]


@pytest.mark.parametrize("path", ["/models/pima/predict", "/models/pima/explain"])
async def test_json_sent_by_curl_d_is_read_as_json(client: httpx.AsyncClient, path: str) -> None:
    """curl -d '{...}' sends the form type: a body that is a JSON object is read as JSON (as
    TF Serving does), any other form body is refused with the way to send a file."""
    body = b' {"instances": [[6, 148, 72, 35, 0, 33.6, 0.627, 50]]}'
    as_json = await client.post(path, content=body, headers={"content-type": "application/json"})
    form = {"content-type": "application/x-www-form-urlencoded"}
    as_form = await client.post(path, content=body, headers=form)
    assert as_json.status_code == as_form.status_code == 200
    assert as_form.json() == as_json.json()
    refused = await client.post(path, content=b"instances=1", headers=form)
    assert refused.status_code == 415
    error = refused.json()["error"]
    # pima takes JSON alone: neither an image type nor a file upload is suggested
    assert "model pima takes JSON records" in error and "image/png" not in error
    assert "-H 'Content-Type: application/json'" in error and "-F" not in error


# --- errors ---------------------------------------------------------------------------------
IMG = [[0.0] * 28] * 28
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def raw(body: bytes, content_type: str = "application/json") -> dict[str, Any]:
    return {"content": body, "headers": {"content-type": content_type}}


def js(instances: Any, **fields: Any) -> dict[str, Any]:
    return {"json": {"instances": instances, **fields}}


ERROR_CASES = [
    # (method path, kwargs, status, substring)
    ("/models/nope/predict", {"json": {"instances": [IMG]}}, 404, "not found"),
    ("/models/..%2F..%2Fetc/predict", {"json": {"instances": [IMG]}}, 404, "no route"),
    ("/models/mnist/versions/9/predict", {"json": {"instances": [IMG]}}, 404, "no version 9"),
    ("/models/mnist/versions/3/predict", {"json": {"instances": [IMG]}}, 404, "is unfinished"),
    ("/models/mnist/versions/canary/predict", {"json": {"instances": [IMG]}}, 404, "canary"),
    ("/models/mnist/predict", raw(b'{"instances": ['), 400, "malformed JSON"),
    # a multipart body that does not parse is malformed as such JSON is
    ("/models/mnist/predict", raw(PNG_MAGIC, "multipart/form-data"), 400,
     "malformed multipart body: Missing boundary"),
    ("/models/mnist/predict", raw(b"--x\r\nno headers\r\n--x--", "multipart/form-data; boundary=x"),
     400, "malformed multipart body"),
    # cut short before the closing delimiter: the parser drops the part, but the body is at fault
    ("/models/mnist/predict", raw(b'--x\r\nContent-Disposition: form-data; name="f"; '
     b'filename="d.png"\r\nContent-Type: image/png\r\n\r\n' + PNG_MAGIC,
     'multipart/form-data; boundary="x"'), 400,
     "malformed multipart body: it ends before its closing delimiter --x-- (cut short?)"),
    ("/models/mnist/predict", raw(b"--x--\r\n", "multipart/form-data; boundary=x"), 422,
     "holds no image files"),
    ("/models/mnist/predict", raw(b'{"instances": [[NaN]]}'), 422, "NaN"),
    ("/models/mnist/predict", {"json": {"instances": [[0.0] * 27] * 28}}, 422, "instances"),
    ("/models/mnist/predict", {"json": {"instances": []}}, 422, "empty"),
    ("/models/mnist/predict", {"json": {"instance": [IMG]}}, 422, "it has 'instance'"),
    ("/models/pima/predict", {"json": {"inputs": [{"name": "x", "shape": [1, 8], "datatype":
     "FP32", "data": [1] * 8}]}}, 422, "it has 'inputs' (an Open Inference Protocol body goes "
     "to /v2/models/<model>/infer, a TF Serving one to /v1/models/<model>:predict)"),
    ("/models/mnist/predict", {"json": {"instances": [IMG] * 17}}, 422, "limit of 16"),
    ("/models/mnist/predict", js([[[2.0] * 28] * 28], scale="unit"), 422, "above 1"),
    ("/models/mnist/predict", {"json": {"images": [IMG]}}, 422, "instances"),
    ("/models/mnist/predict", js([IMG], extra=1), 422, "unknown field 'extra'"),
    ("/models/mnist/predict", {"json": {"instances": [IMG], "top_k": 11}}, 422, "top_k"),
    ("/models/mnist/predict", {"json": {"instances": [IMG], "top_k": 2.5}}, 422,
     "top_k must be a whole number from 1 to 10, got 2.5"),
    ("/models/mnist/predict", {"json": {"instances": [IMG], "threshold": 0.3}}, 422, "threshold"),
    ("/models/mnist/predict", js([IMG], include_input="yes"), 422, "include_input"),
    ("/models/mnist/predict?include_input=on", js([IMG]), 422,
     "query parameter include_input must be a boolean: true or false, 1 or 0, yes or no"),
    ("/models/mnist/predict?top_k=zero", {"json": {"instances": [IMG]}}, 422, "top_k"),
    ("/models/mnist/predict?top_k=\u00b2", {"json": {"instances": [IMG]}}, 422, "top_k"),
    ("/models/mnist/predict?top_k=" + "9" * 4301, js([IMG]), 422, "18 digits at most"),
    ("/models/mnist/predict?topk=2", js([IMG]), 422, "query parameter 'topk'; allowed: abstain,"),
    ("/models/mnist/predict?top_k=1&top_k=5", js([IMG]), 422, "top_k is given more than once"),
    ("/models/mnist/predict", raw(b"x" * 200_001), 413,
     "is 195.3 KiB (200,001 bytes); this server accepts at most"),
    ("/models/mnist/predict", raw(b"hello", "text/plain"), 415, "unsupported content type"),
    ("/models/pima/predict", raw(b"pregnant,glucose\n6,148", "text/csv"), 415, "'text/csv': "
     "model pima takes JSON records (application/json); `predict pima --csv FILE` and the "
     "Python client read a CSV file for you"),
    ("/models/pima/explain", raw(b"6,148", "text/csv"), 415, "takes JSON records"),
    ("/models/mnist/predict", raw(b"GIF89a....", "image/gif"), 415, "image"),
    ("/models/mnist/predict", raw(PNG_MAGIC + b"broken", "image/png"), 422, "decode"),
    ("/models/mnist/predict", raw(b"", "image/png"), 400, "body is empty: expected an image"),
    ("/models/mnist/predict?digits=many", raw(b"", "image/jpeg"), 400, "body is empty"),
    ("/models/mnist/explain", raw(b"", "application/octet-stream"), 400, "body is empty"),
    ("/models/pima/predict", raw(PNG_MAGIC, "image/png"), 415, "records"),
    ("/models/pima/predict", {"json": {"instances": [{"glucose": 1}]}}, 422, "pregnant"),
    ("/models/pima/predict", {"json": {"instances": [[1, 2, 3]]}}, 422, "8"),
    ("/models/pima/predict", js([PIMA_ROW], threshold=1.5), 422, "threshold"),
    ("/models/pima/predict", {"json": {"instances": [PIMA_ROW], "top_k": 1}}, 422, "top_k"),
    ("/models/broken/predict", {"json": {"instances": [IMG]}}, 503, "checksum mismatch"),
    ("/models/selftest/versions/1/predict", js([IMG]), 503, "self-test failed"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "kwargs", "status", "message"), ERROR_CASES)
async def test_error_table(
    client: httpx.AsyncClient, path: str, kwargs: dict, status: int, message: str
) -> None:
    r = await client.post(path, **kwargs)
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert message.lower() in body["error"].lower(), body["error"]


async def test_every_per_file_error_names_its_file(client: httpx.AsyncClient) -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)  # claims 10^10 pixels
    huge = PNG_MAGIC + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    png = digit_png()
    for second, status in (
        (("huge.png", huge, "image/png"), 413),
        (("anim.gif", b"GIF89a" + bytes(20), "image/gif"), 415),
        (("text.png", b"not an image at all", "image/png"), 422),
    ):
        r = await client.post(
            "/models/mnist/predict", files=[("a", ("a.png", png, "image/png")), ("b", second)]
        )
        assert r.status_code == status, r.text
        assert r.json()["error"].startswith(f"file 1 ({second[0]!r}): "), r.text


async def test_a_file_part_is_what_its_bytes_are_whatever_type_the_client_named(
    client: httpx.AsyncClient,
) -> None:
    """curl and browsers name a part's type from its file name: a PNG called ``digit.gif`` or
    ``digit.txt`` is still a PNG. A raw body's Content-Type is the client's own word: checked."""
    png = digit_png()
    want = (await client.post("/models/mnist/predict", files={"f": ("a.png", png)})).json()
    for name, declared in (("digit.gif", "image/gif"), ("digit.txt", "text/plain")):
        r = await client.post("/models/mnist/predict", files={"file": (name, png, declared)})
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == want["predictions"]
    gif = b"GIF89a" + bytes(20)
    for declared in ("image/png", "image/gif"):  # the bytes' own format is named either way
        r = await client.post("/models/mnist/predict", files={"file": ("a", gif, declared)})
        assert r.status_code == 415 and "GIF images are not supported" in r.json()["error"]
    r = await client.post(
        "/models/mnist/predict", content=png, headers={"content-type": "image/gif"}
    )
    assert r.status_code == 415 and "unsupported image type 'image/gif'" in r.text
    r = await client.post("/models/pima/predict", files={"file": ("patients.csv", b"1,2\n")})
    assert r.status_code == 415
    assert r.json()["error"] == (
        "model pima takes JSON records, not files: send them as a JSON body "
        "(Content-Type: application/json)"
    )


async def test_too_many_upload_files(client: httpx.AsyncClient) -> None:
    png = digit_png()
    files = [(f"f{i}", (f"{i}.png", png, "image/png")) for i in range(4)]  # limit is 3
    r = await client.post("/models/mnist/predict", files=files)
    assert r.status_code == 413
    assert "too many files" in r.json()["error"]


async def test_declared_content_length_over_limit_is_refused_before_reading(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(
        "/models/mnist/predict",
        content=b"{}",
        headers={"content-type": "application/json", "content-length": "999999999"},
    )
    assert r.status_code == 413


async def test_unknown_route_and_method_use_the_error_shape(client: httpx.AsyncClient) -> None:
    r = await client.get("/no/such/route")
    assert r.status_code == 404
    assert r.json() == {"error": "no route GET /no/such/route: the routes are listed at /docs"}
    r = await client.delete("/models")
    assert r.status_code == 405
    assert r.json() == {"error": "method DELETE is not allowed on /models: use GET, HEAD"}
    assert r.headers["allow"] == "GET, HEAD"  # a HEAD is answered as its GET: Allow says so
    assert (await client.head("/models")).status_code == 200


@pytest.mark.parametrize(
    ("path", "hint"),
    [
        ("/v1/models/mnist/predict", "methods follow a colon: try POST /v1/models/mnist:predict"),
        ("/v1/models/mnist/labels/stable/classify", "POST /v1/models/mnist/labels/stable:classify"),
        ("/v1/models/mnist/predict/", "no route ends with '/'; TF Serving's methods follow a "
         "colon: try POST /v1/models/mnist:predict"),
        ("/models/mnist/infer", "routes start with /v2: try POST /v2/models/mnist/infer"),
        ("/models/mnist/versions/2/infer", "try POST /v2/models/mnist/versions/2/infer"),
        ("/models/mnist/ready", "routes start with /v2: try GET /v2/models/mnist/ready"),
        ("/ui/", "the routes are listed at /docs"),  # /ui is no route either: no false lead
        ("/x" * 3000 + "/", "the routes are listed at /docs"),
    ],
)  # fmt: skip
async def test_a_route_of_another_dialect_spelt_wrong_says_how_to_spell_it(
    client: httpx.AsyncClient, path: str, hint: str
) -> None:
    r = await client.post(path, json={"instances": [IMG]})
    assert r.status_code == 404 and r.json()["error"].startswith(f"no route POST {path[:200]}")
    assert r.json()["error"].endswith(hint)
    assert len(r.content) < 600  # a long path is shown capped, once


@pytest.mark.parametrize(
    ("method", "path", "hint"),
    [
        ("POST", "/models/mnist/predic", "has a part 'predic': try POST /models/mnist/predict"),
        ("POST", "/modles/mnist/predict", "part 'modles': try POST /models/mnist/predict"),
        ("POST", "/models/mnist/versions/1/predcit", "try POST /models/mnist/versions/1/predict"),
        ("POST", "/v2/models/mnist/predict", "'predict' with the rest of this path: try POST /v2/"),
        ("POST", "/v2/models/mnist/infr", "try POST /v2/models/mnist/infer"),
        # a word some route has, misplaced: not said to be in no route
        ("POST", "/v1/models/mnist/infer", "no route has 'v1' with the rest of this path: try"),
        ("GET", "/v2/modles/mnist", "part 'modles': try GET /v2/models/mnist"),
        ("POST", "/mnist/predict", "routes start with /models: try POST /models/mnist/predict"),
        ("POST", "/v1/mnist:predict", "start with /models: try POST /v1/models/mnist:predict"),
        ("POST", "/v2/mnist/infer", "start with /models: try POST /v2/models/mnist/infer"),
        ("POST", "/predict", "a prediction names its model: try POST /models/<name>/predict ("),
        ("GET", "/predict", "a prediction names its model: try POST /models/<name>/predict ("),
        ("POST", "/v1/predict", "names its model: try POST /v1/models/<name>:predict ("),
        ("POST", "/v2/infer", "names its model: try POST /v2/models/<name>/infer ("),
        # no near route that takes the method: no false lead
        ("DELETE", "/models/mnist/predic", "the routes are listed at /docs"),
        ("POST", "/models/mnist/predict/x", "the routes are listed at /docs"),
        ("POST", "/models/mnist/forecast", "the routes are listed at /docs"),
        # /models goes before a model's name, not before any word: no model is named "health"
        ("GET", "/v2/health", "the routes are listed at /docs"),
        ("GET", "/v2/repository", "the routes are listed at /docs"),
        ("GET", "/v1/healthz", "the routes are listed at /docs"),
        ("GET", "/v2/mnist", "start with /models: try GET /v2/models/mnist"),
        ("POST", "/models/mnist/" + "p" * 3000, "the routes are listed at /docs"),
    ],
)  # fmt: skip
async def test_a_path_one_slip_from_a_route_names_the_route(
    client: httpx.AsyncClient, method: str, path: str, hint: str
) -> None:
    r = await client.request(method, path, json={"instances": [IMG]})
    assert r.status_code == 404, r.text
    error = r.json()["error"]
    assert error.startswith(f"no route {method} {path[:200]}")
    assert hint in error
    if "(" in hint:  # the models to name
        assert "mnist" in error.split("(")[-1]


@pytest.mark.parametrize(
    ("path", "hint"),
    [
        ("/models/pima:predict", "try POST /v1/models/pima:predict"),
        ("/models/mnist/versions/1:classify", "try POST /v1/models/mnist/versions/1:classify"),
        ("/models/mnist:explain", "try POST /v1/models/mnist:explain"),
    ],
)
async def test_a_tf_serving_path_without_v1_says_so(
    client: httpx.AsyncClient, path: str, hint: str
) -> None:
    """Such a path is a model's status route with a strange name: a POST there is a 405, and
    its answer says how to reach TF Serving's method rather than only "use GET"."""
    r = await client.post(path, json={"instances": [IMG]})
    assert r.status_code == 405
    assert r.json()["error"] == (
        f"method POST is not allowed on {path}, which answers {r.headers['allow']} only: "
        f"TF Serving's routes start with /v1: {hint}"
    )
    r = await client.put(path, json={})  # TF Serving's methods are POSTs: no hint
    assert r.status_code == 405 and "/v1" not in r.json()["error"]


async def test_a_model_name_that_is_no_name_says_what_names_are(client: httpx.AsyncClient) -> None:
    models = ", ".join(m["name"] for m in (await client.get("/models")).json()["models"])
    for path in ("/models/pima:predict", "/models/Pima", "/v2/models/pima:x"):
        r = await client.get(path)
        assert r.status_code == 404
        assert r.json() == {
            "error": f"model not found: names are 1-64 of a-z, 0-9 and _; the models are {models}"
        }, path


@pytest.mark.parametrize(
    ("method", "path", "named"),
    [
        ("POST", "/models/fashion-mnist/predict", "model not found: names are"),
        ("POST", "/models/MNIST/predict", "model not found: names are"),
        ("POST", "/models/mnsit/predict", "model 'mnsit' not found"),
        ("GET", "/models/mnsit", "model 'mnsit' not found"),
        ("POST", "/v1/models/mnsit:predict", "model 'mnsit' not found"),
        ("POST", "/v2/models/fashion-mnist/infer", "model not found: names are"),
        ("GET", "/v2/models/mnsit", "model 'mnsit' not found"),
    ],
)
async def test_an_unknown_model_lists_the_models_there_are(
    client: httpx.AsyncClient, method: str, path: str, named: str
) -> None:
    """A near miss of a model's name (a dash, capitals, a typo) is plain to see beside them."""
    models = [m["name"] for m in (await client.get("/models")).json()["models"]]
    r = await client.request(method, path, json={"instances": [IMG]})
    assert r.status_code == 404
    error = r.json()["error"]
    assert error.startswith(named) and error.endswith(f"; the models are {', '.join(models)}")


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith tab"})
    assert r.headers["x-request-id"] != "bad id\twith tab" and len(r.headers["x-request-id"]) == 32


async def test_bug_is_500_internal_error_with_traceback_logged(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    application = create_app(settings)

    @application.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret detail")

    transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        r = await http.get("/boom")
    assert r.status_code == 500
    assert r.json() == {"error": "internal error"}
    assert "secret detail" in caplog.text


async def test_openapi_documents_bodies_and_examples(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    op = spec["paths"]["/models/{name}/predict"]["post"]
    content = op["requestBody"]["content"]
    assert {"application/json", "image/png", "multipart/form-data"} <= set(content)
    assert {"image", "pima"} <= set(content["application/json"]["examples"])
    assert "200" in op["responses"] and "422" in op["responses"]
    for path in (
        "/healthz",
        "/readyz",
        "/models",
        "/models/{name}",
        "/models/{name}/versions/{version}",
    ):
        assert path in spec["paths"]


async def test_openapi_documents_pima_features(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    record = spec["components"]["schemas"]["PimaRecord"]
    assert record["required"][:2] == ["pregnant", "glucose"]
    glucose = record["properties"]["glucose"]
    assert (glucose["minimum"], glucose["maximum"]) == (0, 300)
    assert "mg/dL" in glucose["description"]
    body = spec["paths"]["/models/{name}/predict"]["post"]["requestBody"]["content"]
    instances = body["application/json"]["schema"]["properties"]["instances"]
    assert {"$ref": "#/components/schemas/PimaRecord"} in instances["anyOf"]


async def test_deadline_header(app: FastAPI, client: httpx.AsyncClient) -> None:
    mv = app.state.registry.resolve("mnist", 1)
    fast = mv.batcher._predict

    def slow(x: np.ndarray) -> np.ndarray:
        time.sleep(0.3)
        return fast(x)

    mv.batcher._predict = slow
    try:
        r = await client.post(
            "/models/mnist/versions/1/predict",
            json={"instances": [IMG]},
            headers={"X-Request-Timeout": "0.05"},
        )
    finally:
        await asyncio.sleep(0.4)
        mv.batcher._predict = fast
    assert r.status_code == 504 and "did not finish" in r.json()["error"]
    for bad in ("0", "-1", "soon", "1e9"):
        r = await client.post(
            "/models/mnist/predict", json={"instances": [IMG]}, headers={"X-Request-Timeout": bad}
        )
        assert r.status_code == 422 and "X-Request-Timeout" in r.json()["error"]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
async def test_a_blank_page_is_a_422_not_a_digit(client: httpx.AsyncClient, fmt: str) -> None:
    rng = np.random.default_rng(4)
    ys = np.linspace(0, 1, 240)[:, None]
    page = np.clip(230 - 40 * ys + rng.normal(0, 4, (240, 320)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(page).save(buffer, fmt)
    r = await client.post(
        "/models/mnist/predict",
        content=buffer.getvalue(),
        headers={"content-type": f"image/{fmt.lower()}"},
    )
    assert r.status_code == 422
    assert r.json()["error"].startswith("no digit found in the image")


async def test_an_error_quoting_a_huge_input_is_cut_short(client: httpx.AsyncClient) -> None:
    record = {"field_" + "x" * 5_000: 1}  # an unknown name, quoted in the error
    r = await client.post("/models/pima/predict", json={"instances": [record]})
    assert r.status_code == 422
    message = r.json()["error"]
    assert len(message) < 1100 and message.endswith("more characters)")
    many = {f"field_{i:05d}": 1 for i in range(3_000)}  # only the first few are named
    r = await client.post("/models/pima/predict", json={"instances": [many]})
    assert r.status_code == 422
    assert r.json()["error"].endswith(
        "field_00009 and 2990 more (expected fields: "
        "pregnant, glucose, pressure, triceps, insulin, mass, pedigree, age)"
    )
