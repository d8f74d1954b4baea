"""Split-conformal prediction sets: the quantile rule, coverage on exchangeable data, and the
abstention rule."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from service.serving import conformal


def test_the_quantile_is_the_ceil_n_plus_one_rank() -> None:
    scores = np.arange(1, 100, dtype=np.float32) / 100  # n = 99: 0.01 .. 0.99
    # ceil(100 * 0.9) = 90th smallest; ceil(100 * 0.95) = 95th
    assert conformal.quantile(scores, 0.1) == pytest.approx(0.90)
    assert conformal.quantile(scores, 0.05) == pytest.approx(0.95)
    assert conformal.quantile(scores, 0.005) == math.inf  # rank 100 > n: every label
    assert conformal.quantile(scores[:9], 0.1) == pytest.approx(0.09)  # ceil(10 * 0.9) = 9
    assert conformal.quantile(scores[:8], 0.1) == math.inf  # ceil(9 * 0.9) = 9 > 8
    assert conformal.quantile(scores[:10], 0.1) == pytest.approx(0.10)  # ceil(11 * 0.9) = 10


def test_sets_cover_the_truth_at_one_minus_alpha() -> None:
    rng = np.random.default_rng(0)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        logits = rng.normal(0, 2, (n, 10))
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        y = np.array([rng.choice(10, p=row) for row in p])
        return p, y

    cal_p, cal_y = draw(2000)
    scores = conformal.scores(cal_p, cal_y)
    assert (np.diff(scores) >= 0).all() and scores.dtype == np.float32
    test_p, test_y = draw(5000)
    for alpha in (0.05, 0.1, 0.2):
        mask = conformal.set_mask(test_p, conformal.quantile(scores, alpha))
        coverage = mask[np.arange(len(test_y)), test_y].mean()
        slack = 3 * math.sqrt(alpha * (1 - alpha) / 5000) + 3 * math.sqrt(
            alpha * (1 - alpha) / 2000
        )
        assert coverage >= 1 - alpha - slack
        assert coverage <= 1 - alpha + slack + 1 / 2001


def test_abstention_reasons() -> None:
    mask = np.array([[1, 0], [1, 1], [0, 0], [1, 0]], bool)
    flags = np.array([False, False, False, True])
    assert conformal.abstentions(mask, flags) == [
        None,
        conformal.SEVERAL_LABELS,
        conformal.NO_LABEL,
        conformal.OUT_OF_DISTRIBUTION,
    ]
    assert conformal.abstentions(mask, None)[3] is None


@pytest.mark.parametrize("value", [0, 1, -0.1, 1.5, float("nan"), True, "0.1", None])
def test_alpha_must_be_strictly_between_zero_and_one(value: object) -> None:
    with pytest.raises(ValueError, match="alpha"):
        conformal.check_alpha(value)


def test_loads_only_a_listed_sane_file(tmp_path: Path) -> None:
    conformal.save(np.array([0.3, 0.1, 0.2], np.float32), tmp_path / "c.npy")
    meta = {"conformal": {"method": "lac", "file": "c.npy", "n": 3, "alpha": 0.2}}
    with pytest.raises(ValueError, match="listed"):
        conformal.Conformal.from_metadata(meta, tmp_path)
    meta["files"] = {"c.npy": "x"}
    model = conformal.Conformal.from_metadata(meta, tmp_path)
    assert model is not None and model.default_alpha == 0.2 and model.n == 3
    assert model.threshold() == conformal.quantile(model.scores, 0.2)
    meta["conformal"]["n"] = 4
    with pytest.raises(ValueError, match="holds 3"):
        conformal.Conformal.from_metadata(meta, tmp_path)
    np.save(tmp_path / "c.npy", np.array([np.nan], np.float32))
    meta["conformal"]["n"] = 1
    with pytest.raises(ValueError, match="finite"):
        conformal.Conformal.from_metadata(meta, tmp_path)
    assert conformal.Conformal.from_metadata({}, tmp_path) is None
