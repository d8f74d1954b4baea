"""Prediction sets and abstention over real HTTP: a server process on the trained repository,
the real test images, and the three dialects answering the same sets."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from service.codecs.v2_response import decode_infer_response
from tests.helpers.live_server import Server, run_server, trained_repository

pytestmark = pytest.mark.integration
N = 2000


def _served(models_dir: Path, name: str) -> dict[str, Any]:
    newest = max(
        (p for p in (models_dir / name).glob("*/metadata.json") if p.parent.name.isdigit()),
        key=lambda p: int(p.parent.name),
    )
    meta: dict[str, Any] = json.loads(newest.read_text())
    return meta


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    models_dir = trained_repository()
    if _served(models_dir, "mnist").get("conformal") is None:
        pytest.skip("the trained mnist version has no prediction sets (trained before them)")
    log = tmp_path_factory.mktemp("sets") / "server.log"
    with run_server(models_dir, log) as server:
        yield server, models_dir


def _test_images(name: str) -> tuple[np.ndarray, np.ndarray]:
    from training.specs import get_spec

    split = get_spec(name).load(subset=N).split
    return split.x_test, split.y_test


def test_sets_cover_the_real_test_digits_and_dialects_agree(live: tuple[Server, Path]) -> None:
    server, models_dir = live
    meta = _served(models_dir, "mnist")
    alpha = meta["conformal"]["alpha"]
    x, y = _test_images("mnist")
    with httpx.Client(base_url=server.url, timeout=120) as http:
        r = http.post(
            "/models/mnist/predict",
            json={"instances": x.tolist(), "scale": "unit", "abstain": True},
        )
        assert r.status_code == 200, r.text
        items = r.json()["predictions"]
        covered = np.mean(
            [meta["labels"][t] in i["prediction_set"] for i, t in zip(items, y, strict=True)]
        )
        slack = 3 * math.sqrt(alpha * (1 - alpha) / N)
        assert covered >= 1 - alpha - slack
        abstained_real = np.mean([i["abstained"] for i in items])

        few = x[:32]
        tfs = http.post(
            "/v1/models/mnist:predict", json={"instances": few.tolist(), "abstain": True}
        ).json()["predictions"]
        assert [row["prediction_set"] for row in tfs] == [i["prediction_set"] for i in items[:32]]
        assert [row["abstained"] for row in tfs] == [i["abstained"] for i in items[:32]]
        tensor = {
            "name": "pixels",
            "shape": [32, 28, 28],
            "datatype": "FP32",
            "data": few.ravel().tolist(),
        }
        v2 = http.post(
            "/v2/models/mnist/infer", json={"inputs": [tensor], "parameters": {"abstain": True}}
        )
        arrays = decode_infer_response(v2.content)
        assert [json.loads(s) for s in arrays["prediction_set"]] == [
            i["prediction_set"] for i in items[:32]
        ]
        assert arrays["abstained"].tolist() == [i["abstained"] for i in items[:32]]

        clothes, _ = _test_images("fashion_mnist")
        r = http.post(
            "/models/mnist/predict",
            json={"instances": clothes[:500].tolist(), "scale": "unit", "abstain": True},
        )
        abstained_clothes = np.mean([i["abstained"] for i in r.json()["predictions"]])
        assert abstained_clothes > 0.8 and abstained_clothes > 4 * abstained_real
