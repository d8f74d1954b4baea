"""Validation of a request's arrays against the model's task before they are queued."""

from __future__ import annotations

import numpy as np
import pytest

from service.errors import InvalidInput
from service.serving.inference import validate
from service.serving.tasks import Task
from tests.helpers.models import image_metadata


def _image_task() -> Task:
    return Task.from_metadata(image_metadata(list("abcdefghij"), "tutorial"))


def test_validate() -> None:
    task = _image_task()
    x = np.zeros((2, 28, 28), np.float64)
    out = validate(task, x, 4)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    cases = [
        (np.zeros((2, 28, 27)), "shape"),
        (np.zeros((0, 28, 28)), "no instances"),
        (np.zeros((5, 28, 28)), "too many"),
        (np.full((1, 28, 28), np.nan), "NaN"),
        (np.full((2, 28, 28), 1e39) * np.array([0, 1])[:, None, None], "1 holds a number beyond"),
        (np.full((1, 28, 28), np.inf), "NaN or Inf"),
        (np.full((1, 28, 28), 2.0), "outside the range"),
        (np.array([["a"] * 28] * 28)[None], "numeric"),
    ]
    for bad, message in cases:
        with pytest.raises(InvalidInput, match=message):
            validate(task, bad, 4)
