"""The requests the benchmark sends: real MNIST test images and Pima records, in every format.

Each :class:`Request` is a complete HTTP POST (path, headers, body), so the wrk driver and the
httpx load generator send exactly the same bytes to every server. The model versions are the
tutorial's ones (recipe ``tutorial`` in ``metadata.json``); when a model has none, its newest
finished version.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

BATCH = 1024  # images per request in the batch scenarios


@dataclass(frozen=True)
class Request:
    """One HTTP POST, sent unchanged by every load generator."""

    name: str
    path: str
    body: bytes
    content_type: str
    items: int = 1  # images or records per request
    headers: dict[str, str] = field(default_factory=dict)

    def all_headers(self) -> dict[str, str]:
        return {"Content-Type": self.content_type, **self.headers}


@dataclass(frozen=True)
class ModelVersionInfo:
    name: str
    version: int
    metadata: dict[str, Any]

    @property
    def input_name(self) -> str:
        return str(self.metadata.get("input", {}).get("name") or "input")

    @property
    def output_name(self) -> str:
        return str(self.metadata.get("output", {}).get("name") or "output")

    @property
    def recipe(self) -> str:
        return str((self.metadata.get("recipe") or {}).get("name", "?"))


def find_versions(models_dir: Path, names: tuple[str, ...]) -> dict[str, ModelVersionInfo]:
    """Per model: the newest finished version trained with the tutorial recipe, else the newest."""
    found: dict[str, ModelVersionInfo] = {}
    for name in names:
        finished: list[ModelVersionInfo] = []
        model_dir = models_dir / name
        if not model_dir.is_dir():
            continue
        for child in model_dir.iterdir():
            meta = child / "metadata.json"
            if child.name.isdigit() and meta.is_file():
                finished.append(
                    ModelVersionInfo(name, int(child.name), json.loads(meta.read_text()))
                )
        if not finished:
            continue
        finished.sort(key=lambda info: info.version)
        tutorial = [info for info in finished if info.recipe == "tutorial"]
        found[name] = (tutorial or finished)[-1]
    return found


def mnist_images(count: int) -> np.ndarray:
    """The first ``count`` real MNIST test images, float32 in [0, 1], shape (count, 28, 28)."""
    from training.datasets import load_images

    data = load_images("mnist")
    return (data.x_test[:count].astype(np.float32) / np.float32(255.0)).astype(np.float32)


def pima_record() -> dict[str, float]:
    """The first real Pima record, keyed by feature name."""
    from training.datasets import PIMA_FEATURES, load_pima

    row = load_pima().features[0]
    return {name: float(value) for name, value in zip(PIMA_FEATURES, row, strict=True)}


def png_bytes(image: np.ndarray) -> bytes:
    """A float [0, 1] 28x28 image as an 8-bit grey PNG (white ink on black, as MNIST stores it)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.round(image * 255.0).astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def tfs_json(images: np.ndarray) -> bytes:
    """TF Serving row format ``{"instances": [...]}``; float32 values keep their short repr."""
    return orjson.dumps({"instances": images}, option=orjson.OPT_SERIALIZE_NUMPY)


def v2_json(images: np.ndarray, input_name: str) -> bytes:
    """V2 inference request with the tensor as flat JSON data."""
    doc = {
        "inputs": [
            {
                "name": input_name,
                "shape": list(images.shape),
                "datatype": "FP32",
                "data": images.reshape(-1),
            }
        ]
    }
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)


def v2_binary(images: np.ndarray, input_name: str, output_name: str) -> tuple[bytes, int]:
    """V2 request with binary tensor data in and out; returns (body, JSON header length)."""
    raw = np.ascontiguousarray(images, dtype="<f4").tobytes()
    head = orjson.dumps(
        {
            "inputs": [
                {
                    "name": input_name,
                    "shape": list(images.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "outputs": [{"name": output_name, "parameters": {"binary_data": True}}],
        }
    )
    return head + raw, len(head)


def build_requests(versions: dict[str, ModelVersionInfo]) -> dict[str, Request]:
    """Every request of the benchmark, keyed by scenario name."""
    mnist = versions["mnist"]
    images = mnist_images(BATCH)
    one = images[:1]
    v = mnist.version
    tfs_path = f"/v1/models/mnist/versions/{v}:predict"
    v2_path = f"/v2/models/mnist/versions/{v}/infer"
    binary, head_len = v2_binary(images, mnist.input_name, mnist.output_name)
    requests = {
        "json-1": Request("json-1", tfs_path, tfs_json(one), "application/json"),
        "png-1": Request(
            "png-1", f"/models/mnist/versions/{v}/predict", png_bytes(one[0]), "image/png"
        ),
        "v2json-1": Request(
            "v2json-1", v2_path, v2_json(one, mnist.input_name), "application/json"
        ),
        "json-1024": Request("json-1024", tfs_path, tfs_json(images), "application/json", BATCH),
        "v2json-1024": Request(
            "v2json-1024", v2_path, v2_json(images, mnist.input_name), "application/json", BATCH
        ),
        "v2bin-1024": Request(
            "v2bin-1024",
            v2_path,
            binary,
            "application/octet-stream",
            BATCH,
            {"Inference-Header-Content-Length": str(head_len)},
        ),
    }
    if "pima" in versions:
        body = orjson.dumps({"instances": [pima_record()]})
        path = f"/models/pima/versions/{versions['pima'].version}/predict"
        requests["pima-1"] = Request("pima-1", path, body, "application/json")
    return requests
