"""Unit tests for the TF Serving REST codec (row and columnar predict formats)."""

from __future__ import annotations

import difflib
from typing import Any

import numpy as np
import orjson
import pytest

from service.codecs import tfserving as tfs
from service.errors import BadRequest, InvalidInput, ServeError
from service.inputs.records import FeatureSpec, RecordFields

FEATURES = ["pregnant", "glucose", "pressure", "triceps", "insulin", "mass", "pedigree", "age"]
ROW = [6, 148, 72, 35, 0, 33.6, 0.627, 50]


def decode(doc: Any) -> tfs.PredictRequest:
    return tfs.decode_predict_request(orjson.dumps(doc))


def test_row_format_images_nested_and_flat() -> None:
    img = np.random.default_rng(0).random((2, 28, 28)).astype(np.float32)
    for instances in (img.tolist(), img.reshape(2, 784).tolist()):
        req = decode({"instances": instances})
        assert req.format == "row"
        arr = tfs.input_array(req, "pixels", (28, 28))
        assert arr.shape == (2, 28, 28) and arr.dtype == np.float32
        np.testing.assert_array_equal(arr, img)


def test_row_format_named_objects() -> None:
    req = decode({"instances": [{"features": ROW}, {"features": ROW}]})
    arr = tfs.input_array(req, "features", (8,), FEATURES)
    assert arr.shape == (2, 8)
    req = decode({"instances": [dict(zip(FEATURES, ROW, strict=True))]})
    arr = tfs.input_array(req, "features", (8,), FEATURES)
    np.testing.assert_allclose(arr[0], np.array(ROW, np.float32))


def _kaggle_names() -> RecordFields:
    """The record names of a version whose metadata lists Kaggle's names and the label's."""
    aliases = {"pregnant": ("Pregnancies",), "pressure": ("BloodPressure",), "mass": ("BMI",)}
    features = [FeatureSpec(n, "", n, 0, 1000, aliases=aliases.get(n, ())) for n in FEATURES]
    return RecordFields(features, ("diabetes", "Outcome"))


KAGGLE = ["Pregnancies", "Glucose", "BloodPressure", "SkinThickness", "Insulin", "BMI",
          "DiabetesPedigreeFunction", "Age"]  # fmt: skip


def test_row_objects_and_examples_take_the_version_s_other_names() -> None:
    names = _kaggle_names()
    named = dict(zip(["Pregnancies", "GLUCOSE", "BloodPressure", "triceps", "Insulin", "BMI",
                      "pedigree", "age"], ROW, strict=True))  # fmt: skip
    req = decode({"instances": [{**named, "Outcome": 1}, dict(zip(FEATURES, ROW, strict=True))]})
    arr = tfs.input_array(req, "features", (8,), records=names)
    np.testing.assert_allclose(arr, np.array([ROW, ROW], np.float32))
    doc = tfs.decode_classify_request(orjson.dumps({"examples": [{**named, "Outcome": [0]}]}))
    arr = tfs.examples_array(doc, "features", (8,), records=names)
    np.testing.assert_allclose(arr[0], np.array(ROW, np.float32))


def test_row_objects_under_unknown_or_doubled_names_are_told_the_names_taken() -> None:
    names = _kaggle_names()
    record = dict(zip(KAGGLE, ROW, strict=True))
    with pytest.raises(InvalidInput) as info:
        tfs.input_array(decode({"instances": [record]}), "features", (8,), records=names)
    message = info.value.message
    assert message.startswith("instances[0]: missing fields triceps, pedigree; unknown ")
    assert "Pregnancies for pregnant; BloodPressure for pressure; BMI for mass" in message
    doubled = {**dict(zip(FEATURES, ROW, strict=True)), "BMI": 30}
    with pytest.raises(InvalidInput, match="mass is given twice, as 'mass' and as 'BMI'"):
        tfs.input_array(decode({"instances": [doubled]}), "features", (8,), records=names)


