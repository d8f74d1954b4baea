"""The small CNN behind the ``best`` image recipes, trained fast and served in float32.

Training runs under the ``mixed_bfloat16`` dtype policy (faster on CPUs with native bfloat16
arithmetic); the variables stay float32, so after training the same architecture is rebuilt in
plain float32 and the weights are copied over. The serving model
therefore holds no bfloat16 ops, converts to TFLite and matches its SavedModel exactly.

Augmentation layers sit only in the training model, in front of the classifier; the serving model
is the bare classifier.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers
from sklearn.model_selection import train_test_split

from training.modeling.garment_photo import GarmentPhoto, garment_params
from training.modeling.photo_artifacts import PhotoArtifacts, photo_params
from training.specs import IMAGE_SHAPE

TRAIN_POLICY = "mixed_bfloat16"
SERVE_POLICY = "float32"
CLASSIFIER = "classifier"


def _conv(
    x: Any, filters: int, padding: str, policy: str, kernel: int = 3, strides: int = 1
) -> Any:
    x = layers.Conv2D(
        filters, kernel, strides=strides, padding=padding, use_bias=False, dtype=policy
    )(x)
    x = layers.BatchNormalization(dtype=policy)(x)
    return layers.ReLU(dtype=policy)(x)


def build_classifier(hp: dict[str, Any], policy: str = SERVE_POLICY) -> keras.Model:
    """``[N, 28, 28]`` pixels in [0, 1] → softmax over 10 classes.

    One block of conv-BN-ReLU x ``convs`` (2 each unless given) + max-pool per entry of
    ``widths`` (its filter count), dropout, Dense(``dense_units``)-BN-ReLU, dropout, Dense(10) and
    a float32 softmax. ``padding`` is one Keras padding for every convolution, or one per block.
    ``strides`` (1 each unless given) and ``kernels`` (3 each) are per block: a block of stride 2
    halves the resolution in its first convolution instead of pooling after its last.

    Full resolution is the costly place: a convolution there, on one input channel, runs in
    float (too few weights for dynamic-range quantisation) over every pixel, and with few
    channels a second one there was most of a call's time in LiteRT (not sped up by
    quantisation, nor by making it depthwise-separable). A strided first convolution computes a
    quarter of the outputs and skips the pool.
    """
    drop = hp["dropout"]
    widths = hp["widths"]
    convs = hp.get("convs", [2] * len(widths))
    paddings = hp["padding"] if isinstance(hp["padding"], list) else [hp["padding"]] * len(widths)
    strides = hp.get("strides", [1] * len(widths))
    kernels = hp.get("kernels", [3] * len(widths))
    inputs = keras.Input(shape=IMAGE_SHAPE, dtype="float32", name="pixels")
    x = layers.Reshape((*IMAGE_SHAPE, 1), dtype=policy)(inputs)
    for filters, count, padding, stride, kernel in zip(
        widths, convs, paddings, strides, kernels, strict=True
    ):
        for i in range(count):
            x = _conv(x, filters, padding, policy, kernel, stride if i == 0 else 1)
        if stride == 1:
            x = layers.MaxPooling2D(dtype=policy)(x)
    x = layers.Flatten(dtype=policy)(x)
    x = layers.Dropout(drop, dtype=policy)(x)
    x = layers.Dense(hp["dense_units"], use_bias=False, dtype=policy)(x)
    x = layers.BatchNormalization(dtype=policy)(x)
    x = layers.ReLU(dtype=policy)(x)
    x = layers.Dropout(drop, dtype=policy)(x)
    x = layers.Dense(10, dtype=policy)(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=CLASSIFIER)


def _augmentation(hp: dict[str, Any], seed: int) -> list[keras.layers.Layer]:
    """Random changes, active only while training (Keras skips them at inference): geometric
    ones, then the artifacts of photo preprocessing: a digit's (``photo``) or a garment's
    (``garment``)."""
    aug = hp["augment"]
    steps: list[keras.layers.Layer] = []
    if aug.get("flip"):
        steps.append(layers.RandomFlip("horizontal", seed=seed, dtype="float32"))
    if aug.get("rotation"):
        steps.append(layers.RandomRotation(aug["rotation"], fill_mode="constant", seed=seed + 1))
    if aug.get("translation"):
        t = aug["translation"]
        steps.append(layers.RandomTranslation(t, t, fill_mode="constant", seed=seed + 2))
    if aug.get("zoom"):
        steps.append(layers.RandomZoom(aug["zoom"], fill_mode="constant", seed=seed + 3))
    if aug.get("photo"):
        steps.append(PhotoArtifacts(photo_params(aug["photo"]), seed=seed + 4))
    if aug.get("garment"):
        steps.append(GarmentPhoto(garment_params(aug["garment"]), seed=seed + 5))
    return steps


def build_training_model(hp: dict[str, Any], train_examples: int, seed: int = 42) -> keras.Model:
    """Augmentation → classifier (bfloat16 compute), compiled with AdamW and cosine decay."""
    inputs = keras.Input(shape=IMAGE_SHAPE, dtype="float32", name="pixels")
    x = layers.Reshape((*IMAGE_SHAPE, 1), dtype="float32")(inputs)
    for step in _augmentation(hp, seed):
        x = step(x)
    x = layers.Reshape(IMAGE_SHAPE, dtype="float32")(x)
    classifier = build_classifier(hp, policy=TRAIN_POLICY if hp["bfloat16"] else SERVE_POLICY)
    model = keras.Model(inputs, classifier(x), name="train_with_augmentation")
    steps = int(np.ceil(train_examples / hp["batch_size"])) * hp["epochs"]
    warmup = max(1, int(steps * hp["warmup_fraction"]))
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=hp["learning_rate"] / 10,
        decay_steps=max(1, steps - warmup),
        alpha=0.01,
        warmup_target=hp["learning_rate"],
        warmup_steps=warmup,
    )
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=hp["weight_decay"])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def validation_split(
    x: np.ndarray, y: np.ndarray, size: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A stratified hold-out from the training data: (x_train, y_train, x_val, y_val).

    ``size`` shrinks to a tenth of the data for small (smoke-test) subsets.
    """
    size = min(size, max(len(np.unique(y)), len(x) // 10))
    x_tr, x_val, y_tr, y_val = train_test_split(x, y, test_size=size, stratify=y, random_state=seed)
    return x_tr, y_tr, x_val, y_val


def serving_copy(training_model: keras.Model, hp: dict[str, Any]) -> keras.Model:
    """The trained classifier rebuilt in float32 with the trained weights, without augmentation."""
    serving = build_classifier(hp, policy=SERVE_POLICY)
    serving.set_weights(training_model.get_layer(CLASSIFIER).get_weights())
    return serving
