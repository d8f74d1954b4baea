"""The recipe interface: a named way to turn a prepared split into a trained serving model.

A recipe's serving model takes the input models/README.md describes and returns probabilities.
Recipes register themselves with ``training.recipes.register``; the trainer only looks them up.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import keras

from training.specs import Split

__all__ = ["FitResult", "Recipe", "Split", "history_lists"]


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
