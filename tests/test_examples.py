"""The example files the README and docs/client.md send: every one the docs name exists, each
decodes as the service decodes uploads, the script that makes them still makes exactly them, and
the tutorial versions read each picture as the test set labels it."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Literal

import httpx
import numpy as np
import pytest
from PIL import Image

from service.client.client import read_records_csv
from service.inputs.images import decode_digits, decode_image
from service.inputs.preprocess import SeveralDigits
from training.data.errors import DataUnavailable
from training.datasets import PIMA_FEATURES, load_images, load_pima
from training.specs import LABELS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NAMED = re.compile(r"(?<![\w/.-])examples/([\w.-]+\.(?:png|jpg|csv|json|py))\b")
MAX_BYTES = 16_384  # "a few KB each": the repository carries them


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_examples", EXAMPLES / "make_examples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


make_examples = load_script()
PICTURES = {p.file: p for p in make_examples.PICTURES}
FILES = sorted([*PICTURES, "patients.csv", "seven.json"])


def test_the_examples_folder_holds_what_the_script_makes_and_nothing_else() -> None:
    on_disk = sorted(
        p.name for p in EXAMPLES.iterdir() if p.is_file() and p.name != "make_examples.py"
    )
    assert on_disk == FILES


def test_every_example_file_the_docs_name_exists() -> None:
    named = {(doc.name, name) for doc in DOCS for name in NAMED.findall(doc.read_text())}
    assert named, "no doc names an example file: the pattern is out of date"
    missing = sorted(pair for pair in named if not (EXAMPLES / pair[1]).is_file())
    assert not missing, f"example files named that do not exist: {missing}"


@pytest.mark.parametrize("file", sorted(PICTURES))
def test_each_picture_is_small_and_decodes_as_an_upload(file: str) -> None:
    data = (EXAMPLES / file).read_bytes()
    assert len(data) <= MAX_BYTES
    with Image.open(EXAMPLES / file) as image:
        assert image.format == ("JPEG" if file.endswith(".jpg") else "PNG")
        assert image.size == PICTURES[file].size
    fit: Literal["digit", "item"] = "item" if PICTURES[file].dataset == "fashion_mnist" else "digit"
    if len(PICTURES[file].indices) > 1:  # a number: one digit's upload says to read it whole
        with pytest.raises(SeveralDigits, match="digits=many"):
            decode_image(data, max_pixels=10**6, fit=fit)
        return
    x = decode_image(data, max_pixels=10**6, fit=fit)
    assert x.shape == (28, 28) and x.dtype == np.float32
    assert x.max() > 0.5, "the decoder found no ink"


def test_the_year_splits_into_one_digit_per_test_image() -> None:
    digits = decode_digits((EXAMPLES / "year.jpg").read_bytes(), max_pixels=10**6)
    assert len(digits) == len(PICTURES["year.jpg"].indices)


def test_patients_csv_is_real_pima_rows_under_the_header_the_client_reads() -> None:
    data = (EXAMPLES / "patients.csv").read_bytes()
    assert len(data) <= MAX_BYTES
    records = read_records_csv(EXAMPLES / "patients.csv")
    assert len(records) == make_examples.PIMA_ROWS
    assert all(list(record) == list(PIMA_FEATURES) for record in records)
    try:
        table = load_pima(allow_download=False, allow_mirrors=False)
    except DataUnavailable:
        return  # the rows' values are checked where the data set is at hand
    rows = np.array([[record[f] for f in PIMA_FEATURES] for record in records])
    np.testing.assert_allclose(rows, table.features[: len(records)])


def test_seven_json_is_the_first_test_image_as_the_own_apis_body() -> None:
    data = (EXAMPLES / "seven.json").read_bytes()
    assert len(data) <= MAX_BYTES
    body = json.loads(data)
    assert body["scale"] == "byte" and body["top_k"] == 3
    image = np.array(body["instances"][0])
    assert image.shape == (28, 28) and image.min() == 0 and 200 < image.max() <= 255
    try:
        first = load_images("mnist", allow_download=False, allow_mirrors=False).x_test[0]
    except DataUnavailable:
        return  # the pixels are checked where the data set is at hand
    np.testing.assert_array_equal(image, first)


def data_at_hand() -> bool:
    try:
        for name in ("mnist", "fashion_mnist"):
            load_images(name, allow_download=False, allow_mirrors=False)
        load_pima(allow_download=False, allow_mirrors=False)
    except DataUnavailable:
        return False
    return True


def test_the_script_makes_the_same_bytes_again() -> None:
    if not data_at_hand():
        pytest.skip("the data sets are not in the cache (python -m training.datasets all)")
    made = make_examples.examples()
    assert sorted(made) == FILES
    stale = sorted(name for name, data in made.items() if (EXAMPLES / name).read_bytes() != data)
    assert not stale, f"rerun examples/make_examples.py: {stale} differ from what it makes"


# --- the answers the docs show: the tutorial versions on a real server --------------------------


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    from tests.helpers.live_server import run_server, trained_repository

    log = tmp_path_factory.mktemp("examples") / "server.log"
    env = {"SERVE_VERSION_POLICY": "all"}
    with (
        run_server(trained_repository(), log, env=env) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        yield client


def expected_labels(file: str) -> list[str]:
    picture = PICTURES[file]
    y = load_images(picture.dataset).y_test[list(picture.indices)]
    return [LABELS[picture.dataset][int(i)] for i in y]


@pytest.mark.integration
@pytest.mark.parametrize("file", sorted(set(PICTURES) - {"year.jpg"}))
def test_the_tutorial_version_reads_each_picture_as_its_test_label(
    http: httpx.Client, file: str
) -> None:
    model = PICTURES[file].dataset
    ctype = "image/jpeg" if file.endswith(".jpg") else "image/png"
    r = http.post(
        f"/models/{model}/versions/baseline/predict",
        content=(EXAMPLES / file).read_bytes(),
        headers={"Content-Type": ctype},
    )
    assert r.status_code == 200, r.text
    assert [p["label"] for p in r.json()["predictions"]] == expected_labels(file)


@pytest.mark.integration
def test_the_tutorial_version_reads_seven_json_as_a_7(http: httpx.Client) -> None:
    r = http.post(
        "/models/mnist/versions/baseline/predict",
        content=(EXAMPLES / "seven.json").read_bytes(),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["predictions"][0]["label"] == "7"
    assert len(r.json()["predictions"][0]["top_k"]) == 3


@pytest.mark.integration
def test_the_tutorial_version_reads_the_year_whole(http: httpx.Client) -> None:
    r = http.post(
        "/models/mnist/versions/baseline/predict?digits=many",
        content=(EXAMPLES / "year.jpg").read_bytes(),
        headers={"Content-Type": "image/jpeg"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["number"] == "".join(expected_labels("year.jpg"))
