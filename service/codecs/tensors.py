"""Numeric tensor helpers shared by the protocol codecs.

`json_numbers` turns decoded JSON (nested lists of numbers) into a numpy array without any
per-element Python work beyond numpy's own conversion. `fit_batch` reshapes a decoded tensor into
the model's batch layout `[N, *instance_shape]`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from service.errors import InvalidInput

_NUMERIC_KINDS = frozenset("biuf")
_F64 = np.dtype(np.float64)
_WIDE_FLOATS = (np.dtype(np.float32), _F64)


MAX_DEPTH = 32  # numpy allows 64 dimensions; no model here takes more than 4


def json_kind(value: Any) -> str:
    """The JSON name of a value's type, as a client would say it."""
    if value is None:
        return "null"
    if isinstance(value, bool | np.bool_):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list | tuple | np.ndarray):
        return "array"
    if isinstance(value, int | float | np.integer | np.floating):
        return "number"
    return type(value).__name__


def shape_text(shape: Sequence[int | None]) -> str:
    """``(3, None, 8)`` -> ``[3, ?, 8]``."""
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


# numpy reads a list of numbers holding one string as text, turning every number into a string
# first (about a second per ten million numbers): a longer list is read this many values at a
# time, and the first chunk that is not numbers ends the read
CHUNK_VALUES = 65536


def _rough_size(data: Any) -> int:
    """The number of values ``data`` holds if it is regular: the product of the lengths along
    its first elements."""
    n = 1
    while isinstance(data, list) and data:
        n *= len(data)
        data = data[0]
    return n


def numeric_array(data: Any) -> np.ndarray | None:
    """``np.asarray(data)`` when ``data`` is a regular (nested) list of numbers or booleans, else
    None (ragged, or holding a string, null or object), without reading a long list as text."""
    try:
        step = _chunk_length(data)
        if not isinstance(data, list) or step >= len(data):
            arr = np.asarray(data)
        else:
            parts = []
            for start in range(0, len(data), step):
                part = np.asarray(data[start : start + step])
                if part.dtype.kind not in _NUMERIC_KINDS:
                    return None
                parts.append(part)
            # chunks of different types (int and float) are typed as one array would be
            same = all(p.dtype == parts[0].dtype for p in parts)
            arr = np.concatenate(parts) if same else np.asarray(data)
    except (ValueError, TypeError, OverflowError, RecursionError):
        return None
    return arr if arr.dtype.kind in _NUMERIC_KINDS else None


