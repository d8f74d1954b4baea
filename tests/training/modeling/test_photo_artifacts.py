"""The photo-artifact augmentation: identity at inference, each artifact does what it says."""

from __future__ import annotations

import numpy as np
import pytest

from training.modeling.photo_artifacts import PHOTO_DEFAULTS, PhotoArtifacts, photo_params

ARTIFACTS = ("bold", "thin", "hollow", "small", "rotate", "blur", "faint", "specks", "line")
ARTIFACTS += ("cutout", "noise")


def _digits(batch: int = 8) -> np.ndarray:
    """A thick ring (a synthetic '0', 4 px stroke) centred in each frame, [B, 28, 28, 1]."""
    yy, xx = np.mgrid[0:28, 0:28]
    r = np.hypot(yy - 13.5, xx - 13.5)
    ring = ((r >= 5) & (r <= 9)).astype(np.float32)
    return np.repeat(ring[None, :, :, None], batch, axis=0)


def _only(name: str | None, **extra: float) -> dict[str, float]:
    """Every artifact off except ``name`` (always on), applied to every image."""
    params = {key: 0.0 for key in ARTIFACTS}
    params.update({"apply": 1.0, **extra})
    if name is not None:
        params[name] = 1.0
    return photo_params(params)


def _run(params: dict[str, float], x: np.ndarray, seed: int = 0) -> np.ndarray:
    return np.asarray(PhotoArtifacts(params, seed=seed)(x, training=True))


def test_inference_is_the_identity() -> None:
    x = _digits()
    out = np.asarray(PhotoArtifacts(photo_params(True), seed=0)(x, training=False))
    np.testing.assert_array_equal(out, x)


def test_training_keeps_shape_and_range_and_changes_images() -> None:
    x = _digits(64)
    out = _run(photo_params(True), x)
    assert out.shape == x.shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    changed = np.abs(out - x).reshape(len(x), -1).max(axis=1) > 1e-6
    # about the ``apply`` share of images gets an artifact, the rest are left clean
    assert abs(changed.mean() - PHOTO_DEFAULTS["apply"]) < 0.2


def test_nothing_applied_leaves_images_alone() -> None:
    x = _digits()
    np.testing.assert_array_equal(_run(photo_params({"apply": 0.0}), x), x)


def test_pen_width() -> None:
    x = _digits()
    assert _run(_only("bold"), x).sum() > 1.2 * x.sum()
    thin = _run(_only("thin"), x)
    assert 0.3 * x.sum() < thin.sum() < 0.9 * x.sum()


def test_hollow_strokes_keep_the_outline_only() -> None:
    out = _run(_only("hollow"), _digits())
    # the middle of the (bolded) stroke is empty, its edge is ink
    assert out[:, 13, 13 + 7, 0].max() == 0.0
    assert out[:, 13, 13 + 11, 0].min() > 0.5


def test_small_digits_shrink_and_move() -> None:
    x = _digits(32)
    out = _run(_only("small"), x)
    assert np.all(out.sum(axis=(1, 2, 3)) < 0.8 * x.sum(axis=(1, 2, 3)))
    centres = [np.argwhere(img[..., 0] > 0.5).mean(axis=0) for img in out]
    assert np.std(centres, axis=0).min() > 0.5  # not all in the middle


def test_blur_softens_edges_but_keeps_full_contrast() -> None:
    x = _digits()
    out = _run(_only("blur"), x)
    grey = (out > 0.05) & (out < 0.95)
    assert grey.sum() > 2 * ((x > 0.05) & (x < 0.95)).sum()
    np.testing.assert_allclose(out.max(axis=(1, 2, 3)), 1.0, atol=1e-5)


def test_faint_ink_is_darker() -> None:
    x = _digits()
    out = _run(_only("faint"), x)
    assert np.all(out.max(axis=(1, 2, 3)) <= 1.0) and out.sum() < 0.95 * x.sum()


def test_specks_lines_and_noise_add_ink_away_from_the_digit() -> None:
    x = _digits(32)
    background = x == 0
    for name in ("specks", "line", "noise"):
        extra = {"speck_rate_max": 0.02} if name == "specks" else {}
        out = _run(_only(name, **extra), x)
        added = (out > 0.05) & background
        assert added.reshape(len(x), -1).any(axis=1).mean() > 0.5, name
        # the digit itself stays
        assert out[~background].mean() > 0.8, name


def test_cutout_erases_part_of_the_strokes() -> None:
    x = _digits(32)
    out = _run(_only("cutout"), x)
    assert out.sum() < x.sum() and np.all(out <= x)


def test_rotation_moves_ink_of_an_asymmetric_shape() -> None:
    x = np.zeros((16, 28, 28, 1), np.float32)
    x[:, 4:24, 12:16, 0] = 1.0  # a vertical bar: a '1'
    out = _run(_only("rotate", rotate_degrees=12.0), x)
    moved = np.abs(out - x).reshape(len(x), -1).sum(axis=1)
    assert (moved > 1.0).mean() > 0.7


def test_same_seed_same_artifacts() -> None:
    x = _digits(16)
    np.testing.assert_array_equal(_run(photo_params(True), x, 3), _run(photo_params(True), x, 3))


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown"):
        photo_params({"sharpen": 1.0})
    assert photo_params(True) == PHOTO_DEFAULTS
