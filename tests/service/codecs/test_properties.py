"""Property tests: any input to the protocol decoders gives valid arrays or a 4xx ServeError."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.codecs import tfserving as tfs
from service.codecs import v2 as v2
from service.codecs import v2_response as v2r
from service.errors import ServeError

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
)
json_value = st.recursive(
    json_leaf,
    lambda kids: (
        st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=6), kids, max_size=4)
    ),
    max_leaves=30,
)
datatypes = st.sampled_from([*v2.DATATYPES, "BYTES", "FP8", ""])
shapes = st.lists(st.integers(min_value=0, max_value=5), max_size=4)


def check_client_error(exc: ServeError) -> None:
    assert 400 <= exc.status_code < 500, exc.status_code
    assert exc.message


@st.composite
def v2_inputs(draw: st.DrawFn) -> tuple[dict[str, Any], bytes]:
    shape = draw(shapes)
    datatype = draw(datatypes)
    item: dict[str, Any] = {"name": draw(st.sampled_from(["a", "b", ""])), "datatype": datatype}
    item["shape"] = draw(st.one_of(st.just(shape), json_value))
    blob = b""
    if draw(st.booleans()):
        n = int(np.prod(shape)) if shape else 1
        itemsize = v2.DATATYPES[datatype].itemsize if datatype in v2.DATATYPES else 4
        size = draw(st.sampled_from([n * itemsize, n * itemsize + 1, max(0, n * itemsize - 1)]))
        blob = draw(st.binary(min_size=size, max_size=size))
        item["parameters"] = {"binary_data_size": draw(st.sampled_from([size, size, -1, "x"]))}
    else:
        item["data"] = draw(json_value)
    return item, blob


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    items=st.lists(v2_inputs(), min_size=0, max_size=3),
    extra=st.dictionaries(st.sampled_from(["id", "parameters", "outputs"]), json_value, max_size=3),
    tail=st.binary(max_size=3),
    header_mode=st.sampled_from(["exact", "none", "garbage", "short"]),
)
def test_v2_decoder_valid_arrays_or_4xx(
    items: list[tuple[dict[str, Any], bytes]],
    extra: dict[str, Any],
    tail: bytes,
    header_mode: str,
) -> None:
    doc = {"inputs": [i for i, _ in items], **extra}
    head = json.dumps(doc).encode()
    body = head + b"".join(b for _, b in items) + tail
    hl = {"exact": str(len(head)), "none": None, "garbage": "x1", "short": str(len(head) - 1)}[
        header_mode
    ]
    try:
        req = v2.decode_infer_request(body, hl)
    except ServeError as exc:
        check_client_error(exc)
        return
    for t in req.inputs:
        assert isinstance(t.array, np.ndarray)
        assert t.array.dtype == v2.DATATYPES[t.datatype]
        assert t.array.shape == t.shape


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.one_of(st.none(), st.text(max_size=5)))
def test_v2_decoder_arbitrary_bytes(body: bytes, hl: str | None) -> None:
    try:
        v2.decode_infer_request(body, hl)
    except ServeError as exc:
        check_client_error(exc)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    doc=st.one_of(
        json_value,
        st.fixed_dictionaries({"instances": json_value}),
        st.fixed_dictionaries({"inputs": json_value}),
        st.fixed_dictionaries(
            {"instances": st.lists(st.lists(st.floats(-10, 10), min_size=8, max_size=8))}
        ),
    ),
    shape=st.sampled_from([(8,), (2, 2), (28, 28)]),
)
def test_tfs_decoder_valid_arrays_or_4xx(doc: Any, shape: tuple[int, ...]) -> None:
    features = [f"f{i}" for i in range(8)] if shape == (8,) else None
    try:
        req = tfs.decode_predict_request(json.dumps(doc).encode())
        arr = tfs.input_array(req, "x", shape, features)
    except ServeError as exc:
        check_client_error(exc)
        return
    assert arr.dtype == np.float32
    assert arr.shape[1:] == shape and arr.shape[0] >= 0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_tfs_decoder_arbitrary_bytes(body: bytes) -> None:
    try:
        tfs.input_array(tfs.decode_predict_request(body), "x", (2,))
    except ServeError as exc:
        check_client_error(exc)


def _specs() -> dict[str, Any]:
    from service.serving.tasks import Task
    from tests.helpers.models import image_metadata, pima_metadata

    digits = [str(d) for d in range(10)]
    return {
        "mnist": Task.from_metadata(image_metadata(digits, "tutorial")),
        "pima": Task.from_metadata(pima_metadata()),
    }


SPECS = _specs()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    model=st.sampled_from(sorted(SPECS)),
    items=st.lists(v2_inputs(), min_size=1, max_size=2),
    name=st.sampled_from(["pixels", "features", "x"]),
    shape=st.sampled_from([[2, 28, 28], [1, 784], [3, 8], [8], [0, 8], [2, 4, 2]]),
    outputs=st.one_of(st.none(), json_value),
)
def test_v2_adapter_gives_model_batches_or_4xx(
    model: str,
    items: list[tuple[dict[str, Any], bytes]],
    name: str,
    shape: list[int],
    outputs: Any,
) -> None:
    from service.api import v2 as adapter

    spec = SPECS[model]
    item, blob = items[0]
    item = {**item, "name": name, "shape": shape}
    doc: dict[str, Any] = {"inputs": [item, *(i for i, _ in items[1:])]}
    if outputs is not None:
        doc["outputs"] = outputs
    head = json.dumps(doc).encode()
    body = head + blob + b"".join(b for _, b in items[1:])
    try:
        req = v2.decode_infer_request(body, str(len(head)))
        x = adapter.model_input(spec, req.inputs)
        requested = adapter._requested_outputs(spec, req)
    except ServeError as exc:
        check_client_error(exc)
        return
    assert x.dtype == np.float32 and x.shape[1:] == spec.input_shape
    probs = np.full((len(x), *spec.output_shape), 0.5, np.float32)
    out = [adapter._output(spec, x, probs, r, req.binary_data_output) for r in requested]
    body_out, headers = v2r.encode_infer_response("m", "1", out)
    decoded = v2r.decode_infer_response(body_out, headers.get(v2.HEADER_LENGTH))
    assert set(decoded) == {r.name for r in requested}


@settings(max_examples=150, deadline=None)
@given(
    model=st.sampled_from(sorted(SPECS)),
    n=st.integers(min_value=1, max_value=4),
    datatype=st.sampled_from(["FP16", "FP32", "FP64", "UINT8", "INT32", "INT64"]),
    binary=st.booleans(),
    flat=st.booleans(),
    nested=st.booleans(),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_v2_valid_tensors_round_trip(
    model: str, n: int, datatype: str, binary: bool, flat: bool, nested: bool, seed: int
) -> None:
    from service.api import v2 as adapter

    spec = SPECS[model]
    dtype = v2.DATATYPES[datatype]
    rng = np.random.default_rng(seed)
    values = (
        rng.integers(0, 2, size=(n, *spec.input_shape))
        if dtype.kind in "iu"
        else rng.random((n, *spec.input_shape))
    )
    x = values.astype(dtype)
    if flat and model == "mnist":
        x = x.reshape(n, -1)
    item: dict[str, Any] = {"name": spec.input_name, "shape": list(x.shape), "datatype": datatype}
    if binary:
        item["parameters"] = {"binary_data_size": x.nbytes}
        head = json.dumps({"inputs": [item]}).encode()
        req = v2.decode_infer_request(head + x.tobytes(), str(len(head)))
    else:
        item["data"] = x.tolist() if nested else x.ravel().tolist()
        req = v2.decode_infer_request(json.dumps({"inputs": [item]}).encode())
    got = adapter.model_input(spec, req.inputs)
    want = x.reshape(n, *spec.input_shape).astype(np.float32)
    if datatype == "UINT8" and spec.pixel_input:
        want = want / 255
    np.testing.assert_allclose(got, want, rtol=1e-6)
