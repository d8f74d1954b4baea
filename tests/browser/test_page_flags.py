"""The page's words for what the model cannot read, in headless Chromium, against a real server
on a tiny repository whose mnist version ships an OOD model fitted on noise (so anything drawn is
flagged): "this does not look like a digit", "no digit found", and a number read from an upload
with "several digits" ticked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from benchmarks.numbers import render_number
from tests.helpers.browser import choose_model, open_page
from tests.helpers.live_server import Server, run_server
from tests.helpers.models import cached_tiny_repository

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def flags_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    repo = cached_tiny_repository(tmp_path_factory.mktemp("trust") / "models", "trust")
    log = tmp_path_factory.mktemp("flags-server") / "server.log"
    with run_server(repo, log) as running:
        yield running


@pytest.fixture
def page(browser: Any, flags_server: Server) -> Iterator[Any]:
    with open_page(browser, flags_server.url) as pg:
        choose_model(pg, "mnist")
        yield pg


def _updates(pg: Any) -> int:
    return int(pg.get_attribute("#verdict", "data-updates"))


def _wait(pg: Any, above: int) -> None:
    pg.wait_for_function(
        "n => Number(document.querySelector('#verdict').dataset.updates) > n"
        " && document.body.dataset.busy !== 'yes'",
        arg=above,
    )


def test_a_flagged_drawing_says_it_does_not_look_like_a_digit(page: Any, screenshots: Path) -> None:
    box = page.locator("#pad").bounding_box()
    before = _updates(page)
    page.mouse.move(box["x"] + 60, box["y"] + 200)
    page.mouse.down()
    for i in range(1, 12):
        page.mouse.move(box["x"] + 60 + 16 * i, box["y"] + 200 - (60 if i % 2 else 0), steps=2)
    page.mouse.up()
    _wait(page, before)
    note = page.locator("#ood-note")
    assert note.is_visible()
    assert "does not look like a digit" in note.inner_text()
    assert float(page.get_attribute("#ood-note", "data-score")) > 0
    page.screenshot(path=str(screenshots / "ood.png"), full_page=False)


def test_a_blank_upload_says_no_digit_found(page: Any, tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    blank = tmp_path / "blank.png"
    Image.fromarray(np.clip(230 + rng.normal(0, 2, (240, 320)), 0, 255).astype(np.uint8)).save(
        blank
    )
    before = _updates(page)
    page.set_input_files("#file", str(blank))
    _wait(page, before)
    assert page.locator("#nothing-found").inner_text() == "No digit found."
    assert page.locator("#error").is_hidden()


def test_a_number_uploaded_as_one_digit_says_to_tick_the_box_and_ticking_reads_it(
    page: Any, tmp_path: Path
) -> None:
    """The server's advice names ?digits=many, which a page user cannot send: the page says
    what to do on the page, and ticking the box reads the upload again, as a number."""
    path = tmp_path / "number.png"
    path.write_bytes(render_number(_bars(3), np.random.default_rng(1), "PNG", gap=0.5)[0])
    assert not page.is_checked("#several")
    page.set_input_files("#file", str(path))
    page.wait_for_selector("#error:not([hidden])")
    error = page.locator("#error").inner_text()
    assert "3 separate marks" in error and "tick “Uploads hold several digits”" in error
    assert "digits=many" not in error
    before = _updates(page)
    page.check("#several")
    _wait(page, before)
    assert len(page.locator("#predicted-number").inner_text()) == 3
    assert page.locator("#error").is_hidden()


def _bars(count: int) -> list[np.ndarray]:
    """``count`` sevens, a bar and a stem each, as 28x28 uint8 images."""
    out = []
    for left in (6, 12, 18)[:count]:
        a = np.zeros((28, 28), np.uint8)
        a[4:24, left - 2 : left + 2] = 255
        a[4:8, 6:22] = 255
        out.append(a)
    return out


def test_several_digits_upload_reads_a_number(page: Any, tmp_path: Path) -> None:
    data, _ = render_number(_bars(3), np.random.default_rng(1), "PNG", gap=0.5)
    path = tmp_path / "number.png"
    path.write_bytes(data)
    assert page.locator("#several-field").is_visible()
    page.check("#several")
    before = _updates(page)
    page.set_input_files("#file", str(path))
    _wait(page, before)
    number = page.locator("#predicted-number").inner_text()
    assert len(number) == 3 and number.isdigit()
    assert page.locator("#bars tbody tr").count() == 3
    # this version's OOD model flags anything drawn: every digit, so the number too
    assert page.locator("#ood-note").inner_text() == (
        "This does not look like a number: 3 of them do not look like a digit."
    )
