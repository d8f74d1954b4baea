"""TF Serving's output_filter: which outputs a predict request returns, and in which layout."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from service.codecs import tfserving as tfs
from service.errors import BadRequest


def test_output_filter_is_read_and_checked() -> None:
    body = b'{"instances": [[1, 2]], "output_filter": ["probabilities", "ood_score"]}'
    assert tfs.decode_predict_request(body).output_filter == ("probabilities", "ood_score")
    assert tfs.decode_predict_request(b'{"instances": [[1, 2]]}').output_filter is None
    for bad in (b'"x"', b"[]", b"[1]", b'["a", "a"]'):
        with pytest.raises(BadRequest, match="output_filter"):
            tfs.decode_predict_request(b'{"instances": [[1]], "output_filter": ' + bad + b"}")


def test_one_output_answers_its_tensor_several_answer_by_name() -> None:
    probs = np.array([[0.25, 0.75], [0.5, 0.5]], np.float32)
    scores = np.array([3.5, 900.0], np.float32)
    single = orjson.loads(tfs.encode_predict_response({"ood_score": scores}, "row"))
    assert single == {"predictions": [3.5, 900.0]}
    rows = orjson.loads(tfs.encode_predict_response({"p": probs, "ood_score": scores}, "row"))
    assert rows == {
        "predictions": [
            {"p": [0.25, 0.75], "ood_score": 3.5},
            {"p": [0.5, 0.5], "ood_score": 900.0},
        ]
    }
    cols = orjson.loads(tfs.encode_predict_response({"p": probs, "ood_score": scores}, "columnar"))
    assert cols == {"outputs": {"p": [[0.25, 0.75], [0.5, 0.5]], "ood_score": [3.5, 900.0]}}
    plain = orjson.loads(tfs.encode_predict_response(probs, "columnar"))
    assert plain == {"outputs": [[0.25, 0.75], [0.5, 0.5]]}
