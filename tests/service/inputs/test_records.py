"""features_from_metadata and records_from_json (Pima): forms, order, names and ranges."""

from __future__ import annotations

import difflib
from typing import Any

import numpy as np
import pytest

from service.errors import InvalidInput
from service.inputs.records import (
    FeatureSpec,
    RecordFields,
    features_from_metadata,
    label_names_from_metadata,
    records_from_json,
)

ROW = [6, 148, 72, 35, 0, 33.6, 0.627, 50]


def decode(instances: Any, features: list[FeatureSpec], max_instances: int = 8) -> np.ndarray:
    return records_from_json(instances, features, max_instances=max_instances)


def test_features_from_metadata(pima_features: list[FeatureSpec]) -> None:
    assert [f.name for f in pima_features] == ["pregnant", "glucose", "pressure", "triceps",
                                               "insulin", "mass", "pedigree", "age"]  # fmt: skip
    glucose = pima_features[1]
    assert (glucose.unit, glucose.min, glucose.max, glucose.missing_if_zero) == (
        "mg/dL", 0.0, 300.0, True)  # fmt: skip
    assert pima_features[0].missing_if_zero is False


@pytest.mark.parametrize(
    "meta",
    [{}, {"features": None}, {"features": []}, {"features": ["glucose"]},
     {"features": [{"name": "a", "min": 0}]}, {"features": [{"name": "a", "min": 5, "max": 1}]},
     {"features": [{"name": "a", "min": 0, "max": 1}, {"name": "a", "min": 0, "max": 1}]},
     {"features": [{"name": "a", "min": "low", "max": 1}]}],
)  # fmt: skip
def test_features_from_bad_metadata_raise_value_error(meta: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"metadata input\.features"):
        features_from_metadata(meta)


def test_one_named_record(pima_features: list[FeatureSpec], pima_record: dict) -> None:
    out = decode(pima_record, pima_features)
    assert out.dtype == np.float32 and out.shape == (1, 8)
    np.testing.assert_allclose(out[0], ROW, rtol=1e-6)


def test_field_order_in_the_object_does_not_matter(
    pima_features: list[FeatureSpec], pima_record: dict
) -> None:
    shuffled = dict(reversed(list(pima_record.items())))
    np.testing.assert_array_equal(
        decode(shuffled, pima_features), decode(pima_record, pima_features)
    )


def test_one_array_record_and_lists_of_both(
    pima_features: list[FeatureSpec], pima_record: dict
) -> None:
    np.testing.assert_allclose(decode(ROW, pima_features)[0], ROW, rtol=1e-6)
    out = decode([pima_record, ROW, [1, 85, 66, 29, 0, 26.6, 0.351, 31]], pima_features)
    assert out.shape == (3, 8)
    np.testing.assert_array_equal(out[0], out[1])
    assert out[2, 1] == 85


def test_missing_and_unknown_fields_are_named(
    pima_features: list[FeatureSpec], pima_record: dict
) -> None:
    record = dict(pima_record)
    del record["insulin"], record["age"]
    record["glucse"] = 148
    with pytest.raises(InvalidInput) as info:
        decode([pima_record, record], pima_features)
    message = info.value.message
    assert message.startswith("instances[1]: missing fields insulin, age; unknown field glucse")
    assert "expected fields: pregnant, glucose" in message and info.value.status_code == 422


def test_single_missing_field(pima_features: list[FeatureSpec], pima_record: dict) -> None:
    record = {k: v for k, v in pima_record.items() if k != "mass"}
    with pytest.raises(InvalidInput, match=r"^instances: missing field mass \(expected"):
        decode(record, pima_features)


def test_extra_field_alone_is_unknown(pima_features: list[FeatureSpec], pima_record: dict) -> None:
    with pytest.raises(InvalidInput, match=r"^instances: unknown field outcome \("):
        decode({**pima_record, "outcome": 1}, pima_features)


