"""docker-compose.yml: Debian's docker-compose, the Compose specification schema, the contract.

Tools: `docker-compose` (Debian package, installed by deploy/check.sh or `make system-deps`). The
Compose specification's JSON schema is the copy that package ships (compose/config/
compose_spec.json), so nothing is vendored.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import HealthcheckRunner
from deploy_helpers import (
    COMPOSE_FILE,
    NGINX_CONF,
    ROOT,
    command_argv,
    healthcheck_argv,
    interpolate,
    load_compose,
    mounts,
    service,
    service_env,
)

SCHEMA_CANDIDATES = [Path("/usr/lib/python3/dist-packages/compose/config/compose_spec.json")]


def docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        pytest.fail("docker-compose is not installed: run `bash deploy/check.sh install`")
    return found


def compose_schema() -> dict[str, Any]:
    paths = [p for p in SCHEMA_CANDIDATES if p.exists()]
    if not paths and shutil.which("dpkg"):
        listing = subprocess.run(["dpkg", "-L", "docker-compose"], capture_output=True, text=True)
        paths = [Path(p) for p in listing.stdout.split() if p.endswith("/compose_spec.json")]
    if not paths:
        pytest.fail("compose_spec.json not found: install Debian's docker-compose package")
    schema = json.loads(paths[0].read_text())
    assert schema.get("title") == "Compose Specification"
    assert "draft/2019-09" in schema["$schema"]  # hence Draft201909Validator below
    return schema


def run_compose(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [docker_compose(), "-f", str(COMPOSE_FILE), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},  # no API_PORT etc. from the caller: test the defaults
    )


def test_docker_compose_config_accepts_the_file() -> None:
    for args in (["config", "-q"], ["--profile", "scale", "config", "-q"]):
        result = run_compose(*args)
        assert result.returncode == 0, result.stderr


def test_profiles_select_the_services() -> None:
    scaled = run_compose("--profile", "scale", "config", "--services")
    assert scaled.returncode == 0, scaled.stderr
    assert set(scaled.stdout.split()) == {"train", "api", "api-scaled", "lb"}
    # `docker compose up` without a profile starts only the services that have none.
    services = load_compose()["services"]
    assert {n for n, s in services.items() if not s.get("profiles")} == {"train", "api"}


def test_file_conforms_to_the_compose_specification_schema() -> None:
    schema = compose_schema()
    jsonschema.Draft201909Validator(schema).validate(load_compose())


def test_schema_check_is_not_a_no_op() -> None:
    schema = compose_schema()
    validator = jsonschema.Draft201909Validator(schema)
    broken = copy.deepcopy(load_compose())
    broken["services"]["api"]["healthcheck"]["probe"] = "/readyz"
    assert not validator.is_valid(broken)
    broken = copy.deepcopy(load_compose())
    broken["services"]["api"]["depends_on"]["train"]["condition"] = "service_finished"
    assert not validator.is_valid(broken)


def test_train_is_a_one_shot_service_filling_the_models_volume() -> None:
    train = service("train")
    argv = command_argv(train)
    assert argv[1:] == ["-m", "training", "all", "--if-missing"]
    assert train.get("restart") == "no"
    env = service_env(train, {})
    assert env["TRAIN_RECIPES"] == "tutorial,defaults"  # the default; the host can override it
    assert service_env(train, {"TRAIN_RECIPES": "tutorial"})["TRAIN_RECIPES"] == "tutorial"
    # Quick runs: TRAIN_EPOCHS / TRAIN_SUBSET pass through from the host, unset by default.
    assert "TRAIN_EPOCHS" not in env and "TRAIN_SUBSET" not in env
    quick = service_env(train, {"TRAIN_EPOCHS": "1", "TRAIN_SUBSET": "2000"})
    assert quick["TRAIN_EPOCHS"] == "1" and quick["TRAIN_SUBSET"] == "2000"
    models = [m for m in mounts(train) if m.target == env["TRAIN_MODELS_DIR"]]
    assert len(models) == 1 and models[0].kind == "volume" and not models[0].read_only


def test_api_waits_for_train_and_mounts_the_models_read_only() -> None:
    api, train = service("api"), service("train")
    assert api["depends_on"]["train"]["condition"] == "service_completed_successfully"
    env = service_env(api, {})
    assert env["SERVE_HOST"] == "0.0.0.0"
    assert env["SERVE_VERSION_POLICY"] == "all"
    served = [m for m in mounts(api) if m.target == env["SERVE_MODELS_DIR"]]
    assert len(served) == 1 and served[0].read_only
    trained = [m for m in mounts(train) if m.target == service_env(train, {})["TRAIN_MODELS_DIR"]]
    assert served[0].source == trained[0].source
    assert served[0].source in load_compose()["volumes"]
    assert command_argv(api)[1:] == ["-m", "service"]


def test_api_has_healthcheck_restart_limits_and_a_port() -> None:
    api = service("api")
    assert "/readyz" in " ".join(api["healthcheck"]["test"])
    assert api["restart"] in ("always", "unless-stopped", "on-failure")
    limits = api["deploy"]["resources"]["limits"]
    assert float(limits["cpus"]) > 0 and re.fullmatch(r"\d+[kmg]?", str(limits["memory"]))
    container_port = service_env(api, {})["SERVE_PORT"]
    published = [str(p) for p in api["ports"]]
    assert any(p.endswith(f":{container_port}") for p in published), published


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False), (None, False)])
def test_api_healthcheck_passes_only_when_ready(
    run_healthcheck: HealthcheckRunner, status: int | None, healthy: bool
) -> None:
    argv = healthcheck_argv(service("api")["healthcheck"]["test"])
    code = run_healthcheck(argv, status)
    assert (code == 0) is healthy, f"/readyz {status}: exit code {code}"


def test_scale_profile_runs_replicas_of_the_same_api() -> None:
    api, scaled = service("api"), service("api-scaled")
    assert scaled["profiles"] == ["scale"]
    assert int(scaled["deploy"]["replicas"]) >= 2
    assert "ports" not in scaled, "replicas publish no host port: nginx is the entry point"
    for key in ("command", "environment", "volumes", "healthcheck", "depends_on", "restart"):
        assert scaled[key] == api[key], key
    assert scaled["deploy"]["resources"]["limits"]["memory"]


def test_load_balancer_is_official_nginx_with_least_conn_and_a_healthcheck() -> None:
    lb = service("lb")
    assert lb["profiles"] == ["scale"]
    # The official image by default; LB_IMAGE substitutes another (a local one built from Debian).
    image = interpolate(lb["image"], {})
    assert re.fullmatch(r"nginx:[\w.-]+", image), image
    assert interpolate(lb["image"], {"LB_IMAGE": "localhost/x:1"}) == "localhost/x:1"
    assert lb["depends_on"]["api-scaled"]["condition"] == "service_healthy"
    conf_mounts = [m for m in mounts(lb) if m.target == "/etc/nginx/nginx.conf"]
    assert len(conf_mounts) == 1 and conf_mounts[0].read_only
    assert (ROOT / conf_mounts[0].source).resolve() == NGINX_CONF
    assert lb["healthcheck"]["test"] and lb["restart"] in ("always", "unless-stopped")

    conf = NGINX_CONF.read_text()
    upstream = re.search(r"upstream\s+\w+\s*\{(.*?)\}", conf, re.S)
    assert upstream and re.search(r"^\s*least_conn;", upstream.group(1), re.M)
    servers = re.findall(r"^\s*server\s+([\w.-]+):(\d+)", upstream.group(1), re.M)
    port = service_env(service("api-scaled"), {})["SERVE_PORT"]
    assert servers == [("api-scaled", port)]
    listen = re.search(r"^\s*listen\s+(\d+);", conf, re.M)
    assert listen and any(str(p).endswith(f":{listen.group(1)}") for p in lb["ports"])
    health_url = next(a for a in lb["healthcheck"]["test"] if a.startswith("http://"))
    assert f":{listen.group(1)}/" in health_url
    path = health_url.split(f":{listen.group(1)}", 1)[1]
    assert re.search(rf"location\s+=?\s*{re.escape(path)}\s*\{{", conf)


def test_serving_and_training_images_come_from_the_one_dockerfile() -> None:
    services = load_compose()["services"]
    assert services["api"]["image"] == services["api-scaled"]["image"]
    assert services["api"]["build"] == services["api-scaled"]["build"]
    assert services["train"]["image"] != services["api"]["image"]
    assert services["api"]["build"]["target"] == "runtime"
    assert services["train"]["build"]["target"] == "trainer"
    for name in ("train", "api"):
        build = services[name]["build"]
        assert build["context"] == "."
        assert interpolate(build["args"]["BASE_IMAGE"], {}).startswith("python:3.11-slim")
