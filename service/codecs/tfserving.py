"""TensorFlow Serving REST codec: the predict request's row and columnar formats.

Row format: `{"instances": [...]}` answers `{"predictions": [...]}`.
Columnar format: `{"inputs": ...}` answers `{"outputs": ...}`.
Both accept an optional `signature_name`; only the default signature exists here, and an
optional `output_filter` (the name TF Serving's gRPC API gives it): the outputs to return, by
name. With one output the answer holds its tensor; with several, row format answers one object
per instance keyed by output name, and columnar format one tensor per name, as TF Serving does
for a signature with several outputs.

Two optional request fields of this server, for versions with prediction sets: `alpha` (the
sets' miscoverage) and `abstain` (true: say when the model abstains). They are passed on as sent;
the version's task checks them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Protocol

import numpy as np
import orjson

from service.codecs.jsonbody import parse_json
from service.codecs.tensors import IMAGE_FILES, fit_batch, json_numbers
from service.errors import BadRequest, InvalidInput

DEFAULT_SIGNATURE = "serving_default"
_F32 = np.dtype(np.float32)

Format = Literal["row", "columnar"]


class RecordNames(Protocol):
    """The names a tabular model's record fields are taken under (its feature names, their
    aliases and the label's column); the version's task has them, built once at load."""

    names: list[str]

    def exact(self, record: Mapping[str, Any]) -> bool: ...

    def canonical(
        self, record: Mapping[str, Any], path: str
    ) -> tuple[dict[str, Any], dict[str, str]]: ...

    def mismatch(self, record: Mapping[str, Any], path: str) -> str: ...


class PredictRequest(NamedTuple):
    """A decoded predict request (a named tuple: immutable, and built in a fraction of a frozen
    dataclass's time, which sets each field through ``object.__setattr__``)."""

    format: Format
    value: Any  # the decoded JSON value of "instances" or "inputs" (a tensor may be an ndarray)
    signature_name: str = DEFAULT_SIGNATURE
    output_filter: tuple[str, ...] | None = None
    alpha: Any = None
    abstain: Any = None
    target: Any = None  # :explain only: the class to explain (None: the predicted one)


_ENVELOPE = frozenset({"instances", "inputs", "signature_name"})
# an explanation answers no prediction sets and no chosen outputs: those fields are refused there
_PREDICT_FIELDS = _ENVELOPE | {"output_filter", "alpha", "abstain"}
_EXPLAIN_FIELDS = _ENVELOPE | {"target"}


def _tensor_at(path: tuple[str | int, ...]) -> bool:
    """The tensor positions of a predict request: `instances`, `inputs` and `inputs.<name>`."""
    if len(path) == 1:
        return path[0] in ("instances", "inputs")
    return len(path) == 2 and path[0] == "inputs" and isinstance(path[1], str)


def decode_predict_request(body: bytes, *, explain: bool = False) -> PredictRequest:
    """Parse and check the envelope of a TF Serving predict request (``explain``: of an
    ``:explain`` request, which may also name a ``target`` class).

    A large body's tensor comes back as a float64 ndarray instead of nested lists (see
    `service.codecs.fastjson`); `input_array` treats both alike.
    """
    doc = parse_json(body, tensor_at=_tensor_at)
    if not isinstance(doc, dict):
        raise BadRequest("request body must be a JSON object")
    if len(doc) == 1 and "instances" in doc:  # the usual request: nothing else to check
        return PredictRequest("row", doc["instances"])
    sig = doc.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(sig, str):
        raise BadRequest("'signature_name' must be a string")
    if sig not in ("", DEFAULT_SIGNATURE):
        raise BadRequest(
            f'Serving signature name: "{sig}" not found in signature def; '
            f'the only signature is "{DEFAULT_SIGNATURE}"'
        )
    has_rows, has_cols = "instances" in doc, "inputs" in doc
    if has_rows and has_cols:
        raise BadRequest("Request may have either 'instances' or 'inputs', but not both")
    if not (has_rows or has_cols):
        verb = " ('examples' is :classify's)" if "examples" in doc else ""
        raise BadRequest(f"Missing 'inputs' or 'instances' key{verb}")
    unknown = set(doc) - (_EXPLAIN_FIELDS if explain else _PREDICT_FIELDS)
    if unknown:
        raise BadRequest(f"unknown request field(s): {', '.join(sorted(unknown))}")
    wanted = _output_filter(doc.get("output_filter"))
    alpha, abstain, target = doc.get("alpha"), doc.get("abstain"), doc.get("target")
    if has_rows:
        return PredictRequest(
            "row", doc["instances"], DEFAULT_SIGNATURE, wanted, alpha, abstain, target
        )
    return PredictRequest(
        "columnar", doc["inputs"], DEFAULT_SIGNATURE, wanted, alpha, abstain, target
    )


def _output_filter(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) for v in value)
        or len(set(value)) != len(value)
    ):
        raise BadRequest("'output_filter' must be a non-empty list of distinct output names")
    return tuple(value)


