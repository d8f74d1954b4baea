"""Run the compose services' own commands as plain processes (no container engine here).

Everything comes from docker-compose.yml: the commands, the environments and the healthchecks.
The test only changes what a container would have differently:
- `python` is this virtual environment's interpreter;
- the `models` volume is a temporary folder; variables pointing into other volumes (the trainer's
  data cache) are dropped, so the trainer uses its host default cache;
- SERVE_PORT is a free loopback port and SERVE_HOST is 127.0.0.1;
- the quick path: TRAIN_EPOCHS=1 and TRAIN_SUBSET=2000 reach the trainer through the pass-through
  variables of the `train` service, and TRAIN_RECIPES=tutorial through its `${TRAIN_RECIPES:-...}`
  default (DEPLOY_TEST_RECIPES overrides it), exactly as `TRAIN_EPOCHS=1 docker compose up` would.

The scale profile runs two `api-scaled` processes behind Debian's nginx driven by
deploy/nginx/nginx.conf, rendered only for the test's ports and temporary paths.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from deploy_helpers import (
    NGINX_CONF,
    command_argv,
    free_port,
    healthcheck_argv,
    mounts,
    remap_paths,
    service,
    service_env,
)
from PIL import Image

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

MODELS = ("mnist", "fashion_mnist", "pima")
QUICK = {
    "TRAIN_EPOCHS": "1",
    "TRAIN_SUBSET": "2000",
    "TRAIN_RECIPES": os.environ.get("DEPLOY_TEST_RECIPES", "tutorial"),
}
READY_TIMEOUT_S = 240.0


def _require_service() -> None:
    for module in ("service.__main__", "training.__main__"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} does not exist yet: the compose commands cannot start")


def _base_env() -> dict[str, str]:
    """The caller's environment without SERVE_/TRAIN_ settings: a container starts clean."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("SERVE_", "TRAIN_"))}


def _models_volume() -> str:
    api = service("api")
    target = service_env(api, {})["SERVE_MODELS_DIR"]
    return next(m.source for m in mounts(api) if m.target == target)


