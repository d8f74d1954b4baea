"""Response models and request-body documentation for the OpenAPI schema.

The hot path never builds these models: handlers encode dicts with orjson. They exist so that
``/docs`` shows real shapes and examples, and so a fuzzer can check responses against them.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.codecs.magic import ACCEPTED_NAMES, MEDIA_TYPES

PIMA_EXAMPLE = {
    "pregnant": 6,
    "glucose": 148,
    "pressure": 72,
    "triceps": 35,
    "insulin": 0,
    "mass": 33.6,
    "pedigree": 0.627,
    "age": 50,
}


def _digit_one() -> list[list[int]]:
    """A 28x28 image of a vertical stroke (a '1') with 0-255 values, for examples."""
    return [[255 if 12 <= c <= 15 and 4 <= r <= 23 else 0 for c in range(28)] for r in range(28)]


class ErrorBody(BaseModel):
    model_config = ConfigDict(
        extra="allow", json_schema_extra={"example": {"error": "model 'x' not found"}}
    )
    error: str


class Liveness(BaseModel):
    status: Literal["alive"]


class Readiness(BaseModel):
    status: Literal["ready"]
    models: dict[str, int | None]


class VersionStatus(BaseModel):
    version: int
    state: Literal["loading", "available", "failed", "unloading"]
    reason: str | None = None
    runtime: str | None = None
    recipe: str | None = None
    accuracy: float | None = None
    created_at: str | None = None
    load_seconds: float | None = None
    latency: dict[str, Any] | None = Field(
        None, description="µs per image at batch 1 and 16, and where the figure comes from"
    )
    warning: str | None = Field(
        None,
        description="listed files deleted or changed on disk since the version loaded: it "
        "serves what it loaded, and its next load (a restart) checks the files again",
    )


class IgnoredEntry(BaseModel):
    name: str
    reason: str = Field(description='why it is not a version folder, e.g. "(name it 18)"')


class ModelStatus(BaseModel):
    name: str
    default_version: int | None
    default_reason: str | None = Field(
        None, description="why the default version was chosen (accuracy target, latency budget)"
    )
    labels: dict[str, int]
    versions: list[VersionStatus]
    unfinished_versions: list[int]
    unloaded_versions: list[int] = Field(
        default_factory=list, description="versions unloaded by an admin request"
    )
    ignored_folders: list[IgnoredEntry] = Field(
        default_factory=list,
        description="what the model's folder holds that looks like a version and is not one "
        '(a zero-padded "018", "v4", a file "6"), with why; anything else is left out. At most '
        '20, by name, then {"name": "...", "reason": "and N more ..."} for the rest',
    )


class ModelList(BaseModel):
    models: list[ModelStatus]


class ModelDetail(ModelStatus):
    metadata: dict[str, Any] | None = Field(
        None, description="metadata.json of the default version, without the golden sample"
    )


class VersionDetail(VersionStatus):
    name: str
    metadata: dict[str, Any] | None = Field(
        None, description="metadata.json of this version, without the golden sample"
    )


class TopK(BaseModel):
    label: str
    probability: float


class SetFields(BaseModel):
    """Versions with conformal scores: the prediction set and, with abstain, the abstention."""

    prediction_set: list[str] | None = Field(
        None,
        description="The labels that hold the true one with probability at least 1 - alpha, "
        "most probable first (may be empty).",
    )
    abstained: bool | None = Field(
        None,
        description="With abstain: true when the set does not hold exactly one label, "
        "or the input is out of distribution.",
    )
    abstain_reason: str | None = Field(
        None, description="out_of_distribution, several_labels, no_label, or null."
    )


class ClassPrediction(SetFields):
    label: str
    class_index: int
    probabilities: dict[str, float] = Field(description="Probability per label; they sum to 1.")
    top_k: list[TopK] | None = None
    input: list[list[float]] | None = Field(
        None, description="With include_input: the 28x28 array the model saw."
    )


class BinaryPrediction(SetFields):
    probability: float = Field(description="P(positive outcome), e.g. P(diabetes).")
    outcome: str
    outcome_index: int
    threshold: float
    input: list[float] | None = None


class PredictResponse(BaseModel):
    model: str
    version: int
    predictions: list[ClassPrediction | BinaryPrediction]
    threshold: float | None = Field(None, description="Binary models: the threshold used.")
    alpha: float | None = Field(
        None, description="Versions with prediction sets: the alpha the sets were made for."
    )


IMAGE_RESPONSE_EXAMPLE = {
    "model": "mnist",
    "version": 1,
    "predictions": [
        {
            "label": "1",
            "class_index": 1,
            "probabilities": {str(d): (0.91 if d == 1 else 0.01) for d in range(10)},
            "top_k": [{"label": "1", "probability": 0.91}, {"label": "7", "probability": 0.01}],
        }
    ],
}
PIMA_RESPONSE_EXAMPLE = {
    "model": "pima",
    "version": 1,
    "threshold": 0.5,
    "predictions": [
        {"probability": 0.72, "outcome": "diabetes", "outcome_index": 1, "threshold": 0.5}
    ],
}

_INSTANCES_SCHEMA: dict[str, Any] = {
    "description": "One instance or a list of them. Images: a 28x28 array or 784 values, "
    "0-1 floats or 0-255 numbers (see `scale`). Pima: an object with the eight named features "
    "(each also taken under the other names its model's metadata lists as aliases, and a label "
    "column skipped) or an array of 8 values in feature order.",
    "anyOf": [
        {"type": "array", "items": {}},
        {"type": "object", "additionalProperties": {"type": "number"}},
    ],
}

# A raw image body of each format the service decodes, for the OpenAPI request bodies
IMAGE_BODIES = {
    media: {"schema": {"type": "string", "format": "binary"}} for media in MEDIA_TYPES.values()
}

PREDICT_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["instances"],
                    "additionalProperties": False,
                    "properties": {
                        "instances": _INSTANCES_SCHEMA,
                        "scale": {
                            "type": "string",
                            "enum": ["auto", "unit", "byte"],
                            "default": "auto",
                            "description": "Image values: unit = [0, 1], byte = [0, 255], "
                            "auto = byte when any value is above 1.",
                        },
                        "top_k": {"type": "integer", "minimum": 1, "maximum": 10},
                        "threshold": {"type": "number", "minimum": 0, "maximum": 1},
                        "include_input": {"type": "boolean", "default": False},
                        "alpha": {
                            "type": "number",
                            "exclusiveMinimum": 0,
                            "exclusiveMaximum": 1,
                            "description": "Versions with prediction sets: miscoverage of the "
                            "sets (default: metadata conformal.alpha).",
                        },
                        "abstain": {
                            "type": "boolean",
                            "default": False,
                            "description": "Versions with prediction sets: say when the model "
                            "abstains (set of not exactly one label, or out of distribution).",
                        },
                    },
                },
                "examples": {
                    "image": {
                        "summary": "One MNIST image, 0-255 values",
                        "value": {"instances": [_digit_one()], "top_k": 3},
                    },
                    "pima": {
                        "summary": "Pima records (use model pima)",
                        "value": {"instances": [PIMA_EXAMPLE, [1, 85, 66, 29, 0, 26.6, 0.351, 31]]},
                    },
                },
            },
            **IMAGE_BODIES,
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": f"One or more {ACCEPTED_NAMES} images (any field "
                            "names).",
                        }
                    },
                }
            },
        },
    }
}


QUERY_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "top_k",
        "in": "query",
        "required": False,
        "description": "Classifiers: also list the k most likely labels (JSON bodies may set it).",
        "schema": {"type": "integer", "minimum": 1, "maximum": 10},
    },
    {
        "name": "threshold",
        "in": "query",
        "required": False,
        "description": "Binary models (pima): decision threshold on P(positive), 0 to 1.",
        "schema": {"type": "number", "minimum": 0, "maximum": 1},
    },
    {
        "name": "include_input",
        "in": "query",
        "required": False,
        "description": "Return the array the model saw with each prediction.",
        "schema": {"type": "boolean", "default": False},
    },
    {
        "name": "alpha",
        "in": "query",
        "required": False,
        "description": "Versions with prediction sets: the sets hold the true label with "
        "probability at least 1 - alpha (default: the version's metadata conformal.alpha).",
        "schema": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    },
    {
        "name": "abstain",
        "in": "query",
        "required": False,
        "description": "Versions with prediction sets: abstain when the set does not hold "
        "exactly one label, or the input is out of distribution.",
        "schema": {"type": "boolean", "default": False},
    },
    {
        "name": "digits",
        "in": "query",
        "required": False,
        "description": "Digit models, one picture as the body or as a form's one file: many "
        "reads a number (its digits left to right, each with its probabilities and box "
        "[x, y, width, height]).",
        "schema": {"type": "string", "enum": ["one", "many"], "default": "one"},
    },
]


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "Malformed request body",
        404: "Unknown model, version or label",
        405: "Method not allowed (a GET of a :predict URL)",
        413: "Body, image or file count too large",
        415: "Unsupported content type",
        422: "Invalid input: shape, type, range, NaN/Inf, empty or too many instances",
        503: "Model not ready, or overloaded (with Retry-After)",
        504: "Deadline passed",
    }
    return {code: {"model": ErrorBody, "description": text.get(code, "Error")} for code in codes}


def record_schema(
    model: str, features: list[dict[str, Any]], label_names: list[str] | None = None
) -> dict[str, Any]:
    """JSON schema of one named record of a tabular model, from its metadata's feature list:
    each feature under its name or one of its ``aliases``, and the label column, skipped, under
    any of ``label_names``, in any letter case. Such a schema cannot say that each feature must be
    there once under one of its names: the service's 422 says which is missing or given twice."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    renamed = False  # a feature has other names
    for feature in features:
        typical = feature.get("typical")
        note = f"; typical {typical[0]} to {typical[1]}" if isinstance(typical, list) else ""
        unit = f" ({feature['unit']})" if feature.get("unit") else ""
        name = str(feature["name"])
        aliases = [str(a) for a in feature.get("aliases") or ()]
        properties[name] = {
            "type": "number",
            "minimum": feature.get("min"),
            "maximum": feature.get("max"),
            "description": f"{feature.get('description') or name}{unit}{note}",
        }
        for alias in aliases:
            properties[alias] = {**properties[name], "description": f"{name}, by another name"}
        if aliases:
            properties[name]["description"] += f"; also taken as {', '.join(aliases)}"
            renamed = True
        else:
            required.append(name)
    for label in label_names or ():
        properties[label] = {"description": "the label column: not an input, skipped"}
    schema: dict[str, Any] = {
        "title": f"{model} record",
        "type": "object",
        "required": required,
        "additionalProperties": False,
        "properties": properties,
    }
    if renamed or label_names:
        # names are matched in any letter case (Kaggle writes Glucose and Age): a pattern per
        # name says so; which feature is missing then cannot be said, so the service says it
        schema["description"] = (
            "Each feature once, under its name or another listed for it; names are matched in "
            "any letter case."
        )
        schema["patternProperties"] = {_any_case(name): value for name, value in properties.items()}
        schema["minProperties"] = len(features)
        del schema["required"]
    return schema


