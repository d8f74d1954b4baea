"""The recipe interface and its registry.

A recipe turns a prepared data split into a trained *serving* model (input as models/README.md
says, output probabilities). Recipes register themselves by (dataset, name); the trainer only looks
them up, so a new module in this package (for example ``best.py``) adds recipes without any other
edit: every submodule of ``training.recipes`` is imported on first lookup.
"""

from __future__ import annotations

import copy
import importlib
import pkgutil
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import keras
import numpy as np


@dataclass(frozen=True)
class Split:
    """Train and test arrays in the serving model's input format.

    Images are float32 ``[N, 28, 28]`` in ``[0, 1]`` (uint8 pixels divided by 255); Pima is float32
    ``[N, 8]`` raw values. Labels are int64 class indices.
    """

    dataset: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    labels: list[str]


@dataclass
class FitResult:
    """What a recipe hands back to the trainer."""

    serving_model: keras.Model
    history: dict[str, list[float]]
    epochs_run: int
    extra_metrics: dict[str, Any] = field(default_factory=dict)  # merged into metrics, e.g. "cv"
    threshold: float | None = None  # sigmoid models: decision threshold chosen in training


class Recipe(ABC):
    """A named way to train one dataset's model."""

    name: ClassVar[str]
    dataset: ClassVar[str]
    description: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}

    def hyperparameters(self, epochs: int | None = None) -> dict[str, Any]:
        """The defaults, with ``epochs`` overridden when given."""
        hp = copy.deepcopy(self.defaults)
        if epochs is not None:
            hp["epochs"] = epochs
        return hp

    @abstractmethod
    def build(self, hp: dict[str, Any]) -> keras.Model:
        """The compiled training model."""

    @abstractmethod
    def fit(
        self, model: keras.Model, split: Split, hp: dict[str, Any], *, verbose: int
    ) -> FitResult:
        """Train ``model`` on ``split.x_train`` and return the serving model."""

    def train(self, split: Split, hp: dict[str, Any], *, verbose: int = 2) -> FitResult:
        """Build and fit; override for recipes that need more (cross-validation, ensembles)."""
        return self.fit(self.build(hp), split, hp, verbose=verbose)


def history_lists(history: keras.callbacks.History) -> dict[str, list[float]]:
    return {key: [float(v) for v in values] for key, values in history.history.items()}


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
    package = importlib.import_module("training.recipes")
    for module in pkgutil.iter_modules(package.__path__):
        if module.name != "base":
            importlib.import_module(f"training.recipes.{module.name}")
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
