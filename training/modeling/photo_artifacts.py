"""Training-time augmentation that imitates what photo preprocessing hands the digit model.

A photo or drawing reaches the model only after the service's preprocessing has cut it down to a
28x28 frame, and that frame differs from an MNIST digit in ways the plain geometric augmentation
never shows: pens much thinner or bolder than MNIST's, bold strokes that come out hollow (only the
outline passed the ink threshold), a digit that is small and off-centre (specks or a line kept in
the crop widen the box), rotation, blur, faint ink, stray specks, fragments of ruled or squared
paper, strokes broken where the light was uneven, and grain. :class:`PhotoArtifacts` produces
each of these in 28x28 space from the training digits themselves, so no photo, font or test digit
is ever seen in training.

The layer is active only while training; at inference it is the identity, and the serving model
does not contain it at all (it sits in front of the classifier, like the geometric layers).
Every artifact is drawn per image with its own probability (``PHOTO_DEFAULTS``); with probability
``1 - apply`` an image is left as the geometric augmentation made it, so the model still sees
clean MNIST digits.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import tensorflow as tf

SIDE = 28
CENTRE = (SIDE - 1) / 2.0

# Per-image probabilities and ranges. Sizes are in pixels of the 28x28 frame.
PHOTO_DEFAULTS: dict[str, float] = {
    "apply": 0.5,  # share of images that get any photo artifact at all
    "bold": 0.2,  # dilate 3x3: a felt pen or a marker
    "thin": 0.15,  # erode 2x2: a fine pen
    "hollow": 0.05,  # outline of a bold stroke
    "small": 0.2,  # shrink to a small, off-centre digit
    "small_scale_min": 0.5,
    "rotate": 0.3,
    "rotate_degrees": 12.0,
    "blur": 0.3,
    "faint": 0.25,  # fainter ink (intensity scale and gamma)
    "specks": 0.3,
    "speck_rate_max": 0.01,  # share of pixels turned into specks
    "line": 0.15,  # a fragment of a ruled or squared line
    "cutout": 0.1,  # a stroke broken by a small gap
    "cutout_max": 6.0,
    "noise": 0.3,
    "noise_sigma_max": 0.08,
}


def merged_params(
    defaults: dict[str, float], overrides: dict[str, float] | bool, what: str
) -> dict[str, float]:
    """``defaults`` with a recipe's overrides; ``True`` means the defaults as they are."""
    params = dict(defaults)
    if isinstance(overrides, dict):
        unknown = set(overrides) - set(params)
        if unknown:
            raise ValueError(f"unknown {what} augmentation settings: {sorted(unknown)}")
        params.update({k: float(v) for k, v in overrides.items()})
    return params


def photo_params(overrides: dict[str, float] | bool) -> dict[str, float]:
    return merged_params(PHOTO_DEFAULTS, overrides, "photo")


def _dilate(x: tf.Tensor, size: int) -> tf.Tensor:
    return tf.nn.max_pool2d(x, size, 1, "SAME")


def _erode(x: tf.Tensor, size: int) -> tf.Tensor:
    return -tf.nn.max_pool2d(-x, size, 1, "SAME")


def _gaussian(sigma: float, radius: int) -> tf.Tensor:
    taps = [math.exp(-(i * i) / (2 * sigma * sigma)) for i in range(-radius, radius + 1)]
    total = sum(taps)
    k1 = tf.constant([t / total for t in taps], tf.float32)
    return tf.reshape(tf.tensordot(k1, k1, axes=0), (2 * radius + 1, 2 * radius + 1, 1, 1))


def _pick(mask: tf.Tensor, yes: tf.Tensor, no: tf.Tensor) -> tf.Tensor:
    """Per image: ``yes`` where ``mask`` (shape [B]) is true, else ``no``."""
    return tf.where(tf.reshape(mask, (-1, 1, 1, 1)), yes, no)


