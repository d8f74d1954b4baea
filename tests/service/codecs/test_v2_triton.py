"""Triton's model configuration and statistics JSON, checked against Triton's own protobufs."""

from __future__ import annotations

import tritonclient.grpc.model_config_pb2 as model_config_pb2
import tritonclient.grpc.service_pb2 as service_pb2
from google.protobuf import json_format

from service.codecs.v2_triton import BatchSize, Duration, config_datatype, model_config, model_stats

METADATA = {
    "name": "mnist",
    "versions": ["1", "3"],
    "platform": "tensorflow_savedmodel",
    "inputs": [{"name": "pixels", "datatype": "FP32", "shape": [-1, 28, 28]}],
    "outputs": [
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
        {"name": "prediction_set", "datatype": "BYTES", "shape": [-1]},
        {"name": "abstained", "datatype": "BOOL", "shape": [-1]},
    ],
}


def test_configuration_from_the_metadata() -> None:
    config = model_config(
        METADATA, max_batch_size=4096, preferred_batch_size=64, max_queue_delay_us=500
    )
    parsed = json_format.ParseDict(config, model_config_pb2.ModelConfig())
    assert parsed.max_batch_size == 4096 and parsed.platform == "tensorflow_savedmodel"
    assert list(parsed.version_policy.specific.versions) == [1, 3]
    (pixels,) = parsed.input
    assert pixels.format == model_config_pb2.ModelInput.FORMAT_NONE
    assert pixels.data_type == model_config_pb2.TYPE_FP32 and list(pixels.dims) == [28, 28]
    assert [o.name for o in parsed.output] == ["probabilities", "prediction_set", "abstained"]
    assert [o.data_type for o in parsed.output] == [
        model_config_pb2.TYPE_FP32,
        model_config_pb2.TYPE_STRING,
        model_config_pb2.TYPE_BOOL,
    ]
    # one value per instance: dims [1] reshaped to a scalar, as Triton writes it
    assert config["output"][1]["dims"] == [1] and config["output"][1]["reshape"] == {"shape": []}
    assert list(parsed.dynamic_batching.preferred_batch_size) == [64]
    assert parsed.dynamic_batching.max_queue_delay_microseconds == 500
    assert config_datatype("UINT8") == "TYPE_UINT8"


def test_statistics_in_nanoseconds_and_milliseconds() -> None:
    stat = model_stats(
        "pima",
        2,
        last_inference_s=1_700_000_000.1234,
        inference_count=7,
        execution_count=2,
        success=Duration(3, 0.5),
        fail=Duration(1, 0.25),
        compute_infer=Duration(3, 0.000_123_4),
        batches=[BatchSize(3, Duration(1, 0.1)), BatchSize(4, Duration(1, 0.2))],
    )
    parsed = json_format.ParseDict({"model_stats": [stat]}, service_pb2.ModelStatisticsResponse())
    (one,) = parsed.model_stats
    assert (one.name, one.version, one.last_inference) == ("pima", "2", 1_700_000_000_123)
    assert (one.inference_count, one.execution_count) == (7, 2)
    assert (one.inference_stats.success.count, one.inference_stats.success.ns) == (3, 500_000_000)
    assert one.inference_stats.fail.ns == 250_000_000
    assert one.inference_stats.compute_infer.ns == 123_400
    assert one.inference_stats.queue.count == one.inference_stats.queue.ns == 0  # not measured
    assert [(b.batch_size, b.compute_infer.ns) for b in one.batch_stats] == [
        (3, 100_000_000),
        (4, 200_000_000),
    ]
    never = model_stats(
        "pima",
        1,
        last_inference_s=None,
        inference_count=0,
        execution_count=0,
        success=Duration(0, 0.0),
        fail=Duration(0, 0.0),
        compute_infer=Duration(0, 0.0),
        batches=[],
    )
    assert never["last_inference"] == 0 and never["batch_stats"] == []