def _chunk_length(data: Any) -> int:
    """How many elements of the list ``data`` hold about :data:`CHUNK_VALUES` values."""
    if not isinstance(data, list) or not data:
        return 1
    return max(1, CHUNK_VALUES // _rough_size(data[0]))


def _shape_of(value: Any, path: str, depth: int) -> tuple[int, ...] | str:
    """The shape of a regular nested list of numbers, or a message naming the first problem.

    A long list (:data:`CHUNK_VALUES` values or more) is read by numpy a chunk at a time: only a
    chunk that is not a regular array of numbers, or not of the first element's shape, is walked
    element by element. numpy reads a boolean among numbers as a number, so in such a list a
    boolean is named only when nothing else is wrong in its chunk; a shorter list is walked
    element by element throughout."""
    if json_kind(value) == "number":
        return ()
    if not isinstance(value, list):
        return f"{path}: expected a number, got {json_kind(value)}"
    if depth >= MAX_DEPTH:
        return f"{path}: arrays nested more than {MAX_DEPTH} levels deep"
    first: tuple[int, ...] | None = None
    long = _rough_size(value) >= CHUNK_VALUES
    step = _chunk_length(value) if long else len(value) or 1
    for start in range(0, len(value), step):
        chunk = value[start : start + step]
        arr = numeric_array(chunk) if long and step > 1 else None
        if (
            arr is not None
            and arr.dtype.kind != "b"
            and depth + arr.ndim <= MAX_DEPTH
            and (first is None or arr.shape[1:] == first)
        ):
            first = arr.shape[1:]
            continue
        for i, item in enumerate(chunk, start):
            sub = _shape_of(item, f"{path}[{i}]", depth + 1)
            if isinstance(sub, str):
                return sub
            if first is None:
                first = sub
            elif sub != first:
                return (
                    f"{path}[{i}]: ragged array: it has shape {shape_text(sub)} "
                    f"but {path}[0] has shape {shape_text(first)}"
                )
    return (len(value), *(first or ()))


def explain_non_numeric(data: Any, where: str) -> str:
    """Why ``data`` is not a regular array of numbers: the first offending element, by path."""
    if not isinstance(data, list):
        return f"{where}: expected an array of numbers, got {json_kind(data)}"
    result = _shape_of(data, where, 0)
    if isinstance(result, str):
        return result
    return f"{where}: cannot be read as an array of numbers"


def json_numbers(data: Any, dtype: np.dtype[Any], where: str) -> np.ndarray:
    """Convert nested JSON lists of numbers to an array of `dtype`, strictly.

    Rejects strings, nulls, objects and ragged nesting, integers that do not fit an integer
    dtype, non-integral values for an integer dtype, and booleans for a non-boolean dtype.
    """
    if type(data) is np.ndarray and data.dtype == _F64 and dtype in _WIDE_FLOATS:
        # Only the fast JSON parse puts arrays in a decoded document: float64, finite and below
        # 2**53 in magnitude (service.codecs.fastjson), so no cast to these can overflow.
        return data.astype(dtype, copy=False)
    if isinstance(data, (str, bytes, dict)) or data is None:
        raise InvalidInput(f"{where}: expected a number or a (nested) list of numbers")
    raw = numeric_array(data)
    if raw is None:
        raise InvalidInput(_explain(data, where, _fallback(data)))
    return cast_numbers(raw, dtype, where)


def _fallback(data: Any) -> str:
    """What to say when the walk finds no single element to name (integers beyond 64 bits)."""
    if _rough_size(data) < CHUNK_VALUES:
        try:
            np.asarray(data)
        except (ValueError, TypeError, OverflowError, RecursionError):
            return "rectangular (nested) list of numbers"
    return "numbers, got non-numeric values"


def cast_numbers(raw: np.ndarray, dtype: np.dtype[Any], where: str) -> np.ndarray:
    """Cast a numeric array to `dtype`, refusing lossy or meaningless conversions."""
    target = np.dtype(dtype)
    if raw.dtype == target:
        return raw
    if target.kind == "b":
        if raw.dtype.kind != "b":
            raise InvalidInput(f"{where}: BOOL data must be true/false values")
        return raw
    if raw.dtype.kind == "b":
        raise InvalidInput(f"{where}: expected numbers, got true/false values")
    if target.kind in "iu":
        if raw.dtype.kind == "f":
            if raw.size and not bool(np.all(np.isfinite(raw))):
                raise InvalidInput(f"{where}: integer data must be finite")
            if raw.size and not bool(np.all(raw == np.trunc(raw))):
                raise InvalidInput(f"{where}: expected integers for {_dt(target)} data")
        if raw.size:
            info = np.iinfo(target)
            lo, hi = raw.min(), raw.max()
            # floats compare with the first value past the range: float(2**64 - 1) is 2**64,
            # which `hi > info.max` lets through and the cast then wraps to 0
            too_big = hi >= float(info.max + 1) if raw.dtype.kind == "f" else hi > info.max
            if lo < info.min or too_big:
                raise InvalidInput(
                    f"{where}: values must lie in [{info.min}, {info.max}] for {_dt(target)} data"
                )
        return raw.astype(target)
    if raw.dtype.kind == "O":  # very large Python ints
        raise InvalidInput(f"{where}: number out of range")
    try:
        with np.errstate(over="raise"):  # a finite number the cast would make infinite
            return raw.astype(target)
    except FloatingPointError:
        raise InvalidInput(f"{where}: number out of range for {_dt(target)} data") from None


def shape_product(shape: Sequence[int]) -> int:
    return math.prod(shape)


# where a client that holds image files rather than tensors sends them, as every dialect says
IMAGE_FILES = "the image file itself to the own API (POST /models/{name}/predict)"


def colour_channels(shape: Sequence[int], side: int) -> str | None:
    """What to say of an image array whose last dimension is colour (``side x side x 3`` or
    ``x 4``, RGB or RGBA), or None when it has none; every dialect refuses such an array so."""
    if len(shape) < 3 or tuple(shape[-3:-1]) != (side, side) or shape[-1] not in (3, 4):
        return None
    dims = "x".join(str(int(d)) for d in shape[-3:])
    return (
        f"a {dims} array has colour channels: the model reads grey images, one value per pixel "
        f"({side}x{side}, or {side}x{side}x1): convert it to grey, or upload it as a picture"
    )


def fit_batch(arr: np.ndarray, instance_shape: Sequence[int], where: str) -> np.ndarray:
    """Reshape `arr` to `[N, *instance_shape]`.

    Accepts `[N, *instance_shape]` as is, `[N, prod(instance_shape)]` (flat instances) and, for
    images, `[N, *instance_shape, 1]`: the one grey channel of a Keras image model's input, the
    layout TF Serving clients of such a model send, or `[N, 1, *instance_shape]`, the same channel
    first, as PyTorch lays images out (the own API takes both too).
    """
    inst = tuple(int(d) for d in instance_shape)
    want = shape_product(inst)
    if arr.ndim == 1 + len(inst) and tuple(arr.shape[1:]) == inst:
        return arr
    if arr.ndim == 2 and arr.shape[1] == want:
        return arr.reshape((arr.shape[0], *inst))
    channel = len(inst) > 1 and arr.ndim == 2 + len(inst)  # one grey channel, last or first
    if channel and tuple(arr.shape[1:]) in ((*inst, 1), (1, *inst)):
        return arr.reshape((arr.shape[0], *inst))
    expected = _fmt([-1, *inst])
    alt = (
        f", {_fmt([-1, *inst, 1])}, {_fmt([-1, 1, *inst])} or {_fmt([-1, want])}"
        if len(inst) > 1
        else ""
    )
    colour = colour_channels(arr.shape, inst[0]) if arr.ndim == 4 and len(set(inst)) == 1 else None
    why = f" ({colour} to the own API, POST /models/{{name}}/predict)" if colour else ""
    raise InvalidInput(f"{where}: expected shape {expected}{alt}, got {_fmt(arr.shape)}{why}")


def _fmt(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


def _dt(dtype: np.dtype[Any]) -> str:
    return str(dtype)


def _explain(data: Any, where: str, fallback: str) -> str:
    """Name the first offending element (error path only: walks the data in Python)."""
    try:
        text = explain_non_numeric(data, where)
    except RecursionError:
        text = ""
    generic = f"{where}: cannot be read as an array of numbers"
    return text if text and text != generic else f"{where}: expected {fallback}"
