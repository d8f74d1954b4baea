"""The data sets: one descriptor each. A new data set is one more entry in ``SPECS``.

The loaders are imported when called, so that the data layer (which reads the Pima feature names
from here) and this table do not import each other at start-up.
"""

from __future__ import annotations

from typing import Any

from training.specs.base import DatasetSpec
from training.specs.images import ImageClassificationSpec
from training.specs.tables import BinaryClassificationSpec, FeatureSpec

# Names are mlbench's (R); ``aliases`` are the same columns' names in the other common copies:
# Kaggle's diabetes.csv (Pregnancies, BloodPressure, ...) and the UCI/Weka ARFF and the CSV
# shared with many tutorials (preg, plas, ...; "test" for insulin). Matching ignores letter case,
# so Kaggle's Glucose, Insulin and Age need no alias. Training reads those headers through them,
# and the service takes records keyed by them.
PIMA_FEATURE_SPECS: tuple[FeatureSpec, ...] = (
    FeatureSpec(
        "pregnant", "count", "Number of times pregnant", 0, 30, aliases=("Pregnancies", "preg")
    ),
    FeatureSpec(
        "glucose",
        "mg/dL",
        "Plasma glucose 2 h after an oral glucose tolerance test",
        0,
        300,
        missing_if_zero=True,
        aliases=("plas",),
    ),
    FeatureSpec(
        "pressure",
        "mm Hg",
        "Diastolic blood pressure",
        0,
        200,
        missing_if_zero=True,
        aliases=("BloodPressure", "pres"),
    ),
    FeatureSpec(
        "triceps",
        "mm",
        "Triceps skin fold thickness",
        0,
        100,
        missing_if_zero=True,
        aliases=("SkinThickness", "skin"),
    ),
    FeatureSpec(
        "insulin",
        "µU/mL",
        "2-hour serum insulin",
        0,
        1000,
        missing_if_zero=True,
        aliases=("insu", "test"),
    ),
    FeatureSpec(
        "mass",
        "kg/m²",
        "Body mass index (weight / height²)",
        0,
        80,
        missing_if_zero=True,
        aliases=("BMI",),
    ),
    FeatureSpec(
        "pedigree",
        "1",
        "Diabetes pedigree function (family history score)",
        0,
        3,
        aliases=("DiabetesPedigreeFunction", "pedi"),
    ),
    FeatureSpec("age", "years", "Age", 0, 120),
)
# The label column: mlbench's name first, then Kaggle's and the UCI/Weka copies'.
PIMA_LABEL_NAMES = ("diabetes", "Outcome", "class")
# The column order of the Pima table everywhere: loaders, models and metadata.
PIMA_FEATURE_NAMES = tuple(spec.name for spec in PIMA_FEATURE_SPECS)


def _load_mnist(**options: Any) -> Any:
    from training.data.loaders import load_images

    return load_images("mnist", **options)


def _load_fashion_mnist(**options: Any) -> Any:
    from training.data.loaders import load_images

    return load_images("fashion_mnist", **options)


def _load_pima(**options: Any) -> Any:
    from training.data.loaders import load_pima

    return load_pima(**options)


MNIST = ImageClassificationSpec(
    name="mnist",
    description="MNIST handwritten digits",
    labels=tuple(str(digit) for digit in range(10)),
    loader=_load_mnist,
    framing="digit",
    calibration_size=5000,
)

FASHION_MNIST = ImageClassificationSpec(
    name="fashion_mnist",
    description="Fashion-MNIST clothing images",
    labels=(
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
    ),
    loader=_load_fashion_mnist,
    framing="item",
    calibration_size=5000,
)

PIMA = BinaryClassificationSpec(
    name="pima",
    description="Pima Indians diabetes onset within five years",
    labels=("no diabetes", "diabetes"),
    loader=_load_pima,
    features=PIMA_FEATURE_SPECS,
    label_names=PIMA_LABEL_NAMES,
    test_size=0.2,
    split_seed=42,  # the tutorial's random_state
    calibration_size=0.2,  # 123 of the 614 training rows
)

SPECS: dict[str, DatasetSpec] = {spec.name: spec for spec in (MNIST, FASHION_MNIST, PIMA)}
