"""Decode tabular records (Pima) from JSON: named fields or arrays in feature order.

A record is either an object ``{"pregnant": 6, "glucose": 148, ...}`` with exactly the model's
feature names, or an array of the feature values in the model's order. A request holds one record
or a list of them. Every value must be a number (not a boolean, string or null) within the
feature's ``[min, max]`` from the model's metadata.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.codecs.tensors import json_kind
from service.errors import InvalidInput

__all__ = ["FeatureSpec", "features_from_metadata", "records_from_json"]

_NUMBER_TYPES = (int, float)


@dataclass(frozen=True)
class FeatureSpec:
    """One input feature: its name, unit, meaning and the hard limits the service enforces."""

    name: str
    unit: str
    description: str
    min: float
    max: float
    missing_if_zero: bool = False


def features_from_metadata(meta_input: Mapping[str, Any]) -> list[FeatureSpec]:
    """The ``input.features`` list of a version's ``metadata.json`` as :class:`FeatureSpec` s.

    Raises ``ValueError`` (a broken model version, not a client error) when the list is missing or
    malformed.
    """
    raw = meta_input.get("features")
    if not isinstance(raw, list) or not raw:
        raise ValueError("metadata input.features must be a non-empty list of feature objects")
    features: list[FeatureSpec] = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise ValueError(f"metadata input.features[{i}] must be an object")
        try:
            spec = FeatureSpec(
                name=str(item["name"]),
                unit=str(item.get("unit") or ""),
                description=str(item.get("description") or ""),
                min=float(item["min"]),
                max=float(item["max"]),
                missing_if_zero=bool(item.get("missing_if_zero", False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"metadata input.features[{i}] is invalid: {exc!r}") from None
        if not spec.min <= spec.max:
            raise ValueError(f"metadata input.features[{i}] ({spec.name}): min > max")
        features.append(spec)
    names = [f.name for f in features]
    if len(set(names)) != len(names):
        raise ValueError(f"metadata input.features has duplicate names: {names}")
    return features


def _is_number(value: Any) -> bool:
    return type(value) in _NUMBER_TYPES  # exact types: bool is an int subclass and is refused


def _row_from_object(record: Mapping[str, Any], names: list[str], path: str) -> list[Any]:
    if len(record) != len(names) or not all(name in record for name in names):
        missing = [name for name in names if name not in record]
        unknown = [str(key) for key in record if key not in names]
        parts = []
        if missing:
            parts.append("missing field" + ("s " if len(missing) > 1 else " ") + ", ".join(missing))
        if unknown:
            parts.append("unknown field" + ("s " if len(unknown) > 1 else " ") + ", ".join(unknown))
        raise InvalidInput(f"{path}: {'; '.join(parts)} (expected fields: {', '.join(names)})")
    row = [record[name] for name in names]
    for name, value in zip(names, row, strict=True):
        if not _is_number(value):
            raise InvalidInput(f"{path}.{name}: expected a number, got {json_kind(value)}")
    return row


def _row_from_array(record: list[Any], names: list[str], path: str) -> list[Any]:
    if len(record) != len(names):
        raise InvalidInput(
            f"{path}: expected {len(names)} values in the order {', '.join(names)}, "
            f"got {len(record)}"
        )
    for j, value in enumerate(record):
        if not _is_number(value):
            raise InvalidInput(
                f"{path}[{j}] ({names[j]}): expected a number, got {json_kind(value)}"
            )
    return record


def records_from_json(
    instances: Any,
    features: Sequence[FeatureSpec],
    *,
    max_instances: int,
    where: str = "instances",
) -> np.ndarray:
    """One record or a list of records -> float32 ``(N, len(features))`` in feature order.

    Raises :class:`InvalidInput` (422) for an empty list, more than ``max_instances`` records,
    a missing or unknown field (naming it), a wrong number of values, a non-number, or a value
    outside the feature's ``[min, max]``.
    """
    names = [f.name for f in features]
    one_array = isinstance(instances, list) and bool(instances)
    single = isinstance(instances, dict) or (
        one_array and not isinstance(instances[0], dict | list)
    )
    if single:
        records: list[Any] = [instances]
    elif isinstance(instances, list):
        records = instances
        if not records:
            raise InvalidInput(f"{where}: no records: the list is empty")
        if len(records) > max_instances:
            raise InvalidInput(
                f"{where}: {len(records)} records is more than the limit of {max_instances}"
            )
    else:
        raise InvalidInput(
            f"{where}: expected a record (an object with the fields {', '.join(names)}, "
            f"or an array of {len(names)} numbers) or a list of records, got {json_kind(instances)}"
        )
    rows = []
    for i, record in enumerate(records):
        path = where if single else f"{where}[{i}]"
        if isinstance(record, dict):
            rows.append(_row_from_object(record, names, path))
        elif isinstance(record, list):
            rows.append(_row_from_array(record, names, path))
        else:
            raise InvalidInput(
                f"{path}: expected an object with the fields {', '.join(names)} or an array of "
                f"{len(names)} numbers, got {json_kind(record)}"
            )
    try:
        values = np.array(rows, dtype=np.float64)
    except OverflowError:  # an integer beyond any double; orjson never makes one
        raise InvalidInput(f"{where}: a value is too large to be a number") from None
    low = np.array([f.min for f in features])
    high = np.array([f.max for f in features])
    bad = ~((values >= low) & (values <= high))  # NaN compares False, so it counts as bad
    if bad.any():
        i, j = (int(k) for k in np.unravel_index(int(np.argmax(bad)), bad.shape))
        spec = features[j]
        path = where if single else f"{where}[{i}]"
        field = f".{spec.name}" if isinstance(records[i], dict) else f"[{j}] ({spec.name})"
        unit = f" {spec.unit}" if spec.unit else ""
        raise InvalidInput(
            f"{path}{field}: {values[i, j]:g} is outside the plausible range "
            f"[{spec.min:g}, {spec.max:g}]{unit}"
        )
    return values.astype(np.float32)
