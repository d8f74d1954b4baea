"""A file dropped on the page, in headless Chromium against a real server: beside the pad, where
the page says to drop it, or elsewhere on the page."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_page import _updates, _wait_updates

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
