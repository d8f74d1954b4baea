"""Reading a version's latency block: the figures the default policy and the runtime plan by."""

from __future__ import annotations

from typing import Any

import pytest

from service.serving.latency import batch1_us, per_image_us

BLOCK = {"us_per_image_b1": 24.5, "us_per_image_b16": 19, "threads": 1}


def test_figures_at_batch_1_and_16() -> None:
    assert per_image_us(BLOCK, 1) == 24.5 == batch1_us(BLOCK)
    assert per_image_us(BLOCK, 16) == 19.0 and isinstance(per_image_us(BLOCK, 16), float)


@pytest.mark.parametrize("value", ["fast", True, 0, -3.0, None, [24.5]])
def test_malformed_figures_are_none(value: Any) -> None:
    block = {**BLOCK, "us_per_image_b16": value}
    assert per_image_us(block, 16) is None
    assert per_image_us(block, 1) == 24.5  # the other figure still reads


@pytest.mark.parametrize("block", [None, [], "24.5", {}])
def test_a_missing_block_has_no_figures(block: Any) -> None:
    assert per_image_us(block, 1) is None and per_image_us(block, 16) is None
