"""The sharp shadow's edge divided out of a photographed page (service.inputs.shadow)."""

from __future__ import annotations

import numpy as np
import pytest

from service.inputs.shadow import shadow_light


def _page(side: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.full((side, side), 225.0) + rng.normal(0, 3.0, (side, side))


def test_the_light_across_a_sharp_edge_is_measured() -> None:
    side = 200
    xs = np.arange(side)[None, :] - 90.0
    light = np.broadcast_to(np.where(xs < 0, 0.3, 1.0), (side, side))
    found = shadow_light(_page(side) * light)
    assert found is not None
    assert np.abs(found[:, :80] - 0.3).max() < 0.03  # the shadow side, as dark as it is
    assert np.abs(found[:, 100:] - 1.0).max() < 0.03  # the lit side untouched


@pytest.mark.parametrize("kind", ["even", "gradient", "bold stroke", "band"])
def test_no_edge_is_found_where_there_is_no_shadow_s_edge(kind: str) -> None:
    side = 200
    page = _page(side, seed=len(kind))
    xs = np.arange(side)[None, :] / side
    if kind == "gradient":  # light falling off across the page, smoothly
        page = page * (1.0 - 0.7 * xs)
    elif kind == "bold stroke":  # a marker's upright stroke, a fifth of the page wide
        page[20:180, 80:120] = 30.0
    elif kind == "band":  # a dark band across the page, lit on both sides (a ruler's shadow)
        page[:, 80:110] *= 0.3
    assert shadow_light(page) is None
