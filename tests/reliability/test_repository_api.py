"""The lifecycle endpoints (V2 repository extension): index/rescan, load and unload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import reliability as h
from tests.helpers.apps import serve

pytestmark = pytest.mark.anyio

IMAGE = {"instances": [[[0.0] * 28] * 28]}


def entries(body: list[dict[str, str]], name: str) -> dict[str, tuple[str, str]]:
    return {e["version"]: (e["state"], e["reason"]) for e in body if e["name"] == name}


async def test_index_lists_every_version_with_its_state(tiny_repo: Path) -> None:
    async with serve(tiny_repo, version_policy="latest") as (_, client):
        response = await client.post("/v2/repository/index")
        assert response.status_code == 200, response.text
        body = response.json()
        mnist = entries(body, "mnist")
        assert mnist["2"] == ("READY", "")
        assert mnist["1"][0] == "UNAVAILABLE" and "policy" in mnist["1"][1]
        assert mnist["3"][0] == "UNAVAILABLE" and "unfinished" in mnist["3"][1]
        assert entries(body, "broken")["1"] == ("UNAVAILABLE", "checksum mismatch for model.tflite")
        ready = (await client.post("/v2/repository/index", json={"ready": True})).json()
        assert ready and all(e["state"] == "READY" for e in ready)
        bad = await client.post("/v2/repository/index", json={"ready": "yes"})
        assert bad.status_code == 422
        assert (await client.post("/v2/repository/index", content=b"[1]")).status_code == 422
        assert (await client.post("/v2/repository/index", content=b"{")).status_code == 400


async def test_index_lists_only_the_models_the_policy_serves(tiny_repo: Path) -> None:
    async with serve(tiny_repo, version_policy="specific", versions={"mnist": [1]}) as (_, client):
        body = (await client.post("/v2/repository/index")).json()
        assert {e["name"] for e in body} == {"mnist"}  # specific lists mnist alone
        assert entries(body, "mnist")["1"] == ("READY", "")


async def test_index_rescans(tiny_repo: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    h.publish(tiny_repo / "mnist" / "1", models, "mnist", 1)
    async with serve(models, version_policy="latest") as (app, client):
        h.publish(tiny_repo / "mnist" / "2", models, "mnist", 2)
        quiet = (await client.post("/v2/repository/index", json={"rescan": False})).json()
        assert "2" not in {e["version"] for e in quiet if e["state"] == "READY"}
        body = (await client.post("/v2/repository/index")).json()
        assert entries(body, "mnist")["2"] == ("READY", "")
        assert app.state.registry.default_version("mnist") == 2


async def test_load_and_unload_versions(tiny_repo: Path) -> None:
    async with serve(tiny_repo, version_policy="latest") as (app, client):
        registry = app.state.registry
        response = await client.post(
            "/v2/repository/models/mnist/load", json={"parameters": {"version": 1}}
        )
        assert response.status_code == 200, response.text
        states = {v["version"]: v["state"] for v in response.json()["versions"]}
        assert states == {1: "available", 2: "available"}
        ok = await client.post("/models/mnist/versions/1/predict", json=IMAGE)
        assert ok.status_code == 200
        response = await client.post(
            "/v2/repository/models/mnist/unload", json={"parameters": {"version": 2}}
        )
        assert response.status_code == 200
        assert registry.default_version("mnist") == 1
        # unloaded versions stay unloaded across rescans until loaded again
        await client.post("/v2/repository/index")
        assert registry.default_version("mnist") == 1
        response = await client.post("/v2/repository/models/mnist/unload")
        assert response.status_code == 200 and response.json()["versions"] == []
        for path in ("/models/mnist/predict", "/v1/models/mnist:predict", "/v2/models/mnist/infer"):
            refused = await client.post(path, json=IMAGE)  # taken out on purpose: not a 503
            assert refused.status_code == 404 and "unloaded by an admin" in refused.json()["error"]
        response = await client.post("/v2/repository/models/mnist/load")
        assert response.status_code == 200, response.text
        assert registry.default_version("mnist") == 2
        assert (await client.post("/models/mnist/predict", json=IMAGE)).status_code == 200


async def test_load_errors(tiny_repo: Path) -> None:
    async with serve(tiny_repo, version_policy="latest") as (_, client):
        failed = await client.post(
            "/v2/repository/models/broken/load", json={"parameters": {"version": 1}}
        )
        assert failed.status_code == 400
        assert "checksum mismatch" in failed.json()["error"]
        cases: list[tuple[str, Any, int]] = [
            ("/v2/repository/models/nope/load", None, 404),
            ("/v2/repository/models/mnist/load", {"parameters": {"version": 9}}, 404),
            ("/v2/repository/models/mnist/load", {"parameters": {"version": 3}}, 404),
            ("/v2/repository/models/mnist/load", {"parameters": {"version": "x"}}, 422),
            ("/v2/repository/models/mnist/load", {"parameters": {"version": True}}, 422),
            ("/v2/repository/models/mnist/load", {"parameters": []}, 422),
            ("/v2/repository/models/mnist/unload", {"parameters": {"version": 1}}, 404),
            ("/v2/repository/models/Mnist/unload", None, 404),
        ]
        for path, body, status in cases:
            response = await client.post(path, json=body)
            assert response.status_code == status, (path, body, response.text)
            assert response.json()["error"]


@pytest.mark.parametrize(
    ("path", "parameters", "message"),
    [
        # a misspelt version loaded the whole model back, with a 200
        ("load", {"versoin": 1}, "unknown parameter 'versoin'; this takes version"),
        ("load", {"versions": 1}, "unknown parameter 'versions'; this takes version"),
        ("unload", {"versoin": 1}, "unknown parameter 'versoin'; this takes unload_dependents, "),
        # tritonclient's load_model(config=..., files=...): they were ignored, as if applied
        ("load", {"config": "{}"}, "parameters.config is not supported: a version is served as"),
        ("load", {"file:1/model.tflite": "AAAA"}, "parameters.file:1/model.tflite is not"),
        (
            "unload",
            {"unload_dependents": "no"},
            "parameters.unload_dependents must be true or false",
        ),
    ],
)
async def test_a_parameter_load_or_unload_does_not_read_is_refused(
    tiny_repo: Path, path: str, parameters: dict[str, Any], message: str
) -> None:
    async with serve(tiny_repo, version_policy="latest") as (app, client):
        before = app.state.registry.model_status("mnist")
        r = await client.post(
            f"/v2/repository/models/mnist/{path}", json={"parameters": parameters}
        )
        assert r.status_code == 422, r.text
        assert r.json()["error"].startswith(message)
        assert app.state.registry.model_status("mnist") == before  # nothing loaded or unloaded


async def test_tritonclients_unload_is_taken(tiny_repo: Path) -> None:
    """tritonclient's unload_model always sends unload_dependents (false by default)."""
    async with serve(tiny_repo, version_policy="latest") as (app, client):
        r = await client.post(
            "/v2/repository/models/mnist/unload", json={"parameters": {"unload_dependents": False}}
        )
        assert r.status_code == 200, r.text
        assert app.state.registry.default_version("mnist") is None
