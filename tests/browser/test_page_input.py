"""A file dropped or a picture pasted on the page, in headless Chromium against a real server:
a drop beside the pad, where the page says to drop it, or elsewhere on the page; a paste of a
picture or of text, on the page or into a field."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_page import _updates, _wait_updates
from tests.helpers.browser import choose_model

pytestmark = pytest.mark.browser

# A DataTransfer holding one PNG, as a file dragged from the desktop carries it
DROP = """([selector, data]) => {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    const transfer = new DataTransfer();
    transfer.items.add(new File([bytes], 'digit.png', { type: 'image/png' }));
    const target = document.querySelector(selector);
    const init = { bubbles: true, cancelable: true, dataTransfer: transfer };
    const over = new DragEvent('dragover', init);
    const drop = new DragEvent('drop', init);
    target.dispatchEvent(over);
    return !target.dispatchEvent(drop);  // true: the page took the drop from the browser
}"""

# A paste (Ctrl+V, Cmd+V) of a clipboard holding a PNG (a screenshot, a copied photo) and/or text
PASTE = """([selector, data, text]) => {
    const transfer = new DataTransfer();
    if (data) {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        transfer.items.add(new File([bytes], 'image.png', { type: 'image/png' }));
    }
    if (text) transfer.setData('text/plain', text);
    const init = { bubbles: true, cancelable: true, clipboardData: transfer };
    return !document.querySelector(selector).dispatchEvent(new ClipboardEvent('paste', init));
}"""


@pytest.fixture
def digit_png(golden_digit: Path) -> str:
    """A real MNIST test digit as a base64 PNG."""
    return base64.b64encode(golden_digit.read_bytes()).decode()


def test_a_file_dropped_beside_the_pad_is_read(page: Any, digit_png: str) -> None:
    """The help text under the pad says "drop an image file here": a drop on it is read."""
    before = _updates(page, "#verdict")
    assert page.evaluate(DROP, ["#draw-help", digit_png])
    _wait_updates(page, "#verdict", before)
    assert page.locator("#predicted-label").count() == 1


def test_a_file_dropped_off_the_panel_does_not_replace_the_page(page: Any, digit_png: str) -> None:
    """The browser's own answer to a drop that no one takes is to open the file in place of the
    page, losing what is on it; the page takes it and leaves the picture unread."""
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/predict" in r.url else None)
    assert page.evaluate(DROP, ["header.top", digit_png])
    page.wait_for_timeout(300)
    assert requests == []
    assert "Draw something" in page.locator("#verdict").inner_text()


def test_a_pasted_picture_is_read_as_an_upload_is(
    page: Any, digit_png: str, golden_digit: Path
) -> None:
    """The picture is sent as it is, and shown on the pad, as a chosen or dropped file is: the
    answer is the upload's, to the last digit of its probability."""
    before = _updates(page, "#verdict")
    page.set_input_files("#file", str(golden_digit))
    _wait_updates(page, "#verdict", before)
    uploaded = page.locator("#verdict").inner_text()
    page.click("#clear")
    before = _updates(page, "#verdict")
    with page.expect_request(lambda r: "/predict" in r.url) as sent:
        assert page.evaluate(PASTE, ["body", digit_png, None])  # the page took the paste
    assert sent.value.headers["content-type"] == "image/png"
    _wait_updates(page, "#verdict", before)
    assert page.locator("#predicted-label").count() == 1
    assert page.locator("#verdict").inner_text() == uploaded
    assert page.evaluate(
        """() => document.getElementById('pad').getContext('2d')
            .getImageData(0, 0, 280, 280).data.some((v, i) => i % 4 === 0 && v > 128)"""
    )  # the pasted picture is on the pad


def test_text_and_pastes_into_fields_are_left_to_the_browser(page: Any, digit_png: str) -> None:
    """Text pasted on the page, a paste into the API key field, a paste into a Pima field and a
    picture pasted while the Pima form is shown: the browser pastes, no prediction is asked for."""
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/predict" in r.url else None)
    assert not page.evaluate(PASTE, ["body", None, "7"])
    page.click(".key summary")
    page.focus("#api-key")
    assert not page.evaluate(PASTE, ["#api-key", digit_png, "secret"])
    choose_model(page, "pima")
    page.focus("#f-glucose")
    assert not page.evaluate(PASTE, ["#f-glucose", None, "148"])
    assert not page.evaluate(PASTE, ["body", digit_png, None])
    page.wait_for_timeout(300)
    assert requests == []