def _any_case(name: str) -> str:
    """A pattern matching exactly ``name`` in any (ASCII) letter case."""
    return (
        "^"
        + "".join(
            f"[{c.lower()}{c.upper()}]" if c.isascii() and c.isalpha() else re.escape(c)
            for c in name
        )
        + "$"
    )


def add_record_schemas(openapi: dict[str, Any], records: dict[str, dict[str, Any]]) -> None:
    """Document each tabular model's named features (name, unit, range, other names) in the
    predict bodies; ``records`` holds each model's metadata ``input`` block."""
    if not records:
        return
    components = openapi.setdefault("components", {}).setdefault("schemas", {})
    refs = []
    for model, meta_input in sorted(records.items()):
        key = f"{model.title().replace('_', '')}Record"
        components[key] = record_schema(
            model, meta_input["features"], meta_input.get("label_names")
        )
        refs.append({"$ref": f"#/components/schemas/{key}"})
    instances = {
        "description": _INSTANCES_SCHEMA["description"],
        "anyOf": [{"type": "array", "items": {}}, *refs],
    }
    for item in openapi.get("paths", {}).values():
        body = item.get("post", {}).get("requestBody", {}).get("content", {})
        props = body.get("application/json", {}).get("schema", {}).get("properties", {})
        if props.get("instances") == _INSTANCES_SCHEMA:
            props["instances"] = instances
