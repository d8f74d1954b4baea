"""Split-conformal prediction sets: the quantile rule, coverage on exchangeable data, and the
abstention rule."""

from __future__ import annotations

import math
import re
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
    (tmp_path / "c.npy").write_bytes(b"garbage")  # numpy would say: pickled, load it unsafely
    with pytest.raises(ValueError, match=re.escape("c.npy is not a NumPy .npy or .npz file")):
        conformal.Conformal.from_metadata(meta, tmp_path)
    with (tmp_path / "c.npy").open("wb") as f:  # an archive, not an array
        np.savez(f, scores=np.array([0.1], np.float32))
    with pytest.raises(
        ValueError, match=re.escape("c.npy is not an .npy array of conformal scores")
    ):
        conformal.Conformal.from_metadata(meta, tmp_path)


def test_the_training_conditional_rank_is_the_binomial_quantile() -> None:
    # Without delta, the marginal rank; with it, at least as high, and exactly the smallest k
    # whose order statistic covers 1 - alpha with probability 1 - delta (checked by simulation).
    n, alpha, delta = 400, 0.1, 0.1
    k = conformal.rank(n, alpha, delta)
    assert k > conformal.rank(n, alpha) == 361
    assert conformal.rank(n, alpha, 0.5) == pytest.approx(conformal.rank(n, alpha), abs=1)
    rng = np.random.default_rng(0)
    order_stats = np.sort(rng.random((20000, n)), axis=1)
    assert (order_stats[:, k - 1] >= 1 - alpha).mean() >= 1 - delta - 0.01
    assert (order_stats[:, k - 2] >= 1 - alpha).mean() < 1 - delta
    assert conformal.rank(20, 0.01, 0.1) == 21  # too few scores: every label


def test_with_delta_few_calibration_draws_fall_below_one_minus_alpha() -> None:
    # Many calibration draws of uniform scores: the coverage a draw delivers is the share of
    # fresh scores at or below its threshold; with delta, below 1 - alpha in about delta of them.
    rng = np.random.default_rng(1)
    alpha, delta, n = 0.1, 0.2, 300
    below_marginal = below_conditional = 0
    draws = 400
    for _ in range(draws):
        scores = np.sort(rng.random(n)).astype(np.float32)
        below_marginal += conformal.quantile(scores, alpha) < 1 - alpha
        below_conditional += conformal.quantile(scores, alpha, delta) < 1 - alpha
    assert below_conditional / draws <= delta + 0.06
    assert below_marginal / draws > below_conditional / draws + 0.1


def _confident(n: int, accuracy: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three labels: the model puts 0.995 on its top label, and is right ``accuracy`` of the
    time (so it is overconfident when accuracy < 0.995)."""
    rng = np.random.default_rng(seed)
    top = rng.integers(0, 3, n)
    p = np.full((n, 3), 0.0025)
    p[np.arange(n), top] = 0.995
    wrong = rng.random(n) > accuracy
    y = np.where(wrong, (top + 1) % 3, top)
    return p, y


def test_the_default_alpha_is_the_one_that_answers_with_one_label_most_often() -> None:
    # A model right 99% of the time: at alpha 0.1 or 0.05 most sets are exactly one label and
    # some empty; only alpha 0.01 keeps every one of them.
    p, y = _confident(3000, 0.99, 2)
    scores = conformal.scores(p, y)
    alpha, figures = conformal.choose_alpha(scores, p, delta=None)
    assert [f["alpha"] for f in figures] == list(conformal.ALPHA_CANDIDATES)
    best = max(f["single_label"] for f in figures)
    assert next(f for f in figures if f["alpha"] == alpha)["single_label"] == best
    mask = conformal.set_mask(p, conformal.quantile(scores, 0.1))
    assert (mask.sum(axis=1) == 0).mean() > 0  # the old default leaves sets empty
    assert alpha < 0.1


def test_a_less_accurate_model_keeps_the_larger_alpha() -> None:
    # A calibrated ten-label model right about 80% of the time: smaller alphas add labels.
    rng = np.random.default_rng(3)
    z = rng.normal(0, 6, (3000, 10))
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = (p.cumsum(axis=1) > rng.random((3000, 1))).argmax(axis=1)
    alpha, figures = conformal.choose_alpha(conformal.scores(p, y), p)
    assert alpha == 0.1
    sizes = [f["mean_set_size"] for f in figures]
    assert sizes == sorted(sizes)


def test_set_figures_count_sizes_and_coverage() -> None:
    p = np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]])
    scores = np.array([0.1, 0.5], np.float32)
    f = conformal.set_figures(scores, p, 0.4, labels=np.array([0, 1, 0]))  # rank ceil(1.8) = 2
    assert f["threshold"] == pytest.approx(0.5)
    assert f["mean_set_size"] == pytest.approx(4 / 3)
    assert f["single_label"] == pytest.approx(2 / 3)
    assert f["coverage"] == pytest.approx(2 / 3)


def test_a_version_with_delta_serves_the_conditional_threshold(tmp_path: Path) -> None:
    scores = np.linspace(0.0, 1.0, 200, dtype=np.float32)
    conformal.save(scores, tmp_path / "c.npy")
    meta = {
        "files": {"c.npy": "x"},
        "conformal": {"method": "lac", "file": "c.npy", "n": 200, "alpha": 0.05, "delta": 0.1},
    }
    model = conformal.Conformal.from_metadata(meta, tmp_path)
    assert model is not None and model.delta == 0.1
    assert model.threshold() == conformal.quantile(scores, 0.05, 0.1)
    assert model.threshold() > conformal.quantile(scores, 0.05)
    meta["conformal"]["delta"] = 2
    with pytest.raises(ValueError, match="delta"):
        conformal.Conformal.from_metadata(meta, tmp_path)
