"""Tutorial recipes: architecture as in the tutorials, one shared fit, a real-data smoke run."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from training.recipes import Recipe, Split, get_recipe, recipe_names
from training.recipes.tutorial import _Tutorial
from training.specs import DATASETS, ImageClassificationSpec, get_spec

SMOKE_SUBSET = 512


def _dense(model: keras.Model) -> list[keras.layers.Dense]:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def test_every_dataset_has_a_tutorial_recipe() -> None:
    for dataset in DATASETS:
        assert recipe_names(dataset)[0] == "tutorial"
        recipe = get_recipe(dataset, "tutorial")
        assert isinstance(recipe, Recipe) and recipe.dataset == dataset


def test_the_tutorial_recipes_share_one_fit() -> None:
    for dataset in DATASETS:
        recipe = get_recipe(dataset, "tutorial")
        assert isinstance(recipe, _Tutorial) and type(recipe).fit is _Tutorial.fit


def test_mnist_architecture() -> None:
    recipe = get_recipe("mnist", "tutorial")
    hp = recipe.hyperparameters()
    assert hp["epochs"] == 10
    model = recipe.build(hp)
    assert model.input_shape == (None, 28, 28)
    dense = _dense(model)
    assert [d.units for d in dense] == [128, 10]
    assert [d.activation.__name__ for d in dense] == ["relu", "softmax"]
    dropout = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert [d.rate for d in dropout] == [0.2]
    assert recipe.hyperparameters(epochs=3)["epochs"] == 3


def test_fashion_architecture_outputs_logits() -> None:
    recipe = get_recipe("fashion_mnist", "tutorial")
    model = recipe.build(recipe.hyperparameters())
    dense = _dense(model)
    assert [d.units for d in dense] == [128, 10]
    assert [d.activation.__name__ for d in dense] == ["relu", "linear"]
    assert model.loss.get_config()["from_logits"] is True


def test_pima_architecture_and_fit_options() -> None:
    recipe = get_recipe("pima", "tutorial")
    hp = recipe.hyperparameters()
    assert hp["epochs"] == 100 and hp["validation_split"] == 0.2
    assert hp["early_stopping"] == {"monitor": "val_loss", "patience": 10}
    model = recipe.build(hp)
    assert model.input_shape == (None, 8)
    dense = _dense(model)
    assert [d.units for d in dense] == [128, 128, 1]
    assert [d.activation.__name__ for d in dense] == ["linear", "relu", "sigmoid"]
    options = recipe.fit_options(hp)  # type: ignore[attr-defined]
    assert options["validation_split"] == 0.2
    [early_stop] = options["callbacks"]
    assert early_stop.monitor == "val_loss" and early_stop.patience == 10


@pytest.fixture(scope="module")
def real_splits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Split]:
    from training.data.errors import DataUnavailable
    from training.trainer import load_dataset

    try:
        return {ds: load_dataset(ds, subset=SMOKE_SUBSET).split for ds in DATASETS}
    except DataUnavailable as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"real data not available: {exc}")


@pytest.mark.training
@pytest.mark.parametrize("dataset", DATASETS)
def test_tutorial_recipe_trains_one_epoch_on_real_data(
    dataset: str, real_splits: dict[str, Split], tmp_path: Path
) -> None:
    split = real_splits[dataset]
    recipe = get_recipe(dataset, "tutorial")
    keras.utils.set_random_seed(0)
    result = recipe.train(split, recipe.hyperparameters(epochs=1), verbose=0)
    assert result.epochs_run == 1
    assert len(result.history["loss"]) == 1
    probs = np.asarray(result.serving_model(split.x_test, training=False))
    assert probs.shape == (len(split.x_test), *get_spec(dataset).output_spec()["shape"])
    assert np.all((probs >= 0) & (probs <= 1))
    if isinstance(get_spec(dataset), ImageClassificationSpec):
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
        accuracy = np.mean(probs.argmax(axis=1) == split.y_test)
        assert accuracy > 0.4, f"one epoch on {SMOKE_SUBSET} images should beat chance (0.1)"
