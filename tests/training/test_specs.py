"""The data set descriptors: one per data set, and what each writes into metadata.json."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from typing import Any

import numpy as np
import pytest

from service.inputs.records import RecordFields, features_from_metadata, label_names_from_metadata
from training import specs
from training.data import idx, pima
from training.specs import (
    DATASETS,
    FASHION_MNIST,
    MNIST,
    PIMA,
    PIMA_FEATURE_NAMES,
    BinaryClassificationSpec,
    ImageClassificationSpec,
    get_spec,
)


def test_one_descriptor_per_data_set() -> None:
    assert DATASETS == ("mnist", "fashion_mnist", "pima")
    for name in DATASETS:
        spec = get_spec(name)
        assert spec.name == name and spec.description and spec.labels
        assert specs.LABELS[name] == list(spec.labels)
    with pytest.raises(KeyError, match="known: mnist, fashion_mnist, pima"):
        get_spec("cifar10")
    with pytest.raises(FrozenInstanceError):
        MNIST.framing = "item"  # type: ignore[misc]


def test_tasks_are_the_strings_the_service_dispatches_on() -> None:
    assert {name: get_spec(name).task for name in DATASETS} == {
        "mnist": "image_classification",
        "fashion_mnist": "image_classification",
        "pima": "binary_classification",
    }


def test_image_inputs_say_how_the_images_were_framed() -> None:
    assert (MNIST.framing, FASHION_MNIST.framing) == ("digit", "item")
    for spec in (MNIST, FASHION_MNIST):
        assert spec.input_spec() == {
            "name": "pixels",
            "shape": [28, 28],
            "dtype": "float32",
            "range": [0.0, 1.0],
            "features": None,
            "framing": spec.framing,
            "side": 28,
        }
        assert spec.output_spec() == {"name": "probabilities", "kind": "softmax", "shape": [10]}
        assert spec.decision_threshold(None) is None
    with pytest.raises(ValueError, match="argmax"):
        MNIST.decision_threshold(0.5)
    with pytest.raises(ValueError, match="framing"):
        ImageClassificationSpec(
            name="x",
            description="",
            labels=("a",),
            loader=print,
            framing="centred",  # type: ignore[arg-type]
        )


KAGGLE_HEADER = ("Pregnancies,Glucose,BloodPressure,SkinThickness,Insulin,BMI,"
                 "DiabetesPedigreeFunction,Age,Outcome")  # fmt: skip


def test_pima_metadata_names_every_kaggle_column_the_service_reads_back() -> None:
    """The served version learns Kaggle's (and any copy's) names from its metadata, which the
    service decodes: each of Kaggle's columns is a feature, in order, or the label."""
    block: dict[str, Any] = PIMA.input_spec(np.ones((2, 8)))
    fields = RecordFields(features_from_metadata(block), label_names_from_metadata(block))
    *kaggle, outcome = KAGGLE_HEADER.split(",")
    record = {**dict(zip(kaggle, range(8), strict=True)), outcome: 1}
    assert fields.canonical(record, "r")[0] == dict(zip(PIMA_FEATURE_NAMES, range(8), strict=True))
    assert block["label_names"][0] == "diabetes" and outcome in block["label_names"]
    assert block["features"][2]["aliases"] == ["BloodPressure", "pres"]


def test_pima_input_lists_its_features_with_typical_ranges() -> None:
    table = np.array([[1, 0, 70, 20, 0, 30.0, 0.5, 40], [3, 120, 80, 0, 90, 0, 1.25, 60]])
    block: dict[str, Any] = PIMA.input_spec(table)
    assert block["name"] == "features" and block["shape"] == [8] and block["range"] is None
    assert [f["name"] for f in block["features"]] == list(PIMA_FEATURE_NAMES)
    glucose, pedigree = block["features"][1], block["features"][6]
    assert glucose["missing_if_zero"] and glucose["typical"] == [120.0, 120.0]  # zero skipped
    assert not pedigree["missing_if_zero"] and pedigree["typical"] == [0.5, 1.25]
    assert PIMA.output_spec() == {"name": "probabilities", "kind": "sigmoid", "shape": [1]}
    assert PIMA.decision_threshold(None) == 0.5 and PIMA.decision_threshold(0.42) == 0.42
    assert (PIMA.test_size, PIMA.split_seed) == (0.2, 42)  # the tutorial's split
    with pytest.raises(ValueError, match="two labels"):
        BinaryClassificationSpec(
            name="x",
            description="",
            labels=("a", "b", "c"),
            loader=print,
            features=(),
            test_size=0.2,
            split_seed=0,
        )


def test_one_list_of_names_for_the_loaders_and_the_models() -> None:
    assert pima.PIMA_FEATURES is PIMA_FEATURE_NAMES
    images = [name for name in DATASETS if isinstance(get_spec(name), ImageClassificationSpec)]
    assert set(images) <= set(idx.IDX_SHA256), "an image data set without IDX checksums"


def test_golden_and_parity_inputs_come_from_the_test_split() -> None:
    x_test = np.arange(20 * 4, dtype=np.float32).reshape(20, 4)
    split = specs.Split("t", x_test[:0], np.empty(0), x_test, np.zeros(20), ["a", "b"])
    np.testing.assert_array_equal(PIMA.golden_inputs(split), x_test[:8])
    np.testing.assert_array_equal(PIMA.parity_inputs(split), x_test)
