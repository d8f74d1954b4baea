"""The benchmark's request bodies and the choice of model versions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import orjson

from benchmarks.payloads import find_versions, png_bytes, tfs_json, v2_binary, v2_json


def write_version(root: Path, name: str, version: int, recipe: str, finished: bool = True) -> None:
    folder = root / name / str(version)
    folder.mkdir(parents=True)
    if finished:
        meta = {"recipe": {"name": recipe}, "input": {"name": "pixels", "shape": [28, 28]}}
        (folder / "metadata.json").write_text(json.dumps(meta))


def test_find_versions_prefers_the_newest_tutorial_version(tmp_path: Path) -> None:
    write_version(tmp_path, "mnist", 1, "tutorial")
    write_version(tmp_path, "mnist", 2, "tutorial")
    write_version(tmp_path, "mnist", 3, "best")
    write_version(tmp_path, "mnist", 4, "tutorial", finished=False)
    write_version(tmp_path, "pima", 7, "best")
    found = find_versions(tmp_path, ("mnist", "pima", "fashion_mnist"))
    assert found["mnist"].version == 2 and found["mnist"].input_name == "pixels"
    assert found["pima"].version == 7  # no tutorial version: the newest
    assert "fashion_mnist" not in found


def test_json_bodies_round_trip() -> None:
    images = np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)
    doc = orjson.loads(tfs_json(images))
    np.testing.assert_array_equal(np.asarray(doc["instances"], np.float32), images)
    v2 = orjson.loads(v2_json(images, "pixels"))["inputs"][0]
    assert v2["shape"] == [3, 28, 28] and v2["datatype"] == "FP32" and len(v2["data"]) == 3 * 784


def test_v2_binary_body_splits_at_the_header_length() -> None:
    images = np.random.default_rng(1).random((2, 28, 28), dtype=np.float32)
    body, head_len = v2_binary(images, "pixels", "probabilities")
    head = orjson.loads(body[:head_len])
    assert head["inputs"][0]["parameters"]["binary_data_size"] == 2 * 784 * 4
    assert head["outputs"][0]["parameters"]["binary_data"] is True
    np.testing.assert_array_equal(np.frombuffer(body[head_len:], "<f4").reshape(2, 28, 28), images)


def test_png_bytes_keeps_the_pixels() -> None:
    from io import BytesIO

    from PIL import Image

    image = np.zeros((28, 28), np.float32)
    image[10:18, 12:14] = 1.0
    decoded = np.asarray(Image.open(BytesIO(png_bytes(image))))
    assert decoded.shape == (28, 28) and decoded[12, 12] == 255 and decoded[0, 0] == 0


def _digit() -> np.ndarray:
    digit = np.zeros((28, 28), np.float32)
    digit[5:23, 12:16] = 1.0  # a "1"
    return digit


def test_photos_have_their_sizes_formats_and_dark_ink_on_light_paper() -> None:
    from io import BytesIO

    from PIL import Image

    from benchmarks.payloads import PHOTO_SIZES, photo_requests

    requests = photo_requests(_digit())
    assert set(requests) == set(PHOTO_SIZES)
    expected = {
        "photo-png": ((316, 239), "PNG", "L", "image/png"),
        "photo-jpeg": ((160, 240), "JPEG", "RGB", "image/jpeg"),
        "phone-jpeg": ((3000, 4000), "JPEG", "RGB", "image/jpeg"),
    }
    for name, (size, fmt, mode, ctype) in expected.items():
        request = requests[name]
        image = Image.open(BytesIO(request.body))
        assert (image.size, image.format, image.mode) == (size, fmt, mode), name
        assert request.content_type == ctype and request.path == "/models/mnist/predict"
        assert request.version == "default" and request.model == "mnist"
    pixels = np.asarray(Image.open(BytesIO(requests["photo-png"].body)))
    assert np.median(pixels) > 200 and pixels.min() < 60  # light paper, dark ink


def test_photos_are_the_same_bytes_every_time() -> None:
    from benchmarks.payloads import photo_bytes

    for name in ("photo-png", "photo-jpeg"):
        assert photo_bytes(name, _digit()) == photo_bytes(name, _digit())
    assert photo_bytes("photo-png", _digit()) != photo_bytes("photo-png", _digit().T)
