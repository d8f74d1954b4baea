"""Predictions waiting for their label: the age bound holds whatever order they stand in, and
an id that was not kept says why."""

from __future__ import annotations

import numpy as np
import pytest

from service.serving import quality
from service.serving.quality import GoneRequest, Pending


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_refused_label_does_not_let_its_prediction_outlive_the_ttl(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(quality.time, "monotonic", clock)
    pending = Pending(max_rows=100, ttl_s=6.0)
    probs = np.zeros((1, 10), np.float32)
    pending.remember("a", "mnist", 1, 7, probs)
    clock.now += 4
    pending.remember("b", "mnist", 1, 7, probs)
    pending.put_back("a", pending.take("a"))  # a label refused: "a" now stands behind "b"
    clock.now += 3  # "a" is 7 s old, "b" 3 s
    with pytest.raises(GoneRequest, match="expired"):
        pending.take("a")
    with pytest.raises(GoneRequest, match="expired"):  # and stays gone
        pending.take("a")
    assert pending.take("b").model == "mnist" and pending.rows == 0


def test_a_prediction_too_large_to_keep_answers_gone_with_why() -> None:
    pending = Pending(max_rows=4, ttl_s=60.0)
    pending.remember("a", "mnist", 1, 7, np.zeros((2, 10), np.float32))
    pending.remember("a", "mnist", 1, 7, np.zeros((5, 10), np.float32))  # a retry, too large now
    with pytest.raises(GoneRequest, match="too many rows"):
        pending.take("a")
    assert pending.rows == 0 and len(pending) == 0


def test_a_gone_id_still_says_which_model_answered_it() -> None:
    pending = Pending(max_rows=4, ttl_s=60.0)
    pending.remember("a", "pima", 1, 7, np.zeros((1, 1), np.float32))
    pending.take("a")
    pending.remember("b", "mnist", 1, 7, np.zeros((5, 10), np.float32))
    with pytest.raises(GoneRequest, match="already labelled") as gone:
        pending.take("a")
    assert gone.value.model == "pima"
    with pytest.raises(GoneRequest, match="too many rows") as gone:
        pending.take("b")
    assert gone.value.model == "mnist"
