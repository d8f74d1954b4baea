"""Task classes: chosen by metadata.task, each owning its decoding, checks and answers."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import numpy as np
import pytest

from service.errors import InvalidInput, UnsupportedMediaType
from service.serving.tasks import ImageClassifier, TabularBinaryClassifier, Task, UnknownTask
from tests.helpers.models import image_metadata, pima_metadata, pima_metadata_with_aliases

DIGITS = [str(d) for d in range(10)]


def test_the_task_comes_from_metadata_task() -> None:
    assert type(Task.from_metadata(image_metadata(DIGITS, "tutorial"))) is ImageClassifier
    assert type(Task.from_metadata(pima_metadata())) is TabularBinaryClassifier
    meta = {**pima_metadata(), "task": "regression"}
    with pytest.raises(UnknownTask, match=r"'regression'.*binary_classification"):
        Task.from_metadata(meta)


def test_image_framing_and_side_are_read_not_guessed() -> None:
    meta = image_metadata(DIGITS, "tutorial")
    meta["input"]["framing"] = "item"  # digits framed as items: the metadata decides
    task = Task.from_metadata(meta)
    assert isinstance(task, ImageClassifier)
    assert task.framing == "item" and task.side == 28
    meta["input"]["framing"] = "face"
    with pytest.raises(ValueError, match="framing"):
        Task.from_metadata(meta)


def test_format_1_versions_take_the_framing_of_their_data_set() -> None:
    meta = image_metadata(DIGITS, "tutorial")
    del meta["input"]["framing"]
    for name, framing in (("mnist", "digit"), ("fashion_mnist", "item")):
        task = Task.from_metadata({**meta, "name": name, "format_version": 1})
        assert isinstance(task, ImageClassifier) and task.framing == framing
    with pytest.raises(ValueError, match="framing"):
        Task.from_metadata({**meta, "name": "mnist", "format_version": 2})


def test_an_image_input_must_be_square_of_its_side() -> None:
    meta = image_metadata(DIGITS, "tutorial")
    meta["input"]["side"] = 32
    with pytest.raises(ValueError, match="32x32"):
        Task.from_metadata(meta)


def test_a_new_kind_of_model_is_one_subclass() -> None:
    class Scorer(Task):
        name: ClassVar[str] = "test_scoring"

        def predictions(
            self, probs: np.ndarray, top_k: int | None, threshold: float | None
        ) -> list[dict[str, Any]]:
            return [{"score": float(p)} for p in probs.ravel()]

    try:
        meta = {**pima_metadata(), "task": "test_scoring"}
        task = Task.from_metadata(meta)
        assert isinstance(task, Scorer)
        assert task.predictions(np.array([[0.25]], np.float32), None, None) == [{"score": 0.25}]
    finally:
        Task._registry.pop("test_scoring", None)


def test_image_answers_and_options() -> None:
    task = Task.from_metadata(image_metadata(list("abcdefghij"), "tutorial"))
    probs = np.array([[0.1, 0.7, 0.2] + [0.0] * 7, [0.5, 0.1, 0.4] + [0.0] * 7], np.float32)
    preds = task.predictions(probs, 2, None)
    assert [p["label"] for p in preds] == ["b", "a"]
    assert [t["label"] for t in preds[1]["top_k"]] == ["a", "c"]
    assert sum(preds[0]["probabilities"].values()) == pytest.approx(1.0)
    assert task.answer_fields(None) == {}
    assert task.check_top_k(10) == 10 and task.check_top_k(None) is None
    for bad in (0, 11, 2.5, True):
        with pytest.raises(InvalidInput):
            task.check_top_k(bad)
    with pytest.raises(InvalidInput, match="threshold applies to binary models"):
        task.check_threshold(0.3)
    np.testing.assert_array_equal(task.class_scores(probs), probs)


def test_binary_answers_options_and_scores() -> None:
    task = Task.from_metadata(pima_metadata())
    probs = np.array([[0.2], [0.5], [0.9]], np.float32)
    out = task.predictions(probs, None, 0.5)
    assert [o["outcome"] for o in out] == ["no diabetes", "diabetes", "diabetes"]
    assert task.check_threshold(None) == 0.5 and task.check_threshold(0.3) == 0.3
    assert task.answer_fields(0.3) == {"threshold": 0.3}
    for bad in (1.5, -0.1, True, "0.5", float("nan")):
        with pytest.raises(InvalidInput):
            task.check_threshold(bad)
    with pytest.raises(InvalidInput, match="top_k applies to models with several classes"):
        task.check_top_k(2)
    scores = task.class_scores(probs)
    np.testing.assert_allclose(scores, [[0.8, 0.2], [0.5, 0.5], [0.1, 0.9]], atol=1e-7)


def test_own_api_decoding_belongs_to_the_task() -> None:
    image = Task.from_metadata(image_metadata(DIGITS, "tutorial"))
    x = image.decode_instances({"instances": [[0] * 784, [255] * 784]}, 4)
    assert x.shape == (2, 28, 28) and x.max() == 1.0
    with pytest.raises(InvalidInput, match="scale must be one of"):
        image.decode_instances({"instances": [[0] * 784], "scale": "big"}, 4)
    pima = Task.from_metadata(pima_metadata())
    row = [6, 148, 72, 35, 0, 33.6, 0.627, 50]
    assert pima.decode_instances({"instances": [row]}, 4).shape == (1, 8)
    with pytest.raises(InvalidInput, match="scale applies to image models only"):
        pima.decode_instances({"instances": [row], "scale": "unit"}, 4)
    with pytest.raises(UnsupportedMediaType):
        pima.decode_file(b"\x89PNG", "image/png", 10_000)
    assert pima.record_fields is not None and pima.record_fields[1] == "glucose"
    assert image.record_fields is None


KAGGLE = {"Pregnancies": 6, "Glucose": 148, "BloodPressure": 72, "Triceps": 35, "INSULIN": 0,
          "BMI": 33.6, "pedigree": 0.627, "Age": 50, "Outcome": 1}  # fmt: skip


def test_a_record_keyed_by_other_names_in_any_case_is_the_same_record() -> None:
    """Kaggle's header (and any letter case) names the features its metadata lists as aliases;
    the label column is skipped, whatever it holds (mlbench's is "pos"/"neg")."""
    pima = Task.from_metadata(pima_metadata_with_aliases())
    row = [6, 148, 72, 35, 0, 33.6, 0.627, 50]
    x = pima.decode_instances({"instances": [KAGGLE, {**KAGGLE, "Outcome": "pos"}, row]}, 4)
    np.testing.assert_array_equal(x[0], x[2])
    np.testing.assert_array_equal(x[1], x[2])
    mlbench = {"pregnant": 6, "glucose": 148, "pres": 72, "triceps": 35, "insulin": 0,
               "mass": 33.6, "pedigree": 0.627, "age": 50, "DIABETES": "neg"}  # fmt: skip
    np.testing.assert_array_equal(pima.decode_instances({"instances": mlbench}, 4)[0], x[2])


def test_a_feature_given_under_two_names_is_refused_naming_both() -> None:
    pima = Task.from_metadata(pima_metadata_with_aliases())
    for extra, first, second in (({"pressure": 70}, "BloodPressure", "pressure"),
                                 ({"pres": 70}, "BloodPressure", "pres"),
                                 ({"glucose": 140}, "Glucose", "glucose")):  # fmt: skip
        with pytest.raises(InvalidInput) as info:
            pima.decode_instances({"instances": [{**KAGGLE, **extra}]}, 4)
        assert "instances[0]: " in info.value.message
        assert f"{first!r}" in info.value.message and f"{second!r}" in info.value.message


def test_an_unknown_name_is_told_the_names_taken_and_the_closest() -> None:
    pima = Task.from_metadata(pima_metadata_with_aliases())
    record = {k: v for k, v in KAGGLE.items() if k != "BloodPressure"} | {"BloodPrssure": 72}
    with pytest.raises(InvalidInput) as info:
        pima.decode_instances({"instances": [record]}, 4)
    message = info.value.message
    assert message.startswith(
        "instances[0]: missing field pressure; unknown field BloodPrssure "
        "(did you mean BloodPressure (pressure)?)"
    )
    assert "BloodPressure or pres for pressure" in message and "BMI for mass" in message
    assert "label column (diabetes, Outcome) is skipped" in message


def test_a_renamed_feature_s_bad_value_is_named_as_sent() -> None:
    pima = Task.from_metadata(pima_metadata_with_aliases())
    with pytest.raises(InvalidInput, match=r"^instances\.BloodPressure \(pressure\): expected a"):
        pima.decode_instances({"instances": {**KAGGLE, "BloodPressure": "72"}}, 4)
    with pytest.raises(InvalidInput, match=r"^instances\.BMI \(mass\): 95 is outside"):
        pima.decode_instances({"instances": {**KAGGLE, "BMI": 95}}, 4)


def test_versions_without_other_names_take_the_exact_names_only() -> None:
    pima = Task.from_metadata(pima_metadata())
    named = {"pregnant": 6, "glucose": 148, "pressure": 72, "triceps": 35, "insulin": 0,
             "mass": 33.6, "pedigree": 0.627, "age": 50}  # fmt: skip
    for record, unknown in (({**named, "Outcome": 1}, "Outcome"), (KAGGLE, "Pregnancies")):
        with pytest.raises(InvalidInput, match=f"unknown fields? .*{unknown}"):
            pima.decode_instances({"instances": record}, 4)
    glucose = {k: v for k, v in named.items() if k != "glucose"} | {"Glucose": 148}
    with pytest.raises(InvalidInput, match="missing field glucose; unknown field Glucose"):
        pima.decode_instances({"instances": glucose}, 4)


def test_value_checks_name_the_instance_and_feature() -> None:
    pima = Task.from_metadata(pima_metadata())
    x = np.array([[6, 148, 72, 35, 0, 33.6, 0.627, 50], [6, 148, 72, 35, 0, 33.6, 0.627, 500]])
    with pytest.raises(InvalidInput, match=r"instance 1: age=500 is outside \[0, 120\]"):
        pima.check_values(x.astype(np.float32), float(x.min()), float(x.max()))
    image = Task.from_metadata(copy.deepcopy(image_metadata(DIGITS, "tutorial")))
    bad = np.zeros((2, 28, 28), np.float32)
    bad[1, 3, 4] = 2.0
    with pytest.raises(InvalidInput, match=r"instance 1: value 2 is outside the range \[0, 1\]"):
        image.check_values(bad, 0.0, 2.0)
    with pytest.raises(InvalidInput, match=r"0-255 are divided by 255 first .*UINT8"):
        image.check_values(bad, 0.0, 2.0)
    bad[1, 3, 4] = -2.0  # not pixels of 0-255: no hint about them
    with pytest.raises(InvalidInput, match=r"value -2 is outside the range \[0, 1\]$"):
        image.check_values(bad, -2.0, 0.0)
    bad[1, 3, 4] = 1.000002  # shown as sent, not rounded to a 1 that would be in range
    with pytest.raises(InvalidInput, match=r"value 1\.000002 is outside the range \[0, 1\]"):
        image.check_values(bad, 0.0, 1.000002)
    image.check_values(np.ones((1, 28, 28), np.float32), 1.0, 1.0)
