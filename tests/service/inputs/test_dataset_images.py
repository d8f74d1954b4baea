"""The data sets' own images, light on black, uploaded as PNG files: the picture's ground is
told from the object by reaching its edges. Needs the real Fashion-MNIST test set (marked
``data``)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from service.inputs.images import decode_image
from service.inputs.preprocess import NoInkFound, SeveralDigits

pytestmark = pytest.mark.data
COUNT = 300


def _png(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, "PNG")
    return out.getvalue()


def test_garments_sent_to_a_digit_model_are_mostly_read_not_judged_blank() -> None:
    """A garment filling a dark icon is ink on a dark ground, not dark "ink" on a light page:
    the answer then carries the out-of-distribution flag instead of a 'no digit found'. Thin
    or faint items may still be judged blank, so the bound is on the share."""
    from training.data.loaders import load_fashion_mnist

    (_, _), (x_test, _) = load_fashion_mnist()
    blank = 0
    for image in x_test[:COUNT]:
        try:
            out = decode_image(_png(image), max_pixels=1_000_000, fit="digit")
        except NoInkFound:
            blank += 1
            continue
        except SeveralDigits:  # pieces side by side, as a number's (a bag's handle and body)
            continue
        assert out.max() > 0.5
    assert blank <= 0.2 * COUNT, f"{blank} of {COUNT} judged blank"