def input_array(
    req: PredictRequest,
    input_name: str,
    instance_shape: Sequence[int],
    feature_names: Sequence[str] | None = None,
    records: RecordNames | None = None,
) -> np.ndarray:
    """The request's single input tensor as float32 `[N, *instance_shape]`.

    Row format: a list of instances, each a tensor or `{input_name: tensor}`; for tabular models
    an instance may also be an object keyed by feature name (or, with ``records``, by any name
    the version takes for it). Columnar format: the batch tensor, or `{input_name: batch tensor}`.
    """
    value = req.value
    if req.format == "columnar":
        if isinstance(value, dict):
            value = _named(value, input_name, "inputs")
        arr = json_numbers(value, _F32, "inputs")
        return fit_batch(arr, instance_shape, "inputs")
    if isinstance(value, np.ndarray):  # a regular array of numbers, parsed without lists
        arr = json_numbers(value, _F32, "instances")
        if arr.shape[1:] == instance_shape:  # the usual case, as fit_batch would find it
            return arr
        return fit_batch(arr, instance_shape, "instances")
    if not isinstance(value, list):
        raise InvalidInput("'instances' must be a list with one entry per instance")
    if not value:
        raise InvalidInput("'instances' is empty: send at least one instance")
    if isinstance(value[0], dict):
        value = [_row_object(v, i, input_name, feature_names, records) for i, v in enumerate(value)]
    arr = json_numbers(value, _F32, "instances")
    return fit_batch(arr, instance_shape, "instances")


_NO_BINARY = (
    "binary inputs ({{\"b64\": ...}}) are not taken: input '{}' is a tensor of numbers; send "
    "the numbers, or " + IMAGE_FILES.replace("{", "{{").replace("}", "}}")
)


def _named(obj: dict[str, Any], input_name: str, where: str) -> Any:
    if set(obj) != {input_name}:
        got = ", ".join(sorted(obj)) or "nothing"
        raise InvalidInput(f"{where}: this model has one input named '{input_name}', got {got}")
    value = obj[input_name]
    if isinstance(value, dict) and "b64" in value:
        raise InvalidInput(f"{where}: {_NO_BINARY.format(input_name)}")
    return value


def _row_object(
    obj: Any,
    i: int,
    input_name: str,
    feature_names: Sequence[str] | None,
    records: RecordNames | None,
    kind: str = "instances",
) -> Any:
    where = f"{kind}[{i}]"
    if not isinstance(obj, dict):
        raise InvalidInput(f"{where}: mix of objects and tensors; use one form for all instances")
    if input_name in obj:
        return _named(obj, input_name, where)
    if "b64" in obj:
        raise InvalidInput(f"{where}: {_NO_BINARY.format(input_name)}")
    if records is not None:
        feature_names = records.names
    if feature_names:
        if records is not None and not records.exact(obj):
            named, _ = records.canonical(obj, where)
            if not records.exact(named):  # said as the own API says it
                raise InvalidInput(records.mismatch(obj, where))
            obj = named
        missing = [f for f in feature_names if f not in obj]
        extra = sorted(set(obj) - set(feature_names))
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(missing)}")
            if extra:
                parts.append(f"unknown {', '.join(extra)}")
            raise InvalidInput(f"{where}: {'; '.join(parts)}")
        # a tf.Example's feature is a list of values: a one-value list is that value
        values = [
            v[0] if isinstance(v, list) and len(v) == 1 else v for v in map(obj.get, feature_names)
        ]
        for f, v in zip(feature_names, values, strict=True):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise InvalidInput(f"{where}: feature '{f}' must be a number (or a list of one)")
        return values
    raise InvalidInput(f"{where}: expected key '{input_name}'")


