"""Version 1 of each model: the tutorial's recipes, exactly (issue 2, section 3).

Pixel scaling (uint8 / 255) happens once, in ``training.trainer.prepare_split``; the models here
take float32 ``[N, 28, 28]`` in ``[0, 1]``, which is also the serving input (models/README.md), so
no scaling layer is needed and training and serving see the same values.
"""

from __future__ import annotations

from typing import Any, ClassVar

import keras

from training.recipes.base import FitResult, Recipe, Split, history_lists, register
from training.specs import IMAGE_SHAPE, PIMA_FEATURE_NAMES


def _image_input() -> keras.KerasTensor:
    return keras.Input(shape=IMAGE_SHAPE, dtype="float32", name="pixels")


@register
class MnistTutorial(Recipe):
    """Flatten → Dense(128, relu) → Dropout(0.2) → Dense(10, softmax); 5 + 5 epochs."""

    name = "tutorial"
    dataset = "mnist"
    description = "TensorFlow beginner quickstart MLP (5 + 5 epochs)"
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

    def fit(
        self, model: keras.Model, split: Split, hp: dict[str, Any], *, verbose: int
    ) -> FitResult:
        # The tutorial calls fit(epochs=5) twice; one call of 10 keeps the same optimizer state.
        history = model.fit(
            split.x_train,
            split.y_train,
            epochs=hp["epochs"],
            batch_size=hp["batch_size"],
            verbose=verbose,
        )
        return FitResult(model, history_lists(history), len(history.epoch))


@register
class FashionTutorial(Recipe):
    """Flatten → Dense(128, relu) → Dense(10) logits; exported with the softmax attached."""

    name = "tutorial"
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

    def fit(
        self, model: keras.Model, split: Split, hp: dict[str, Any], *, verbose: int
    ) -> FitResult:
        history = model.fit(
            split.x_train,
            split.y_train,
            epochs=hp["epochs"],
            batch_size=hp["batch_size"],
            verbose=verbose,
        )
        # The tutorial's probability_model: the trained model with a softmax attached.
        inputs = _image_input()
        serving = keras.Model(inputs, keras.layers.Softmax()(model(inputs)), name="fashion")
        return FitResult(serving, history_lists(history), len(history.epoch))


@register
class PimaTutorial(Recipe):
    """Dense(128) → Dense(128, relu) → Dropout(0.2) → Dense(1, sigmoid) on raw features."""

    name = "tutorial"
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

    def fit(
        self, model: keras.Model, split: Split, hp: dict[str, Any], *, verbose: int
    ) -> FitResult:
        early_stop = keras.callbacks.EarlyStopping(**hp["early_stopping"])
        history = model.fit(
            split.x_train,
            split.y_train.astype("float32"),
            epochs=hp["epochs"],
            batch_size=hp["batch_size"],
            validation_split=hp["validation_split"],
            callbacks=[early_stop],
            verbose=verbose,
        )
        return FitResult(model, history_lists(history), len(history.epoch))