@pytest.mark.parametrize(
    ("value", "kind"), [("148", "string"), (None, "null"), (True, "boolean"), ([148], "array")]
)
def test_non_numbers_are_named(
    pima_features: list[FeatureSpec], pima_record: dict, value: Any, kind: str
) -> None:
    with pytest.raises(
        InvalidInput, match=rf"^instances\[0\]\.glucose: expected a number, got {kind}"
    ):
        decode([{**pima_record, "glucose": value}], pima_features)
    row = list(ROW)
    row[1] = value
    with pytest.raises(InvalidInput, match=rf"instances\[1\]\[1\] \(glucose\): .* got {kind}"):
        decode([ROW, row], pima_features)


def test_wrong_number_of_values(pima_features: list[FeatureSpec]) -> None:
    with pytest.raises(InvalidInput, match=r"^instances: expected 8 values in the order pregnant,"):
        decode(ROW[:7], pima_features)
    with pytest.raises(InvalidInput, match=r"^instances\[1\]: expected 8 values .* got 9"):
        decode([ROW, [*ROW, 1]], pima_features)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("glucose", 350, "instances[0].glucose: 350 is outside the plausible range [0, 300] mg/dL"),
     ("age", -1, "instances[0].age: -1 is outside the plausible range [0, 120] years"),
     ("pedigree", 3.5, "instances[0].pedigree: 3.5 is outside the plausible range [0, 3]")],
)  # fmt: skip
def test_range_violations_are_named(
    pima_features: list[FeatureSpec], pima_record: dict, field: str, value: float, message: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        decode([{**pima_record, field: value}], pima_features)
    assert info.value.message == message


def test_range_violation_in_array_record(pima_features: list[FeatureSpec]) -> None:
    row = list(ROW)
    row[4] = 5000
    with pytest.raises(InvalidInput, match=r"^instances\[1\]\[4\] \(insulin\): 5000 is outside"):
        decode([ROW, row], pima_features)


def test_limits_are_inclusive(pima_features: list[FeatureSpec]) -> None:
    low = [f.min for f in pima_features]
    high = [f.max for f in pima_features]
    assert decode([low, high], pima_features).shape == (2, 8)


@pytest.mark.parametrize(
    ("instances", "message"),
    [([], "instances: no records: the list is empty"), ("6,148", "got string"),
     (None, "got null"), (6, "got number"), ([ROW, "x"], "instances[1]: expected an object"),
     ([[ROW]], "instances[0]: expected 8 values")],
)  # fmt: skip
def test_structure_errors(pima_features: list[FeatureSpec], instances: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        decode(instances, pima_features)
    assert message in info.value.message


def test_too_many_records(pima_features: list[FeatureSpec]) -> None:
    with pytest.raises(InvalidInput, match="instances: 9 records is more than the limit of 8"):
        decode([ROW] * 9, pima_features, max_instances=8)
    assert decode([ROW] * 8, pima_features, max_instances=8).shape == (8, 8)
    assert decode(ROW, pima_features, max_instances=1).shape == (1, 8)


def test_where_prefix(pima_features: list[FeatureSpec]) -> None:
    with pytest.raises(InvalidInput, match=r"^inputs\[0\]: expected 8 values"):
        records_from_json([[1, 2]], pima_features, max_instances=4, where="inputs")


def _spec(name: str, *aliases: str) -> FeatureSpec:
    return FeatureSpec(name, "", name, 0, 10, aliases=aliases)


def test_aliases_and_label_names_are_read_from_metadata() -> None:
    meta = {
        "features": [{"name": "a", "min": 0, "max": 1, "aliases": ["Alpha", "A1"]},
                     {"name": "b", "min": 0, "max": 1}],
        "label_names": ["y", "Outcome"],
    }  # fmt: skip
    features = features_from_metadata(meta)
    assert [f.aliases for f in features] == [("Alpha", "A1"), ()]
    assert label_names_from_metadata(meta) == ("y", "Outcome")
    assert label_names_from_metadata({"features": meta["features"]}) == ()
    fields = RecordFields(features, ("y", "Outcome"))
    assert fields.canonical({"ALPHA": 1, "B": 0, "outcome": "pos"}, "x") == (
        {"a": 1, "b": 0}, {"a": "ALPHA", "b": "B"})  # fmt: skip


@pytest.mark.parametrize(
    "meta",
    [{"features": [{"name": "a", "min": 0, "max": 1, "aliases": "A"}]},
     {"features": [{"name": "a", "min": 0, "max": 1, "aliases": [""]}]},
     {"features": [{"name": "a", "min": 0, "max": 1, "aliases": [1]}]}],
)  # fmt: skip
def test_bad_aliases_are_a_broken_version(meta: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"aliases must be a list of non-empty strings"):
        features_from_metadata(meta)
    with pytest.raises(ValueError, match=r"label_names must be a list"):
        label_names_from_metadata({"label_names": "Outcome"})


@pytest.mark.parametrize(
    ("features", "labels", "message"),
    [([_spec("a", "x"), _spec("b", "X")], (), "'X' names both a and b"),
     ([_spec("a"), _spec("b", "A")], (), "'A' names both a and b"),
     ([_spec("a", "x"), _spec("b")], ("X",), "'x' also names a feature")],
)  # fmt: skip
def test_a_name_that_means_two_things_is_a_broken_version(
    features: list[FeatureSpec], labels: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        RecordFields(features, labels)


def test_a_list_of_features_takes_exact_names_as_before(
    pima_features: list[FeatureSpec], pima_record: dict
) -> None:
    fields = RecordFields(pima_features)
    assert not fields.folded
    upper = {k.upper(): v for k, v in pima_record.items()}
    with pytest.raises(
        InvalidInput, match=r"none of the inputs; unknown fields PREGNANT, .* \(expec"
    ):
        records_from_json(upper, fields, max_instances=1)


def test_a_record_of_thousands_of_unknown_keys_is_guessed_at_only_for_the_first_few(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # each guess is a fuzzy match against every name taken: one per key of a 1 MB record of
    # made-up keys held the event loop for over a second
    fields = RecordFields([_spec("glucose", "plas"), _spec("mass", "BMI")], ("Outcome",))
    guesses = []
    close = difflib.get_close_matches
    monkeypatch.setattr(
        difflib, "get_close_matches", lambda *a, **k: guesses.append(a[0]) or close(*a, **k)
    )
    record = {"glucos": 1, "BMI": 2, **{f"k{i}": 0 for i in range(5000)}}
    with pytest.raises(InvalidInput) as info:
        records_from_json(record, fields, max_instances=1)
    assert len(guesses) == 10
    message = info.value.message
    assert "unknown fields glucos (did you mean glucose?), k0, k1" in message
    assert "k8 and 4991 more (expected fields: glucose, mass; also taken" in message


def test_only_ascii_names_are_matched_in_any_case() -> None:
    # Unicode case folding makes "maß" "mass" and "ſkin" "skin": not names of these columns
    fields = RecordFields([_spec("mass", "BMI"), _spec("skin")], ("Outcome",))
    assert records_from_json({"MASS": 1, "Skin": 2}, fields, max_instances=1).tolist() == [[1, 2]]
    for record in ({"maß": 1, "skin": 2}, {"mass": 1, "ſkin": 2}):
        with pytest.raises(InvalidInput, match="unknown field"):
            records_from_json(record, fields, max_instances=1)


def test_a_record_of_no_feature_lists_the_fields_once(pima_features: list[FeatureSpec]) -> None:
    names = ", ".join(f.name for f in pima_features)
    with pytest.raises(InvalidInput) as info:
        records_from_json({}, RecordFields(pima_features), max_instances=1)
    assert info.value.message == (
        f"instances: the record holds none of the inputs (expected fields: {names})"
    )
