"""The OpenAPI record schema of a tabular model, from its metadata: what a validator accepts is
what the service takes."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from service.api.schemas import record_schema
from tests.helpers.models import PIMA_ROW, pima_metadata, pima_metadata_with_aliases

NAMES = ["pregnant", "glucose", "pressure", "triceps", "insulin", "mass", "pedigree", "age"]
RECORD = dict(zip(NAMES, PIMA_ROW, strict=True))


def _schema(meta: dict[str, Any]) -> dict[str, Any]:
    return record_schema("pima", meta["input"]["features"], meta["input"].get("label_names"))


def test_each_feature_under_its_name_or_an_alias_and_the_label_column() -> None:
    schema = _schema(pima_metadata_with_aliases())
    kaggle = {("BloodPressure" if k == "pressure" else "BMI" if k == "mass" else k): v
              for k, v in RECORD.items()}  # fmt: skip
    # Kaggle's header as it is: Glucose, Insulin and Age are the names in another letter case
    header = {k.capitalize() if k in ("glucose", "insulin", "age") else k: v
              for k, v in kaggle.items()}  # fmt: skip
    for record in (RECORD, kaggle, header, {**header, "Outcome": 1}, {**RECORD, "diabetes": "pos"}):
        jsonschema.validate(record, schema)
    for record in (
        {**RECORD, "bmi_x": 1},
        {**header, "AGE": "50"},
        {**header, "Age": -1},
        {k: v for k, v in header.items() if k != "Age"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(record, schema)
    assert "also taken as BloodPressure, pres" in schema["properties"]["pressure"]["description"]


def test_without_aliases_the_schema_is_the_exact_names() -> None:
    schema = _schema(pima_metadata())
    assert schema["required"] == NAMES and "allOf" not in schema
    jsonschema.validate(RECORD, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**RECORD, "Outcome": 1}, schema)
