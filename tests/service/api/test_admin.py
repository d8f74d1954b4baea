"""The admin endpoints take only what they read: anything else is a 422, never a 200 that acts
on the whole model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.app import create_app
from tests.helpers.apps import serve
from tests.helpers.settings import make_settings

pytestmark = pytest.mark.anyio


async def test_a_version_not_in_parameters_version_is_refused(tiny_repo: Path) -> None:
    cases: list[tuple[str, Any, str]] = [
        # each of these took the whole model out (unload) or back in (load), with a 200
        ("unload?version=1", None, "query parameter 'version' is not taken"),
        ("load?version=1", None, "query parameter 'version' is not taken"),
        ("unload", {"version": 2}, "version is not taken at the top of the body: put it in"),
        ("load", {"version": 1}, "version is not taken at the top of the body: put it in"),
        ("unload", {"versoin": 1}, "unknown field 'versoin'; this takes parameters"),
        ("unload", {"parameters": {"version": None}}, "parameters.version must be a version"),
        ("load", {"parameters": {"version": 0}}, "parameters.version must be a version number"),
        ("load", {"parameters": {"version": -1}}, "parameters.version must be a version"),
        ("load", {"parameters": {"version": "1"}}, "parameters.version must be a version"),
        ("load", {"parameters": {"version": 1.0}}, "parameters.version must be a version"),
        ("unload", {"parameters": {"version": False}}, "parameters.version must be a version"),
        ("unload", {"parameters": []}, "parameters must be a JSON object"),
    ]
    async with serve(tiny_repo, version_policy="all") as (app, client):
        before = app.state.registry.model_status("mnist")
        for path, body, message in cases:
            r = await client.post(f"/v2/repository/models/mnist/{path}", json=body)
            assert r.status_code == 422, (path, body, r.text)
            assert r.json()["error"].startswith(message), (path, body, r.text)
            assert app.state.registry.model_status("mnist") == before, (path, body)
        said = (await client.post("/v2/repository/models/mnist/load", json={"version": 1})).json()
        assert '{"parameters": {"version": 2}}' in said["error"]
        wrong = {"parameters": {"version": 0}}
        said = (await client.post("/v2/repository/models/mnist/load", json=wrong)).json()
        assert "an integer from 1 to 999999999 (got 0)" in said["error"]


async def test_null_parameters_act_on_the_whole_model(tiny_repo: Path) -> None:
    """A Go client sends a nil parameters map as null: that means no version, as an absent one."""
    async with serve(tiny_repo, version_policy="all") as (app, client):
        r = await client.post("/v2/repository/models/mnist/unload", json={"parameters": None})
        assert r.status_code == 200, r.text
        assert app.state.registry.model_status("mnist")["versions"] == []
        r = await client.post("/v2/repository/models/mnist/load", json={"parameters": None})
        assert r.status_code == 200, r.text
        assert app.state.registry.resolve("mnist").available


async def test_the_index_refuses_what_it_does_not_read(tiny_repo: Path) -> None:
    async with serve(tiny_repo, version_policy="all") as (_, client):
        r = await client.post("/v2/repository/index", json={"readdy": True})
        assert r.status_code == 422, r.text
        assert r.json()["error"] == "unknown field 'readdy'; this takes ready, rescan"
        r = await client.post("/v2/repository/index?ready=true")
        assert r.status_code == 422 and "query parameter 'ready' is not taken" in r.text
        assert (await client.post("/v2/repository/index", json={"ready": True})).status_code == 200


def test_the_openapi_schema_says_the_rule(tiny_repo: Path) -> None:
    schema = create_app(make_settings(tiny_repo)).openapi()
    for action in ("unload", "load"):
        body = schema["paths"][f"/v2/repository/models/{{name}}/{action}"]["post"]["requestBody"]
        doc = body["content"]["application/json"]["schema"]
        assert doc["additionalProperties"] is False
        version = doc["properties"]["parameters"]["properties"]["version"]
        assert version["minimum"] == 1 and version["maximum"] == 999_999_999
    index = schema["paths"]["/v2/repository/index"]["post"]["requestBody"]
    assert index["content"]["application/json"]["schema"]["additionalProperties"] is False


async def test_load_and_unload_say_the_same_of_a_model_on_disk_but_not_served(
    tiny_repo: Path,
) -> None:
    async with serve(tiny_repo, models=["mnist"]) as (_, client):
        for action in ("unload", "load"):
            r = await client.post(f"/v2/repository/models/pima/{action}")
            assert r.status_code == 404, r.text
            assert r.json()["error"] == (
                "model 'pima' is not among the served models (the settings serve mnist)"
            ), action
            r = await client.post(f"/v2/repository/models/nope/{action}")
            assert r.json()["error"] == "model 'nope' not found in the repository", action
