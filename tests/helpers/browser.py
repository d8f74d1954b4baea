"""One way to open the demo page in the test browser: a fresh context, the page loaded, and any
JavaScript error on it failing the test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TIMEOUT_MS = 20_000


@contextmanager
def open_page(browser: Any, url: str, **context_options: Any) -> Iterator[Any]:
    """The page at ``url``, loaded (``body[data-loaded=yes]``); a 1280x900 viewport unless
    ``context_options`` say otherwise."""
    context = browser.new_context(**{"viewport": {"width": 1280, "height": 900}, **context_options})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.set_default_timeout(TIMEOUT_MS)
    try:
        pg.goto(url + "/")
        pg.wait_for_selector("body[data-loaded=yes]")
        yield pg
    finally:
        context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def choose_model(pg: Any, name: str) -> None:
    """Choose model ``name`` and wait until the page holds its metadata (``body[data-meta]``):
    the panel of the model before stays on screen, out of use, while it is read."""
    pg.select_option("#model", name)
    pg.wait_for_selector(f"body[data-meta={name}]")


def served_metadata(models_dir: Path, name: str) -> dict[str, Any]:
    """metadata.json of the newest version: the default when every version is available."""
    versions = [
        int(p.parent.name)
        for p in (models_dir / name).glob("*/metadata.json")
        if p.parent.name.isdigit()
    ]
    meta: dict[str, Any] = json.loads(
        (models_dir / name / str(max(versions)) / "metadata.json").read_text()
    )
    return meta


def draw_line(
    pg: Any, start: tuple[float, float], end: tuple[float, float], steps: int = 8
) -> None:
    """One stroke with the mouse on the drawing pad, from ``start`` to ``end`` (pixels from the
    pad's top left corner)."""
    box = pg.locator("#pad").bounding_box()
    pg.mouse.move(box["x"] + start[0], box["y"] + start[1])
    pg.mouse.down()
    pg.mouse.move(box["x"] + end[0], box["y"] + end[1], steps=steps)
    pg.mouse.up()
