"""decode_worker: the loop a decoding process runs, driven here over a pipe from a thread."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from multiprocessing import Pipe
from multiprocessing.connection import Connection

import numpy as np
import pytest
from PIL import Image

from service.errors import InvalidInput, UnsupportedMediaType
from service.inputs.images import decode_image, decode_worker


def photo_png() -> bytes:
    """A dark stroke on light, slightly uneven paper: a photo, not a flat drawing."""
    rng = np.random.default_rng(3)
    paper = 200 + 20 * np.linspace(0, 1, 160)[None, :] + rng.normal(0, 2, (120, 160))
    paper[25:95, 70:84] = 40
    buffer = io.BytesIO()
    Image.fromarray(paper.clip(0, 255).astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def worker() -> Iterator[Connection]:
    parent, child = Pipe()
    thread = threading.Thread(
        target=decode_worker, args=(child,), kwargs={"own_process": False}, daemon=True
    )
    thread.start()
    assert parent.recv() == (True, None)  # ready
    yield parent
    parent.close()  # the worker's loop ends at the closed end
    thread.join(5)
    assert not thread.is_alive()


def test_worker_answers_what_decode_image_returns(worker: Connection) -> None:
    png = photo_png()
    for fit in ("digit", "item"):
        worker.send((png, "image/png", 100_000, fit))
        ok, image = worker.recv()
        assert ok
        np.testing.assert_array_equal(image, decode_image(png, max_pixels=100_000, fit=fit))


@pytest.mark.parametrize(
    ("body", "ctype", "error", "words"),
    [
        (b"\x89PNG\r\n\x1a\nbroken", None, InvalidInput, "cannot be decoded"),
        (b"GIF89a" + bytes(20), None, UnsupportedMediaType, "GIF"),
        (b"", "image/png", InvalidInput, "empty"),
    ],
)
def test_worker_returns_client_errors(
    worker: Connection, body: bytes, ctype: str | None, error: type, words: str
) -> None:
    worker.send((body, ctype, 100_000, "digit"))
    ok, exc = worker.recv()
    assert not ok and type(exc) is error and words in exc.message
    worker.send((photo_png(), None, 100_000, "digit"))  # and goes on
    assert worker.recv()[0]


def test_worker_turns_a_bug_into_a_plain_error(worker: Connection) -> None:
    worker.send((photo_png(), None, 100_000, "no such fit"))
    ok, exc = worker.recv()
    assert not ok and isinstance(exc, RuntimeError) and "ValueError" in str(exc)
