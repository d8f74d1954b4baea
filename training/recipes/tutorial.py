"""Version 1 of each model: the TensorFlow tutorials' recipes, exactly.

The image models take float32 ``[N, 28, 28]`` in ``[0, 1]``, the serving input
(models/README.md): the data set descriptor scales the pixels once, so no scaling layer is needed
and training and serving see the same values. The three recipes share one ``fit``; each says only
what differs (targets, extra ``fit`` options, the serving model).
"""

from __future__ import annotations

from typing import Any, ClassVar

import keras

from training.modeling.recipe import FitResult, Recipe, Split, history_lists
from training.recipes import register
from training.specs import IMAGE_SHAPE, PIMA_FEATURE_NAMES


def _image_input() -> keras.KerasTensor:
    return keras.Input(shape=IMAGE_SHAPE, dtype="float32", name="pixels")


class _Tutorial(Recipe):
    """One ``model.fit`` call over the training split with the recipe's epochs and batch size."""

    name: ClassVar[str] = "tutorial"

    def fit(
        self, model: keras.Model, split: Split, hp: dict[str, Any], *, verbose: int
    ) -> FitResult:
        history = model.fit(
            split.x_train,
            self.targets(split),
            epochs=hp["epochs"],
            batch_size=hp["batch_size"],
            verbose=verbose,
            **self.fit_options(hp),
        )
        return FitResult(self.serving_model(model), history_lists(history), len(history.epoch))

    def targets(self, split: Split) -> Any:
        return split.y_train

    def fit_options(self, hp: dict[str, Any]) -> dict[str, Any]:
        """Further ``model.fit`` keyword arguments (validation, callbacks)."""
        return {}

    def serving_model(self, model: keras.Model) -> keras.Model:
        """The model to export; it must return probabilities."""
        return model


@register
class MnistTutorial(_Tutorial):
    """Flatten → Dense(128, relu) → Dropout(0.2) → Dense(10, softmax); 5 + 5 epochs."""

    dataset = "mnist"
    description = "TensorFlow beginner quickstart MLP (5 + 5 epochs)"
    # The tutorial calls fit(epochs=5) twice; one call of 10 keeps the same optimizer state.
    defaults: ClassVar[dict[str, Any]] = {
        "epochs": 10,
        "batch_size": 32,
        "optimizer": "adam",
        "loss": "sparse_categorical_crossentropy",
        "hidden_units": 128,
        "dropout": 0.2,
    }

    def build(self, hp: dict[str, Any]) -> keras.Model:
        model = keras.Sequential(
            [
                _image_input(),
                keras.layers.Flatten(),
                keras.layers.Dense(hp["hidden_units"], activation="relu"),
                keras.layers.Dropout(hp["dropout"]),
                keras.layers.Dense(10, activation="softmax"),
            ],
            name="mnist_tutorial",
        )
        model.compile(optimizer=hp["optimizer"], loss=hp["loss"], metrics=["accuracy"])
        return model


@register
class FashionTutorial(_Tutorial):
    """Flatten → Dense(128, relu) → Dense(10) logits; exported with the softmax attached."""

    dataset = "fashion_mnist"
    description = "TensorFlow basic classification MLP (logits, 10 epochs, softmax attached)"
    defaults: ClassVar[dict[str, Any]] = {
        "epochs": 10,
        "batch_size": 32,
        "optimizer": "adam",
        "loss": "SparseCategoricalCrossentropy(from_logits=True)",
        "hidden_units": 128,
    }

    def build(self, hp: dict[str, Any]) -> keras.Model:
        model = keras.Sequential(
            [
                _image_input(),
                keras.layers.Flatten(),
                keras.layers.Dense(hp["hidden_units"], activation="relu"),
                keras.layers.Dense(10),
            ],
            name="fashion_tutorial_logits",
        )
        model.compile(
            optimizer=hp["optimizer"],
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        return model

    def serving_model(self, model: keras.Model) -> keras.Model:
        # The tutorial's probability_model: the trained model with a softmax attached.
        inputs = _image_input()
        return keras.Model(inputs, keras.layers.Softmax()(model(inputs)), name="fashion")


@register
class PimaTutorial(_Tutorial):
    """Dense(128) → Dense(128, relu) → Dropout(0.2) → Dense(1, sigmoid) on raw features."""

    dataset = "pima"
    description = "Tutorial MLP on raw, unscaled features with early stopping"
    defaults: ClassVar[dict[str, Any]] = {
        "epochs": 100,
        "batch_size": 32,
        "optimizer": "adam",
        "loss": "binary_crossentropy",
        "hidden_units": 128,
        "dropout": 0.2,
        "validation_split": 0.2,
        "early_stopping": {"monitor": "val_loss", "patience": 10},
        "feature_scaling": None,
    }

    def build(self, hp: dict[str, Any]) -> keras.Model:
        model = keras.Sequential(
            [
                keras.Input(shape=(len(PIMA_FEATURE_NAMES),), dtype="float32", name="features"),
                keras.layers.Dense(hp["hidden_units"]),
                keras.layers.Dense(hp["hidden_units"], activation="relu"),
                keras.layers.Dropout(hp["dropout"]),
                keras.layers.Dense(1, activation="sigmoid"),
            ],
            name="pima_tutorial",
        )
        model.compile(optimizer=hp["optimizer"], loss=hp["loss"], metrics=["accuracy"])
        return model

    def targets(self, split: Split) -> Any:
        return split.y_train.astype("float32")  # binary_crossentropy compares floats

    def fit_options(self, hp: dict[str, Any]) -> dict[str, Any]:
        return {
            "validation_split": hp["validation_split"],
            "callbacks": [keras.callbacks.EarlyStopping(**hp["early_stopping"])],
        }