def test_a_row_object_of_thousands_of_unknown_names_is_guessed_at_only_for_the_first_few(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a guess per key of a 1 MB row of made-up names held the event loop for over a second
    guesses = []
    close = difflib.get_close_matches
    monkeypatch.setattr(
        difflib, "get_close_matches", lambda *a, **k: guesses.append(a[0]) or close(*a, **k)
    )
    record = {**dict(zip(FEATURES, ROW, strict=True)), **{f"k{i:04}": 0 for i in range(5000)}}
    with pytest.raises(InvalidInput) as info:
        tfs.input_array(decode({"instances": [record]}), "features", (8,), records=_kaggle_names())
    assert len(guesses) == 10
    assert "unknown fields k0000, k0001, " in info.value.message
    assert "k0009 and 4990 more (expected fields: pregnant, " in info.value.message


def test_columnar_format_tensor_and_object() -> None:
    for inputs in ([ROW, ROW], {"features": [ROW, ROW]}):
        req = decode({"inputs": inputs, "signature_name": "serving_default"})
        assert req.format == "columnar"
        assert tfs.input_array(req, "features", (8,), FEATURES).shape == (2, 8)


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({}, "Missing 'inputs' or 'instances' key"),
        ({"instances": [ROW], "inputs": [ROW]}, "not both"),
        ({"instances": [ROW], "signature_name": "classify"}, '"classify" not found'),
        ({"instances": [ROW], "signature_name": 3}, "must be a string"),
        ({"instances": [ROW], "extra": 1}, "unknown request field"),
        ([ROW], "JSON object"),
        # :classify's body sent to :predict: the message says whose field it is
        ({"examples": [{"glucose": 148}]}, "Missing 'inputs' or 'instances' key ('examples' is "),
    ],
)
def test_envelope_errors_are_400(doc: Any, needle: str) -> None:
    with pytest.raises(BadRequest) as info:
        decode(doc)
    assert needle in info.value.message


@pytest.mark.parametrize("field", ["instances", "inputs"])
def test_a_predict_body_sent_to_classify_is_told_to_send_examples(field: str) -> None:
    with pytest.raises(BadRequest) as info:
        tfs.decode_classify_request(orjson.dumps({field: [ROW]}))
    assert info.value.message == (
        f"unknown request field(s): {field} (:classify takes 'examples', objects of named "
        "features; 'instances' and 'inputs' are :predict's)"
    )


@pytest.mark.parametrize("field", ["alpha", "abstain", "output_filter"])
def test_an_explain_request_refuses_the_fields_only_a_prediction_reads(field: str) -> None:
    """An explanation has no prediction sets nor chosen outputs: such a field is not ignored."""
    body = orjson.dumps({"instances": [ROW], field: 0.5})
    with pytest.raises(BadRequest) as info:
        tfs.decode_predict_request(body, explain=True)
    assert "unknown request field(s): " + field in info.value.message
    tfs.decode_predict_request(orjson.dumps({"instances": [ROW], "target": 1}), explain=True)


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({"instances": []}, "empty"),
        ({"instances": ROW}, "expected shape [-1, 8]"),
        ({"instances": [ROW[:7]]}, "expected shape [-1, 8]"),
        ({"instances": [["a"] * 8]}, "instances[0][0]: expected a number, got string"),
        ({"instances": {"features": [ROW]}}, "must be a list"),
        ({"instances": [{"glucose": 1}]}, "missing pregnant"),
        ({"instances": [{**dict(zip(FEATURES, ROW, strict=True)), "bmi": 1}]}, "unknown bmi"),
        ({"instances": [{**dict(zip(FEATURES, ROW, strict=True)), "age": "50"}]}, "'age' must"),
        ({"instances": [{"features": ROW}, ROW]}, "mix of objects"),
        ({"inputs": {"x": [ROW]}}, "one input named 'features'"),
        ({"instances": [[1, 2], [3]]}, "ragged"),
        ({"instances": [{"b64": "iVBORw0K"}]}, "instances[0]: binary inputs"),
        ({"instances": [{"features": {"b64": "iVBORw0K"}}]}, "image file itself to the own API"),
    ],
)
def test_content_errors_are_422(doc: Any, needle: str) -> None:
    with pytest.raises(InvalidInput) as info:
        tfs.input_array(decode(doc), "features", (8,), FEATURES)
    assert needle in info.value.message


def test_nan_literal_is_rejected_clearly() -> None:
    with pytest.raises(ServeError) as info:
        tfs.decode_predict_request(b'{"instances": [[NaN, 1]]}')
    assert info.value.status_code in (400, 422)


def test_encode_responses() -> None:
    p = np.array([[0.25, 0.75]], np.float32)
    assert orjson.loads(tfs.encode_predict_response(p, "row")) == {"predictions": [[0.25, 0.75]]}
    assert orjson.loads(tfs.encode_predict_response(p, "columnar")) == {"outputs": [[0.25, 0.75]]}
