"""The requests the benchmark sends: real MNIST test images and Pima records, in every format.

Each :class:`Request` is a complete HTTP POST (path, headers, body), so the wrk driver and the
httpx load generator send exactly the same bytes to every server.

Two kinds of single request per model: **default** ones go to the version-less paths
(``/v1/models/mnist:predict``, ``/models/pima/predict``) and hit whatever version the service
serves by default, which is what users get; **tutorial** ones go to ``/versions/{n}`` of the
tutorial's version (recipe ``tutorial`` in ``metadata.json``; when a model has none, its newest
finished version). The batch requests use the tutorial version.

The **photo** requests are raw image bodies for the default mnist version, made here from a real
MNIST test digit so that every run sends the same bytes: a grey PNG scan, a small colour JPEG
and a 12-megapixel phone-sized JPEG (see :func:`photo_requests`).
"""

from __future__ import annotations

import functools
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

BATCH = 1024  # images per request in the batch scenarios
PHOTO_DIGIT = 0  # index of the MNIST test digit drawn on every photo
PHOTO_SIZES = {  # scenario -> (width, height, format)
    "photo-png": (316, 239, "PNG"),
    "photo-jpeg": (160, 240, "JPEG"),
    "phone-jpeg": (3000, 4000, "JPEG"),
}
JPEG_QUALITY = 85


@dataclass(frozen=True)
class Request:
    """One HTTP POST, sent unchanged by every load generator."""

    name: str
    path: str
    body: bytes
    content_type: str
    items: int = 1  # images or records per request
    headers: dict[str, str] = field(default_factory=dict)
    model: str = "mnist"
    version: str = ""  # "default" (version-less path) or the version number it names

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


def finished_versions(models_dir: Path, name: str) -> list[ModelVersionInfo]:
    """Every finished version of ``name`` (``metadata.json`` present), oldest first."""
    model_dir = models_dir / name
    if not model_dir.is_dir():
        return []
    finished = [
        ModelVersionInfo(name, int(child.name), json.loads((child / "metadata.json").read_text()))
        for child in model_dir.iterdir()
        if child.name.isdigit() and (child / "metadata.json").is_file()
    ]
    return sorted(finished, key=lambda info: info.version)


def find_versions(models_dir: Path, names: tuple[str, ...]) -> dict[str, ModelVersionInfo]:
    """Per model: the newest finished version trained with the tutorial recipe, else the newest."""
    found: dict[str, ModelVersionInfo] = {}
    for name in names:
        finished = finished_versions(models_dir, name)
        if finished:
            tutorial = [info for info in finished if info.recipe == "tutorial"]
            found[name] = (tutorial or finished)[-1]
    return found


def mnist_images(count: int, dataset: str = "mnist") -> np.ndarray:
    """The first ``count`` real test images, float32 in [0, 1], shape (count, 28, 28)."""
    from training.datasets import load_images

    if dataset not in ("mnist", "fashion_mnist"):
        raise ValueError(f"no image data set called {dataset!r}")
    data = load_images("fashion_mnist" if dataset == "fashion_mnist" else "mnist")
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


