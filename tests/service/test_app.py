"""The composition root: what ``create_app`` wires around the edge (CORS)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from service.codecs.v2 import HEADER_LENGTH
from service.http.limits import TIMEOUT_HEADERS
from tests.helpers.apps import serve

pytestmark = pytest.mark.anyio

ORIGIN = "https://app.example"
PIMA_ROW = [6, 148, 72, 35, 0, 33.6, 0.627, 50]


def _names(value: str) -> set[str]:
    return {part.strip().lower() for part in value.split(",") if part.strip()}


async def test_a_preflight_allows_every_request_header_the_service_reads(tiny_repo: Path) -> None:
    wanted = {
        "authorization",
        "content-type",
        "x-request-id",
        HEADER_LENGTH,
        *(name.decode() for name in TIMEOUT_HEADERS),
    }
    async with serve(tiny_repo, cors_origins=[ORIGIN], api_key="k") as (_, client):
        preflight = await client.options(
            "/v2/models/pima/infer",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": ", ".join(sorted(wanted)),
            },
        )
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert wanted <= _names(preflight.headers["access-control-allow-headers"])


async def test_a_browser_on_another_origin_may_read_the_response_headers_it_needs(
    tiny_repo: Path,
) -> None:
    doc = {
        "parameters": {"binary_data_output": True},
        "inputs": [{"name": "features", "shape": [1, 8], "datatype": "FP32", "data": PIMA_ROW}],
    }
    async with serve(tiny_repo, cors_origins=[ORIGIN]) as (_, client):
        response = await client.post(
            "/v2/models/pima/infer",
            content=orjson.dumps(doc),
            headers={"Origin": ORIGIN, "Content-Type": "application/json"},
        )
        assert response.status_code == 200, response.text
        head = int(response.headers[HEADER_LENGTH])
        assert 0 < np.frombuffer(response.content[head:], np.float32)[0] < 1
        exposed = _names(response.headers["access-control-expose-headers"])
        assert {HEADER_LENGTH, "x-request-id", "retry-after"} <= exposed
        assert "x-request-id" in response.headers


def test_the_openapi_spec_names_every_image_format_taken() -> None:
    """The description and the predict routes' request bodies follow the one table of accepted
    formats (a format added there is documented with no second list to edit)."""
    from service.app import DESCRIPTION, create_app
    from service.codecs.magic import ACCEPTED_NAMES, MEDIA_TYPES
    from service.settings import Settings

    assert f"a {ACCEPTED_NAMES} body" in DESCRIPTION
    spec = create_app(Settings(models_dir="/nonexistent")).openapi()
    for path in ("/models/{name}/predict", "/models/{name}/versions/{version}/predict"):
        bodies = spec["paths"][path]["post"]["requestBody"]["content"]
        assert set(MEDIA_TYPES.values()) <= set(bodies), path
