"""Open Inference Protocol (V2) codec, with Triton's binary tensor data extension.

Request bodies are a JSON object, optionally followed by binary tensor data; the
`Inference-Header-Content-Length` header gives the JSON part's length. Inputs whose
`parameters.binary_data_size` is set take their bytes from the binary part, in input order.
Responses are encoded by `service.codecs.v2_response`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.codecs.jsonbody import binary_after_json, parse_json
from service.codecs.tensors import IMAGE_FILES, json_numbers, shape_product
from service.errors import BadRequest, DuplicateKey, InvalidInput

HEADER_LENGTH = "inference-header-content-length"

# V2 datatype -> little-endian numpy dtype (binary layout per the binary tensor data extension).
DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_NP_TO_V2 = {v.newbyteorder("="): k for k, v in DATATYPES.items()}
# Every model takes numbers: BOOL is an output's datatype only (abstained)
INPUT_DATATYPES = {name: dtype for name, dtype in DATATYPES.items() if name != "BOOL"}
MAX_DIMS = 8
# inputs or outputs named in one request: far more than any model here has, and few enough that
# decoding a body of thousands of tiny tensors never holds the event loop
MAX_TENSORS = 64
_FAST_TYPES = frozenset({"FP32", "FP64"})  # float64 ndarray data casts to these as lists do


def v2_datatype(dtype: np.dtype[Any]) -> str:
    """The V2 datatype name of a numpy dtype (for metadata and responses)."""
    try:
        return _NP_TO_V2[np.dtype(dtype).newbyteorder("=")]
    except KeyError:
        raise ValueError(f"no V2 datatype for {dtype}") from None


@dataclass(frozen=True, slots=True)
class InputTensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    array: np.ndarray
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RequestedOutput:
    name: str
    binary: bool | None = None  # None: not given, the request-wide default applies
    classification: int = 0  # 0: raw tensor; k > 0: top-k "value:index:label" strings


@dataclass(frozen=True, slots=True)
class InferRequest:
    inputs: list[InputTensor]
    outputs: list[RequestedOutput] | None = None
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def binary_data_output(self) -> bool:
        return self.parameters.get("binary_data_output") is True


# --------------------------------------------------------------------------- decoding


def split_body(body: bytes, header_length: str | None) -> tuple[memoryview, memoryview]:
    """Split a request body into its JSON part and its binary part."""
    view = memoryview(body)
    if header_length is None:
        return view, view[len(view) :]
    try:
        n = int(header_length.strip())
    except ValueError:
        raise BadRequest(
            f"Inference-Header-Content-Length must be an integer, got {header_length[:40]!r}"
        ) from None
    if n < 0 or n > len(view):
        raise BadRequest(
            f"Inference-Header-Content-Length {n} is outside the body's {len(view)} bytes"
        )
    if n == 0:
        raise BadRequest("Inference-Header-Content-Length is 0: the request's JSON part is empty")
    return view[:n], view[n:]


def decode_infer_request(body: bytes, header_length: str | None = None) -> InferRequest:
    """Decode a V2 inference request (JSON, or JSON + binary tensor data)."""
    head, binary = split_body(body, header_length)
    text = body if len(head) == len(body) else bytes(head)  # no 4 MB copy for plain JSON
    try:
        doc = parse_json(text, tensor_at=_tensor_at, accept=_float_tensors_only)
    except DuplicateKey:  # the JSON part parsed: its length is not the suspect
        raise
    except BadRequest as exc:
        if header_length is not None:  # whatever parsing found, the length is the suspect
            raise BadRequest(
                f"{exc} in the first {len(head)} bytes (Inference-Header-Content-Length); is "
                "that the JSON part's length?"
            ) from None
        end = binary_after_json(body)
        if end is None:
            raise
        raise BadRequest(
            f"binary data follows the request's JSON: send Inference-Header-Content-Length: "
            f"{end} (the JSON part's length in bytes)"
        ) from None
    if not isinstance(doc, dict):
        raise BadRequest("inference request must be a JSON object")

    req_id = doc.get("id")
    if req_id is not None and not isinstance(req_id, str):
        raise BadRequest("'id' must be a string")
    params = _parameters(doc.get("parameters"), "request 'parameters'")
    bdo = params.get("binary_data_output")
    if bdo is not None and not isinstance(bdo, bool):
        raise BadRequest("parameter 'binary_data_output' must be true or false")

    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise BadRequest("'inputs' must be a non-empty list of input tensors")
    if len(raw_inputs) > MAX_TENSORS:
        raise BadRequest(f"'inputs' holds {len(raw_inputs)} tensors; at most {MAX_TENSORS}")
    inputs: list[InputTensor] = []
    offset = 0
    seen: set[str] = set()
    for i, item in enumerate(raw_inputs):
        tensor, used = _decode_input(item, i, binary, offset)
        if tensor.name in seen:
            raise BadRequest(f"input '{tensor.name}' is given more than once")
        seen.add(tensor.name)
        inputs.append(tensor)
        offset += used
    if offset != len(binary):
        raise BadRequest(
            f"binary part has {len(binary)} bytes but the inputs' binary_data_size "
            f"values add up to {offset}"
        )

    raw_outputs = doc.get("outputs")
    # no output named (absent, or an empty list) is the same request: the adapter answers its
    # default outputs (the model's own, and what the request's parameters ask for)
    outputs = None if raw_outputs is None or raw_outputs == [] else _decode_outputs(raw_outputs)
    return InferRequest(inputs=inputs, outputs=outputs, id=req_id, parameters=params)


def _tensor_at(path: tuple[str | int, ...]) -> bool:
    """`inputs[i].data`: the arrays the fast JSON parse may return as float64 ndarrays."""
    return len(path) == 3 and path[0] == "inputs" and isinstance(path[1], int) and path[2] == "data"


def _float_tensors_only(doc: Any) -> bool:
    """Ndarray data only for FP32/FP64 inputs: integer types check whole-number lists their own
    way, and FP16 tells integer overflow from float overflow, so those keep the orjson path."""
    inputs = doc.get("inputs")
    for item in inputs if isinstance(inputs, list) else ():
        if (
            isinstance(item, dict)
            and isinstance(item.get("data"), np.ndarray)
            and item.get("datatype") not in _FAST_TYPES
        ):
            return False
    return True


def _parameters(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{where} must be a JSON object")
    return value


def _no_shared_memory(params: dict[str, Any], where: str, instead: str) -> None:
    """Refuse Triton's shared-memory parameters: answered inline instead, an output asked for in
    a region would leave the client reading whatever that region held before."""
    if "shared_memory_region" in params:
        raise BadRequest(
            f"{where}: shared memory (Triton's shared-memory extension) is not supported; {instead}"
        )


def _decode_input(item: Any, i: int, binary: memoryview, offset: int) -> tuple[InputTensor, int]:
    if not isinstance(item, dict):
        raise BadRequest(f"inputs[{i}] must be a JSON object")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequest(f"inputs[{i}] needs a non-empty string 'name'")
    where = f"input '{name}'"
    shape = _shape(item.get("shape"), where)
    datatype = item.get("datatype")
    if not isinstance(datatype, str):
        raise BadRequest(f"{where} needs a string 'datatype'")
    dtype = INPUT_DATATYPES.get(datatype)
    if dtype is None:
        supported = ", ".join(INPUT_DATATYPES)
        why = ": the models take numbers" if datatype in DATATYPES else ""
        # encoded pictures, as a model behind Triton with its own decoding takes them
        files = f", or send {IMAGE_FILES}" if datatype == "BYTES" else ""
        raise InvalidInput(
            f"{where}: datatype {datatype!r} is not supported{why}; use one of {supported}{files}"
        )
    params = _parameters(item.get("parameters"), f"{where} 'parameters'")
    _no_shared_memory(params, where, "send the tensor in the body: JSON 'data' or binary data")
    size = params.get("binary_data_size")
    count = shape_product(shape)
    if size is not None:
        if "data" in item:
            raise BadRequest(f"{where} has both 'data' and parameters.binary_data_size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise BadRequest(f"{where}: binary_data_size must be a non-negative integer")
        expected = count * dtype.itemsize
        if size != expected:
            raise InvalidInput(
                f"{where}: binary_data_size is {size} bytes but shape {list(shape)} of "
                f"{datatype} needs {expected} bytes"
            )
        if offset + size > len(binary):
            raise BadRequest(
                f"{where}: binary_data_size {size} runs past the end of the binary part "
                f"({len(binary) - offset} bytes left)"
            )
        if count == 0:
            return InputTensor(name, datatype, shape, np.empty(shape, dtype), params), 0
        # zero-copy and read-only; possibly unaligned, which numpy handles (a copy would cost
        # more than it saves: the batcher or the runtime copies the rows once anyway)
        arr = np.frombuffer(binary, dtype=dtype, count=count, offset=offset)
        return InputTensor(name, datatype, shape, arr.reshape(shape), params), size
    if "data" not in item:
        raise BadRequest(f"{where} has neither 'data' nor parameters.binary_data_size")
    arr = json_numbers(item["data"], dtype, where)
    if arr.size != count:
        raise InvalidInput(
            f"{where}: shape {list(shape)} needs {count} values but 'data' holds {arr.size}"
        )
    if arr.ndim > 1 and tuple(arr.shape) != shape:
        raise InvalidInput(
            f"{where}: nested 'data' has shape {list(arr.shape)} but 'shape' is {list(shape)}; "
            "give the data flat or nested exactly as the shape says"
        )
    return InputTensor(name, datatype, shape, arr.reshape(shape), params), 0


def _shape(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise BadRequest(f"{where} needs 'shape', a list of non-negative integers")
    if len(value) > MAX_DIMS:
        raise InvalidInput(f"{where}: shape has {len(value)} dimensions; at most {MAX_DIMS}")
    for d in value:
        if isinstance(d, bool) or not isinstance(d, int) or d < 0:
            raise BadRequest(f"{where}: 'shape' must hold non-negative integers, got {value!r}")
    # the product of the non-zero dimensions too: [2**32, 2**32, 0] holds no value, but no array
    # (numpy's sizes are 64-bit) can take that shape
    if shape_product([d for d in value if d]) > 2**40:
        raise InvalidInput(f"{where}: shape {value!r} is far too large")
    return tuple(value)


def _decode_outputs(value: Any) -> list[RequestedOutput]:
    if not isinstance(value, list):
        raise BadRequest("'outputs' must be a list of requested outputs")
    if len(value) > MAX_TENSORS:
        raise BadRequest(f"'outputs' names {len(value)} outputs; at most {MAX_TENSORS}")
    out: list[RequestedOutput] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise BadRequest(f"outputs[{i}] must be a JSON object")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest(f"outputs[{i}] needs a non-empty string 'name'")
        params = _parameters(item.get("parameters"), f"output '{name}' 'parameters'")
        _no_shared_memory(
            params, f"output '{name}'", "ask for it without a region to have it in the answer"
        )
        binary = params.get("binary_data")
        if binary is not None and not isinstance(binary, bool):
            raise BadRequest(f"output '{name}': binary_data must be true or false")
        k = params.get("classification", 0)
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise BadRequest(f"output '{name}': classification must be a non-negative integer")
        if name in seen:  # each answer holds every output asked for
            raise BadRequest(f"outputs[{i}]: output '{name[:64]}' is asked for twice")
        seen.add(name)
        out.append(RequestedOutput(name=name, binary=binary, classification=k))
    return out
