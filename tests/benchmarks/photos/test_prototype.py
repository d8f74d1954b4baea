"""The prototype preprocessing on synthetic pages: no ink on empty ones, a digit found and
centred on a lit, noisy page (its speed is in the evaluation's report)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

prototype = pytest.importorskip("benchmarks.photos.prototype")  # optional module


def _page(
    w: int = 316, h: int = 239, gradient: float = 0.0, noise: float = 2.0, seven: bool = False
) -> np.ndarray:
    """Paper at 235, optionally a "7" in dark ink (box about x 200-270, y 40-150), then a
    lighting gradient from left to right (it darkens ink and paper alike) and grain."""
    img = Image.new("L", (w, h), 235)
    if seven:
        ImageDraw.Draw(img).line([(200, 40), (266, 40), (228, 150)], fill=30, width=9,
                                 joint="curve")  # fmt: skip
    light = 1.0 - gradient * np.linspace(0.0, 1.0, w)[None, :]
    noisy = np.asarray(img, np.float64) * light
    return np.clip(noisy + np.random.default_rng(0).normal(0.0, noise, (h, w)), 0, 255)


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L").save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    "page",
    [
        np.full((239, 316), 240.0),  # blank white page
        _page(gradient=0.6),  # a lighting gradient only
        _page(noise=6.0) + 10 * np.sin(np.arange(316) / 3.0)[None, :],  # textured paper
        np.random.default_rng(1).integers(0, 256, (239, 316)).astype(float),  # noise
        np.zeros((239, 316)),  # an empty black canvas
    ],
    ids=["blank", "gradient", "textured", "noise", "black-canvas"],
)
def test_empty_pages_have_no_ink(page: np.ndarray) -> None:
    x, info = prototype.preprocess(_png(page), "digit")
    assert not info.ink, info.reason
    assert info.reason
    assert x.shape == (28, 28) and x.dtype == np.float32 and not x.any()


def test_a_digit_on_a_gradient_is_found_and_centred() -> None:
    page = _page(gradient=0.55, noise=3.0, seven=True)
    x, info = prototype.preprocess(_png(page), "digit")
    assert info.ink, info.reason
    assert info.polarity == "dark-on-light"
    x0, y0, x1, y1 = info.box or (0, 0, 0, 0)
    assert 190 <= x0 <= 205 and 30 <= y0 <= 45 and 260 <= x1 <= 280 and 145 <= y1 <= 165
    assert x.min() >= 0 and x.max() == pytest.approx(1.0, abs=1e-6)
    ys, xs = np.nonzero(x > 0.1)
    extent = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
    assert 19 <= extent <= 21  # the longer side fitted to 20 px, as MNIST
    total = float(x.sum())
    cy = float(x.sum(axis=1) @ np.arange(28)) / total
    cx = float(x.sum(axis=0) @ np.arange(28)) / total
    assert abs(cy - 13.5) < 1.0 and abs(cx - 13.5) < 1.0


def test_light_strokes_on_black_and_items() -> None:
    canvas = np.zeros((280, 280))
    canvas[60:220, 130:150] = 255  # a "1" drawn on the demo page's black canvas
    x, info = prototype.preprocess(_png(canvas), "digit")
    assert info.ink and info.polarity == "light-on-dark"
    assert x[4:24, 4:24].max() == 1.0
    shirt = np.full((200, 200), 230.0)
    shirt[40:170, 50:150] = 90  # a dark item on a light table
    x, info = prototype.preprocess(_png(shirt), "item")
    assert info.ink and info.polarity == "dark-on-light"
    assert x.max() == pytest.approx(1.0) and x[14, 0] == 0 and x[0, 14] > 0  # trimmed
