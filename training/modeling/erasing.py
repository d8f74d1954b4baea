"""Random erasing: a random rectangle of some training images replaced by noise.

A garment partly hidden (a fold, a strap, a patch of another print) must still be recognised by
the rest of its shape, so the model cannot lean on one small region (a collar, a heel) alone. As
in Zhong et al., *Random Erasing Data Augmentation*: per image, with probability ``rate``, one
rectangle covering a share of the image drawn from ``area`` with an aspect ratio (height over
width) between ``1 / aspect`` and ``aspect`` is filled with uniform noise in [0, 1].

Active only while training; at inference the layer is the identity, and the serving model does
not contain it (it sits in front of the classifier, like the other augmentation layers).
"""

from __future__ import annotations

import math
from typing import Any

import tensorflow as tf

from training.modeling.augmentation import TrainingAugmentation

ERASE_DEFAULTS: dict[str, Any] = {"rate": 0.5, "area": [0.02, 0.3], "aspect": 3.0}


def erase_params(overrides: dict[str, Any] | bool) -> dict[str, Any]:
    """The defaults with a recipe's overrides; ``True`` means the defaults as they are."""
    params = dict(ERASE_DEFAULTS)
    if isinstance(overrides, dict):
        unknown = set(overrides) - set(params)
        if unknown:
            raise ValueError(f"unknown erasing settings: {sorted(unknown)}")
        params.update(overrides)
    low, high = params["area"]
    if not 0.0 < low <= high <= 1.0 or not 0.0 <= params["rate"] <= 1.0 or params["aspect"] < 1:
        raise ValueError(f"invalid erasing settings: {params}")
    return params


class RandomErasing(TrainingAugmentation):
    """``[B, H, W, C]`` in [0, 1] → the same batch, some images with one rectangle of noise."""

    def __init__(self, params: dict[str, Any] | bool, seed: int, **kwargs: Any) -> None:
        super().__init__(erase_params(params), seed, **kwargs)

    def augment(self, x: tf.Tensor) -> tf.Tensor:
        p = self.params
        batch = tf.shape(x)[0]
        height = tf.cast(tf.shape(x)[1], tf.float32)
        width = tf.cast(tf.shape(x)[2], tf.float32)
        area = self._uniform((batch,), *p["area"]) * height * width
        log_aspect = math.log(p["aspect"])
        ratio = tf.exp(self._uniform((batch,), -log_aspect, log_aspect))
        h = tf.minimum(tf.sqrt(area * ratio), height)
        w = tf.minimum(tf.sqrt(area / ratio), width)
        y0 = self._uniform((batch,)) * (height - h)
        x0 = self._uniform((batch,)) * (width - w)
        rows = tf.reshape(tf.range(height), (1, -1, 1, 1))
        cols = tf.reshape(tf.range(width), (1, 1, -1, 1))

        def per_image(v: tf.Tensor) -> tf.Tensor:
            return tf.reshape(v, (-1, 1, 1, 1))

        inside = (
            (rows >= per_image(y0))
            & (rows < per_image(y0 + h))
            & (cols >= per_image(x0))
            & (cols < per_image(x0 + w))
        )
        chosen = per_image(self._uniform((batch,)) < p["rate"])
        noise = self._uniform(tf.shape(x))
        return tf.where(inside & chosen, noise, x)
