"""The garment-photo augmentation: identity at inference, each step does what it says."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from training.modeling.garment_photo import (
    CANVAS,
    GARMENT_DEFAULTS,
    TONE_FLOOR,
    GarmentPhoto,
    filled,
    garment_params,
)

STEPS = ("ground", "light", "shadow", "floor", "rotate", "drop_shadow", "bar", "specks")
STEPS += ("blur", "noise", "blocks")


def _items(batch: int = 8) -> np.ndarray:
    """A synthetic 'bag' [B, 28, 28, 1]: a body filling the frame's width, dark (0.9) on its
    left half and pale (0.3) on its right, under a handle (a ring) enclosing a hole."""
    x = np.zeros((28, 28), np.float32)
    x[12:26, 0:14] = 0.9
    x[12:26, 14:28] = 0.3
    yy, xx = np.mgrid[0:28, 0:28]
    r = np.hypot(yy - 10.0, xx - 13.5)
    x[(r >= 6) & (r <= 8) & (yy < 12)] = 0.6
    return np.repeat(x[None, :, :, None], batch, axis=0)


def _only(*names: str, **extra: float) -> dict[str, float]:
    """Every step off except ``names`` (always on), applied to every image."""
    params = {key: 0.0 for key in STEPS}
    params.update({"apply": 1.0, **{name: 1.0 for name in names}, **extra})
    return garment_params(params)


def _run(params: dict[str, float], x: np.ndarray, seed: int = 0) -> np.ndarray:
    return np.asarray(GarmentPhoto(params, seed=seed)(x, training=True))


def _box(img: np.ndarray, level: float = 0.05) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(img.max(axis=1) > level)
    cols = np.flatnonzero(img.max(axis=0) > level)
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def test_inference_is_the_identity() -> None:
    x = _items()
    out = np.asarray(GarmentPhoto(garment_params(True), seed=0)(x, training=False))
    np.testing.assert_array_equal(out, x)


def test_training_keeps_shape_and_range_and_changes_a_share_of_images() -> None:
    x = _items(64)
    out = _run(garment_params(True), x)
    assert out.shape == x.shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    changed = np.abs(out - x).reshape(len(x), -1).max(axis=1) > 1e-6
    assert abs(changed.mean() - GARMENT_DEFAULTS["apply"]) < 0.2


def test_nothing_applied_leaves_images_alone() -> None:
    x = _items()
    np.testing.assert_array_equal(_run(garment_params({"apply": 0.0}), x), x)


def test_filled_fills_holes_only() -> None:
    ring = _items(1)[..., :1] > 0
    mask = tf.constant(ring.astype(np.float32))
    out = np.asarray(filled(mask))[0, ..., 0]
    assert out[10, 13] == 1.0  # inside the handle
    assert out[1, 1] == 0.0 and out[20, 0] == 1.0  # the ground; the body
    assert out.sum() > ring.sum()


def test_against_white_the_item_keeps_its_tones_and_the_silhouette_its_floor() -> None:
    out = _run(_only("floor"), _items())[0, ..., 0]
    assert out[20, 5] > out[20, 20] > 0  # the dark half brightest, as Fashion-MNIST draws it
    # the handle's hole is inside the silhouette: at least the floor, the ground outside zero
    assert out[10, 13] >= TONE_FLOOR - 1e-4
    assert out[1, 1] == 0.0


def test_against_a_dark_ground_the_tones_are_reversed() -> None:
    # the ground's lightness is drawn per image: one darker than most of the item reverses
    # its tones (the pale half brighter), a lighter one keeps them
    out = _run(_only("ground", "floor", ground_min=0.0), _items(32), seed=2)
    reversed_ = out[:, 20, 20, 0] > out[:, 20, 5, 0]
    assert 0.1 < reversed_.mean() < 0.9
    assert out.min() >= 0.0 and out.max() <= 1.0
    light = _run(_only("ground", "floor", ground_min=0.9), _items(32), seed=2)
    assert np.all(light[:, 20, 5, 0] > light[:, 20, 20, 0])


def test_uneven_light_scales_tones_across_the_item() -> None:
    x = np.zeros((16, 28, 28, 1), np.float32)
    x[:, 2:26, 2:26] = 0.8  # an even item
    out = _run(_only("light", light_depth_max=0.5), x)
    inside = out[:, 4:24, 4:24, 0].reshape(16, -1)
    assert np.median(inside.max(axis=1) - inside.min(axis=1)) > 0.1
    flat = _run(_only(), x)[:, 4:24, 4:24, 0].reshape(16, -1)
    assert np.all(flat.max(axis=1) - flat.min(axis=1) < 0.02)


def test_turned_items_are_framed_again_with_their_longer_side_28() -> None:
    x = np.zeros((16, 28, 28, 1), np.float32)
    x[:, :, 10:18] = 0.8  # a tall bar from top to bottom
    out = _run(_only("rotate", rotate_degrees=25.0), x)
    for img in out[..., 0]:
        r0, r1, c0, c1 = _box(img)
        assert max(r1 - r0, c1 - c0) >= 26  # framed: the longer side fills the frame
    widths = [_box(img)[3] - _box(img)[2] for img in out[..., 0]]
    assert np.mean(widths) > 9  # turned: wider than the upright bar


def test_a_drop_shadow_is_kept_and_shrinks_the_item() -> None:
    x = _items(16)
    out = _run(_only("drop_shadow"), x)
    plain = _run(_only(), x)
    # the item proper (well above the shadow's tones) takes fewer pixels, the frame more
    assert (out > 0.5).sum() < (plain > 0.5).sum()
    assert (out > 0.05).sum() > 0.9 * (plain > 0.05).sum()


def test_a_hangers_bar_lies_just_above_the_item_over_its_middle() -> None:
    canvas = np.zeros((8, CANVAS, CANVAS, 1), np.float32)
    canvas[:, 12:36, 10:30] = 1.0  # a dress in the turning canvas: top at row 12
    layer = GarmentPhoto(_only("bar"), seed=0)
    bar = np.asarray(layer._bar(tf.constant(canvas), 8))[..., 0]
    for line in bar:
        rows, cols = np.nonzero(line)
        assert rows.size and rows.max() < 12 and rows.min() >= 12 - 9
        assert cols.min() >= 10 - 2 and cols.max() <= 30 + 2
    out = _run(_only("bar"), _items(8))
    assert not np.array_equal(out, _run(_only(), _items(8)))


def test_blur_noise_and_blocks_change_the_picture_but_not_the_ground_far_off() -> None:
    x = np.zeros((8, 28, 28, 1), np.float32)
    x[:, 5:24, 0:28] = 0.7
    x[:, 11:14, 11:14] = 0.1  # detail that blur and blocks smear (odd: across 2x2 blocks)
    for step in ("blur", "noise", "blocks"):
        out = _run(_only(step), x)
        base = _run(_only(), x)
        assert np.abs(out - base).max() > 0.01, step
        assert np.all(out[:, 0, :, 0] < 0.2), step


def test_same_seed_same_pictures() -> None:
    x = _items(16)
    params = garment_params({"apply": 1.0})
    np.testing.assert_array_equal(_run(params, x, 3), _run(params, x, 3))


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown"):
        garment_params({"sharpen": 1.0})
    assert garment_params(True) == GARMENT_DEFAULTS
