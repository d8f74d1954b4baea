"""The preprocessings the evaluation compares: picture bytes in, a 28x28 model input out (or None
when the picture is judged blank).

- ``current``: the service's own upload path (``decode_image`` with the version's framing),
  imported from wherever it lives now; its ``NoInkFound`` means judged blank;
- ``baseline``: a plain MNIST-style pipeline: grey, invert when the page is light, normalise to
  [0, 1], crop to pixels above 0.5, fit the longer side to 20 px (28 for items), paste by the
  centre of mass (the box centre for items); blank only when the picture is nearly uniform.
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Callable

import numpy as np
from PIL import Image

Prep = Callable[[bytes, str], "np.ndarray | None"]
MAX_PIXELS = 50_000_000  # above any picture of the set: the service's own limit is not measured
METHODS = ("current", "baseline")


class _Never(Exception):
    """Stands for a "no ink" exception the service does not have."""


def _service_decoder() -> tuple[Callable[..., np.ndarray], type[Exception], str]:
    """The service's upload decoding and its "no ink" exception, wherever they live."""
    for package in ("service.inputs", "service.decoding"):
        try:
            images = importlib.import_module(f"{package}.images")
            pre = importlib.import_module(f"{package}.preprocess")
        except ImportError:
            continue
        blank = getattr(pre, "NoInkFound", None) or getattr(images, "NoInkFound", None)
        return images.decode_image, blank or _Never, package
    raise ImportError("no service.inputs.images or service.decoding.images to import")


def current_method() -> tuple[Prep, str]:
    """The service's path, and the package it came from."""
    decode_image, blank, where = _service_decoder()

    def run(data: bytes, framing: str) -> np.ndarray | None:
        try:
            out = decode_image(data, max_pixels=MAX_PIXELS, fit=framing)
        except blank:
            return None
        return np.asarray(out, np.float32)

    return run, where


def baseline(data: bytes, framing: str) -> np.ndarray | None:
    """The plain MNIST-style pipeline the issue compares with (no lighting model at all)."""
    img: Image.Image = Image.open(io.BytesIO(data))
    if "A" in img.mode:  # transparent strokes: composite on white, as a viewer shows them
        ground = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(ground, img.convert("RGBA"))
    grey = np.asarray(img.convert("L"), np.float32)
    if float(np.median(grey)) > 127:
        grey = 255.0 - grey
    lo, hi = float(grey.min()), float(grey.max())
    if hi - lo < 8:
        return None
    x = (grey - lo) / (hi - lo)
    ys, xs = np.nonzero(x > 0.5)
    if ys.size == 0:
        return None
    x = x[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    side = 20 if framing == "digit" else 28
    s = side / max(x.shape)
    size = (max(1, round(x.shape[1] * s)), max(1, round(x.shape[0] * s)))
    small = np.asarray(Image.fromarray(x).resize(size, Image.Resampling.LANCZOS), np.float32)
    small = np.clip(small, 0, 1)
    out = np.zeros((28, 28), np.float32)
    h, w = small.shape
    if framing == "digit":
        m = float(small.sum()) or 1.0
        cy = float(small.sum(axis=1) @ np.arange(h)) / m
        cx = float(small.sum(axis=0) @ np.arange(w)) / m
        top, left = round(14 - cy), round(14 - cx)
    else:
        top, left = (28 - h) // 2, (28 - w) // 2
    y0, y1, x0, x1 = max(top, 0), min(top + h, 28), max(left, 0), min(left + w, 28)
    out[y0:y1, x0:x1] = small[y0 - top : y1 - top, x0 - left : x1 - left]
    return out


def load(methods: list[str]) -> tuple[dict[str, Prep], str]:
    """The requested preprocessings, and where ``current`` came from."""
    fns: dict[str, Prep] = {}
    where = ""
    for method in methods:
        if method == "current":
            fns["current"], where = current_method()
        elif method == "baseline":
            fns["baseline"] = baseline
    return fns, where
