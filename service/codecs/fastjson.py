"""A fast JSON parse for large numeric tensors: numbers go straight into numpy, never into Python.

orjson turns each number of a large request into a Python float and numpy then reads them back:
that costs most of the request. :func:`parse_tensors` parses the body with
simdjson instead and copies each array at a *tensor position* (chosen by the caller, such as
``instances`` or ``inputs[i].data``) into a float64 ndarray in one call, converting only the
small rest of the document (names, shapes, parameters) to Python objects.

It is only a shortcut for the happy path. It returns ``None`` ("decline": the caller parses with
orjson as before, so every error message stays the same) for anything it cannot prove gives the
same result as ``np.asarray(orjson.loads(body)...)``:

- any simdjson error (bad JSON, numbers too big for 64 bits, NaN/Infinity) or a byte order mark;
- a tensor position holding anything but numbers (booleans, null, strings, objects), an empty
  array, or an irregular (ragged) nesting;
- a number of magnitude 2**53 or more (above that an integer may round differently through
  float64 than numpy's int64 -> float32 cast does);
- duplicate keys (orjson keeps the last value, simdjson finds the first), nesting deeper than
  :data:`MAX_DEPTH`, more than :data:`MAX_OTHER_VALUES` values outside the tensors (converting
  them one by one would be slower than orjson), and strings holding JSON's structural characters
  (see below).

Regularity is checked exactly and cheaply on the raw bytes: deleting everything but the
structural characters ``[]{},:"`` from the body leaves a skeleton that must equal the skeleton of
the parsed document, with each tensor drawn as a regular array of its shape (``[[,],[,]]`` for
2x2). Numbers leave no trace in it, and a string leaves only its two quotes once strings with
structural characters are declined; so any ragged or differently nested array changes it. When
all tensors are flat (V2 ``data``), counting the body's ``[`` is enough and ten times cheaper.

Each thread keeps one simdjson parser (a fresh one per request would cost more than the parse, in
page faults); it holds buffers sized for the largest body it has parsed (bounded by the body
size limit).
"""

from __future__ import annotations

import functools
import math
import re
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import simdjson

__all__ = [
    "MAX_DEPTH",
    "MAX_OTHER_VALUES",
    "Accept",
    "TensorAt",
    "parse_tensors",
    "regular_skeleton",
]

JsonPath = tuple[str | int, ...]
TensorAt = Callable[[JsonPath], bool]  # is the array at this path a tensor?
Accept = Callable[[Any], bool]  # a last look at the parsed document: False declines

MAX_DEPTH = 32
MAX_OTHER_VALUES = 10_000  # JSON values outside the tensors
EXACT_LIMIT = 2.0**53  # |integer| below this converts the same way via float64 or int64
_BOM = b"\xef\xbb\xbf"  # simdjson skips it, orjson rejects it
_STRUCTURE = b'[]{},:"'
_DELETE = bytes(c for c in range(256) if c not in _STRUCTURE)
_OPEN = ord("[")
_STRUCTURAL_CHAR = re.compile(r'[\[\]{},:"]')
_local = threading.local()
_MIN, _MAX = np.minimum.reduce, np.maximum.reduce  # what ndarray.min/max call, minus a layer


class _Decline(Exception):
    """Not provably the same as the orjson path: let it decide."""


def _parser(fresh: bool = False) -> simdjson.Parser:
    """This thread's parser: reusing one keeps its buffers, a fresh one costs page faults."""
    parser: simdjson.Parser | None = getattr(_local, "parser", None)
    if parser is None or fresh:
        parser = _local.parser = simdjson.Parser()
    return parser


def parse_tensors(body: bytes, tensor_at: TensorAt, accept: Accept | None = None) -> Any:
    """``body`` parsed as JSON with each tensor-position array as a float64 ndarray, or None.

    The document is what ``orjson.loads(body)`` gives, except that an array at a path for which
    ``tensor_at(path)`` is true (path: the keys and indices from the root) is a float64 ndarray of
    the array's exact nested shape. None means "decline" (see the module docstring); so does
    ``accept(doc)`` returning False. Any exception on the way declines too: the orjson path then
    gives the request its usual answer, never a 500.
    """
    if body.startswith(_BOM):
        return None
    try:
        root = _parse(body)
        if not isinstance(root, simdjson.Object):
            return None
        lone = _lone_tensor(root, tensor_at)
        if lone is not None:  # the usual request: one key, one tensor
            del root
            if accept is not None and not accept(lone[1]):
                return None
            key, doc = lone
            return doc if body.translate(None, _DELETE) == _lone_skeleton(key, doc) else None
        doc = _Converter(tensor_at).convert(root, ())
        del root
        if accept is not None and not accept(doc):
            return None
        return doc if _same_structure(body, doc) else None
    except Exception:  # _Decline, simdjson's TypeError for non-numbers, or anything unforeseen
        return None


def _parse(body: bytes) -> Any:
    """The root proxy; raises ValueError (bad JSON) or RuntimeError (a number beyond 64 bits)."""
    try:
        return _parser().parse(body)
    except RuntimeError:  # proxies of the last document still alive, or BIGINT_ERROR: retry
        return _parser(fresh=True).parse(body)


