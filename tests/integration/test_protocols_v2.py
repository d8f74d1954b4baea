"""V2 conformance against a real server process, driven by tritonclient's HTTP client unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc.model_config_pb2 as model_config_pb2
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.helpers.protocol_server import Golden, default_versions, golden_samples, protocol_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    with protocol_server(tmp_path_factory.mktemp("v2")) as (server, models_dir):
        yield server.url.removeprefix("http://"), models_dir


@pytest.fixture(scope="module")
def triton(served: tuple[str, Path]) -> Iterator[httpclient.InferenceServerClient]:
    client = httpclient.InferenceServerClient(url=served[0], network_timeout=60.0)
    yield client
    client.close()


@pytest.fixture(scope="module")
def golden(served: tuple[str, Path]) -> Golden:
    return golden_samples(served[1], default_versions(f"http://{served[0]}"))


def infer(
    client: httpclient.InferenceServerClient,
    model: str,
    x: np.ndarray,
    *,
    binary: bool,
    datatype: str = "FP32",
    class_count: int = 0,
) -> np.ndarray:
    inp = httpclient.InferInput("pixels" if x.ndim == 3 else "features", list(x.shape), datatype)
    inp.set_data_from_numpy(x, binary_data=binary)
    out = httpclient.InferRequestedOutput(
        "probabilities", binary_data=binary, class_count=class_count
    )
    result = client.infer(model, [inp], outputs=[out], request_id="req-1")
    assert result.get_response()["id"] == "req-1"
    assert result.get_response()["model_name"] == model
    array = result.as_numpy("probabilities")
    assert array is not None
    return array


def test_health_and_server_metadata(triton: httpclient.InferenceServerClient) -> None:
    assert triton.is_server_live()
    assert triton.is_server_ready()
    meta = triton.get_server_metadata()
    assert meta["name"] and meta["version"]
    assert {"binary_tensor_data", "classification"} <= set(meta["extensions"])


def test_model_readiness(triton: httpclient.InferenceServerClient) -> None:
    for name in ("mnist", "fashion_mnist", "pima"):
        assert triton.is_model_ready(name)
    assert not triton.is_model_ready("no_such_model")
    assert not triton.is_model_ready("mnist", "999")


def test_model_metadata(triton: httpclient.InferenceServerClient) -> None:
    mnist = triton.get_model_metadata("mnist")
    assert mnist["name"] == "mnist" and mnist["platform"]
    assert mnist["inputs"] == [{"name": "pixels", "datatype": "FP32", "shape": [-1, 28, 28]}]
    assert mnist["outputs"][0] == {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}
    # then the outputs returned only on request: prediction sets, abstention, OOD score
    extras = {o["name"] for o in mnist["outputs"][1:]}
    assert extras <= {"prediction_set", "abstained", "abstain_reason", "ood_score"}
    pima_versions = triton.get_model_metadata("pima")["versions"]
    pima = triton.get_model_metadata("pima", model_version=pima_versions[0])
    assert pima["inputs"][0]["shape"] == [-1, 8] and pima["outputs"][0]["shape"] == [-1, 1]
    with pytest.raises(InferenceServerException) as info:
        triton.get_model_metadata("no_such_model")
    assert info.value.status() == "404"


def test_model_configuration_as_image_client_reads_it(
    triton: httpclient.InferenceServerClient,
) -> None:
    meta = triton.get_model_metadata("mnist")
    config = triton.get_model_config("mnist")
    assert config["name"] == "mnist" and config["max_batch_size"] > 0
    (inp,) = config["input"]
    assert inp["name"] == meta["inputs"][0]["name"] == "pixels"
    assert inp["data_type"] == "TYPE_FP32" and inp["dims"] == [28, 28]
    # image_client.py turns the format's name into Triton's enum
    assert dict(model_config_pb2.ModelInput.Format.items())[inp["format"]] == 0  # FORMAT_NONE
    output = config["output"][0]
    assert output == {"name": "probabilities", "data_type": "TYPE_FP32", "dims": [10]}
    version = meta["versions"][0]
    assert triton.get_model_config("mnist", model_version=version)["name"] == "mnist"
    with pytest.raises(InferenceServerException) as info:
        triton.get_model_config("no_such_model")
    assert info.value.status() == "404"


def test_statistics_rise_by_the_rows_sent(
    triton: httpclient.InferenceServerClient, golden: Golden
) -> None:
    x, _, _ = golden["pima"]

    def stats() -> dict[str, dict[str, Any]]:
        answer = triton.get_inference_statistics("pima")
        return {s["version"]: s for s in answer["model_stats"]}

    before = stats()
    inp = httpclient.InferInput("features", list(x.shape), "FP32").set_data_from_numpy(x)
    version = triton.infer("pima", [inp]).get_response()["model_version"]
    after = stats()
    was, now = before[version], after[version]
    assert now["inference_count"] - was["inference_count"] == len(x)
    assert now["execution_count"] > was["execution_count"]
    success = now["inference_stats"]["success"]
    assert success["count"] - was["inference_stats"]["success"]["count"] == 1
    assert success["ns"] > was["inference_stats"]["success"]["ns"]
    assert now["last_inference"] > 0
    one = triton.get_inference_statistics("pima", model_version=version)["model_stats"]
    assert [s["version"] for s in one] == [version]
    every = triton.get_inference_statistics()["model_stats"]
    assert {"mnist", "fashion_mnist", "pima"} <= {s["name"] for s in every}


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("model", ["mnist", "fashion_mnist", "pima"])
def test_infer_reproduces_golden_outputs(
    triton: httpclient.InferenceServerClient, golden: Golden, model: str, binary: bool
) -> None:
    x, expected, atol = golden[model]
    probs = infer(triton, model, x, binary=binary)
    assert probs.shape == expected.shape and probs.dtype == np.float32
    np.testing.assert_allclose(probs, expected, atol=atol)


def test_large_binary_batch(triton: httpclient.InferenceServerClient, golden: Golden) -> None:
    x, expected, atol = golden["mnist"]
    reps = 1024 // len(x)
    probs = infer(triton, "mnist", np.tile(x, (reps, 1, 1)), binary=True)
    assert probs.shape == (reps * len(x), 10)
    np.testing.assert_allclose(probs, np.tile(expected, (reps, 1)), atol=atol)


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("reps", [1, 64])  # decoded on the event loop; in a worker thread
def test_a_compressed_request_is_answered_as_the_plain_one(
    triton: httpclient.InferenceServerClient,
    golden: Golden,
    algorithm: str,
    binary: bool,
    reps: int,
) -> None:
    """tritonclient's ``request_compression_algorithm``: the binary part's length refers to the
    decompressed body."""
    x, expected, atol = golden["mnist"]
    batch = np.tile(x, (reps, 1, 1))
    inp = httpclient.InferInput("pixels", list(batch.shape), "FP32")
    inp.set_data_from_numpy(batch, binary_data=binary)
    out = httpclient.InferRequestedOutput("probabilities", binary_data=binary)
    result = triton.infer("mnist", [inp], outputs=[out], request_compression_algorithm=algorithm)
    probs = result.as_numpy("probabilities")
    assert probs is not None
    np.testing.assert_allclose(probs, np.tile(expected, (reps, 1)), atol=atol)


def test_uint8_pixels(triton: httpclient.InferenceServerClient, golden: Golden) -> None:
    x, _, _ = golden["mnist"]
    raw = np.round(x * 255).astype(np.uint8)
    as_bytes = infer(triton, "mnist", raw, binary=True, datatype="UINT8")
    as_float = infer(triton, "mnist", raw.astype(np.float32) / 255, binary=True)
    np.testing.assert_allclose(as_bytes, as_float, atol=1e-6)


@pytest.mark.parametrize("binary", [False, True])
def test_classification_extension(
    triton: httpclient.InferenceServerClient, golden: Golden, binary: bool
) -> None:
    x, expected, _ = golden["mnist"]
    classes = infer(triton, "mnist", x, binary=binary, class_count=2)
    assert classes.shape == (len(x), 2)
    for row, top in zip(expected, classes[:, 0], strict=True):
        text = top.decode() if isinstance(top, bytes) else str(top)
        _, index, label = text.split(":")
        assert int(index) == int(row.argmax()) and label == str(row.argmax())


def test_errors_reach_the_client_clearly(
    triton: httpclient.InferenceServerClient, golden: Golden
) -> None:
    x, _, _ = golden["pima"]
    bad = httpclient.InferInput("features", [len(x), 7], "FP32")
    bad.set_data_from_numpy(np.ascontiguousarray(x[:, :7]))
    with pytest.raises(InferenceServerException) as info:
        triton.infer("pima", [bad])
    assert info.value.status() == "422"
    assert "expected shape [-1, 8]" in info.value.message()
    wrong_name = httpclient.InferInput("pixels", list(x.shape), "FP32").set_data_from_numpy(x)
    with pytest.raises(InferenceServerException) as info:
        triton.infer("pima", [wrong_name])
    assert "'features'" in info.value.message()
    with pytest.raises(InferenceServerException) as info:
        triton.infer("no_such_model", [wrong_name])
    assert info.value.status() == "404"
