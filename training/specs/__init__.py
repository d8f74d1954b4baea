"""What each data set is, in one place: the descriptors the trainer, exporter and report read.

``get_spec(name)`` returns a :class:`DatasetSpec`; its class fixes the model's ``task`` and the
shape of the ``input`` and ``output`` blocks of metadata.json (models/README.md). A new data set
is one descriptor in ``catalog.SPECS`` (plus its loader and recipes); a new kind of task is one
new ``DatasetSpec`` subclass.
"""

from __future__ import annotations

from training.specs.base import GOLDEN_COUNT, DatasetSpec, Prepared, Split
from training.specs.catalog import (
    FASHION_MNIST,
    MNIST,
    PIMA,
    PIMA_FEATURE_NAMES,
    PIMA_FEATURE_SPECS,
    PIMA_LABEL_NAMES,
    SPECS,
)
from training.specs.images import FRAMINGS, IMAGE_SHAPE, IMAGE_SIDE, ImageClassificationSpec
from training.specs.tables import BinaryClassificationSpec, FeatureSpec

__all__ = [
    "DATASETS",
    "FASHION_MNIST",
    "FRAMINGS",
    "GOLDEN_COUNT",
    "IMAGE_SHAPE",
    "IMAGE_SIDE",
    "LABELS",
    "MNIST",
    "PIMA",
    "PIMA_FEATURE_NAMES",
    "PIMA_FEATURE_SPECS",
    "PIMA_LABEL_NAMES",
    "SPECS",
    "BinaryClassificationSpec",
    "DatasetSpec",
    "FeatureSpec",
    "ImageClassificationSpec",
    "Prepared",
    "Split",
    "get_spec",
]

DATASETS: tuple[str, ...] = tuple(SPECS)
# Derived from the descriptors, for callers that only need the labels.
LABELS: dict[str, list[str]] = {name: list(spec.labels) for name, spec in SPECS.items()}


def get_spec(name: str) -> DatasetSpec:
    try:
        return SPECS[name]
    except KeyError:
        known = ", ".join(SPECS)
        raise KeyError(f"unknown data set {name!r} (known: {known})") from None