def process_env(
    name: str, models_dir: Path, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    svc = service(name)
    caller = {**os.environ, **QUICK}
    volume = _models_volume()
    mapping = {m.target: (models_dir if m.source == volume else None) for m in mounts(svc)}
    return {**_base_env(), **remap_paths(service_env(svc, caller), mapping), **(extra or {})}


def _tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


@contextmanager
def running(
    argv: list[str], env: Mapping[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a process (its own session, output to `log`); stop it and its children at the end."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, env=dict(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield proc
        finally:
            stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def wait_healthy(
    name: str, env: Mapping[str, str], proc: subprocess.Popen[bytes], log: Path
) -> None:
    """Run the service's compose healthcheck until it passes, as the engine would."""
    argv = healthcheck_argv(service(name)["healthcheck"]["test"])
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{name} exited with {proc.returncode}:\n{_tail(log)}")
        if subprocess.run(argv, env=dict(env), capture_output=True, timeout=30).returncode == 0:
            return
        time.sleep(1.0)
    pytest.fail(f"{name} not healthy after {READY_TIMEOUT_S:.0f} s:\n{_tail(log)}")


def version_dirs(models_dir: Path) -> list[str]:
    return sorted(
        str(p.parent.relative_to(models_dir)) for p in models_dir.glob("*/*/metadata.json")
    )


def run_train(models_dir: Path, log: Path) -> None:
    env = process_env("train", models_dir)
    argv = command_argv(service("train"))
    with log.open("ab") as out:
        result = subprocess.run(argv, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=900)
    assert result.returncode == 0, f"train exited with {result.returncode}:\n{_tail(log)}"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `train` service run into a fresh `models` volume, then run again (a second `up`)."""
    _require_service()
    root = tmp_path_factory.mktemp("compose")
    models = root / "models"
    models.mkdir()
    log = root / "train.log"
    run_train(models, log)
    trained = version_dirs(models)
    assert {v.split("/")[0] for v in trained} == set(MODELS), trained
    run_train(models, log)  # --if-missing: nothing new, exit 0
    assert version_dirs(models) == trained
    return models


def newest_version(models_dir: Path, name: str) -> int:
    return max(int(p.parent.name) for p in (models_dir / name).glob("*/metadata.json"))


def golden(models_dir: Path, name: str, version: int) -> dict[str, Any]:
    meta = json.loads((models_dir / name / str(version) / "metadata.json").read_text())
    return {"labels": meta["labels"], **meta["golden"]}


def digit_png(models_dir: Path) -> tuple[int, bytes, str]:
    """(version, PNG of its most confidently classified golden MNIST input, expected label)."""
    version = newest_version(models_dir, "mnist")
    sample = golden(models_dir, "mnist", version)
    outputs = np.asarray(sample["outputs"], dtype=np.float64)
    best = int(outputs.max(axis=1).argmax())
    pixels = np.asarray(sample["inputs"][best], dtype=np.float64).reshape(28, 28)
    buffer = io.BytesIO()
    Image.fromarray(np.round(pixels * 255).astype(np.uint8), mode="L").save(buffer, "PNG")
    return version, buffer.getvalue(), sample["labels"][int(outputs[best].argmax())]


def digit_photo(models_dir: Path) -> tuple[bytes, str]:
    """(JPEG, expected label): the most confident golden MNIST digit as a 280 px photo, dark ink
    on light paper with a lighting gradient and grain; larger than the bodies decoded in place,
    so the service hands it to its decoding processes."""
    version = newest_version(models_dir, "mnist")
    sample = golden(models_dir, "mnist", version)
    outputs = np.asarray(sample["outputs"], dtype=np.float64)
    best = int(outputs.max(axis=1).argmax())
    ink = np.asarray(sample["inputs"][best], dtype=np.float64).reshape(28, 28)
    ink = np.kron(ink, np.ones((10, 10)))  # 280 x 280
    rng = np.random.default_rng(5)
    paper = 205 + 25 * np.linspace(0, 1, 280)[None, :] + rng.normal(0, 3, (280, 280))
    photo = (paper - 170 * ink).clip(0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(photo, mode="L").save(buffer, "JPEG", quality=90)
    return buffer.getvalue(), sample["labels"][int(outputs[best].argmax())]


def decode_workers_running(client: httpx.Client) -> float:
    metrics = client.get("/metrics")
    assert metrics.status_code == 200, metrics.text
    found = re.search(r"^serve_decode_workers ([0-9.]+)$", metrics.text, re.MULTILINE)
    assert found, "no serve_decode_workers in /metrics"
    return float(found.group(1))


def check_photo_through_decode_workers(base_url: str, models_dir: Path) -> None:
    """A photo is read right while the decoding processes start (in a thread) and once they run
    (in a process): the workers come up inside the deployment, within the time spawning takes."""
    jpeg, label = digit_photo(models_dir)
    assert len(jpeg) > 4 * 1024
    headers = {"Content-Type": "image/jpeg"}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        deadline = time.monotonic() + 60
        while True:
            response = client.post("/models/mnist/predict", content=jpeg, headers=headers)
            assert response.status_code == 200, response.text
            assert response.json()["predictions"][0]["label"] == label
            if decode_workers_running(client) >= 1:
                break
            assert time.monotonic() < deadline, "the decoding processes did not start"
            time.sleep(0.5)
        for _ in range(3):  # now through the processes
            response = client.post("/models/mnist/predict", content=jpeg, headers=headers)
            assert response.status_code == 200, response.text
            assert response.json()["predictions"][0]["label"] == label


def check_predictions(base_url: str, models_dir: Path) -> None:
    version, png, label = digit_png(models_dir)
    headers = {"Content-Type": "image/png"}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        assert client.get("/healthz").status_code == 200
        response = client.post(
            f"/models/mnist/versions/{version}/predict", content=png, headers=headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["model"], body["version"]) == ("mnist", version)
        assert body["predictions"][0]["label"] == label
        default = client.post("/models/mnist/predict", content=png, headers=headers)
        assert default.status_code == 200, default.text
        assert default.json()["model"] == "mnist"

        # The Open Inference Protocol answer equals the golden sample (when V2 is served).
        pima = newest_version(models_dir, "pima")
        meta = client.get(f"/v2/models/pima/versions/{pima}")
        if meta.status_code == 404:
            return
        assert meta.status_code == 200, meta.text
        sample = golden(models_dir, "pima", pima)
        inputs = np.asarray(sample["inputs"], dtype=np.float32)
        request = {
            "inputs": [
                {
                    "name": meta.json()["inputs"][0]["name"],
                    "shape": list(inputs.shape),
                    "datatype": "FP32",
                    "data": inputs.ravel().tolist(),
                }
            ]
        }
        infer = client.post(f"/v2/models/pima/versions/{pima}/infer", json=request)
        assert infer.status_code == 200, infer.text
        got = np.asarray(infer.json()["outputs"][0]["data"], dtype=np.float64)
        want = np.asarray(sample["outputs"], dtype=np.float64).ravel()
        np.testing.assert_allclose(got, want, atol=float(sample.get("atol", 1e-4)))


def test_train_then_api_answers(models_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    env = process_env("api", models_dir, {"SERVE_HOST": "127.0.0.1", "SERVE_PORT": str(port)})
    assert env["SERVE_MODELS_DIR"] == str(models_dir)
    log = tmp_path / "api.log"
    with running(command_argv(service("api")), env, log) as proc:
        wait_healthy("api", env, proc, log)
        check_predictions(f"http://127.0.0.1:{port}", models_dir)
        check_photo_through_decode_workers(f"http://127.0.0.1:{port}", models_dir)
        assert proc.poll() is None, _tail(log)


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        pytest.fail("nginx is not installed: run `bash deploy/check.sh install` (Debian's nginx)")
    return found


def render_nginx_conf(backends: list[int], listen_port: int, workdir: Path) -> str:
    """The repo's nginx.conf with the test's upstream ports, listen address and temp folder."""
    conf = NGINX_CONF.read_text()
    (upstream_host,) = service("lb")["depends_on"]  # the replicated service nginx fronts
    server_line = re.compile(rf"^(\s*)server\s+{upstream_host}:\d+(.*);$", re.M)
    match = server_line.search(conf)
    assert match, f"no `server {upstream_host}:PORT` line in {NGINX_CONF}"
    servers = "\n".join(f"{match.group(1)}server 127.0.0.1:{p}{match.group(2)};" for p in backends)
    conf = server_line.sub(lambda _: servers, conf, count=1)
    conf, listens = re.subn(
        r"^(\s*)listen\s+\d+;$", rf"\1listen 127.0.0.1:{listen_port};", conf, flags=re.M
    )
    assert listens == 1
    conf = conf.replace("/tmp/", f"{workdir}/")
    if os.geteuid() == 0:  # workers would otherwise drop to `nobody`, locked out of workdir
        conf = "user root;\n" + conf
    return conf


def upstreams(
    client: httpx.Client, count: int, method: str = "GET", path: str = "/readyz", **kw: Any
) -> list[str]:
    seen = []
    for _ in range(count):
        response = client.request(method, path, **kw)
        assert response.status_code == 200, response.text
        seen.append(response.headers["X-Upstream-Addr"])
    return seen


def test_scale_profile_balances_two_replicas_behind_nginx(models_dir: Path, tmp_path: Path) -> None:
    nginx = nginx_binary()
    ports = [free_port(), free_port()]
    while ports[1] == ports[0]:
        ports[1] = free_port()
    lb_port = free_port()
    argv = command_argv(service("api-scaled"))
    with ExitStack() as stack:
        replicas = []
        for i, port in enumerate(ports):
            env = process_env(
                "api-scaled", models_dir, {"SERVE_HOST": "127.0.0.1", "SERVE_PORT": str(port)}
            )
            log = tmp_path / f"api-scaled-{i}.log"
            proc = stack.enter_context(running(argv, env, log))
            replicas.append((proc, env, log))
        for proc, env, log in replicas:
            wait_healthy("api-scaled", env, proc, log)

        workdir = tmp_path / "nginx"
        workdir.mkdir()
        conf = workdir / "nginx.conf"
        conf.write_text(render_nginx_conf(ports, lb_port, workdir))
        nginx_argv = [nginx, "-p", str(workdir), "-c", str(conf), "-e", "stderr"]
        check = subprocess.run([*nginx_argv, "-t"], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        nginx_log = tmp_path / "nginx.log"
        lb = stack.enter_context(running([*nginx_argv, "-g", "daemon off;"], os.environ, nginx_log))

        base_url = f"http://127.0.0.1:{lb_port}"
        health_url = next(
            a for a in service("lb")["healthcheck"]["test"] if a.startswith("http://")
        )
        health_path = "/" + health_url.split("://", 1)[1].split("/", 1)[1]
        deadline = time.monotonic() + 30
        with httpx.Client(base_url=base_url, timeout=30) as client:
            while True:
                assert lb.poll() is None, _tail(nginx_log)
                try:
                    if client.get(health_path).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, _tail(nginx_log)
                time.sleep(0.2)

            expected = {f"127.0.0.1:{p}" for p in ports}
            assert set(upstreams(client, 10)) == expected
            _, png, _ = digit_png(models_dir)
            posts = upstreams(
                client,
                10,
                "POST",
                "/models/mnist/predict",
                content=png,
                headers={"Content-Type": "image/png"},
            )
            assert set(posts) == expected
            check_predictions(base_url, models_dir)

            # One replica goes away: nginx keeps answering from the other.
            stop(replicas[1][0])
            survivors = upstreams(client, 6)
            assert {s.split(", ")[-1] for s in survivors} == {f"127.0.0.1:{ports[0]}"}
