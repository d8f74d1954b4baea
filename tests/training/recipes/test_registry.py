"""Recipe discovery: every module of training.recipes is a recipe module, looked up by name."""

from __future__ import annotations

import importlib.util
import pkgutil

import pytest

import training.recipes
from training.recipes import get_recipe, recipe_names
from training.specs import DATASETS


def test_every_module_in_the_package_registers_recipes() -> None:
    recipe_names()  # imports every module of the package
    registered = {type(r).__module__ for r in training.recipes._REGISTRY.values()}
    modules = {
        f"training.recipes.{m.name}" for m in pkgutil.iter_modules(training.recipes.__path__)
    }
    assert modules == registered, "a module in training.recipes registers no recipe"


def test_helpers_live_outside_the_recipe_package() -> None:
    for helper in ("recipe", "cnn", "pima_layers", "pima_bag"):
        assert importlib.util.find_spec(f"training.modeling.{helper}") is not None
        assert importlib.util.find_spec(f"training.recipes.{helper}") is None


def test_recipes_exist_only_for_known_data_sets() -> None:
    recipe_names()
    assert {dataset for dataset, _ in training.recipes._REGISTRY} <= set(DATASETS)
    for dataset in DATASETS:
        assert recipe_names(dataset)[0] == "tutorial"


def test_unknown_recipe_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="tutorial"):
        get_recipe("mnist", "no-such-recipe")
