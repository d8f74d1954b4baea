"""The OOD model: fitted on one kind of image, it scores another kind (and blanks) above its
threshold, and it loads only from a listed file of a sane shape."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from service.serving import ood


def _strokes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Two classes of 12x12 'digits': a vertical or a horizontal bar, jittered, with noise."""
    images = np.zeros((n, 12, 12), np.float32)
    labels = rng.integers(0, 2, n)
    for i, label in enumerate(labels):
        at = rng.integers(4, 8)
        if label == 0:
            images[i, 2:10, at] = 1.0
        else:
            images[i, at, 2:10] = 1.0
    images += rng.normal(0, 0.05, images.shape).astype(np.float32)
    return np.clip(images, 0, 1), labels


def _model(flagged: float = 0.02) -> tuple[ood.OodModel, np.random.Generator]:
    rng = np.random.default_rng(0)
    train, labels = _strokes(rng, 2000)
    arrays = ood.fit(train, labels, components=8)
    held_out, _ = _strokes(rng, 500)
    model = ood.from_arrays(arrays, 0.0)
    threshold = ood.choose_threshold(model, held_out, flagged)
    return ood.from_arrays(arrays, threshold), rng


def test_in_distribution_is_rarely_flagged_and_other_shapes_are() -> None:
    model, rng = _model()
    fresh, _ = _strokes(rng, 1000)
    assert model.flags(model.input_scores(fresh)).mean() < 0.05
    discs = np.zeros((200, 12, 12), np.float32)
    yy, xx = np.mgrid[:12, :12]
    discs[:] = ((yy - 6) ** 2 + (xx - 6) ** 2 < 12).astype(np.float32)
    discs += rng.normal(0, 0.05, discs.shape).astype(np.float32)
    noise = rng.random((200, 12, 12)).astype(np.float32)
    assert model.flags(model.input_scores(discs)).mean() > 0.95
    assert model.flags(model.input_scores(noise)).all()


def test_too_little_ink_scores_above_the_threshold() -> None:
    model, _ = _model()
    faint = np.zeros((3, 12, 12), np.float32)
    faint[1, 2:10, 6] = 0.05 * model.min_mass / 8  # 5% of the lightest training image's ink
    faint[2, 2:10, 6] = 0.5 * model.min_mass / 8
    density = model.density_scores(faint)
    mass = faint.reshape(3, -1).sum(axis=1)
    floor = model.threshold * (2.0 - mass / model.min_mass)
    np.testing.assert_allclose(model.input_scores(faint), np.maximum(density, floor), rtol=1e-6)
    assert (model.input_scores(faint) > model.threshold).all()
    assert model.input_scores(faint)[0] >= 2 * model.threshold  # a blank page: twice the threshold


def _version(tmp_path: Path, threshold: object = 10.0) -> dict[str, object]:
    model, _ = _model()
    arrays = {key: getattr(model, key) for key in ("mean", "components", "whitening")}
    arrays["class_means"] = model.class_means
    arrays["residual_variance"] = np.array([model.residual_variance], np.float32)
    arrays["min_mass"] = np.array([model.min_mass], np.float32)
    ood.save(arrays, tmp_path / "ood.npz")
    digest = hashlib.sha256((tmp_path / "ood.npz").read_bytes()).hexdigest()
    return {
        "files": {"ood.npz": digest},
        "ood": {"method": ood.METHOD, "file": "ood.npz", "threshold": threshold},
    }


def test_loads_from_the_version_folder(tmp_path: Path) -> None:
    meta = _version(tmp_path)
    model = ood.OodModel.from_metadata(meta, tmp_path)
    assert model is not None and model.threshold == 10.0
    assert ood.OodModel.from_metadata({"files": {}}, tmp_path) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m["ood"].update(method="magic"), "ppca-mahalanobis"),
        (lambda m: m["ood"].update(file="other.npz"), "listed"),
        (lambda m: m["ood"].update(threshold="high"), "threshold"),
        (lambda m: m["ood"].update(threshold=float("nan")), "threshold"),
        (lambda m: m["ood"].update(confidence={"threshold": 1.0}), "weighed"),
        (lambda m: m["ood"].update(confidence={"weighed": True}), "confidence.threshold"),
        (lambda m: m["ood"].update(confidence={"weighed": True, "threshold": 0}), "positive"),
        (lambda m: m["ood"].update(confidence="yes"), "weighed"),
    ],
)
def test_a_broken_block_is_refused(tmp_path: Path, change: object, message: str) -> None:
    meta = _version(tmp_path)
    change(meta)  # type: ignore[operator]
    with pytest.raises(ValueError, match=message):
        ood.OodModel.from_metadata(meta, tmp_path)


