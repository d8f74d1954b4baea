"""Prediction sets and abstention in the three dialects, through the in-process app, on a tiny
repository whose versions ship conformal scores (and, for mnist, an OOD model)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from service.codecs.v2_response import decode_infer_response
from tests.helpers.apps import serve
from tests.helpers.models import PIMA_ROW, TRUST_SCORES, cached_tiny_repository

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def trust_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_tiny_repository(tmp_path_factory.mktemp("trust") / "models", "trust")


@pytest.fixture(scope="module")
async def client(trust_repo: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(trust_repo, max_instances=64) as (_, http):
        yield http


def _images(n: int = 6) -> list[list[list[float]]]:
    rng = np.random.default_rng(5)
    x = rng.random((n, 28, 28), dtype=np.float32)
    x[n // 2 :] *= 0.5  # like the OOD model's training images: some are flagged, some not
    return x.round(3).tolist()


def _threshold(alpha: float) -> float:
    n = len(TRUST_SCORES)
    return float(TRUST_SCORES[int(np.ceil((n + 1) * (1 - alpha))) - 1])


def _expected_set(probabilities: dict[str, float], alpha: float) -> list[str]:
    cut = _threshold(alpha)
    inside = [label for label, p in probabilities.items() if 1.0 - p <= cut]
    return sorted(inside, key=lambda label: -probabilities[label])


async def test_own_api_adds_the_set_and_abstains_on_request(client: httpx.AsyncClient) -> None:
    r = await client.post("/models/mnist/predict", json={"instances": _images()})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["alpha"] == 0.1  # the metadata's default
    for item in body["predictions"]:
        assert item["prediction_set"] == _expected_set(item["probabilities"], 0.1)
        assert "abstained" not in item

    r = await client.post(
        "/models/mnist/predict?alpha=0.5&abstain=true", json={"instances": _images()}
    )
    body = r.json()
    assert body["alpha"] == 0.5
    reasons = set()
    for item in body["predictions"]:
        expected = _expected_set(item["probabilities"], 0.5)
        assert item["prediction_set"] == expected
        if item["out_of_distribution"]:
            reason = "out_of_distribution"
        else:
            reason = {0: "no_label", 1: None}.get(len(expected), "several_labels")
        assert item["abstain_reason"] == reason
        assert item["abstained"] is (reason is not None)
        reasons.add(reason)
    assert "out_of_distribution" in reasons and len(reasons) >= 2

    # a JSON field sets it as the query string does; the two must not disagree
    r = await client.post("/models/mnist/predict", json={"instances": _images(1), "alpha": 0.2})
    assert r.json()["alpha"] == 0.2
    r = await client.post(
        "/models/mnist/predict?alpha=0.5", json={"instances": _images(1), "alpha": 0.2}
    )
    assert r.status_code == 422


async def test_own_api_pima_carries_a_set_of_outcomes(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/models/pima/predict", json={"instances": [PIMA_ROW], "alpha": 0.5, "abstain": True}
    )
    assert r.status_code == 200, r.text
    (item,) = r.json()["predictions"]
    p = item["probability"]
    expected = _expected_set({"no diabetes": 1 - p, "diabetes": p}, 0.5)
    assert item["prediction_set"] == expected
    assert item["abstained"] is (len(expected) != 1)


@pytest.mark.parametrize(
    ("query", "body", "message"),
    [
        ("?alpha=0", {}, "alpha"),
        ("?alpha=x", {}, "alpha"),
        ("", {"alpha": 1.5}, "alpha"),
        ("", {"alpha": True}, "alpha"),
        ("", {"alpha": "0.1"}, "alpha"),  # a number in a string is a query string's way only
        ("?abstain=maybe", {}, "abstain"),
        ("", {"abstain": "yes"}, "abstain"),
    ],
)
async def test_bad_alpha_or_abstain_is_422(
    client: httpx.AsyncClient, query: str, body: dict[str, object], message: str
) -> None:
    r = await client.post(f"/models/mnist/predict{query}", json={"instances": _images(1), **body})
    assert r.status_code == 422 and message in r.json()["error"]


async def test_versions_without_conformal_scores_refuse_alpha_and_abstain(
    client: httpx.AsyncClient,
) -> None:
    plain = await client.post("/models/fashion_mnist/predict", json={"instances": _images(1)})
    assert plain.status_code == 200
    assert "prediction_set" not in plain.json()["predictions"][0] and "alpha" not in plain.json()
    for extra in ({"alpha": 0.1}, {"abstain": True}):
        r = await client.post(
            "/models/fashion_mnist/predict", json={"instances": _images(1), **extra}
        )
        assert r.status_code == 422 and "prediction sets" in r.json()["error"]
    r = await client.post(
        "/v1/models/fashion_mnist:predict", json={"instances": _images(1), "abstain": True}
    )
    assert r.status_code == 422


async def test_tfserving_sets_by_output_filter_or_by_alpha(client: httpx.AsyncClient) -> None:
    own = await client.post("/models/mnist/predict?alpha=0.5", json={"instances": _images()})
    sets = [item["prediction_set"] for item in own.json()["predictions"]]

    r = await client.post(
        "/v1/models/mnist:predict",
        json={"instances": _images(), "alpha": 0.5, "output_filter": ["prediction_set"]},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": sets}

    r = await client.post(
        "/v1/models/mnist:predict", json={"inputs": _images(), "alpha": 0.5, "abstain": True}
    )
    outputs = r.json()["outputs"]
    assert set(outputs) == {"probabilities", "prediction_set", "abstained", "abstain_reason"}
    assert outputs["prediction_set"] == sets
    ood = await client.post("/models/mnist/predict", json={"instances": _images()})
    flags = [item["out_of_distribution"] for item in ood.json()["predictions"]]
    for flag, reason, abstained in zip(
        flags, outputs["abstain_reason"], outputs["abstained"], strict=True
    ):
        assert abstained is (reason != "")
        if flag:
            assert reason == "out_of_distribution"

    rows = await client.post(
        "/v1/models/pima:predict", json={"instances": [PIMA_ROW], "abstain": True}
    )
    (row,) = rows.json()["predictions"]
    assert set(row) == {"probabilities", "prediction_set", "abstained", "abstain_reason"}
    # p is near 0.5, and at alpha 0.1 a label needs 0.1: both outcomes, the likelier first
    assert sorted(row["prediction_set"]) == ["diabetes", "no diabetes"]
    assert row["abstained"] is True and row["abstain_reason"] == "several_labels"

    bad = await client.post("/v1/models/mnist:predict", json={"instances": _images(1), "alpha": 2})
    assert bad.status_code == 422
    meta = (await client.get("/v1/models/mnist/metadata")).json()
    outs = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]["outputs"]
    assert outs["prediction_set"]["dtype"] == "DT_STRING"
    assert outs["abstained"]["dtype"] == "DT_BOOL" and outs["ood_score"]["dtype"] == "DT_FLOAT"


async def test_v2_outputs_and_parameters(client: httpx.AsyncClient) -> None:
    own = await client.post(
        "/models/mnist/predict?alpha=0.5&abstain=true", json={"instances": _images()}
    )
    items = own.json()["predictions"]
    tensor = {
        "name": "pixels",
        "shape": [6, 28, 28],
        "datatype": "FP32",
        "data": np.asarray(_images(), np.float32).ravel().tolist(),
    }
    r = await client.post(
        "/v2/models/mnist/infer",
        json={"inputs": [tensor], "parameters": {"alpha": 0.5, "abstain": True}},
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["parameters"] == {"alpha": 0.5}
    names = [o["name"] for o in doc["outputs"]]
    assert names == ["probabilities", "prediction_set", "abstained", "abstain_reason"]
    arrays = decode_infer_response(r.content)
    assert [json.loads(s) for s in arrays["prediction_set"]] == [i["prediction_set"] for i in items]
    assert arrays["abstained"].tolist() == [i["abstained"] for i in items]
    assert arrays["abstain_reason"].tolist() == [i["abstain_reason"] or "" for i in items]
    datatypes = {o["name"]: o["datatype"] for o in doc["outputs"]}
    assert datatypes["prediction_set"] == "BYTES" and datatypes["abstained"] == "BOOL"

    # Requested by name, as binary tensors, at the default alpha
    r = await client.post(
        "/v2/models/mnist/infer",
        json={
            "inputs": [tensor],
            "outputs": [{"name": "prediction_set", "parameters": {"binary_data": True}}],
        },
    )
    assert r.status_code == 200, r.text
    arrays = decode_infer_response(r.content, r.headers.get("inference-header-content-length"))
    default = await client.post("/models/mnist/predict", json={"instances": _images()})
    assert [json.loads(s) for s in arrays["prediction_set"]] == [
        i["prediction_set"] for i in default.json()["predictions"]
    ]

    bad = await client.post(
        "/v2/models/mnist/infer", json={"inputs": [tensor], "parameters": {"alpha": -1}}
    )
    assert bad.status_code == 422
    meta = (await client.get("/v2/models/mnist")).json()
    kinds = {o["name"]: o["datatype"] for o in meta["outputs"]}
    assert kinds == {
        "probabilities": "FP32",
        "prediction_set": "BYTES",
        "abstained": "BOOL",
        "abstain_reason": "BYTES",
        "ood_score": "FP32",
    }


async def test_a_version_weighing_doubt_answers_and_flags_by_that_score(
    trust_repo: Path, tmp_path: Path
) -> None:
    """The own API and TF Serving give the doubt-weighed score of a version whose metadata says so;
    the flag (and an abstention's reason) follows its own threshold."""
    import shutil

    from service.serving import ood

    repo = tmp_path / "models"
    shutil.copytree(trust_repo, repo)
    meta_path = repo / "mnist" / "1" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    x = np.asarray(_images(), np.float32)
    density = ood.OodModel.from_metadata(meta, meta_path.parent)
    assert density is not None
    relative = density.input_scores(x) / density.threshold
    cut = float(np.median(relative))  # with doubt at most 0.9 here, some rows fall either side
    meta["ood"]["confidence"] = {"weighed": True, "threshold": cut * 0.5}
    meta_path.write_text(json.dumps(meta))
    async with serve(repo, max_instances=64) as (_, http):
        own = (await http.post("/models/mnist/predict", json={"instances": x.tolist()})).json()
        probs = np.array(
            [[item["probabilities"][str(d)] for d in range(10)] for item in own["predictions"]]
        )
        expected = relative * np.maximum(1.0 - probs.max(axis=1), ood.DOUBT_FLOOR)
        got = np.array([item["ood_score"] for item in own["predictions"]])
        np.testing.assert_allclose(got, expected, rtol=2e-3)
        flags = [item["out_of_distribution"] for item in own["predictions"]]
        assert flags == [bool(s > cut * 0.5) for s in expected] and any(flags) and not all(flags)
        tfs = await http.post(
            "/v1/models/mnist:predict",
            json={"instances": x.tolist(), "output_filter": ["ood_score"]},
        )
        np.testing.assert_allclose(tfs.json()["predictions"], expected, rtol=2e-3)
        abstaining = await http.post(
            "/v1/models/mnist:predict", json={"instances": x.tolist(), "abstain": True}
        )
        reasons = abstaining.json()["predictions"]
        for flag, row in zip(flags, reasons, strict=True):
            if flag:
                assert row["abstain_reason"] == "out_of_distribution"


async def test_alpha_as_a_string_is_refused_in_tf_serving_and_v2_bodies(
    client: httpx.AsyncClient,
) -> None:
    tfs = await client.post(
        "/v1/models/mnist:predict", json={"instances": _images(1), "alpha": "0.1"}
    )
    assert tfs.status_code in (400, 422) and "alpha" in tfs.json()["error"]
    tensor = {
        "name": "pixels",
        "shape": [1, 28, 28],
        "datatype": "FP32",
        "data": np.asarray(_images(1), np.float32).ravel().tolist(),
    }
    v2 = await client.post(
        "/v2/models/mnist/infer", json={"inputs": [tensor], "parameters": {"alpha": "0.1"}}
    )
    assert v2.status_code in (400, 422) and "alpha" in v2.json()["error"]
