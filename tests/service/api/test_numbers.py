"""``?digits=many``: a number in one picture, read digit by digit through the in-process app
(tiny repositories: random models, so the shape, boxes, count and errors are tested, not the
reading)."""

from __future__ import annotations

import io
import itertools
import pickle
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from benchmarks.numbers import render_number
from service.api.own import number_out_of_distribution
from service.inputs.preprocess import several_digits
from service.serving import inference
from tests.helpers.apps import serve
from tests.helpers.inputs import encode
from tests.helpers.models import cached_tiny_repository

pytestmark = pytest.mark.anyio


def strokes(count: int) -> list[np.ndarray]:
    """``count`` synthetic digits (a bar, a box, a cross...) as 28x28 uint8 images."""
    out = []
    for i in range(count):
        a = np.zeros((28, 28), np.uint8)
        if i % 3 == 0:
            a[4:24, 12:16] = 255  # a one
        elif i % 3 == 1:
            a[4:24, 7:21] = 255
            a[8:20, 11:17] = 0  # a zero
        else:
            a[4:8, 6:22] = 255
            a[4:24, 16:20] = 255  # a seven
        out.append(a)
    return out


def number(count: int, fmt: str = "PNG") -> tuple[bytes, list[tuple[int, int, int, int]]]:
    return render_number(strokes(count), np.random.default_rng(count), fmt, gap=0.4)


