"""Parse a request body as JSON with orjson, turning every failure into a clear client error.

orjson is strict: it rejects the non-standard literals ``NaN``, ``Infinity`` and ``-Infinity`` that
Python's ``json.dumps`` writes for non-finite floats, and numbers too large for a double
(``1e400``).
Such a body is well-formed apart from its values, so it is reported as 422 (:class:`InvalidInput`,
"NaN or Inf"), while a body that is not JSON at all is 400 (:class:`BadRequest`). Only the error
path pays for the second look with the standard library.

Given ``tensor_at``, a large body is first tried with :mod:`service.codecs.fastjson`, which
returns the numeric tensors as ndarrays without a Python object per number; whenever it is not
sure to give exactly what orjson gives, it declines and orjson parses the body as always.

A key given twice in one object (``{"instances": [...], "instances": [...]}``, a Pima feature
twice) is refused (400, :class:`DuplicateKey`): orjson would keep the last value without a word.
The fast parse declines such a body, so only orjson's documents are checked, and cheaply: every
key of the body is followed by one ``:`` (a ``:`` inside a string only adds to the count), so a
body with as many ``:`` as its parsed objects have keys has no key twice; only when the counts
differ (a key twice, or a ``:`` in a string value such as a time) are the body's quotes followed
by a ``:`` counted instead, and only when those differ too does the standard library parse the
body again to find the key.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from typing import Any, NoReturn

import numpy as np
import orjson

from service.codecs import fastjson
from service.codecs.magic import ACCEPTED_FORMATS, ACCEPTED_NAMES, MEDIA_TYPES, image_format
from service.errors import BadRequest, DuplicateKey, InvalidInput

__all__ = ["FAST_MIN_BYTES", "parse_json"]

# Below this size orjson is faster: simdjson's fixed costs and the structure check outweigh the
# Python floats saved (timed on TF Serving bodies of n floats, decoded to float32; the crossover
# lies between 2 and 4 KiB).
FAST_MIN_BYTES = 3 * 1024

_NON_FINITE_HINT = "send finite numbers only (JSON has no NaN or Infinity)"


def _non_finite_literal(body: bytes) -> tuple[str, bool] | None:
    """The first NaN/Infinity literal or overflowing number of a body that is otherwise valid,
    and whether it is a number too large for a double (``1e400``) rather than a literal."""
    found: list[tuple[str, bool]] = []

    def constant(literal: str) -> float:
        found.append((literal, False))
        return 0.0

    def real(text: str) -> float:
        value = float(text)
        if value in (float("inf"), float("-inf")):
            found.append((text if len(text) <= 20 else text[:20] + "...", True))
        return value

    def integer(text: str) -> int | float:
        if len(text.lstrip("-")) > 308:  # beyond any double: orjson calls it infinity
            found.append((text[:20] + "...", True))
            return 0.0
        return int(text)

    try:
        json.loads(body, parse_constant=constant, parse_float=real, parse_int=integer)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    return found[0] if found else None


def parse_json(
    body: bytes,
    tensor_at: fastjson.TensorAt | None = None,
    accept: fastjson.Accept | None = None,
    *,
    numbers_at: fastjson.TensorAt | None = None,
) -> Any:
    """Parse ``body`` as JSON.

    With ``tensor_at``, the arrays at the paths it selects may come back as float64 ndarrays of the
    same values and nesting (:func:`service.codecs.fastjson.parse_tensors`); ``accept`` may veto
    that form of the document.

    ``numbers_at`` (by default ``tensor_at``) selects the values that must hold numbers: one that
    holds ``true`` or ``false`` among numbers is refused, since numpy would read them as 1 and 0
    (:func:`boolean_among_numbers`).

    Raises :class:`BadRequest` (400) for an empty or malformed body or a key given twice in one
    object (:class:`DuplicateKey`), and :class:`InvalidInput` (422) for a body that would be
    valid JSON except for NaN, Infinity or an overflowing number, or with a boolean among the
    numbers.
    """
    if not body or not body.strip():
        raise BadRequest("request body is empty: expected a JSON document")
    if tensor_at is not None and len(body) >= FAST_MIN_BYTES:
        doc = fastjson.parse_tensors(body, tensor_at, accept)
        if doc is not None:  # its tensors hold numbers only (it declines anything else)
            return doc
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        _refuse(body, exc)
    if type(doc) is dict or type(doc) is list:
        key = duplicate_key(body, doc)
        if key is not None:
            shown = key if len(key) <= 64 else key[:64] + "..."
            raise DuplicateKey(
                f"malformed JSON: the key {shown!r} is given twice in one object; send each key "
                "once (the service would not know which value was meant)"
            )
    numbers_at = numbers_at or tensor_at
    if numbers_at is not None and _boolean_in_array(body):
        found = boolean_among_numbers(doc, numbers_at)
        if found is not None:
            raise InvalidInput(f"{found}: expected a number, got boolean (true/false is not 1/0)")
    return doc


def duplicate_key(body: bytes, doc: Any) -> str | None:
    """A key that one object of ``body`` gives twice, or None; ``doc`` is ``orjson.loads(body)``.

    Every key in the body is a string followed by a ``:``, and ``:`` appears elsewhere only
    inside strings, so the body's ``:`` are at least the keys written, which are at least the
    keys ``doc`` holds, as many only when no object gives a key twice. So are the ``"`` followed
    by a ``:`` (inside a string that takes an escaped ``\\"``), which a string value holding a
    ``:`` does not add to. Keys counted short of ``doc``'s (see :func:`_key_count`) only make
    the counts differ and the next, dearer step run: a shortcut costs time, never a missed key.
    """
    keys, whole = _key_count(body, doc, deep=False)
    if _at_most(body, b":", keys):
        return None
    if not whole:
        keys, _ = _key_count(body, doc, deep=True)
        if _at_most(body, b":", keys):
            return None
    if _key_ends(body) == keys:
        return None
    return _first_duplicate(body)


_KEY_END = re.compile(rb'"[ \t\n\r]*:')  # JSON's whitespace only
_KEY_END_CHUNK = 16 * 1024


def _key_ends(body: bytes) -> int:
    """How many times ``body`` holds :data:`_KEY_END`, found a chunk at a time: a list of every
    match costs some 56 bytes each (a 32 MiB string of ``\\":`` would hold 600 MiB). Each chunk
    ends just after a ``:``, which ends any match, so no match straddles two chunks; a chunk's
    matches are at most its first 16 KiB's colons and one more."""
    count = at = 0
    while at < len(body):
        end = body.find(b":", at + _KEY_END_CHUNK) + 1 or len(body)
        count += len(_KEY_END.findall(body, at, end))
        at = end
    return count


_ONLY_DICTS = {dict}
_PLAIN = frozenset({int, float, str, bool, type(None)})
_FEW = 16
_NUMPY_COUNT_BYTES = 16 * 1024


def _at_most(body: bytes, byte: bytes, n: int) -> bool:
    """Whether ``body`` holds ``byte`` at most ``n`` times. A few are looked for one by one
    (``find`` runs at memory speed, ``bytes.count`` about 3 GB/s: an image body's one key);
    many in a large body are counted by numpy, four times faster than ``bytes.count``."""
    if n > _FEW or len(body) < 1024:
        return _count(body, byte) <= n
    at = -1
    for _ in range(n + 1):
        at = body.find(byte, at + 1)
        if at < 0:
            return True
    return False


def _count(body: bytes, byte: bytes) -> int:
    """How many times ``body`` holds ``byte`` (numpy counts a large body four times faster)."""
    if len(body) < _NUMPY_COUNT_BYTES:
        return body.count(byte)
    return int(np.count_nonzero(np.frombuffer(body, np.uint8) == ord(byte)))


def _key_count(body: bytes, doc: Any, *, deep: bool) -> tuple[int, bool]:
    """The keys of ``doc``'s objects, and whether every object was counted.

    The quick pass (``deep`` False) leaves out what may hold objects but rarely does, at a cost
    per number or record: nested arrays (an image's rows) and the values of more than a few
    records. The deep pass walks them too while the body holds more ``{`` than objects were
    found. Neither walks a list whose first item is a plain value."""
    keys = found = 0
    whole = True
    # the body's "{" counted once: asked per nested array, the count made the walk quadratic
    braces = _count(body, b"{") if deep else 0
    stack = [doc]
    while stack:
        value = stack.pop()
        if type(value) is dict:
            found += 1
            keys += len(value)
            for v in value.values():
                if type(v) is dict or type(v) is list:
                    stack.append(v)
        elif type(value) is not list or not value:
            continue
        elif type(value[0]) is dict:  # records: counted in C
            dicts = value if len(value) == 1 or set(map(type, value)) == _ONLY_DICTS else None
            if dicts is None:
                dicts = [v for v in value if type(v) is dict]
                stack.extend(v for v in value if type(v) is list)
            found += len(dicts)
            keys += sum(map(len, dicts))
            if len(dicts) <= _FEW or (deep and braces > found):
                for d in dicts:  # a record of plain values (Pima's) is looked at in C
                    if not _PLAIN.issuperset(map(type, d.values())):
                        stack.extend(v for v in d.values() if type(v) in (dict, list))
            else:
                whole = False
        elif type(value[0]) is list:
            if deep and braces > found:
                stack.extend(v for v in value if type(v) is list or type(v) is dict)
            elif not deep:
                whole = False
    return keys, whole


class _Duplicate(Exception):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> None:
    """Raises :class:`_Duplicate` for a key given twice; keeps nothing (orjson's document is the
    one served: a second copy of a large body's objects would only cost memory)."""
    if len({key for key, _ in pairs}) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Duplicate(key)
            seen.add(key)


# orjson parses up to 1024 nested arrays and objects; the standard library's parse recurses in C,
# one level of Python's recursion limit per level, so a body nested near that limit is parsed
# again with the limit raised for the while (one thread at a time: the limit is the process's)
_ORJSON_MAX_DEPTH = 1024
_DEEP = threading.Lock()


def _first_duplicate(body: bytes) -> str | None:
    """The first key given twice in one object of ``body`` (innermost objects first)."""
    try:
        json.loads(body, object_pairs_hook=_unique_pairs)
    except _Duplicate as found:
        return str(found.args[0])
    except RecursionError:  # nested deeper than Python's stack has room for, orjson not
        return _first_duplicate_deep(body)
    except ValueError:
        pass
    return None


def _first_duplicate_deep(body: bytes) -> str | None:
    with _DEEP:
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(limit + _ORJSON_MAX_DEPTH + 100)
        try:
            json.loads(body, object_pairs_hook=_unique_pairs)
        except _Duplicate as found:
            return str(found.args[0])
        except (ValueError, RecursionError):
            pass
        finally:
            sys.setrecursionlimit(limit)
    return None


def binary_after_json(body: bytes) -> int | None:
    """The length of a JSON object that binary data follows, for a request that did not say it
    (the Inference-Header-Content-Length header); None when the body is not such a request."""
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        end = body.rfind(b"}", 0, exc.start) + 1
    else:  # all text, as tensor bytes may happen to be: the JSON ends where trailing data starts
        try:
            orjson.loads(body)
            return None
        except orjson.JSONDecodeError as exc:
            trailing = len(text[: exc.pos].encode())  # the error counts characters, not bytes
            if "after document" not in exc.msg or b"binary_data_size" not in body[:trailing]:
                return None
            end = body.rfind(b"}", 0, trailing) + 1
    if end <= 0:
        return None
    try:
        return end if isinstance(orjson.loads(body[:end]), dict) else None
    except orjson.JSONDecodeError:
        return None


def _refuse(body: bytes, exc: orjson.JSONDecodeError) -> NoReturn:
    """The client error for a body orjson could not parse."""
    found = _non_finite_literal(body)
    if found is not None and found[1]:
        raise InvalidInput(
            f"request contains the number {found[0]!r}, too large for a double"
        ) from None
    if found is not None:
        raise InvalidInput(
            f"request contains the non-finite number {found[0]!r}: {_NON_FINITE_HINT}"
        ) from None
    kind = image_format(body)
    if kind in ACCEPTED_FORMATS:
        raise BadRequest(
            f"the body is a {kind} image, not JSON: the own API's /predict takes "
            f"images sent with Content-Type: {MEDIA_TYPES[kind]}"
        ) from None
    if kind is not None:
        raise BadRequest(
            f"the body is a {kind} image, not JSON (the own API's /predict takes "
            f"{ACCEPTED_NAMES} images)"
        ) from None
    end = binary_after_json(body)
    if end is not None:
        raise BadRequest(
            f"binary data follows the request's JSON (from byte {end}): binary tensor data is "
            "the V2 protocol's, POST /v2/models/{name}/infer with Inference-Header-Content-Length"
        ) from None
    msg, line, column = exc.msg, exc.lineno, exc.colno
    if "UTF-8" in msg:  # orjson checks the encoding first and places the error at the start
        try:
            body.decode()
        except UnicodeDecodeError as bad:
            msg = f"byte 0x{body[bad.start]:02x} is not UTF-8"
            line = body.count(b"\n", 0, bad.start) + 1
            column = len(body[body.rfind(b"\n", 0, bad.start) + 1 : bad.start].decode()) + 1
    # "..." where parsing stopped is a shortened example's: orjson calls it a sign without digits
    elided = (
        " (the body holds '...': send every value)" if body[exc.pos :].startswith(b"...") else ""
    )
    raise BadRequest(f"malformed JSON: {msg} at line {line} column {column}{elided}") from None


_BOOLEAN_IN_ARRAY = re.compile(rb"[\[,]\s*(?:true|false)")


def _boolean_in_array(body: bytes) -> bool:
    """Whether ``body`` may hold ``true`` or ``false`` as an array element (one follows "[" or
    ","; a boolean option such as ``"abstain": true`` follows ":"), so that the Python-speed walk
    of :func:`boolean_among_numbers` is paid only then. The pattern tries every "[" and "," of
    the body (tens of µs for one image's numbers), so byte searches go first: "true" holds a "u"
    and "false" an "l" (one own-API body of numbers holds neither: memory speed), and a body whose
    keys or nulls hold them is searched for the words (a few µs) before the pattern runs."""
    return (
        (b"u" in body or b"l" in body)
        and (b"true" in body or b"false" in body)
        and _BOOLEAN_IN_ARRAY.search(body) is not None
    )


_SCALARS = frozenset({int, float, bool})
_NUMBERS = frozenset({int, float})
_POSITION_DEPTH = 3  # the deepest path a numbers_at selects (V2's inputs[i].data)


def boolean_among_numbers(doc: Any, numbers_at: fastjson.TensorAt) -> str | None:
    """The path (``instances[0][1]``) of the first ``true``/``false`` in a value selected by
    ``numbers_at`` that also holds numbers, or None.

    A value of booleans alone is left to the caller, which refuses it with its own message (or,
    for a boolean tensor, reads it); so is a selected value that is not an array (the fast parse,
    which declines any array of non-numbers at a tensor position, passes those on as they are).
    """
    positions: list[tuple[Any, tuple[str | int, ...]]] = [(doc, ())]
    while positions:
        value, path = positions.pop()
        if isinstance(value, list) and path and numbers_at(path):
            found = _first_boolean_among_numbers(value, path)
            if found is not None:
                return _path_text(found)
        elif len(path) < _POSITION_DEPTH:
            if isinstance(value, dict):
                positions.extend((v, (*path, k)) for k, v in reversed(value.items()))
            elif isinstance(value, list):
                positions.extend((value[i], (*path, i)) for i in range(len(value) - 1, -1, -1))
    return None


def _first_boolean_among_numbers(
    value: Any, path: tuple[str | int, ...]
) -> tuple[str | int, ...] | None:
    first: tuple[str | int, ...] | None = None
    numbers = False
    stack = [(value, path)]
    while stack:  # depth first, in document order: the first boolean is the one named
        item, where = stack.pop()
        if type(item) is list:
            types = set(map(type, item))
            if types <= _SCALARS:  # a list of plain values: looked at in C
                if bool in types and first is None:
                    first = (*where, [type(v) for v in item].index(bool))
                numbers = numbers or not types.isdisjoint(_NUMBERS)
            else:
                stack.extend((item[i], (*where, i)) for i in range(len(item) - 1, -1, -1))
        elif type(item) is dict:  # an instance's tensors; its other values are not numbers
            # (a records model checks its fields one by one, naming the feature)
            stack.extend((v, (*where, k)) for k, v in reversed(item.items()) if type(v) is list)
        elif type(item) is bool:
            first = first or where
        elif type(item) in _NUMBERS:
            numbers = True
        if first is not None and numbers:
            return first
    return None


def _path_text(path: tuple[str | int, ...]) -> str:
    head, *rest = path
    return str(head) + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in rest)