def test_arrays_that_do_not_fit_are_refused(tmp_path: Path) -> None:
    meta = _version(tmp_path)
    with np.load(tmp_path / "ood.npz") as data:
        arrays = {key: data[key] for key in data.files}
    arrays["whitening"] = arrays["whitening"][:3, :3]
    ood.save(arrays, tmp_path / "ood.npz")
    with pytest.raises(ValueError, match="fit together"):
        ood.OodModel.from_metadata(meta, tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"PK junk", "ood.npz is not a NumPy .npy or .npz file"),  # a copy cut short, a wrong file
        (b"", "ood.npz is not a NumPy .npy or .npz file"),
        (b"PK\x03\x04" + b"\0" * 40, "ood.npz is not a readable NumPy file"),
        (None, "ood.npz lacks whitening"),
        ("array", "ood.npz is not an .npz archive"),
        ("pickled", "ood.npz is not a readable NumPy file"),  # a member of objects
    ],
)
def test_a_file_that_is_not_the_ood_archive_is_refused_by_name(
    tmp_path: Path, content: bytes | str | None, message: str
) -> None:
    """numpy's own message for bytes that are no NumPy file says they hold pickled data and how
    to load them unsafely, without naming the file: the operator is told which file is wrong."""
    meta = _version(tmp_path)
    path = tmp_path / "ood.npz"
    if content is None:
        with np.load(path) as data:
            arrays = {key: data[key] for key in data.files if key != "whitening"}
        ood.save(arrays, path)
    elif content == "pickled":
        with np.load(path) as data:
            arrays = {key: data[key] for key in data.files}
        arrays["mean"] = np.array([{"a": 1}], dtype=object)
        ood.save(arrays, path)
    elif content == "array":
        with path.open("wb") as f:
            np.save(f, np.zeros(3, np.float32))
    else:
        assert isinstance(content, bytes)
        path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(message)) as refused:
        ood.OodModel.from_metadata(meta, tmp_path)
    assert "pickle" not in str(refused.value)


def test_a_version_weighing_doubt_reads_its_own_threshold(tmp_path: Path) -> None:
    meta = _version(tmp_path)
    meta["ood"]["confidence"] = {"weighed": True, "threshold": 0.25}
    model = ood.OodModel.from_metadata(meta, tmp_path)
    assert model is not None and model.confidence_threshold == 0.25
    assert model.flag_threshold == 0.25
    meta["ood"]["confidence"] = {"weighed": False, "threshold": 0.25}
    density_only = ood.OodModel.from_metadata(meta, tmp_path)
    assert density_only is not None and density_only.confidence_threshold is None
    assert density_only.flag_threshold == 10.0


def test_the_weighed_score_is_the_relative_density_times_doubt() -> None:
    """... with a floor on doubt: a probability of exactly 1 must not cancel a far input."""
    density, rng = _model()
    weighed = dataclasses.replace(density, confidence_threshold=0.5)
    x, _ = _strokes(rng, 4)
    sure = np.array([[0.99, 0.01], [0.5, 0.5], [1.0, 0.0], [0.2, 0.8]], np.float32)
    relative = density.input_scores(x) / density.threshold
    doubt = np.array([0.01, 0.5, ood.DOUBT_FLOOR, 0.2])
    np.testing.assert_allclose(weighed.scores(x, sure), relative * doubt, rtol=1e-5)
    np.testing.assert_array_equal(density.scores(x, sure), density.input_scores(x))
    scores = weighed.scores(x, sure)
    np.testing.assert_array_equal(weighed.flags(scores), scores > 0.5)


@pytest.mark.parametrize(
    ("n", "rate", "tail"), [(5000, 0.02, 0.05), (600, 0.02, 0.05), (40, 0.1, 0.2)]
)
def test_bounded_count_is_the_binomial_quantile_below_the_tail(
    n: int, rate: float, tail: float
) -> None:
    from scipy.stats import binom

    m = ood.bounded_count(n, rate, tail)
    assert binom.cdf(m, n, rate) <= tail < binom.cdf(m + 1, n, rate)


