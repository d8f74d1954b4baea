"""What each model is: labels, descriptions, input and output specs (models/README.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

DATASETS = ("mnist", "fashion_mnist", "pima")
IMAGE_DATASETS = ("mnist", "fashion_mnist")
IMAGE_SHAPE = (28, 28)
PIMA_THRESHOLD = 0.5

LABELS: dict[str, list[str]] = {
    "mnist": [str(digit) for digit in range(10)],
    "fashion_mnist": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
    "pima": ["no diabetes", "diabetes"],
}

DESCRIPTIONS: dict[str, str] = {
    "mnist": "MNIST handwritten digits",
    "fashion_mnist": "Fashion-MNIST clothing images",
    "pima": "Pima Indians diabetes onset within five years",
}


@dataclass(frozen=True)
class FeatureSpec:
    """One Pima feature: ``min``/``max`` are hard validation limits, ``typical`` from the data."""

    name: str
    unit: str
    description: str
    min: float
    max: float
    missing_if_zero: bool = False

    def as_dict(self, typical: tuple[float, float]) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "description": self.description,
            "min": self.min,
            "max": self.max,
            "typical": [typical[0], typical[1]],
            "missing_if_zero": self.missing_if_zero,
        }


PIMA_FEATURE_SPECS: tuple[FeatureSpec, ...] = (
    FeatureSpec("pregnant", "count", "Number of times pregnant", 0, 30),
    FeatureSpec(
        "glucose",
        "mg/dL",
        "Plasma glucose 2 h after an oral glucose tolerance test",
        0,
        300,
        missing_if_zero=True,
    ),
    FeatureSpec("pressure", "mm Hg", "Diastolic blood pressure", 0, 200, missing_if_zero=True),
    FeatureSpec("triceps", "mm", "Triceps skin fold thickness", 0, 100, missing_if_zero=True),
    FeatureSpec("insulin", "µU/mL", "2-hour serum insulin", 0, 1000, missing_if_zero=True),
    FeatureSpec("mass", "kg/m²", "Body mass index (weight / height²)", 0, 80, missing_if_zero=True),
    FeatureSpec("pedigree", "1", "Diabetes pedigree function (family history score)", 0, 3),
    FeatureSpec("age", "years", "Age", 0, 120),
)
PIMA_FEATURE_NAMES = tuple(spec.name for spec in PIMA_FEATURE_SPECS)


def pima_feature_specs(features: np.ndarray) -> list[dict[str, Any]]:
    """Feature objects with ``typical`` ranges from ``features`` (zeros skipped where missing)."""
    specs = []
    for column, spec in enumerate(PIMA_FEATURE_SPECS):
        values = np.asarray(features, dtype=np.float64)[:, column]
        if spec.missing_if_zero:
            values = values[values != 0]
        typical = (float(np.round(values.min(), 4)), float(np.round(values.max(), 4)))
        specs.append(spec.as_dict(typical))
    return specs


def input_spec(dataset: str, features: np.ndarray | None = None) -> dict[str, Any]:
    """The ``input`` block of metadata.json; Pima needs the full feature table for ``typical``."""
    if dataset in IMAGE_DATASETS:
        return {
            "name": "pixels",
            "shape": list(IMAGE_SHAPE),
            "dtype": "float32",
            "range": [0.0, 1.0],
            "features": None,
        }
    if features is None:
        raise ValueError("the Pima input spec needs the feature table")
    return {
        "name": "features",
        "shape": [len(PIMA_FEATURE_SPECS)],
        "dtype": "float32",
        "range": None,
        "features": pima_feature_specs(features),
    }


def output_spec(dataset: str) -> dict[str, Any]:
    if dataset in IMAGE_DATASETS:
        return {"name": "probabilities", "kind": "softmax", "shape": [len(LABELS[dataset])]}
    return {"name": "probabilities", "kind": "sigmoid", "shape": [1]}


def task(dataset: str) -> str:
    return "image_classification" if dataset in IMAGE_DATASETS else "binary_classification"


def input_name(dataset: str) -> str:
    return "pixels" if dataset in IMAGE_DATASETS else "features"