def encode_predict_response(outputs: np.ndarray | dict[str, np.ndarray], fmt: Format) -> bytes:
    """`{"predictions": ...}` (row) or `{"outputs": ...}` (columnar): a single output's tensor,
    or, for several named outputs, one object per instance (row) or per name (columnar)."""
    key = "predictions" if fmt == "row" else "outputs"
    if isinstance(outputs, dict):
        if len(outputs) == 1:
            outputs = next(iter(outputs.values()))
        elif fmt == "row":
            names = list(outputs)
            rows = zip(*(outputs[name] for name in names), strict=True)
            value = [dict(zip(names, row, strict=True)) for row in rows]
            return orjson.dumps({key: value}, option=orjson.OPT_SERIALIZE_NUMPY)
    return orjson.dumps({key: outputs}, option=orjson.OPT_SERIALIZE_NUMPY)


@dataclass(frozen=True, slots=True)
class ClassifyRequest:
    examples: list[dict[str, Any]]


def _example_values(path: tuple[str | int, ...]) -> bool:
    """Where a classify request holds its numbers."""
    return path in (("examples",), ("context",))


def decode_classify_request(body: bytes) -> ClassifyRequest:
    """Parse `{"examples": [{feature: value, ...}], "context": {...}}` (context merged in)."""
    doc = parse_json(body, numbers_at=_example_values)
    if not isinstance(doc, dict):
        raise BadRequest("request body must be a JSON object")
    sig = doc.get("signature_name", DEFAULT_SIGNATURE)
    if sig not in ("", DEFAULT_SIGNATURE):
        raise BadRequest(
            f'Serving signature name: "{sig}" not found; classify uses "{DEFAULT_SIGNATURE}"'
        )
    unknown = set(doc) - {"examples", "context", "signature_name"}
    if unknown:
        verb = (
            " (:classify takes 'examples', objects of named features; 'instances' and 'inputs' "
            "are :predict's)"
            if unknown & {"instances", "inputs"}
            else ""
        )
        raise BadRequest(f"unknown request field(s): {', '.join(sorted(unknown))}{verb}")
    examples = doc.get("examples")
    if not isinstance(examples, list) or not examples:
        raise InvalidInput("'examples' must be a non-empty list of objects")
    context = doc.get("context", {})
    if not isinstance(context, dict):
        raise BadRequest("'context' must be an object")
    merged: list[dict[str, Any]] = []
    for i, ex in enumerate(examples):
        if not isinstance(ex, dict):
            raise InvalidInput(f"examples[{i}] must be an object of features")
        clash = set(ex) & set(context)
        if clash:
            raise InvalidInput(f"examples[{i}]: {', '.join(sorted(clash))} also given in context")
        merged.append({**context, **ex})
    return ClassifyRequest(merged)


def examples_array(
    req: ClassifyRequest,
    input_name: str,
    instance_shape: Sequence[int],
    feature_names: Sequence[str] | None = None,
    records: RecordNames | None = None,
) -> np.ndarray:
    """The examples as float32 `[N, *instance_shape]` (same object rules as the row format)."""
    rows = [
        _row_object(ex, i, input_name, feature_names, records, "examples")
        for i, ex in enumerate(req.examples)
    ]
    arr = json_numbers(rows, _F32, "examples")
    return fit_batch(arr, instance_shape, "examples")
