"""API keys, the admin key, CORS, and keys never reaching the logs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.api.routing import RouteKind
from service.app import create_app
from service.http.routes import RouteTable
from service.http.security import Auth, key_matches, parse_keys
from service.settings import Settings
from tests.helpers.apps import serve

pytestmark = pytest.mark.anyio

API_KEYS = "predict-key-1,predict-key-2"
ADMIN_KEY = "admin-key-Z9"
IMAGE = np.zeros((28, 28)).tolist()
PREDICTIONS = [
    ("/models/mnist/predict", {"instances": [IMAGE]}),
    ("/models/mnist/versions/1/predict", {"instances": [IMAGE]}),
    ("/v1/models/mnist:predict", {"instances": [IMAGE]}),
    ("/v1/models/mnist/versions/1:predict", {"instances": [IMAGE]}),
    (
        "/v2/models/mnist/infer",
        {"inputs": [{"name": "pixels", "shape": [1, 28, 28], "datatype": "FP32", "data": [IMAGE]}]},
    ),
]
ADMIN = ["/v2/repository/index", "/v2/repository/models/mnist/load"]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_the_route_table_gives_each_path_its_kind() -> None:
    table = RouteTable.of_app(create_app(Settings(models_dir=Path("unused"))))

    def kind(method: str, path: str) -> RouteKind | None:
        found = table.match(method, path)
        return found[0].kind if found is not None else None

    assert kind("POST", "/models/mnist/predict") is RouteKind.PREDICTION
    assert kind("POST", "/v1/models/mnist/labels/stable:classify") is RouteKind.PREDICTION
    assert kind("POST", "/v2/models/mnist/versions/2/infer") is RouteKind.PREDICTION
    assert kind("GET", "/models/mnist") is RouteKind.READ
    assert kind("GET", "/v2/models/mnist") is RouteKind.READ
    assert kind("GET", "/v2/repository/index") is RouteKind.ADMIN  # wrong method, admin path
    assert kind("POST", "/v2/repository/models/x/unload") is RouteKind.ADMIN


def test_auth_decides_by_kind() -> None:
    auth = Auth(Settings(models_dir=Path("unused"), api_key="p", admin_key="a"))

    def scope(key: str | None) -> dict[str, Any]:
        headers = [(b"authorization", f"Bearer {key}".encode())] if key else []
        return {"method": "POST", "headers": headers, "client": ("203.0.113.9", 1)}

    assert auth.problem(scope(None), RouteKind.PREDICTION) is not None
    assert auth.problem(scope("p"), RouteKind.PREDICTION) is None
    assert auth.problem(scope("p"), RouteKind.ADMIN) == (
        403,
        "invalid credentials: the bearer token is not the admin key",
    )
    assert auth.problem(scope("a"), RouteKind.ADMIN) is None
    for open_kind in (RouteKind.READ, RouteKind.HEALTH, None):
        assert auth.problem(scope(None), open_kind) is None


def test_keys_compare_by_digest() -> None:
    digests = parse_keys("a, b ,,c")
    assert len(digests) == 3
    assert key_matches("b", digests) and not key_matches("d", digests)
    assert not key_matches("", digests)
    assert parse_keys(None) == () and parse_keys("  ") == ()


async def test_open_by_default(tiny_repo: Path) -> None:
    async with serve(tiny_repo) as (_, client):
        for path, body in PREDICTIONS:
            response = await client.post(path, json=body)
            assert response.status_code == 200, (path, response.text)


async def test_prediction_needs_an_api_key(tiny_repo: Path) -> None:
    async with serve(tiny_repo, api_key=API_KEYS, admin_key=ADMIN_KEY) as (_, client):
        for path, body in PREDICTIONS:
            missing = await client.post(path, json=body)
            assert missing.status_code == 401, path
            assert "missing credentials" in missing.json()["error"]
            assert missing.headers["www-authenticate"].startswith("Bearer")
            wrong = await client.post(path, json=body, headers=bearer("nope"))
            assert wrong.status_code == 403, path
            assert "nope" not in wrong.text
            admin = await client.post(path, json=body, headers=bearer(ADMIN_KEY))
            assert admin.status_code == 403, "the admin key is not a prediction key"
            for key in API_KEYS.split(","):  # both keys of a rotation work
                ok = await client.post(path, json=body, headers=bearer(key))
                assert ok.status_code == 200, (path, ok.text)
        basic = await client.post(
            PREDICTIONS[0][0], json=PREDICTIONS[0][1], headers={"Authorization": "Basic eDp5"}
        )
        assert basic.status_code == 401
        malformed = await client.post(
            PREDICTIONS[0][0], json=PREDICTIONS[0][1], headers={"Authorization": "Bearer "}
        )
        assert malformed.status_code == 401
        # metadata, health and the page stay open
        for path in (
            "/healthz",
            "/models",
            "/models/mnist",
            "/v2/models/mnist",
            "/v1/models/mnist",
        ):
            assert (await client.get(path)).status_code == 200, path


async def test_a_key_without_the_bearer_scheme_is_told_how_to_send_it(tiny_repo: Path) -> None:
    key = API_KEYS.split(",")[0]
    path, body = PREDICTIONS[0]
    async with serve(tiny_repo, api_key=API_KEYS) as (_, client):
        for header in (key, f"Token {key}", "Basic eDp5"):
            r = await client.post(path, json=body, headers={"Authorization": header})
            assert r.status_code == 401, header
            message = r.json()["error"]
            assert "missing" not in message and "does not use the Bearer scheme" in message
            assert "'Authorization: Bearer <key>'" in message and key not in message
            assert r.headers["www-authenticate"].startswith("Bearer")


async def test_admin_endpoints_need_the_admin_key(tiny_repo: Path) -> None:
    async with serve(tiny_repo, api_key=API_KEYS, admin_key=ADMIN_KEY) as (_, client):
        for path in ADMIN:
            assert (await client.post(path)).status_code == 401
            assert (await client.post(path, headers=bearer("predict-key-1"))).status_code == 403
            response = await client.post(path, headers=bearer(ADMIN_KEY))
            assert response.status_code == 200, (path, response.text)


async def test_admin_without_a_key_is_loopback_only(tiny_repo: Path) -> None:
    async with serve(tiny_repo) as (_, local):
        assert (await local.post("/v2/repository/index")).status_code == 200
    async with serve(tiny_repo, client_host="10.1.2.3") as (_, remote):
        response = await remote.post("/v2/repository/index")
        assert response.status_code == 403
        assert "SERVE_ADMIN_KEY" in response.json()["error"]
        # prediction stays open for remote clients when no API key is set
        path, body = PREDICTIONS[0]
        assert (await remote.post(path, json=body)).status_code == 200


async def test_keys_never_reach_the_logs(tiny_repo: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with serve(tiny_repo, api_key=API_KEYS, admin_key=ADMIN_KEY) as (app, client):
        path, body = PREDICTIONS[0]
        await client.post(path, json=body, headers=bearer("predict-key-1"))
        await client.post(path, json=body, headers=bearer("wrong-secret-guess"))
        await client.post("/v2/repository/index", headers=bearer(ADMIN_KEY))
        settings_repr = repr(app.state.settings)
    text = caplog.text + settings_repr
    for secret in ("predict-key-1", "predict-key-2", ADMIN_KEY, "wrong-secret-guess"):
        assert secret not in text
    assert "request" in caplog.text  # the request lines were logged, without the keys


async def test_openapi_documents_the_keys(tiny_repo: Path) -> None:
    async with serve(tiny_repo, api_key="k") as (_, client):
        schema = (await client.get("/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["apiKey"]["scheme"] == "bearer" and "adminKey" in schemes
    predict = schema["paths"]["/models/{name}/predict"]["post"]
    assert predict["security"] == [{"apiKey": []}] and "401" in predict["responses"]
    assert schema["paths"]["/v2/repository/index"]["post"]["security"] == [{"adminKey": []}]
    assert "security" not in schema["paths"]["/models"]["get"]


async def test_cors_is_off_by_default(tiny_repo: Path) -> None:
    async with serve(tiny_repo) as (_, client):
        response = await client.get("/models", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in response.headers


async def test_cors_allow_list(tiny_repo: Path) -> None:
    allowed = "https://app.example"
    async with serve(tiny_repo, cors_origins=[allowed], api_key="k") as (_, client):
        ok = await client.get("/models", headers={"Origin": allowed})
        assert ok.headers["access-control-allow-origin"] == allowed
        other = await client.get("/models", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        preflight = await client.options(
            "/models/mnist/predict",
            headers={
                "Origin": allowed,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200, "a preflight needs no key"
        assert preflight.headers["access-control-allow-origin"] == allowed
        refused = await client.options(
            "/models/mnist/predict",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert refused.status_code == 400  # in the one error shape, as every refusal
        assert refused.json() == {"error": "Disallowed CORS origin"}
        assert "access-control-allow-origin" not in refused.headers
        denied = await client.post(
            "/models/mnist/predict", json={"instances": [IMAGE]}, headers={"Origin": allowed}
        )
        assert denied.status_code == 401
        assert denied.headers["access-control-allow-origin"] == allowed, (
            "errors carry CORS headers so the page can read them"
        )


def test_no_unsafe_deserialisation_in_the_code() -> None:
    """Never pickle; never turn Keras safe_mode off; never load .keras files in the service."""
    root = Path(__file__).resolve().parents[2]
    forbidden = ("import pickle", "allow_pickle=True", "safe_mode=False", "load_model(", "dill")
    hits = [
        f"{path.relative_to(root)}: {needle}"
        for package in ("service", "training")
        for path in (root / package).rglob("*.py")
        for needle in forbidden
        if needle in path.read_text(encoding="utf-8")
    ]
    assert not hits, hits


@pytest.mark.timeout(120)
def test_keys_stay_out_of_a_real_servers_logs(tiny_repo: Path, tmp_path: Path) -> None:
    """The real logging set-up (JSON lines on stdout/stderr), start-up to shutdown."""
    import httpx

    from tests.helpers import reliability as h

    env = {
        "SERVE_API_KEY": API_KEYS,
        "SERVE_ADMIN_KEY": ADMIN_KEY,
        "SERVE_LOG_LEVEL": "debug",
        "SERVE_MODELS": "mnist",
    }
    with h.run_server(tiny_repo, tmp_path / "server.log", env) as server:
        path, body = PREDICTIONS[0]
        for key in ("predict-key-1", "wrong-secret-guess", ADMIN_KEY):
            httpx.post(server.url + path, json=body, headers=bearer(key), timeout=10)
            httpx.post(server.url + "/v2/repository/index", headers=bearer(key), timeout=10)
        statuses = [
            httpx.post(server.url + path, json=body, headers=bearer(k), timeout=10).status_code
            for k in ("predict-key-2", "nope")
        ]
        assert statuses == [200, 403]
        assert server.terminate() == 0
        text = server.log_text()
    assert '"status": 403' in text or "403" in text, "the requests were logged"
    for secret in ("predict-key-1", "predict-key-2", ADMIN_KEY, "wrong-secret-guess"):
        assert secret not in text
