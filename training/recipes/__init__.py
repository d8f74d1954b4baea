"""Training recipes, registered by (dataset, name). See ``base`` for the interface."""

from training.recipes.base import (
    FitResult,
    Recipe,
    Split,
    get_recipe,
    history_lists,
    recipe_names,
    register,
)

__all__ = [
    "FitResult",
    "Recipe",
    "Split",
    "get_recipe",
    "history_lists",
    "recipe_names",
    "register",
]
