"""A number read from an upload ("Uploads hold several digits" ticked), in headless Chromium
against a real server on trained models: what the page shows beside it and what it sends when
the picture is drawn on afterwards."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from benchmarks.numbers import render_number
from tests.browser.test_page import _updates, _wait_updates
from tests.helpers.browser import draw_line, served_metadata

pytestmark = pytest.mark.browser


@pytest.fixture
def number(page_models_dir: Path, tmp_path: Path) -> Path:
    """Three real MNIST test digits from the served version's golden sample, written as a number."""
    meta = served_metadata(page_models_dir, "mnist")
    digits = [np.asarray(x, dtype=np.float32) for x in meta["golden"]["inputs"][:3]]
    data, _ = render_number(digits, np.random.default_rng(3), "PNG", gap=0.6)
    path = tmp_path / "number.png"
    path.write_bytes(data)
    return path


@pytest.fixture
def digit(page_models_dir: Path, tmp_path: Path) -> Path:
    meta = served_metadata(page_models_dir, "mnist")
    data, _ = render_number(
        [np.asarray(meta["golden"]["inputs"][0], np.float32)], np.random.default_rng(4), "PNG"
    )
    path = tmp_path / "digit.png"
    path.write_bytes(data)
    return path


def _read_number(pg: Any, path: Path) -> str:
    pg.check("#several")
    before = _updates(pg, "#verdict")
    pg.set_input_files("#file", str(path))
    _wait_updates(pg, "#verdict", before)
    text: str = pg.locator("#predicted-number").inner_text()
    assert len(text) == 3, text
    return text


def test_a_number_shows_each_digits_input_and_no_why(page: Any, number: Path, digit: Path) -> None:
    """A number has no one 28x28 input: each digit's own is shown, and "Why", which explains
    one input, is put away with a note until a single digit is read again."""
    _read_number(page, number)
    assert page.locator("#seen").is_hidden()
    canvases = page.locator("#digit-inputs canvas")
    assert canvases.count() == 3
    lit = page.evaluate(
        """() => [...document.querySelectorAll('#digit-inputs canvas')].map(c => {
            const d = c.getContext('2d').getImageData(0, 0, 28, 28).data;
            let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 64) n++; return n;
        })"""
    )
    assert all(10 < n < 400 for n in lit), lit  # each shows its digit's ink, not a black square
    assert "Each digit" in page.locator("#seen-caption").inner_text()
    assert page.locator("#explain-toggle").is_hidden()
    assert "one digit at a time" in page.locator("#explain-note").inner_text()

    page.uncheck("#several")  # the number, read again as one digit, is refused with advice
    page.wait_for_selector("#error:not([hidden])")
    page.wait_for_function("() => document.body.dataset.busy !== 'yes'")
    before = _updates(page, "#verdict")
    page.set_input_files("#file", str(digit))
    _wait_updates(page, "#verdict", before)
    assert page.locator("#predicted-label").count() == 1
    assert page.locator("#seen").is_visible() and page.locator("#digit-inputs").is_hidden()
    assert page.locator("#explain-toggle").is_visible()
    assert page.locator("#seen-caption").inner_text() == "28×28 input, as the model saw it"
    page.wait_for_function("() => document.getElementById('explain-note').dataset.label")


def _red(png: bytes) -> int:
    """Pixels of the boxes' red in a PNG."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)
    return int(((rgb[..., 0] > 150) & (rgb[..., 1] < 100) & (rgb[..., 2] < 100)).sum())


def test_a_stroke_over_a_number_sends_no_box(page: Any, number: Path) -> None:
    """The digit boxes are drawn over the pad, not into it: a stroke drawn on the upload
    afterwards sends the picture and the stroke, not the boxes as ink."""
    _read_number(page, number)
    assert _red(page.locator("#drop").screenshot()) > 50  # the boxes are on screen

    sent: list[bytes] = []

    def keep(route: Any) -> None:
        sent.append(route.request.post_data_buffer)
        route.continue_()

    page.route("**/predict*", keep)
    try:
        before = _updates(page, "#verdict")
        draw_line(page, (40, 40), (60, 60), steps=4)
        _wait_updates(page, "#verdict", before)
    finally:
        page.unroute("**/predict*")
    assert sent and all(body.startswith(b"\x89PNG") for body in sent)
    assert [_red(body) for body in sent] == [0] * len(sent)
    assert _red(page.locator("#drop").screenshot()) == 0  # nor on screen over the new picture


def test_a_digit_read_after_a_number_shows_its_input_and_why(
    page: Any, number: Path, digit: Path
) -> None:
    """A stroke drawn on a number's upload sends the pad, read as one digit: its answer shows
    its own 28x28 input and "Why", not the number's digit inputs."""
    _read_number(page, number)
    assert page.locator("#explain-toggle").is_hidden()
    # the server's answer for one digit, whatever the stroke makes of the number on the pad
    one = page.request.post(
        page.url.rstrip("/") + "/models/mnist/predict?include_input=true&top_k=3",
        data=digit.read_bytes(),
        headers={"Content-Type": "image/png"},
    )
    assert one.ok
    answer = one.body()
    page.route(
        "**/predict?*",
        lambda route: route.fulfill(status=200, content_type="application/json", body=answer),
    )
    try:
        before = _updates(page, "#verdict")
        draw_line(page, (40, 40), (60, 60), steps=4)
        _wait_updates(page, "#verdict", before)
        page.wait_for_function("() => document.body.dataset.busy !== 'yes'")
    finally:
        page.unroute("**/predict?*")
    assert page.locator("#predicted-label").count() == 1
    assert page.locator("#seen").is_visible() and page.locator("#digit-inputs").is_hidden()
    assert page.locator("#explain-toggle").is_visible()
    assert page.locator("#seen-caption").inner_text() == "28×28 input, as the model saw it"


def test_a_stroke_drawn_while_a_number_is_read_is_sent_once_it_is_answered(
    page: Any, number: Path
) -> None:
    """The stroke waits for the number's request (one request in flight at a time), then is
    sent and answered; the page is not left busy with it queued."""
    held: list[Any] = []
    page.route("**/predict?digits=many*", lambda route: held.append(route))
    try:
        page.check("#several")
        page.set_input_files("#file", str(number))
        for _ in range(100):
            if held:
                break
            page.wait_for_timeout(50)
        assert held, "the number was never sent"
        draw_line(page, (40, 40), (60, 200), steps=4)
        held[0].continue_()
    finally:
        page.unroute("**/predict?digits=many*")
    page.wait_for_function("() => document.body.dataset.busy === 'no'", timeout=10_000)
    assert page.locator("#predicted-label").count() == 1  # the stroke's answer, one digit
