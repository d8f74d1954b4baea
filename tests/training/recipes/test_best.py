"""The ``best`` recipes: registry, architecture, real-data runs and export with parity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from training.modeling import cnn
from training.modeling.garment_photo import GarmentPhoto
from training.modeling.photo_artifacts import PhotoArtifacts, photo_params
from training.recipes import Split, get_recipe, recipe_names
from training.recipes.best import PimaBest
from training.specs import DATASETS, ImageClassificationSpec, get_spec

IMAGE_DATASETS = [name for name in DATASETS if isinstance(get_spec(name), ImageClassificationSpec)]
SUBSET = 512
AUGMENTATION = (
    keras.layers.RandomFlip,
    keras.layers.RandomRotation,
    keras.layers.RandomTranslation,
    keras.layers.RandomZoom,
    PhotoArtifacts,
    GarmentPhoto,
)


def _all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    found: list[keras.layers.Layer] = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, keras.Model):
            found.extend(_all_layers(layer))
    return found


def test_every_dataset_has_a_best_recipe() -> None:
    for dataset in DATASETS:
        assert "best" in recipe_names(dataset)
        recipe = get_recipe(dataset, "best")
        assert recipe.dataset == dataset and recipe.description


@pytest.mark.parametrize("name", ["best", "fast", "lean"])
@pytest.mark.parametrize("dataset", IMAGE_DATASETS)
def test_image_training_model_augments_but_serving_model_does_not(dataset: str, name: str) -> None:
    recipe = get_recipe(dataset, name)
    hp = recipe.hyperparameters(epochs=2)
    assert hp["epochs"] == 2
    training = recipe.build(hp)
    assert training.input_shape == (None, 28, 28)
    assert any(isinstance(layer, AUGMENTATION) for layer in _all_layers(training))
    classifier = training.get_layer(cnn.CLASSIFIER)
    convs = [layer for layer in classifier.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == sum(hp.get("convs", [2] * len(hp["widths"])))
    assert {c.dtype_policy.compute_dtype for c in convs} == {"bfloat16"}

    serving = cnn.serving_copy(training, hp)
    assert serving.input_shape == (None, 28, 28) and serving.output_shape == (None, 10)
    assert not any(isinstance(layer, AUGMENTATION) for layer in _all_layers(serving))
    assert {layer.dtype_policy.compute_dtype for layer in serving.layers} == {"float32"}
    x = np.random.default_rng(0).random((4, 28, 28), dtype=np.float32)
    probs = np.asarray(serving(x, training=False))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # The serving copy carries the trained weights: same outputs as the bf16 classifier, up to
    # bfloat16 rounding.
    np.testing.assert_allclose(probs, np.asarray(classifier(x, training=False)), atol=0.05)


def test_mnist_best_learns_from_photo_artifacts_but_serves_without_them() -> None:
    recipe = get_recipe("mnist", "best")
    hp = recipe.hyperparameters(epochs=1)
    training = recipe.build(hp)
    assert any(isinstance(layer, PhotoArtifacts) for layer in _all_layers(training))
    serving = cnn.serving_copy(training, hp)
    assert not any(isinstance(layer, PhotoArtifacts) for layer in _all_layers(serving))


def test_fashion_lean_photo_is_the_lean_classifier_trained_on_garment_photos() -> None:
    lean, photo = get_recipe("fashion_mnist", "lean"), get_recipe("fashion_mnist", "lean-photo")
    hp_lean, hp_photo = lean.hyperparameters(epochs=1), photo.hyperparameters(epochs=1)
    assert photo.description and hp_photo["augment"]["garment"]["apply"] < 0.5
    training = photo.build(hp_photo)
    assert any(isinstance(layer, GarmentPhoto) for layer in _all_layers(training))
    assert not any(isinstance(layer, GarmentPhoto) for layer in _all_layers(lean.build(hp_lean)))
    # same classifier, so the same latency once served
    served_photo, served_lean = cnn.build_classifier(hp_photo), cnn.build_classifier(hp_lean)
    assert [type(layer) for layer in served_photo.layers] == [
        type(layer) for layer in served_lean.layers
    ]
    assert served_photo.count_params() == served_lean.count_params()
    serving = cnn.serving_copy(training, hp_photo)
    assert not any(isinstance(layer, GarmentPhoto) for layer in _all_layers(serving))


@pytest.fixture(scope="module")
def real_splits() -> dict[str, Split]:
    from training.data.errors import DataUnavailable
    from training.trainer import load_dataset

    try:
        return {ds: load_dataset(ds, subset=SUBSET).split for ds in DATASETS}
    except DataUnavailable as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"real data not available: {exc}")


def _export(model: keras.Model, models_dir: Path, name: str, x: np.ndarray) -> dict[str, Any]:
    from training.export import export_version

    version_dir = export_version(
        model,
        models_dir=models_dir,
        name=name,
        metadata={"recipe": {"name": "best"}},
        golden_inputs=x[:8],
        parity_inputs=x,
    )
    meta: dict[str, Any] = json.loads((version_dir / "metadata.json").read_text())
    return meta


@pytest.mark.training
@pytest.mark.parametrize("dataset", IMAGE_DATASETS)
def test_image_recipe_trains_one_epoch_and_exports_with_parity(
    dataset: str, real_splits: dict[str, Split], tmp_path: Path
) -> None:
    split = real_splits[dataset]
    recipe = get_recipe(dataset, "best")
    keras.utils.set_random_seed(0)
    result = recipe.train(split, recipe.hyperparameters(epochs=1), verbose=0)
    assert result.epochs_run == 1 and len(result.history["val_loss"]) == 1
    assert result.extra_metrics["validation"]["examples"] == SUBSET // 10
    probs = np.asarray(result.serving_model(split.x_test, training=False))
    assert probs.shape == (SUBSET, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)

    meta = _export(result.serving_model, tmp_path, dataset, split.x_test)
    assert meta["artifacts"]["tflite"] == "model.tflite"
    assert meta["artifacts"]["tflite_parity"]["argmax_agree"] == 1.0
    np.testing.assert_allclose(meta["golden"]["outputs"], probs[:8], atol=1e-5)


@pytest.mark.training
def test_pima_recipe_bags_members_and_exports_with_parity(
    real_splits: dict[str, Split], tmp_path: Path
) -> None:
    split = real_splits["pima"]
    recipe = get_recipe("pima", "best")
    hp = recipe.hyperparameters(epochs=5)
    hp.update(cv_folds=2, cv_repeats=1)
    result = recipe.train(split, hp, verbose=0)
    assert result.epochs_run <= 5
    low, high = hp["threshold_range"]
    assert result.threshold is not None and low <= result.threshold <= high
    cv = result.extra_metrics["cv"]
    assert len(cv["per_fold"]["accuracy"]) == 2 and cv["examples"] == len(split.x_train) + len(
        split.x_test
    )
    assert 0.0 <= cv["auc_mean"] <= 1.0 and cv["accuracy_std"] >= 0.0

    model = result.serving_model
    members = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    assert len(members) == hp["inner_folds"]
    raw = split.x_test[:4].copy()
    raw[:, 1] = 0.0  # a missing glucose is imputed inside the model, never NaN
    probs = np.asarray(model(raw, training=False))
    assert probs.shape == (4, 1) and np.all(np.isfinite(probs))
    assert np.all((probs > 0) & (probs < 1))

    meta = _export(model, tmp_path, "pima", split.x_test)
    assert meta["artifacts"]["tflite"] == "model.tflite"
    assert meta["artifacts"]["tflite_parity"]["max_abs_diff"] <= 1e-5
    np.testing.assert_allclose(
        meta["golden"]["outputs"], np.asarray(model(split.x_test[:8])), atol=1e-5
    )


@pytest.mark.training
def test_trainer_records_pima_threshold_and_cv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from training.trainer import train_and_export

    try:
        from training.trainer import load_dataset

        load_dataset("pima", subset=8)
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"real data not available: {exc}")
    monkeypatch.setitem(PimaBest.defaults, "cv_folds", 2)
    monkeypatch.setitem(PimaBest.defaults, "cv_repeats", 1)
    outcome = train_and_export(
        "pima", "best", models_dir=tmp_path, epochs=5, verbose=0, tflite=False
    )
    meta = json.loads((outcome.version_dir / "metadata.json").read_text())
    assert meta["recipe"]["name"] == "best" and meta["recipe"]["hyperparameters"]["max_epochs"] == 5
    assert meta["threshold"] is not None and 0.3 <= meta["threshold"] <= 0.7
    assert meta["metrics"]["cv"]["folds"] == 2 and meta["metrics"]["cv"]["repeats"] == 1
    assert meta["metrics"]["roc_auc"] is not None
    # The recorded accuracy uses the recorded threshold.
    y_pred = (np.asarray(meta["golden"]["outputs"])[:, 0] >= meta["threshold"]).astype(int)
    assert y_pred.shape == (8,)


def test_mnist_best_keeps_a_clean_majority_of_its_images() -> None:
    photo = get_recipe("mnist", "best").hyperparameters()["augment"]["photo"]
    assert 0.0 < photo["apply"] < 0.5
    assert photo_params(photo)["apply"] == photo["apply"]


def test_fashion_best_shifts_items_less_than_digits() -> None:
    fashion = get_recipe("fashion_mnist", "best").hyperparameters()
    mnist = get_recipe("mnist", "best").hyperparameters()
    assert fashion["augment"]["translation"] < mnist["augment"]["translation"]
    assert fashion["dropout"] < mnist["dropout"]