def projected(
    x: tf.Tensor, rows: list[tf.Tensor], output_shape: tf.Tensor, interpolation: str
) -> tf.Tensor:
    """Each image of ``x`` through its affine map (``rows``: the six coefficients, one value an
    image, mapping each output pixel to the input pixel it reads), zeros outside."""
    zeros = tf.zeros_like(rows[0])
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=x,
        transforms=tf.stack([*rows, zeros, zeros], axis=1),
        output_shape=output_shape,
        fill_value=0.0,
        interpolation=interpolation,
        fill_mode="CONSTANT",
    )


def _renormalise(x: tf.Tensor) -> tf.Tensor:
    peak = tf.reduce_max(x, axis=(1, 2, 3), keepdims=True)
    return tf.math.divide_no_nan(x, peak)


class RandomArtifacts(keras.layers.Layer):
    """What the training-only augmentation layers share: their parameters and seed (kept in the
    config), identity at inference, per-image random draws; a subclass names its blur kernels
    (``BLUR``: sigma and radius of each) and makes its artifacts in ``augment``."""

    BLUR: tuple[tuple[float, int], ...] = ()

    def __init__(self, params: dict[str, float], seed: int, **kwargs: Any) -> None:
        super().__init__(dtype="float32", **kwargs)
        self.params = dict(params)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._blur_kernels = tuple(_gaussian(sigma, radius) for sigma, radius in self.BLUR)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "params": self.params, "seed": self.seed}

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def call(self, x: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        if not training:
            return x
        return self.augment(tf.convert_to_tensor(x, tf.float32))

    def augment(self, x: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    # -- drawing random numbers ------------------------------------------------------------------

    def _uniform(self, shape: Any, low: float = 0.0, high: float = 1.0) -> tf.Tensor:
        return keras.random.uniform(shape, low, high, seed=self.seed_generator)

    def _chance(self, batch: tf.Tensor, key: str) -> tf.Tensor:
        return self._uniform((batch,)) < self.params[key]


class PhotoArtifacts(RandomArtifacts):
    """``[B, 28, 28, 1]`` in [0, 1] → the same batch with photo-preprocessing artifacts."""

    BLUR = ((0.7, 1), (1.2, 2))

    # -- the artifacts ---------------------------------------------------------------------------

    def augment(self, x: tf.Tensor) -> tf.Tensor:
        p = self.params
        batch = tf.shape(x)[0]
        apply = self._chance(batch, "apply")
        out = x

        pen = self._uniform((batch,))
        out = _pick(pen < p["bold"], _dilate(out, 3), out)
        out = _pick((pen >= p["bold"]) & (pen < p["bold"] + p["thin"]), _erode(out, 2), out)
        bold = _dilate(_dilate(out, 3), 3)
        out = _pick(self._chance(batch, "hollow"), bold - _erode(bold, 3), out)

        out = self._geometry(out, batch)

        sharp, soft = (tf.nn.conv2d(out, k, 1, "SAME") for k in self._blur_kernels)
        blur = self._uniform((batch,))
        blurred = _renormalise(_pick(blur < p["blur"] / 2, soft, sharp))
        out = _pick(blur < p["blur"], blurred, out)

        scale = tf.reshape(self._uniform((batch,), 0.45, 1.0), (-1, 1, 1, 1))
        gamma = tf.reshape(tf.exp(self._uniform((batch,), -0.5, 0.5)), (-1, 1, 1, 1))
        faint = scale * tf.pow(tf.clip_by_value(out, 0.0, 1.0), gamma)
        out = _pick(self._chance(batch, "faint"), faint, out)

        out = _pick(self._chance(batch, "cutout"), out * (1.0 - self._cutout(batch)), out)
        out = _pick(self._chance(batch, "specks"), tf.maximum(out, self._specks(batch)), out)
        out = _pick(self._chance(batch, "line"), tf.maximum(out, self._line(batch)), out)

        sigma = tf.reshape(self._uniform((batch,), 0.0, p["noise_sigma_max"]), (-1, 1, 1, 1))
        grain = keras.random.normal(tf.shape(out), seed=self.seed_generator) * sigma
        out = _pick(self._chance(batch, "noise"), out + grain, out)

        return _pick(apply, tf.clip_by_value(out, 0.0, 1.0), x)

    def _geometry(self, x: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
        """Rotation, and a smaller digit placed off-centre (one projective transform each)."""
        p = self.params
        small = self._chance(batch, "small")
        scale = tf.where(small, self._uniform((batch,), p["small_scale_min"], 0.85), 1.0)
        room = (1.0 - scale) * SIDE / 2.0  # how far the shrunk digit can move and stay inside
        shift_x = self._uniform((batch,), -1.0, 1.0) * room
        shift_y = self._uniform((batch,), -1.0, 1.0) * room
        limit = math.radians(p["rotate_degrees"])
        angle = tf.where(self._chance(batch, "rotate"), self._uniform((batch,), -limit, limit), 0.0)
        # ImageProjectiveTransform maps each output pixel to the input pixel it reads, so the
        # matrix is the inverse of "rotate by angle, scale, then shift" about the centre.
        cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
        ox, oy = CENTRE + shift_x, CENTRE + shift_y
        a0, a1 = cos, sin
        b0, b1 = -sin, cos
        a2 = CENTRE - a0 * ox - a1 * oy
        b2 = CENTRE - b0 * ox - b1 * oy
        return projected(x, [a0, a1, a2, b0, b1, b2], tf.constant([SIDE, SIDE]), "BILINEAR")

    def _grid(self) -> tuple[tf.Tensor, tf.Tensor]:
        idx = tf.range(SIDE, dtype=tf.float32)
        return tf.reshape(idx, (1, SIDE, 1, 1)), tf.reshape(idx, (1, 1, SIDE, 1))

    def _box(self, y0: tf.Tensor, y1: tf.Tensor, x0: tf.Tensor, x1: tf.Tensor) -> tf.Tensor:
        rows, cols = self._grid()

        def col(v: tf.Tensor) -> tf.Tensor:
            return tf.reshape(v, (-1, 1, 1, 1))

        inside = (rows >= col(y0)) & (rows < col(y1)) & (cols >= col(x0)) & (cols < col(x1))
        return tf.cast(inside, tf.float32)

    def _cutout(self, batch: tf.Tensor) -> tf.Tensor:
        """A small rectangle near the middle, where strokes are, that the gap erases."""
        size = self._uniform((batch,), 2.0, self.params["cutout_max"])
        y0 = self._uniform((batch,), 6.0, 22.0) - size / 2
        x0 = self._uniform((batch,), 6.0, 22.0) - size / 2
        return self._box(y0, y0 + size, x0, x0 + size)

    def _specks(self, batch: tf.Tensor) -> tf.Tensor:
        rate = tf.reshape(
            self._uniform((batch,), 0.0, self.params["speck_rate_max"]), (-1, 1, 1, 1)
        )
        dots = tf.cast(self._uniform((batch, SIDE, SIDE, 1)) < rate, tf.float32)
        dots = _pick(self._uniform((batch,)) < 0.4, _dilate(dots, 2), dots)
        return dots * tf.reshape(self._uniform((batch,), 0.3, 1.0), (-1, 1, 1, 1))

    def _line(self, batch: tf.Tensor) -> tf.Tensor:
        """A one-pixel horizontal or vertical segment of random position, length and strength."""
        at = tf.floor(self._uniform((batch,), 0.0, float(SIDE)))
        start = self._uniform((batch,), -10.0, 20.0)
        end = start + self._uniform((batch,), 6.0, 40.0)
        across = self._box(at, at + 1, start, end)
        down = self._box(start, end, at, at + 1)
        line = _pick(self._uniform((batch,)) < 0.5, across, down)
        return line * tf.reshape(self._uniform((batch,), 0.2, 0.9), (-1, 1, 1, 1))
