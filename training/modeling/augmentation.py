"""The base of the project's own augmentation layers: seeded, float32, identity at inference.

They sit in the training model in front of the classifier, so the serving model never holds
them; ``training=False`` (evaluation, export) passes images through unchanged.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import keras
import tensorflow as tf


class TrainingAugmentation(keras.layers.Layer):
    """``[B, H, W, C]`` in [0, 1] → the same shape; :meth:`augment` runs only in training."""

    def __init__(self, params: dict[str, Any], seed: int, **kwargs: Any) -> None:
        super().__init__(dtype="float32", **kwargs)
        self.params = dict(params)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "params": self.params, "seed": self.seed}

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def call(self, x: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        if not training:
            return x
        return self.augment(tf.convert_to_tensor(x, tf.float32))

    @abstractmethod
    def augment(self, x: tf.Tensor) -> tf.Tensor:
        """The random change of one training batch."""

    def _uniform(self, shape: Any, low: float = 0.0, high: float = 1.0) -> tf.Tensor:
        return keras.random.uniform(shape, low, high, seed=self.seed_generator)