def overlaps(a: list[int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


@pytest.mark.parametrize(("count", "fmt"), [(2, "PNG"), (4, "JPEG"), (5, "WEBP")])
async def test_a_number_answers_its_digits_with_boxes(
    client: httpx.AsyncClient, count: int, fmt: str
) -> None:
    data, truth = number(count, "PNG")
    if fmt != "PNG":
        data = encode(Image.open(io.BytesIO(data)), fmt, quality=90)
    r = await client.post(
        "/models/mnist/versions/1/predict?digits=many",
        content=data,
        headers={"content-type": f"image/{fmt.lower()}"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "mnist" and body["version"] == 1
    assert len(body["digits"]) == count
    assert body["number"] == "".join(d["label"] for d in body["digits"])
    for digit, want in zip(body["digits"], truth, strict=True):
        assert set(digit) >= {"label", "class_index", "probabilities", "box"}
        assert len(digit["probabilities"]) == 10
        assert abs(sum(digit["probabilities"].values()) - 1) < 1e-3
        assert len(digit["box"]) == 4 and all(isinstance(v, int) for v in digit["box"])
        assert overlaps(digit["box"], want)
        assert "ood_score" not in digit  # this version ships no OOD model
    assert "out_of_distribution" not in body


@pytest.mark.parametrize("options", ["?digits=one", ""])
async def test_a_number_sent_as_one_digit_is_refused_with_the_way_to_read_it(
    client: httpx.AsyncClient, options: str
) -> None:
    """Read as one digit, a number is squeezed into one 20x20 box: an answer for nobody."""
    data, _ = number(3)
    headers = {"content-type": "image/png"}
    r = await client.post(f"/models/mnist/predict{options}", content=data, headers=headers)
    assert r.status_code == 422
    assert r.json()["error"].startswith("the picture holds 3 separate marks side by side")
    assert "?digits=many" in r.json()["error"]
    one, _ = number(1)
    r = await client.post(f"/models/mnist/predict{options}", content=one, headers=headers)
    assert r.status_code == 200 and len(r.json()["predictions"]) == 1
    files = [("image", ("year.png", data, "image/png"))]  # curl -F: the file named in front
    r = await client.post(f"/models/mnist/predict{options}", files=files)
    assert r.status_code == 422
    assert r.json()["error"] == (
        "file 0 ('year.png'): the picture holds 3 separate marks side by side, as a number of 3 "
        "digits does: to read a number, send it with ?digits=many; to read one digit, crop the "
        "picture to it"
    )


async def test_a_number_sent_to_explain_is_refused_without_pointing_to_digits_many(
    client: httpx.AsyncClient,
) -> None:
    """explain takes no ?digits=many: its refusal must not send the client there."""
    data, _ = number(3)
    headers = {"content-type": "image/png"}
    r = await client.post("/models/mnist/explain", content=data, headers=headers)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error.startswith("the picture holds 3 separate marks side by side")
    assert "digits=many" not in error and "crop the picture" in error


def test_the_several_digits_error_survives_the_trip_from_a_decoding_process() -> None:
    error = several_digits(4)
    assert pickle.loads(pickle.dumps(error)).message == error.message


async def test_of_the_ways_to_split_touching_digits_one_is_answered_and_observed(
    tiny_repo: Path, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Touching digits are read in several ways, and one split is answered: its digits left to
    right, side by side; only those rows reach the operations that watch answers (drift, the
    payload log), not the other ways the model was asked about. When the other ways would pass
    the request's row limit, only the split by shape is read."""
    observed: list[int] = []
    asked: list[int] = []
    monkeypatch.setattr(inference, "observe", lambda mv, x, out: observed.append(len(x)))
    predict = inference.predict

    async def counted(mv: Any, x: np.ndarray, **kwargs: Any) -> np.ndarray:
        asked.append(len(x))
        return await predict(mv, x, **kwargs)

    monkeypatch.setattr(inference, "predict", counted)
    zero = strokes(2)[1]
    data, truth = render_number([zero, zero], np.random.default_rng(1), "PNG", gap=-0.05)
    path, headers = "/models/mnist/versions/1/predict?digits=many", {"content-type": "image/png"}
    async with serve(tiny_repo, max_instances=64) as (_, roomy):
        r = await roomy.post(path, content=data, headers=headers)
    assert r.status_code == 200, r.text
    boxes = [d["box"] for d in r.json()["digits"]]
    assert observed == [len(boxes)] and asked[0] > 16
    assert all(a[0] + a[2] <= b[0] + 1 for a, b in itertools.pairwise(boxes))
    left, right = min(b[0] for b in truth), max(b[0] + b[2] for b in truth)
    assert boxes[0][0] <= left + 2 and boxes[-1][0] + boxes[-1][2] >= right - 2
    r = await client.post(path, content=data, headers=headers)  # at most 16 rows
    assert r.status_code == 200, r.text
    assert asked[1] == observed[1] == len(r.json()["digits"]) == 2


@pytest.mark.parametrize("option", ["top_k=0", "alpha=2"])
async def test_a_number_refused_for_its_options_is_not_run_nor_observed(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, option: str
) -> None:
    seen: list[int] = []
    monkeypatch.setattr(inference, "observe", lambda mv, x, out: seen.append(len(x)))
    predict = inference.predict

    async def counted(mv: Any, x: np.ndarray, **kwargs: Any) -> np.ndarray:
        seen.append(-len(x))
        return await predict(mv, x, **kwargs)

    monkeypatch.setattr(inference, "predict", counted)
    data, _ = number(2)
    r = await client.post(
        f"/models/mnist/versions/1/predict?digits=many&{option}",
        content=data,
        headers={"content-type": "image/png"},
    )
    assert r.status_code == 422, r.text
    assert seen == []


async def test_digits_many_with_top_k_on_the_default_version(client: httpx.AsyncClient) -> None:
    data, _ = number(2)
    r = await client.post(
        "/models/mnist/predict?digits=many&top_k=3",
        content=data,
        headers={"content-type": "image/png"},
    )
    assert r.status_code == 200
    assert all(len(d["top_k"]) == 3 for d in r.json()["digits"])


@pytest.mark.parametrize(
    ("path", "query", "body", "ctype", "status", "message"),
    [
        ("mnist", "digits=two", "png", "image/png", 422, "digits must be one or many"),
        ("mnist", "digits=many", "json", "application/json", 422, "one picture of a number"),
        ("mnist", "digits=many", "blank", "image/png", 422, "no digit found"),
        ("fashion_mnist", "digits=many", "png", "image/png", 422, "applies to digit models"),
        ("pima", "digits=many", "png", "image/png", 415, "takes JSON records"),
        ("mnist", "digits=many", "gif", "image/gif", 415, "GIF images are not supported"),
    ],
)
async def test_digits_errors(
    client: httpx.AsyncClient,
    path: str,
    query: str,
    body: str,
    ctype: str,
    status: int,
    message: str,
) -> None:
    content = {
        "png": number(2)[0],
        "json": b'{"instances": []}',
        "blank": encode(np.full((120, 300), 230, np.uint8)),
        "gif": b"GIF89a....",
    }[body]
    r = await client.post(
        f"/models/{path}/predict?{query}", content=content, headers={"content-type": ctype}
    )
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


async def test_a_number_as_a_forms_one_file(client: httpx.AsyncClient) -> None:
    """Single pictures go as a form too (curl -F file=@digit.png): so does a number, whatever
    type the form gives its part."""
    data, truth = number(3)
    r = await client.post(
        "/models/mnist/versions/1/predict?digits=many",
        files={"file": ("year.png", data, "application/octet-stream")},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["digits"]) == 3
    assert all(overlaps(d["box"], want) for d, want in zip(body["digits"], truth, strict=True))


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (2, "one picture of a number, not 2"),
        (0, "holds no image files"),
        (-1, "the form's file is empty"),
    ],
)
async def test_a_number_form_with_other_than_one_picture_is_refused(
    client: httpx.AsyncClient, files: int, message: str
) -> None:
    data, _ = number(2)
    form: list[tuple[str, tuple[str | None, bytes, str]]] = [
        ("file", (f"n{i}.png", data, "image/png")) for i in range(files)
    ]
    if files == 0:  # a text field only (no file name)
        form = [("note", (None, b"2024", "text/plain"))]
    if files == -1:
        form = [("file", ("empty.png", b"", "image/png"))]
    r = await client.post("/models/mnist/predict?digits=many", files=form)
    assert r.status_code == 422, r.text
    assert message in r.json()["error"]


async def test_digits_as_a_json_field_says_it_reads_pictures(client: httpx.AsyncClient) -> None:
    image = np.zeros((28, 28)).tolist()
    r = await client.post("/models/mnist/predict", json={"instances": [image], "digits": "many"})
    assert r.status_code == 422
    assert "digits applies to a picture" in r.json()["error"]
    record = {"instances": [[6, 148, 72, 35, 0, 33.6, 0.627, 50]], "digits": "many"}
    r = await client.post("/models/pima/predict", json=record)  # not a digit model: no pictures
    assert r.status_code == 422
    assert r.json()["error"].startswith("unknown field 'digits'")


@pytest.fixture(scope="module")
def trust_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_tiny_repository(tmp_path_factory.mktemp("trust") / "models", "trust")


@pytest.fixture(scope="module")
async def trust_client(trust_repo: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(trust_repo) as (_, http):
        yield http


async def test_each_digit_has_its_ood_fields_and_prediction_set(
    trust_client: httpx.AsyncClient,
) -> None:
    data, _ = number(3)
    r = await trust_client.post(
        "/models/mnist/predict?digits=many", content=data, headers={"content-type": "image/png"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["digits"]) == 3 and body["alpha"] == 0.1
    for digit in body["digits"]:
        assert isinstance(digit["ood_score"], float)
        assert isinstance(digit["out_of_distribution"], bool)
        assert isinstance(digit["prediction_set"], list)
    flagged = sum(d["out_of_distribution"] for d in body["digits"])
    assert body["out_of_distribution"] is (flagged >= 2)  # of 3 digits


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], None),
        ([False, False, False], False),
        ([True, False, False], False),  # one odd digit: a number, with that digit flagged
        ([True, True, False], True),
        ([True, False], False),  # one odd digit of two: too few to tell
        ([True, True], True),
        ([True, False, True, False], True),
        ([True, False, False, False, False], False),
        ([True], True),
    ],
)
def test_a_number_is_out_of_distribution_when_half_its_digits_are(
    flags: list[bool], expected: bool | None
) -> None:
    assert number_out_of_distribution(np.array(flags, bool) if flags else None) is expected


async def test_whether_a_number_looks_like_digits_is_judged_on_its_split_by_shape(
    trust_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The split answered is the one the model reads most surely, which also looks most like
    digits: a word's letters cut into digit-like parts would pass. So the answer's own flag
    comes from the split by shape (here: both its digits flagged, the whole piece chosen)."""
    from service.api import own
    from service.serving.tasks import ImageClassifier

    spans = [(0, 1, True), (1, 2, True), (0, 2, False)]

    async def lattice(
        *args: Any,
    ) -> tuple[np.ndarray, list[list[int]], list[tuple[int, int, bool]]]:
        return np.zeros((3, 28, 28), np.float32), [[0, 0, 5, 9], [5, 0, 5, 9], [0, 0, 10, 9]], spans

    monkeypatch.setattr(own, "decode_number", lattice)
    monkeypatch.setattr(
        own, "best_readings", lambda spans, confidence, flags, density, heights: [2]
    )
    monkeypatch.setattr(
        ImageClassifier, "ood_flags", lambda self, x, probs: np.array([True, True, False])
    )
    unflagged = {"ood_score": 0.0, "out_of_distribution": False}  # the whole piece, answered
    monkeypatch.setattr(ImageClassifier, "ood_fields", lambda self, x, probs: [unflagged] * len(x))
    data, _ = number(2)
    r = await trust_client.post(
        "/models/mnist/predict?digits=many", content=data, headers={"content-type": "image/png"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert [d["box"] for d in body["digits"]] == [[0, 0, 10, 9]]
    assert body["digits"][0]["out_of_distribution"] is False
    assert body["out_of_distribution"] is True