def test_too_few_held_out_scores_attain_a_lower_confidence() -> None:
    assert ood.bounded_count(149, 0.02, 0.05) == 0  # P(none of 149) = 0.049
    assert ood.attained_confidence(149, 0.02, 0.95, 0) == 0.95
    assert ood.bounded_count(148, 0.02, 0.05) == 0  # P(none of 148) = 0.050: not enough
    assert ood.attained_confidence(148, 0.02, 0.95, 0) == pytest.approx(1 - 0.98**148)
    assert ood.attained_confidence(148, 0.02, 0.95, 0) < 0.95
    with pytest.raises(ValueError, match="0 < rate < 1"):
        ood.bounded_count(100, 0.0, 0.05)


@pytest.mark.parametrize(("n", "above"), [(200, 0), (200, 1), (5500, 92), (5500, 110), (38, 2)])
def test_attained_confidence_is_the_binomial_tail_above_the_count(n: int, above: int) -> None:
    from scipy.stats import binom

    want = min(0.95, 1.0 - binom.cdf(above, n, 0.02))
    assert ood.attained_confidence(n, 0.02, 0.95, above) == pytest.approx(want, abs=1e-9)
    assert ood.binomial_cdf(above, n, 0.02) == pytest.approx(binom.cdf(above, n, 0.02))


def test_the_bounded_threshold_flags_at_most_the_share_on_nearly_every_held_out_draw() -> None:
    """Scores of real images ~ N(0, 1), so a threshold's true flag rate is known exactly: over
    many held-out draws the bounded rule exceeds 2% about 5% of the time, the plain quantile
    about half the time."""
    from scipy.stats import norm

    rng = np.random.default_rng(5)
    draws = 400
    over = {"bounded": 0, "quantile": 0}
    for _ in range(draws):
        held = rng.normal(size=1000)
        for rule, confidence in (("bounded", 0.95), ("quantile", None)):
            rate = norm.sf(ood.threshold_flagging(held, 0.02, confidence))
            over[rule] += rate > 0.02
    assert over["bounded"] / draws <= 0.08
    assert over["quantile"] / draws >= 0.3


def test_the_bounded_threshold_leaves_the_bounded_count_above_it() -> None:
    scores = np.random.default_rng(1).normal(size=2000)
    threshold = ood.threshold_flagging(scores, 0.02, 0.95)
    assert np.sum(scores > threshold) == ood.bounded_count(2000, 0.02, 0.05)


def _light_and_ordinary(model: ood.OodModel, light: int) -> np.ndarray:
    """2000 fresh strokes, the first ``light`` of them faded below the lightest training ink."""
    held, _ = _strokes(np.random.default_rng(3), 2000)
    scale = 0.5 * model.min_mass / held[:light].reshape(light, -1).sum(axis=1)
    held[:light] *= scale[:, None, None]
    return held


def test_images_too_light_to_read_count_among_the_flagged_share() -> None:
    """The service flags an image with too little ink whatever its density score, so the
    threshold leaves room for them: the share flagged on held-out images is the bounded one."""
    model, _ = _model()
    held = _light_and_ordinary(model, 10)
    threshold = ood.choose_threshold(model, held, 0.02, 0.95)
    fitted = dataclasses.replace(model, threshold=threshold)
    flagged = fitted.flags(fitted.input_scores(held))
    assert flagged[:10].all()
    assert flagged.sum() == ood.bounded_count(2000, 0.02, 0.05)


def test_more_light_held_out_images_than_may_be_flagged_leave_the_others_unflagged() -> None:
    model, _ = _model()
    held = _light_and_ordinary(model, 100)  # 5%, more than the 2% that may be flagged
    threshold = ood.choose_threshold(model, held, 0.02, 0.95)
    fitted = dataclasses.replace(model, threshold=threshold)
    light = held.reshape(len(held), -1).sum(axis=1) < model.min_mass  # the 100, and any other
    assert light[:100].all() and light.sum() < 110
    np.testing.assert_array_equal(fitted.flags(fitted.input_scores(held)), light)
    assert threshold == model.density_scores(held[~light]).max()
    # more flagged than the bound allows: the confidence recorded is what that count attains
    attained = ood.attained_confidence(len(held), 0.02, 0.95, int(light.sum()))
    assert attained < 0.001


def test_a_held_out_set_with_nothing_readable_is_an_error() -> None:
    model, _ = _model()
    with pytest.raises(ValueError, match="all 3 held-out images have too little ink"):
        ood.choose_threshold(model, np.zeros((3, 12, 12), np.float32), 0.02, 0.95)


def test_the_plain_quantile_with_light_images_near_it_stays_finite() -> None:
    model, _ = _model()
    held = _light_and_ordinary(model, 40)
    threshold = ood.choose_threshold(model, held[:1000], 0.04)  # the quantile next to the light
    assert np.isfinite(threshold)
