"""Unit tests for the V2 (Open Inference Protocol) codec, incl. the binary tensor extension."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from service.codecs import v2 as v2
from service.codecs import v2_response as v2r
from service.errors import BadRequest, InvalidInput, ServeError


def binary_request(doc: dict[str, Any], *blobs: bytes) -> tuple[bytes, str]:
    head = orjson.dumps(doc)
    return head + b"".join(blobs), str(len(head))


def test_json_input_flat_and_nested_decode_to_the_same_array() -> None:
    x = np.arange(6, dtype=np.float32).reshape(2, 3) / 10
    for data in (x.ravel().tolist(), x.tolist()):
        body = orjson.dumps(
            {
                "id": "7",
                "inputs": [{"name": "a", "shape": [2, 3], "datatype": "FP32", "data": data}],
            }
        )
        req = v2.decode_infer_request(body)
        assert req.id == "7"
        (t,) = req.inputs
        assert t.array.dtype == np.float32 and t.array.shape == (2, 3)
        np.testing.assert_array_equal(t.array, x)


@pytest.mark.parametrize("datatype", ["FP16", "FP32", "FP64", "UINT8", "INT32", "INT64"])
def test_binary_round_trip_for_each_datatype(datatype: str) -> None:
    dtype = v2.DATATYPES[datatype]
    rng = np.random.default_rng(0)
    x = (rng.random((3, 4)) * 100).astype(dtype)
    body, hl = binary_request(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [3, 4],
                    "datatype": datatype,
                    "parameters": {"binary_data_size": x.nbytes},
                }
            ]
        },
        x.tobytes(),
    )
    (t,) = v2.decode_infer_request(body, hl).inputs
    assert t.array.dtype == dtype
    np.testing.assert_array_equal(t.array, x)


def test_a_bool_input_is_refused_with_the_datatypes_that_are_taken() -> None:
    item = {"name": "x", "shape": [1, 2], "datatype": "BOOL"}
    body, hl = binary_request(
        {"inputs": [{**item, "parameters": {"binary_data_size": 2}}]}, b"\1\0"
    )
    for request in ((body, hl), (orjson.dumps({"inputs": [{**item, "data": [1, 0]}]}), None)):
        with pytest.raises(InvalidInput, match="'BOOL' is not supported: the models take numbers"):
            v2.decode_infer_request(*request)


def test_two_binary_inputs_are_taken_in_order() -> None:
    a = np.arange(5, dtype=np.uint8)
    b = np.arange(3, dtype=np.float64)
    inputs = [
        {"name": "a", "shape": [5], "datatype": "UINT8", "parameters": {"binary_data_size": 5}},
        {"name": "b", "shape": [3], "datatype": "FP64", "parameters": {"binary_data_size": 24}},
    ]
    body, hl = binary_request({"inputs": inputs}, a.tobytes(), b.tobytes())
    req = v2.decode_infer_request(body, hl)
    np.testing.assert_array_equal(req.inputs[0].array, a)
    np.testing.assert_array_equal(req.inputs[1].array, b)  # unaligned offset 5 still decodes


def test_outputs_and_parameters_are_parsed() -> None:
    body = orjson.dumps(
        {
            "parameters": {"binary_data_output": True},
            "inputs": [{"name": "a", "shape": [1], "datatype": "INT64", "data": [3]}],
            "outputs": [
                {"name": "p", "parameters": {"binary_data": False, "classification": 2}},
                {"name": "q"},
            ],
        }
    )
    req = v2.decode_infer_request(body)
    assert req.binary_data_output is True
    assert req.outputs == [
        v2.RequestedOutput("p", binary=False, classification=2),
        v2.RequestedOutput("q", binary=None, classification=0),
    ]
    inputs = [{"name": "a", "shape": [1], "datatype": "INT64", "data": [3]}]
    every = v2.decode_infer_request(orjson.dumps({"inputs": inputs, "outputs": []}))
    assert every.outputs is None  # no output named is every output, as with none given


def _input(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "a", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}
    base.update(over)
    return base


@pytest.mark.parametrize(
    ("doc", "status", "needle"),
    [
        ({"inputs": []}, 400, "non-empty list"),
        ({}, 400, "'inputs'"),
        ({"inputs": [_input(datatype="FP8")]}, 422, "datatype 'FP8' is not supported"),
        ({"inputs": [_input(datatype="BYTES")]}, 422, "not supported; use one of UINT8,"),
        # encoded pictures as a Triton image pipeline takes them: where to send them instead
        (
            {"inputs": [_input(datatype="BYTES", shape=[1], data=["iVBORw0KGgo="])]},
            422,
            "UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, or send the image file itself "
            "to the own API (POST /models/{name}/predict)",
        ),
        ({"inputs": [_input(shape=[3, 2])]}, 422, "needs 6 values but 'data' holds 4"),
        ({"inputs": [_input(shape=[2, -2])]}, 400, "non-negative integers"),
        ({"inputs": [_input(data=[[1, 2, 3, 4]])]}, 422, "nested 'data' has shape [1, 4]"),
        (
            {"inputs": [_input(data=["a", "b", "c", "d"])]},
            422,
            "[0]: expected a number, got string",
        ),
        ({"inputs": [_input(data=[[1, 2], [3]])]}, 422, "ragged"),
        ({"inputs": [_input(datatype="UINT8", data=[1, 2, 3, 256])]}, 422, "[0, 255]"),
        # mixed with small ones, these parse as float64, where 2**64 - 1 rounds to 2**64
        ({"inputs": [_input(datatype="UINT64", data=[1, 2, 3, 2**64 - 1])]}, 422, "must lie in"),
        ({"inputs": [_input(datatype="INT64", data=[-1, 2, 3, 2**63])]}, 422, "must lie in"),
        ({"inputs": [_input(datatype="FP16", data=[1, 2, 3, 70000])]}, 422, "out of range for"),
        ({"inputs": [_input(datatype="INT64", data=[1, 2, 3, 4.5])]}, 422, "expected integers"),
        ({"inputs": [_input(data=[True, False, True, True])]}, 422, "true/false"),
        ({"inputs": [_input(), _input()]}, 400, "more than once"),
        ({"inputs": [_input(name="")]}, 400, "'name'"),
        ({"inputs": [{"name": "a", "shape": [1], "datatype": "FP32"}]}, 400, "neither 'data'"),
        # Triton's shared-memory extension: an output left in a region the server never wrote
        # would be read by the client as an answer
        (
            {
                "inputs": [
                    {
                        "name": "a",
                        "shape": [1],
                        "datatype": "FP32",
                        "parameters": {"shared_memory_region": "in0", "shared_memory_byte_size": 4},
                    }
                ]
            },
            400,
            "input 'a': shared memory (Triton's shared-memory extension) is not supported; send "
            "the tensor in the body: JSON 'data' or binary data",
        ),
        (
            {
                "inputs": [_input()],
                "outputs": [{"name": "p", "parameters": {"shared_memory_region": "out0"}}],
            },
            400,
            "output 'p': shared memory (Triton's shared-memory extension) is not supported; ask "
            "for it without a region to have it in the answer",
        ),
        ({"id": 5, "inputs": [_input()]}, 400, "'id' must be a string"),
        (
            {"inputs": [_input()], "outputs": [{"name": "p", "parameters": {"binary_data": 1}}]},
            400,
            "binary_data must be true or false",
        ),
        (
            {
                "inputs": [_input()],
                "outputs": [{"name": "p", "parameters": {"classification": -1}}],
            },
            400,
            "classification",
        ),
        ({"inputs": [_input()], "parameters": {"binary_data_output": "yes"}}, 400, "true or false"),
        # no value, but no array takes the shape: it was a 500 when the data was reshaped
        ({"inputs": [_input(shape=[2**32, 2**32, 0], data=[])]}, 422, "far too large"),
        ({"inputs": [_input(shape=[0, 2**63], data=[])]}, 422, "far too large"),
        # every repeat adds the whole output to the answer: a small request, a huge answer
        ({"inputs": [_input()], "outputs": [{"name": "p"}] * 2}, 400, "asked for twice"),
        # decoding thousands of tiny tensors, or comparing their names, held the event loop
        ({"inputs": [_input()], "outputs": [{"name": f"p{i}"} for i in range(65)]}, 400, "65"),
        ({"inputs": [_input(name=f"x{i}") for i in range(65)]}, 400, "at most 64"),
    ],
)
def test_bad_json_requests_are_clear_client_errors(
    doc: dict[str, Any], status: int, needle: str
) -> None:
    with pytest.raises(ServeError) as info:
        v2.decode_infer_request(orjson.dumps(doc))
    assert info.value.status_code == status
    assert needle in info.value.message


def test_malformed_json_and_non_object() -> None:
    with pytest.raises(BadRequest):
        v2.decode_infer_request(b"{not json")
    with pytest.raises(BadRequest):
        v2.decode_infer_request(b"[1, 2]")
    with pytest.raises(BadRequest):
        v2.decode_infer_request(b"")


def test_binary_size_must_match_shape_and_dtype() -> None:
    x = np.zeros((2, 2), np.float32)
    inp = {"name": "a", "shape": [2, 2], "datatype": "FP32", "parameters": {"binary_data_size": 12}}
    body, hl = binary_request({"inputs": [inp]}, x.tobytes()[:12])
    with pytest.raises(InvalidInput, match="needs 16 bytes"):
        v2.decode_infer_request(body, hl)


def test_binary_part_must_be_consumed_exactly() -> None:
    x = np.zeros((2, 2), np.float32)
    inp = {"name": "a", "shape": [2, 2], "datatype": "FP32", "parameters": {"binary_data_size": 16}}
    body, hl = binary_request({"inputs": [inp]}, x.tobytes(), b"extra")
    with pytest.raises(BadRequest, match="add up to 16"):
        v2.decode_infer_request(body, hl)
    body, hl = binary_request({"inputs": [inp]}, x.tobytes()[:8])
    with pytest.raises(BadRequest, match="runs past the end"):
        v2.decode_infer_request(body, hl)
    # binary_data_size without the header: the whole body is JSON, so no binary bytes exist
    with pytest.raises(BadRequest, match="runs past the end"):
        v2.decode_infer_request(orjson.dumps({"inputs": [inp]}))


@pytest.mark.parametrize("hl", ["abc", "-1", "999999", "0"])
def test_bad_header_length(hl: str) -> None:
    with pytest.raises(BadRequest, match="Inference-Header-Content-Length"):
        v2.decode_infer_request(b'{"inputs": []}', hl)


def test_binary_data_without_the_header_length_says_which_length_to_send() -> None:
    x = np.array([0.5, -1.0, 2.0, 3.5], np.float32)  # -1.0 is not valid UTF-8 (0x80 0xbf)
    inp = {"name": "a", "shape": [4], "datatype": "FP32", "parameters": {"binary_data_size": 16}}
    body, hl = binary_request({"inputs": [inp]}, x.tobytes())
    assert v2.decode_infer_request(body, hl).inputs  # with the header: fine
    with pytest.raises(BadRequest, match=f"send Inference-Header-Content-Length: {hl}"):
        v2.decode_infer_request(body)


@pytest.mark.parametrize("values", [[0.0] * 4, [0.5, 2.0, 0.5, 8.0]])  # bytes that are UTF-8
def test_binary_data_that_reads_as_text_gets_the_same_hint(values: list[float]) -> None:
    x = np.array(values, np.float32)
    assert x.tobytes().decode(errors="strict") is not None
    inp = {"name": "a", "shape": [4], "datatype": "FP32", "parameters": {"binary_data_size": 16}}
    body, hl = binary_request({"inputs": [inp]}, x.tobytes())
    with pytest.raises(BadRequest, match=f"send Inference-Header-Content-Length: {hl}"):
        v2.decode_infer_request(body)
    with pytest.raises(BadRequest, match=r"^malformed JSON"):  # junk after plain JSON: no hint
        v2.decode_infer_request(b'{"inputs": []} x')
    body, hl = binary_request({"id": "café", "inputs": [inp]}, x.tobytes())  # é: 2 bytes
    with pytest.raises(BadRequest, match=f"send Inference-Header-Content-Length: {hl}"):
        v2.decode_infer_request(body)


@pytest.mark.parametrize("off", [-3, 5])
def test_a_wrong_header_length_is_named_in_the_json_error(off: int) -> None:
    x = np.array([0.5, -1.0, 2.0, 3.5], np.float32)
    inp = {"name": "a", "shape": [4], "datatype": "FP32", "parameters": {"binary_data_size": 16}}
    body, hl = binary_request({"inputs": [inp]}, x.tobytes())
    wrong = str(int(hl) + off)
    with pytest.raises(BadRequest, match=f"first {wrong} bytes \\(Inference-Header-Content-Length"):
        v2.decode_infer_request(body, wrong)


def test_encode_json_response_is_flat_row_major() -> None:
    p = np.array([[0.1, 0.9], [0.7, 0.3]], np.float32)
    body, headers = v2r.encode_infer_response(
        "m", "3", [v2r.OutputTensor("probabilities", "FP32", p)], request_id="r1"
    )
    assert headers == {"content-type": "application/json"}
    doc = orjson.loads(body)
    assert doc["model_name"] == "m" and doc["model_version"] == "3" and doc["id"] == "r1"
    (out,) = doc["outputs"]
    assert out["shape"] == [2, 2] and out["datatype"] == "FP32"
    np.testing.assert_allclose(out["data"], p.ravel(), rtol=1e-7)


def test_encode_binary_response_round_trips() -> None:
    p = np.random.default_rng(1).random((4, 10)).astype(np.float32)
    cls = v2r.classification_strings(p, 3, [str(i) for i in range(10)])
    outs = [
        v2r.OutputTensor("p", "FP32", p, binary=True),
        v2r.OutputTensor("c", "BYTES", cls, True),
    ]
    body, headers = v2r.encode_infer_response("m", "1", outs)
    assert headers["content-type"] == "application/octet-stream"
    head_len = int(headers[v2.HEADER_LENGTH])
    assert orjson.loads(body[:head_len])["outputs"][0]["parameters"]["binary_data_size"] == 160
    arrays = v2r.decode_infer_response(body, headers[v2.HEADER_LENGTH])
    np.testing.assert_array_equal(arrays["p"], p)
    assert arrays["c"].shape == (4, 3)
    assert list(arrays["c"][:, 0]) == [
        f"{p[r].max():g}:{p[r].argmax()}:{p[r].argmax()}" for r in range(4)
    ]


def test_classification_strings_follow_triton_format() -> None:
    scores = np.array([[1.1, 3.3, 0.5, 2.4]], np.float32)
    out = v2r.classification_strings(scores, 2)
    assert out.tolist() == [["3.3:1", "2.4:3"]]
    labelled = v2r.classification_strings(scores, 2, ["a", "b", "c", "d"])
    assert labelled.tolist() == [["3.3:1:b", "2.4:3:d"]]


def test_v2_datatype_names() -> None:
    assert v2.v2_datatype(np.dtype(np.float32)) == "FP32"
    assert v2.v2_datatype(np.dtype(np.uint8)) == "UINT8"
    with pytest.raises(ValueError):
        v2.v2_datatype(np.dtype(np.complex64))
