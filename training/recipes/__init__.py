"""Training recipes, registered by (dataset, name).

Every module of this package is a recipe module, imported on the first lookup, so a new module
(for example ``best.py``) adds recipes without any other edit. What recipes share (the interface
in ``training.modeling.recipe``, Keras building blocks) lives in ``training.modeling``, outside
this package, so it is never mistaken for a recipe.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TypeVar

from training.modeling.recipe import FitResult, Recipe, Split, history_lists

__all__ = [
    "SERVED",
    "FitResult",
    "Recipe",
    "Split",
    "get_recipe",
    "history_lists",
    "recipe_names",
    "register",
]

# What each model is meant to serve by default: the recipe, and "+mode" for its quantised copy
# (``training.quantize``). The service picks its default by accuracy target and latency budget;
# these are the versions that meet both for the lowest latency, so ``--recipe defaults`` (what a
# container deployment trains) gives users what the README measures.
SERVED: dict[str, str] = {
    "mnist": "lean+dynamic",
    "fashion_mnist": "lean+dynamic",
    "pima": "best",
}

_REGISTRY: dict[tuple[str, str], Recipe] = {}
_LOADED = False
R = TypeVar("R", bound=type[Recipe])


def register(cls: R) -> R:
    """Class decorator: register one instance of ``cls`` under (dataset, name)."""
    key = (cls.dataset, cls.name)
    if key in _REGISTRY and type(_REGISTRY[key]) is not cls:
        raise ValueError(f"recipe {cls.name!r} for {cls.dataset!r} is registered twice")
    _REGISTRY[key] = cls()
    return cls


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    _LOADED = True


def recipe_names(dataset: str | None = None) -> list[str]:
    """Registered recipe names, for one dataset or for all, tutorial first."""
    _load_all()
    names = {name for (ds, name) in _REGISTRY if dataset is None or ds == dataset}
    return sorted(names, key=lambda n: (n != "tutorial", n))


def get_recipe(dataset: str, name: str) -> Recipe:
    _load_all()
    try:
        return _REGISTRY[(dataset, name)]
    except KeyError:
        known = ", ".join(recipe_names(dataset)) or "none"
        raise KeyError(f"no recipe {name!r} for {dataset!r} (known: {known})") from None
