"""Decode tabular records (Pima) from JSON: named fields or arrays in feature order.

A record is either an object ``{"pregnant": 6, "glucose": 148, ...}`` with exactly the model's
feature names, or an array of the feature values in the model's order. A request holds one record
or a list of them. Every value must be a number (not a boolean, string or null) within the
feature's ``[min, max]`` from the model's metadata.

A version whose metadata gives a feature ``aliases`` (the names other copies of the data set use,
Kaggle's ``BloodPressure`` for ``pressure``) or names its label column (``label_names``) takes an
object keyed by any of those names, in any letter case, so that a row of a published CSV is a
record as it is. The label's column is not an input and is skipped whatever it holds; a feature
given under two names is refused, naming both, rather than one value silently chosen. Without
either, only the exact feature names are taken.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.codecs.tensors import json_kind
from service.errors import InvalidInput

__all__ = [
    "FeatureSpec",
    "RecordFields",
    "features_from_metadata",
    "label_names_from_metadata",
    "records_from_json",
]

_NUMBER_TYPES = (int, float)
UNKNOWN_SHOWN = 10  # unknown keys a message names


@dataclass(frozen=True)
class FeatureSpec:
    """One input feature: its name, unit, meaning and the hard limits the service enforces."""

    name: str
    unit: str
    description: str
    min: float
    max: float
    missing_if_zero: bool = False
    # other names of the same column in common copies of the data set (matched in any case)
    aliases: tuple[str, ...] = ()


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
                aliases=_names(item.get("aliases", []), f"input.features[{i}].aliases"),
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


def label_names_from_metadata(meta_input: Mapping[str, Any]) -> tuple[str, ...]:
    """The ``input.label_names`` of a version's metadata: the names of the data set's label
    column, which a record may carry and which is not an input (none when absent)."""
    return _names(meta_input.get("label_names", []), "metadata input.label_names")


def _names(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(n, str) and n for n in raw):
        raise ValueError(f"{where} must be a list of non-empty strings")
    return tuple(raw)


def _same(name: str) -> str:
    return name


def _ascii_fold(name: str) -> str:
    """The name in lower case when it is ASCII, as every data set's column names are; other text
    is left as it is: Unicode case folding would take ``maß`` for ``mass`` and ``ſkin`` for
    ``skin``, names no one wrote for those columns."""
    return name.lower() if name.isascii() else name


class RecordFields:
    """The names a record's fields go by, for one version: built once when it loads, so that a
    request pays for a dictionary look-up per field only when its keys are not the exact names.

    Raises ``ValueError`` (a broken model version) when a name stands for two features, or for a
    feature and the label.
    """

    def __init__(self, features: Sequence[FeatureSpec], label_names: Sequence[str] = ()) -> None:
        self.features = tuple(features)
        self.names = [f.name for f in self.features]
        self.label_names = tuple(label_names)
        # metadata written before aliases existed keeps its exact-name behaviour
        self.folded = bool(self.label_names) or any(f.aliases for f in self.features)
        self._key: Callable[[str], str] = _ascii_fold if self.folded else _same
        # each name taken, as matched, to (its feature's index, the name as written)
        self._named: dict[str, tuple[int, str]] = {}
        for j, spec in enumerate(self.features):
            for name in (spec.name, *spec.aliases):
                other, _ = self._named.setdefault(self._key(name), (j, name))
                if other != j:
                    raise ValueError(
                        f"metadata input.features: {name!r} names both "
                        f"{self.names[other]} and {spec.name}"
                    )
        self._labels = frozenset(self._key(name) for name in self.label_names)
        both = sorted(self._labels & set(self._named))
        if both:
            raise ValueError(f"metadata input.label_names: {both[0]!r} also names a feature")

    def exact(self, record: Mapping[str, Any]) -> bool:
        """Whether the record's keys are exactly the feature names (the usual case)."""
        names = self.names
        return len(record) == len(names) and all(name in record for name in names)

    def canonical(
        self, record: Mapping[str, Any], path: str
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """The record keyed by feature names, the label's column left out, and which key each
        renamed feature was sent under. Keys that name nothing are kept as they are, for the
        caller to name as unknown. A feature given twice is an :class:`InvalidInput`."""
        out: dict[str, Any] = {}
        sent: dict[str, str] = {}
        for key, value in record.items():
            folded = self._key(key)
            named = self._named.get(folded)
            if named is None:
                if folded not in self._labels:
                    out[key] = value
                continue
            name = self.names[named[0]]
            if name in out:
                first = sent.get(name, name)
                raise InvalidInput(
                    f"{path}: {name} is given twice, as {first!r} and as {key!r}: give it once"
                )
            out[name] = value
            if key != name:
                sent[name] = key
        return out, sent

    def expected(self, *, with_aliases: bool) -> str:
        """The feature names, and with ``with_aliases`` the other names each is taken under."""
        names = ", ".join(self.names)
        if not with_aliases or not self.folded:
            return names
        others = "; ".join(
            f"{' or '.join(spec.aliases)} for {spec.name}" for spec in self.features if spec.aliases
        )
        label = (
            f"; the label column ({', '.join(self.label_names)}) is skipped"
            if self.label_names
            else ""
        )
        also = f"; also taken, in any letter case: {others}" if others else ""
        return f"{names}{also}{label}"

    def guess(self, key: str) -> str:
        """`` (did you mean ...?)`` for a key close to a name this version takes, else ``""``."""
        if not self.folded:
            return ""
        close = difflib.get_close_matches(self._key(key), list(self._named), n=1, cutoff=0.75)
        if not close:
            return ""
        j, name = self._named[close[0]]
        feature = self.names[j]
        return (
            f" (did you mean {name}?)"
            if name == feature
            else f" (did you mean {name} ({feature})?)"
        )

    def unknown(self, keys: Sequence[str]) -> str:
        """Unknown keys for a message: the first few, each with the nearest name taken, and how
        many more. A guess is a fuzzy match against every name, so guessing at each key of a
        record of thousands would hold the server for seconds; nor would a list so long be
        read."""
        shown = ", ".join(key + self.guess(key) for key in keys[:UNKNOWN_SHOWN])
        more = len(keys) - UNKNOWN_SHOWN
        return f"{shown} and {more} more" if more > 0 else shown

    def mismatch(self, record: Mapping[str, Any], path: str) -> str:
        """The message for a record (as sent) whose fields are not the features: what is missing,
        what is unknown, and the fields expected, each said once. A record that holds none of
        the features is not told the whole list twice, as missing and as expected."""
        named, sent = self.canonical(record, path)
        missing = [name for name in self.names if name not in named]
        unknown = [str(key) for key in named if key not in self.names]
        parts = []
        if len(missing) < len(self.names):
            if missing:
                parts.append(
                    "missing field" + ("s " if len(missing) > 1 else " ") + ", ".join(missing)
                )
        else:
            labels = [key for key in record if self._key(key) in self._labels]
            parts.append(
                f"the record holds only the label ({', '.join(labels)}), not the inputs"
                if labels and not unknown
                else "the record holds none of the inputs"
            )
        if unknown:
            parts.append(
                "unknown field" + ("s " if len(unknown) > 1 else " ") + self.unknown(unknown)
            )
        expected = self.expected(with_aliases=bool(unknown or sent))
        return f"{path}: {'; '.join(parts)} (expected fields: {expected})"


def _is_number(value: Any) -> bool:
    return type(value) in _NUMBER_TYPES  # exact types: bool is an int subclass and is refused


def _row_from_object(record: Mapping[str, Any], fields: RecordFields, path: str) -> list[Any]:
    names = fields.names
    sent: dict[str, str] = {}
    if not fields.exact(record):
        named, sent = fields.canonical(record, path)
        if not fields.exact(named):
            raise InvalidInput(fields.mismatch(record, path))
        record = named
    row = [record[name] for name in names]
    for name, value in zip(names, row, strict=True):
        if not _is_number(value):
            raise InvalidInput(
                f"{path}.{_field(name, sent)}: expected a number, got {json_kind(value)}"
            )
    return row


def _field(name: str, sent: Mapping[str, str]) -> str:
    """A feature as the client named it: ``BloodPressure (pressure)`` when renamed."""
    key = sent.get(name)
    return name if key is None else f"{key} ({name})"


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
    features: Sequence[FeatureSpec] | RecordFields,
    *,
    max_instances: int,
    where: str = "instances",
) -> np.ndarray:
    """One record or a list of records -> float32 ``(N, len(features))`` in feature order.

    ``features`` is best the version's :class:`RecordFields`, built once; a plain list of
    features takes their exact names only.

    Raises :class:`InvalidInput` (422) for an empty list, more than ``max_instances`` records,
    a missing or unknown field (naming it), a feature given twice, a wrong number of values, a
    non-number, or a value outside the feature's ``[min, max]``.
    """
    fields = features if isinstance(features, RecordFields) else RecordFields(features)
    features = fields.features
    names = fields.names
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
            rows.append(_row_from_object(record, fields, path))
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
        record = records[i]
        if isinstance(record, dict):
            sent = {} if spec.name in record else fields.canonical(record, path)[1]
            field = f".{_field(spec.name, sent)}"
        else:
            field = f"[{j}] ({spec.name})"
        unit = f" {spec.unit}" if spec.unit else ""
        raise InvalidInput(
            f"{path}{field}: {values[i, j]:g} is outside the plausible range "
            f"[{spec.min:g}, {spec.max:g}]{unit}"
        )
    return values.astype(np.float32)
