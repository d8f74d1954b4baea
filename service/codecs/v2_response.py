"""Open Inference Protocol (V2) responses, with Triton's binary tensor data extension.

An output asked for as binary is written after the JSON header, whose length goes in the
`Inference-Header-Content-Length` response header; the body is then application/octet-stream.
Also Triton's classification extension strings ("score:index:label").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from service.codecs.v2 import DATATYPES, HEADER_LENGTH, split_body

JSON_TYPE = "application/json"
BINARY_TYPE = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class OutputTensor:
    """A response tensor. `array` is numeric, or an object array of str for BYTES."""

    name: str
    datatype: str
    array: np.ndarray
    binary: bool = False


def classification_strings(
    scores: np.ndarray, count: int, labels: list[str] | None = None
) -> np.ndarray:
    """Top-`count` classes per row as Triton's "value:index[:label]" strings, shape [N, count]."""
    if scores.ndim != 2:
        raise ValueError("classification needs a [N, classes] score matrix")
    k = min(count, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    out = np.empty((scores.shape[0], k), dtype=object)
    for r in range(scores.shape[0]):
        for c in range(k):
            idx = int(order[r, c])
            text = f"{float(scores[r, idx]):g}:{idx}"
            if labels is not None and idx < len(labels):
                text += f":{labels[idx]}"
            out[r, c] = text
    return out


def _bytes_payload(array: np.ndarray) -> bytes:
    parts: list[bytes] = []
    for item in array.ravel():
        raw = item.encode() if isinstance(item, str) else bytes(item)
        parts.append(len(raw).to_bytes(4, "little"))
        parts.append(raw)
    return b"".join(parts)


def encode_infer_response(
    model_name: str,
    model_version: str | None,
    outputs: list[OutputTensor],
    request_id: str | None = None,
    parameters: dict[str, Any] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """Encode a V2 inference response. Returns (body, headers incl. content type)."""
    blobs: list[bytes] = []
    out_docs: list[dict[str, Any]] = []
    for t in outputs:
        doc: dict[str, Any] = {"name": t.name, "datatype": t.datatype, "shape": list(t.array.shape)}
        if t.binary:
            if t.datatype == "BYTES":
                blob = _bytes_payload(t.array)
            else:
                blob = np.ascontiguousarray(t.array, dtype=DATATYPES[t.datatype]).tobytes()
            doc["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        elif t.datatype == "BYTES":
            doc["data"] = [str(s) for s in t.array.ravel()]
        else:
            doc["data"] = np.ascontiguousarray(t.array).ravel()
        out_docs.append(doc)
    resp: dict[str, Any] = {"model_name": model_name}
    if model_version is not None:
        resp["model_version"] = model_version
    if request_id is not None:
        resp["id"] = request_id
    if parameters:
        resp["parameters"] = parameters
    resp["outputs"] = out_docs
    head = orjson.dumps(resp, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return head, {"content-type": JSON_TYPE}
    headers = {"content-type": BINARY_TYPE, HEADER_LENGTH: str(len(head))}
    return b"".join([head, *blobs]), headers


def decode_infer_response(body: bytes, header_length: str | None = None) -> dict[str, np.ndarray]:
    """Decode a V2 response into arrays by output name (for tests and clients)."""
    head, binary = split_body(body, header_length)
    doc = orjson.loads(head)
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for out in doc["outputs"]:
        shape = tuple(out["shape"])
        size = (out.get("parameters") or {}).get("binary_data_size")
        if size is None:
            if out["datatype"] == "BYTES":
                arrays[out["name"]] = np.array(out["data"], dtype=object).reshape(shape)
            else:
                dtype = DATATYPES[out["datatype"]]
                arrays[out["name"]] = np.asarray(out["data"], dtype=dtype).reshape(shape)
            continue
        chunk = bytes(binary[offset : offset + size])
        offset += size
        if out["datatype"] == "BYTES":
            items, pos = [], 0
            while pos < len(chunk):
                n = int.from_bytes(chunk[pos : pos + 4], "little")
                items.append(chunk[pos + 4 : pos + 4 + n].decode())
                pos += 4 + n
            arrays[out["name"]] = np.array(items, dtype=object).reshape(shape)
        else:
            dtype = DATATYPES[out["datatype"]]
            arrays[out["name"]] = np.frombuffer(chunk, dtype=dtype).reshape(shape)
    return arrays
