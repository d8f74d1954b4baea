"""Decode JSON arrays (nested lists from orjson) into checked numpy arrays.

Fast path: one ``np.asarray`` call and a few vectorised reductions, so no Python object is made per
value beyond what orjson already made. Only when something is wrong do the helpers here walk the
data in Python, to name the first offending element (``instances[3][7]: expected a number, got
string``).

JSON booleans are not numbers: an array of booleans, or a boolean where numpy needs a number, is
rejected. numpy would read a boolean mixed into an array of numbers as 0 or 1: the JSON parse
(``service.codecs.jsonbody.parse_json``) refuses such a body before it gets here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from service.codecs.tensors import colour_channels, explain_non_numeric, json_kind, numeric_array
from service.errors import InvalidInput

__all__ = ["RANGE_SLACK", "SCALES", "Scale", "images_from_json"]


def _expected(side: int) -> str:
    return f"expected {side * side} values or a {side}x{side} array"


Scale = Literal["auto", "unit", "byte"]
SCALES: tuple[str, ...] = ("auto", "unit", "byte")
RANGE_SLACK = 1e-6  # a value this far outside its range is rounding (float32, resampling), not data
BYTE_PEAK = 2.0  # a 0-255 image whose brightest value is below this is black: such a peak just
# above 1 is a [0, 1] image that overshot, and is refused rather than read as 0-255


# ---------------------------------------------------------------- error-path helpers


def _index_text(index: Sequence[int]) -> str:
    return "".join(f"[{int(i)}]" for i in index)


def _numeric(data: Any, where: str) -> np.ndarray:
    """``data`` as an int or float ndarray, or InvalidInput naming the first non-number."""
    if isinstance(data, np.ndarray):
        arr = data
    else:
        found = numeric_array(data)
        if found is None:
            raise InvalidInput(explain_non_numeric(data, where))
        arr = found
    if arr.dtype.kind not in "iuf":
        if isinstance(data, np.ndarray):
            raise InvalidInput(f"{where}: expected numbers, got an array of {arr.dtype}")
        raise InvalidInput(explain_non_numeric(data, where))
    return arr


def _first_bad(bad: np.ndarray) -> tuple[int, ...]:
    """Index of the first True in a boolean array."""
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape))


def _count_hint(instances: list[Any], side: int) -> int:
    """Instances in a list that is clearly a batch (cheap: looks at the first element only)."""
    first = instances[0]
    if not isinstance(first, list):
        return 1  # one flat image
    if first and isinstance(first[0], list):
        pixel = first[0][0] if first[0] else None
        channels = len(instances) == side and len(first) == side and len(first[0]) != side
        if channels and not isinstance(pixel, list):
            return 1  # one image with channels (28x28xC)
        return len(instances)  # a list of 2-D images
    if len(instances) == side and len(first) == side:
        return 1  # one 28x28 image
    return len(instances) if len(first) == side * side else 1


def _channels_error(shape: tuple[int, ...], where: str, side: int) -> InvalidInput | None:
    """The message for images with colour channels (``side x side x 3`` or ``x 4``), or None."""
    colour = colour_channels(shape, side) if len(shape) in (3, 4) else None
    if colour is None:
        return None
    path = where if len(shape) == 3 else f"{where}[0]"
    return InvalidInput(f"{path}: {colour}")


def _image_shape_error(shape: tuple[int, ...], where: str, side: int) -> InvalidInput:
    """The message for a regular array that is neither one image nor a list of images."""
    channels = _channels_error(shape, where, side)
    if channels is not None:
        return channels
    if len(shape) == 0:
        return InvalidInput(f"{where}: {_expected(side)}, got a single number")
    if len(shape) == 1:
        return InvalidInput(f"{where}: {_expected(side)}, got {shape[0]} values")
    if len(shape) == 2 and side not in shape:
        return InvalidInput(f"{where}[0]: {_expected(side)}, got {shape[1]} values")
    if len(shape) == 2:
        return InvalidInput(f"{where}: {_expected(side)}, got {shape[0]}x{shape[1]}")
    dims = "x".join(str(d) for d in shape[1:])
    return InvalidInput(f"{where}[0]: {_expected(side)}, got {dims}")


def _as_batch(arr: np.ndarray, where: str, side: int) -> tuple[np.ndarray, bool]:
    """A regular array -> ((N, 28, 28) view, whether the images were flat).

    A trailing axis of one (``28x28x1``, the layout of a Keras model's input) is one grey channel,
    and so is an axis of one before each image in a batch (``Nx1x28x28``, PyTorch's layout).
    """
    if arr.ndim in (3, 4) and arr.shape[-1] == 1 and arr.shape[-3:-1] == (side, side):
        arr = arr[..., 0]
    elif arr.ndim == 4 and arr.shape[1:] == (1, side, side):
        arr = arr[:, 0]
    shape = arr.shape
    if shape == (side, side):
        return arr[None], False
    if shape == (side * side,):
        return arr.reshape(1, side, side), True
    if arr.ndim == 3 and shape[1:] == (side, side) and shape[0] > 0:
        return arr, False
    if arr.ndim == 2 and shape[1] == side * side and shape[0] > 0:
        return arr.reshape(-1, side, side), True
    raise _image_shape_error(shape, where, side)


def _ragged_batch(instances: list[Any], where: str, side: int) -> np.ndarray:
    """Slow path: a list whose images differ in layout (28x28 and 784) or in which one is wrong."""
    images = []
    for i, item in enumerate(instances):
        path = f"{where}[{i}]"
        arr = _numeric(item, path)
        if arr.shape == (side, side, 1):
            arr = arr[..., 0]
        elif arr.shape == (1, side, side):
            arr = arr[0]
        if arr.shape == (side, side) or arr.shape == (side * side,):
            images.append(arr.reshape(side, side))
            continue
        if arr.ndim == 0:
            raise InvalidInput(f"{path}: {_expected(side)}, got a single number")
        if arr.ndim == 1:
            raise InvalidInput(f"{path}: {_expected(side)}, got {arr.shape[0]} values")
        channels = _channels_error(arr.shape, path, side)
        if channels is not None:
            raise channels
        dims = "x".join(str(d) for d in arr.shape)
        raise InvalidInput(f"{path}: {_expected(side)}, got {dims}")
    return np.stack(images)


def _range_error(
    batch: np.ndarray, bad: np.ndarray, where: str, flat: bool, single: bool, reason: str
) -> InvalidInput:
    side = batch.shape[-1]
    n, r, c = _first_bad(bad)
    value = batch[n, r, c]
    at = f"index {r * side + c}" if flat else f"row {r}, column {c}"
    path = where if single else f"{where}[{n}]"
    return InvalidInput(f"{path}: value {value} at {at} {reason}")


def _is_record(value: Any) -> bool:
    """An object of named values (TF Serving's ``{"b64": ...}`` is an encoded file instead)."""
    return isinstance(value, dict) and "b64" not in value


def _record_for_images(where: str, side: int) -> str:
    return (
        f"{where}: an object of named values is a record, as a model of named features takes; "
        f"this model takes images: {side}x{side} arrays of numbers, or the image file itself"
    )


def images_from_json(
    instances: Any,
    *,
    side: int,
    scale: Scale = "auto",
    max_instances: int,
    where: str = "instances",
) -> np.ndarray:
    """One image or a list of images as JSON -> float32 ``(N, side, side)`` in [0, 1].

    Each image is a ``side`` x ``side`` nested array or a flat list of ``side * side`` values
    (row-major); a list may mix both. The value scale:

    - ``"unit"``: values are already in [0, 1] (ink 1, background 0) and are used as they are;
    - ``"byte"``: values are in [0, 255] and are divided by 255;
    - ``"auto"`` (default): ``"byte"`` if any value in the request is above 1, else ``"unit"``;
      but a request whose largest value is above 1 and below 2 is refused as ambiguous (on the
      0-255 scale it would be black: it is a [0, 1] image that overshot, as resampling does).

    Values within ``RANGE_SLACK`` of the range count as in it (rounding), as in the other
    protocols. A negative value, a value above 255, or above 1 with ``scale="unit"``, is rejected
    naming the image and the pixel, as are NaN/Inf, non-numbers, wrong shapes, an empty list and
    more than ``max_instances`` images (all :class:`InvalidInput`, HTTP 422).
    """
    if scale not in SCALES:
        raise InvalidInput(f"scale must be one of {', '.join(SCALES)}; got {scale!r}")
    if isinstance(instances, np.ndarray):
        arr = _numeric(instances, where)
        if arr.size == 0:
            raise InvalidInput(f"{where}: no images: the array is empty")
        batch, flat = _as_batch(arr, where, side)
    elif isinstance(instances, list):
        if not instances:
            raise InvalidInput(f"{where}: no images: the list is empty")
        if _count_hint(instances, side) > max_instances:
            raise InvalidInput(
                f"{where}: {len(instances)} images is more than the limit of {max_instances}"
            )
        regular = numeric_array(instances)
        if regular is None or regular.dtype.kind not in "iuf":
            record = next((i for i, x in enumerate(instances) if _is_record(x)), None)
            if record is not None:  # a record of features sent to an image model
                raise InvalidInput(_record_for_images(f"{where}[{record}]", side))
        if regular is None:  # irregular, or a value that is no number: found image by image
            batch, flat = _ragged_batch(instances, where, side), False
        else:
            if regular.dtype.kind not in "iuf":
                raise InvalidInput(explain_non_numeric(instances, where))
            batch, flat = _as_batch(regular, where, side)
    elif _is_record(instances):
        raise InvalidInput(_record_for_images(where, side))
    else:
        raise InvalidInput(
            f"{where}: expected an image ({side * side} values or a {side}x{side} "
            f"array) or a list of images, got {json_kind(instances)}"
        )
    n = batch.shape[0]
    if n > max_instances:
        raise InvalidInput(f"{where}: {n} images is more than the limit of {max_instances}")
    single = isinstance(instances, list) and _count_hint(instances, side) == 1 and n == 1
    lo, hi = batch.min(), batch.max()
    if batch.dtype.kind == "f" and not (np.isfinite(lo) and np.isfinite(hi)):
        raise _range_error(batch, ~np.isfinite(batch), where, flat, single, "is not finite")
    if lo < -RANGE_SLACK:
        raise _range_error(batch, batch < -RANGE_SLACK, where, flat, single, "is negative")
    byte = scale == "byte" or (scale == "auto" and hi > 1 + RANGE_SLACK)
    if byte and scale == "auto" and hi < BYTE_PEAK:
        reason = (
            f"is above 1, and no value reaches {BYTE_PEAK:g}: it is neither a [0, 1] image nor a "
            "0-255 one (clip a [0, 1] image to 1, or send scale=byte or scale=unit)"
        )
        raise _range_error(batch, batch > 1 + RANGE_SLACK, where, flat, single, reason)
    limit = 255 if byte else 1 + RANGE_SLACK
    if hi > limit:
        reason = {
            "unit": "is above 1 (scale 'unit' expects values in [0, 1])",
            "byte": "is above 255 (scale 'byte' expects values in [0, 255])",
            "auto": "is above 255 (values above 1 mean the 0-255 byte scale)",
        }[scale]
        raise _range_error(batch, batch > limit, where, flat, single, reason)
    return unit_from_bytes(batch) if byte else batch.astype(np.float32)  # always a fresh array


def unit_from_bytes(pixels: np.ndarray) -> np.ndarray:
    """0-255 pixel values as float32 in [0, 1]: the one division every route uses, so that the
    same pixels give the same probabilities whichever way they came (a multiplication by
    1/255 differs by one unit in the last place, which a quantised model can magnify)."""
    out = pixels.astype(np.float32)
    out /= np.float32(255.0)
    return out