def photo_array(
    digit: np.ndarray, width: int, height: int, *, colour: bool, seed: int
) -> np.ndarray:
    """A digit drawn as dark ink on light off-white paper, as a camera or scanner sees it.

    ``digit`` is an MNIST image (white ink on black, [0, 1]). It is upscaled so that its
    28-pixel box spans about 70% of the short side (the ink itself about half of it), placed a
    little off-centre, and composited onto paper with a mild lighting gradient and a little
    grain. Returns uint8, (height, width) grey or (height, width, 3) colour.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    box = round(0.7 * min(width, height))
    ink = Image.fromarray(np.round(np.clip(digit, 0, 1) * 255).astype(np.uint8), mode="L")
    alpha = np.asarray(ink.resize((box, box), Image.Resampling.BICUBIC), np.float32) / 255.0
    top = (height - box) // 2 + round(0.06 * height)  # a little low and to the right
    left = (width - box) // 2 + round(0.05 * width)
    cover = np.zeros((height, width), np.float32)
    cover[top : top + box, left : left + box] = np.clip(alpha * 1.1, 0.0, 1.0)
    # light from the top left: about 12 grey levels brighter there than at the bottom right
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    light = 1.0 - 0.03 * ys - 0.02 * xs
    grain = rng.normal(0.0, 3.0, (height, width)).astype(np.float32)
    if colour:
        paper = np.array([243.0, 236.0, 222.0], np.float32)  # warm off-white
        pen = np.array([28.0, 34.0, 62.0], np.float32)  # blue-black ink
        base = light[..., None] * paper + grain[..., None]
        out = base * (1.0 - cover[..., None]) + pen * cover[..., None]
    else:
        base = light * 236.0 + grain
        out = base * (1.0 - cover) + 30.0 * cover
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def encode_photo(pixels: np.ndarray, fmt: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    image = Image.fromarray(pixels, mode="L" if pixels.ndim == 2 else "RGB")
    if fmt == "PNG":
        image.save(buf, format="PNG")
    else:
        image.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def photo_bytes(scenario: str, digit: np.ndarray) -> bytes:
    """The encoded photo of ``scenario`` (a key of :data:`PHOTO_SIZES`), fixed seed per size."""
    width, height, fmt = PHOTO_SIZES[scenario]
    seed = 1000 + list(PHOTO_SIZES).index(scenario)
    pixels = photo_array(digit, width, height, colour=fmt == "JPEG", seed=seed)
    return encode_photo(pixels, fmt)


@functools.lru_cache(maxsize=1)
def _photo_digit() -> np.ndarray:
    return mnist_images(PHOTO_DIGIT + 1)[PHOTO_DIGIT]


def photo_requests(digit: np.ndarray | None = None) -> dict[str, Request]:
    """The photo scenarios: raw image bodies to the default mnist version's own API."""
    digit = _photo_digit() if digit is None else digit
    requests = {}
    for scenario, (_, _, fmt) in PHOTO_SIZES.items():
        ctype = "image/png" if fmt == "PNG" else "image/jpeg"
        body = photo_bytes(scenario, digit)
        requests[scenario] = Request(
            scenario, "/models/mnist/predict", body, ctype, model="mnist", version="default"
        )
    return requests


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


def build_requests(
    versions: dict[str, ModelVersionInfo], *, photos: bool = True
) -> dict[str, Request]:
    """Every request of the benchmark, keyed by scenario name; ``versions`` are the tutorial's."""
    mnist = versions["mnist"]
    images = mnist_images(BATCH)
    one = images[:1]
    v = mnist.version
    tut = str(v)
    tfs_path = f"/v1/models/mnist/versions/{v}:predict"
    v2_path = f"/v2/models/mnist/versions/{v}/infer"
    binary, head_len = v2_binary(images, mnist.input_name, mnist.output_name)
    json_one = tfs_json(one)
    requests = {
        "json-1-default": Request(
            "json-1-default",
            "/v1/models/mnist:predict",
            json_one,
            "application/json",
            version="default",
        ),
        "json-1": Request("json-1", tfs_path, json_one, "application/json", version=tut),
        "png-1": Request(
            "png-1",
            f"/models/mnist/versions/{v}/predict",
            png_bytes(one[0]),
            "image/png",
            version=tut,
        ),
        "v2json-1": Request(
            "v2json-1", v2_path, v2_json(one, mnist.input_name), "application/json", version=tut
        ),
        "json-1024": Request(
            "json-1024", tfs_path, tfs_json(images), "application/json", BATCH, version=tut
        ),
        "v2json-1024": Request(
            "v2json-1024",
            v2_path,
            v2_json(images, mnist.input_name),
            "application/json",
            BATCH,
            version=tut,
        ),
        "v2bin-1024": Request(
            "v2bin-1024",
            v2_path,
            binary,
            "application/octet-stream",
            BATCH,
            {"Inference-Header-Content-Length": str(head_len)},
            version=tut,
        ),
    }
    if "fashion_mnist" in versions:
        body = tfs_json(mnist_images(1, "fashion_mnist"))
        fv = versions["fashion_mnist"].version
        for name, path, version in (
            ("fashion-json-1-default", "/v1/models/fashion_mnist:predict", "default"),
            ("fashion-json-1", f"/v1/models/fashion_mnist/versions/{fv}:predict", str(fv)),
        ):
            requests[name] = Request(
                name, path, body, "application/json", model="fashion_mnist", version=version
            )
    if "pima" in versions:
        body = orjson.dumps({"instances": [pima_record()]})
        pv = versions["pima"].version
        for name, path, version in (
            ("pima-1-default", "/models/pima/predict", "default"),
            ("pima-1", f"/models/pima/versions/{pv}/predict", str(pv)),
        ):
            requests[name] = Request(
                name, path, body, "application/json", model="pima", version=version
            )
    if photos:
        requests.update(photo_requests(images[PHOTO_DIGIT]))
    return requests