class _Converter:
    """Turns a simdjson proxy into Python objects, tensors into ndarrays, within a budget."""

    def __init__(self, tensor_at: TensorAt) -> None:
        self.tensor_at = tensor_at
        self.budget = MAX_OTHER_VALUES  # the rest is small: many values mean orjson's job

    def convert(self, value: Any, path: JsonPath) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _Decline
        if isinstance(value, simdjson.Object):
            if len(path) >= MAX_DEPTH:
                raise _Decline
            keys = list(value.keys())
            if len(set(keys)) != len(keys):
                raise _Decline
            out: dict[str, Any] = {}
            for key in keys:
                if not key.isidentifier():  # an identifier has no structural character
                    _check_string(key)
                out[key] = self.convert(value[key], (*path, key))
            return out
        if isinstance(value, simdjson.Array):
            if self.tensor_at(path):
                return _tensor(value)
            if len(path) >= MAX_DEPTH or len(value) > self.budget:
                raise _Decline
            return [self.convert(value[i], (*path, i)) for i in range(len(value))]
        if isinstance(value, str):
            _check_string(value)
        return value  # the other proxies' values are already Python numbers, bools or None


def _lone_tensor(root: Any, tensor_at: TensorAt) -> tuple[str, dict[str, Any]] | None:
    """``(key, {key: ndarray})`` for a document of one key holding a tensor, else None.

    What :class:`_Converter` gives for such a document, without its walk and bookkeeping, which
    cost about as much as the parse for one image.
    """
    if len(root) != 1:
        return None
    (key,) = root.keys()
    if not (key.isidentifier() and tensor_at((key,))):  # an identifier has no structural char
        return None
    value = root[key]
    if not isinstance(value, simdjson.Array):
        return None
    return key, {key: _tensor(value)}


def _lone_skeleton(key: str, doc: dict[str, Any]) -> bytes:
    """The skeleton of ``{key: tensor}`` (see :func:`_same_structure`)."""
    shape: tuple[int, ...] = doc[key].shape
    if math.prod(shape) <= _CACHED_SKELETON_SIZE:
        return _cached_lone_skeleton(shape)
    return b'{"":' + _skeleton_of(shape) + b"}"


@functools.lru_cache(maxsize=64)
def _cached_lone_skeleton(shape: tuple[int, ...]) -> bytes:
    return b'{"":' + _skeleton_of(shape) + b"}"


def _check_string(text: str) -> None:
    if _STRUCTURAL_CHAR.search(text):
        raise _Decline


def _tensor(array: simdjson.Array) -> np.ndarray:
    """A regular array of numbers -> float64 ndarray (its regularity is checked by the caller)."""
    shape: list[int] = []
    node: Any = array
    while isinstance(node, simdjson.Array):
        size = len(node)
        if size == 0 or len(shape) >= MAX_DEPTH:
            raise _Decline
        shape.append(size)
        node = node[0]
    del node
    values = np.frombuffer(array.as_buffer(of_type="d"), dtype=np.float64)
    if values.size != math.prod(shape):
        raise _Decline
    if not (_MIN(values) > -EXACT_LIMIT and _MAX(values) < EXACT_LIMIT):
        raise _Decline
    return values.reshape(shape)


def regular_skeleton(shape: tuple[int, ...]) -> bytes:
    """The structural characters of a regular array of numbers: ``(2, 3)`` -> ``[[,,],[,,]]``.

    About one byte per number: the skeletons of small shapes (a few images) are remembered,
    a few KB each; larger ones, rarer and up to megabytes, are built each time.
    """
    if math.prod(shape) <= _CACHED_SKELETON_SIZE:
        return _cached_skeleton(shape)
    return _skeleton_of(shape)


_CACHED_SKELETON_SIZE = 16_384  # numbers


@functools.lru_cache(maxsize=64)
def _cached_skeleton(shape: tuple[int, ...]) -> bytes:
    return _skeleton_of(shape)


def _skeleton_of(shape: tuple[int, ...]) -> bytes:
    inner = b""
    for size in reversed(shape):
        inner = b"[" + (inner + b",") * (size - 1) + inner + b"]" if size else b"[]"
    return inner


def _same_structure(body: bytes, doc: Any) -> bool:
    """Whether the body's arrays nest exactly as ``doc`` says (tensors regular in their shape).

    When every tensor is flat, counting the body's ``[`` suffices (numpy does it at memory speed):
    a flat tensor holding a nested array would add one. Otherwise compare skeletons.
    """
    arrays, all_flat = _arrays(doc)
    if all_flat:
        return int(np.count_nonzero(np.frombuffer(body, dtype=np.uint8) == _OPEN)) == arrays
    return body.translate(None, _DELETE) == _skeleton(doc)


def _arrays(value: Any) -> tuple[int, bool]:
    """How many arrays ``value`` has, and whether all its tensors are flat."""
    if isinstance(value, np.ndarray):
        return 1, value.ndim == 1
    if isinstance(value, dict):
        items, count = list(value.values()), 0
    elif isinstance(value, list):
        items, count = value, 1
    else:
        return 0, True
    flat = True
    for item in items:
        n, f = _arrays(item)
        count, flat = count + n, flat and f
    return count, flat


def _skeleton(value: Any) -> bytes:
    if isinstance(value, dict):
        return b"{" + b",".join(b'"":' + _skeleton(v) for v in value.values()) + b"}"
    if isinstance(value, list):
        return b"[" + b",".join(_skeleton(v) for v in value) + b"]"
    if isinstance(value, np.ndarray):
        return regular_skeleton(value.shape)
    if isinstance(value, str):
        return b'""'
    return b""
