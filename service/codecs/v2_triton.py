"""Triton's own V2 extensions, as JSON: the model configuration and the statistics.

``model_config`` writes Triton's ``ModelConfig`` (the names its HTTP endpoint uses) from the
model's V2 metadata, so the two never disagree on a tensor; ``model_stats`` writes one
``$model_stat`` of the statistics extension from numbers the caller measured. What the service
does not measure is reported as ``{"count": 0, "ns": 0}``, never estimated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Triton names the V2 datatype BYTES TYPE_STRING in a configuration; every other is TYPE_<name>
_CONFIG_TYPES = {"BYTES": "TYPE_STRING"}
NOT_MEASURED = {"count": 0, "ns": 0}
NONE = NOT_MEASURED  # what did not happen: the same zeros, for another reason


def config_datatype(datatype: str) -> str:
    """The configuration's ``data_type`` of a V2 datatype (``FP32`` -> ``TYPE_FP32``)."""
    return _CONFIG_TYPES.get(datatype, f"TYPE_{datatype}")


def _tensor(tensor: dict[str, Any], *, is_input: bool) -> dict[str, Any]:
    """A metadata tensor (``shape`` with the batch dimension first) as a configuration's."""
    dims = [int(d) for d in tensor["shape"][1:]]
    config: dict[str, Any] = {
        "name": tensor["name"],
        "data_type": config_datatype(tensor["datatype"]),
    }
    if is_input:
        config["format"] = "FORMAT_NONE"  # a tensor, not an image layout Triton would convert
    if dims:
        config["dims"] = dims
    else:  # one value per instance: Triton spells it dims [1], reshaped to a scalar
        config["dims"] = [1]
        config["reshape"] = {"shape": []}
    return config


def model_config(
    metadata: dict[str, Any],
    *,
    max_batch_size: int,
    preferred_batch_size: int,
    max_queue_delay_us: int,
) -> dict[str, Any]:
    """Triton's model configuration of the model whose V2 metadata is ``metadata``.

    ``max_batch_size``: the most instances one request may carry; ``preferred_batch_size`` and
    ``max_queue_delay_us``: the micro-batcher's group size and how long it holds a batch open.
    """
    return {
        "name": metadata["name"],
        "platform": metadata["platform"],
        "version_policy": {"specific": {"versions": [int(v) for v in metadata["versions"]]}},
        "max_batch_size": max_batch_size,
        "input": [_tensor(t, is_input=True) for t in metadata["inputs"]],
        "output": [_tensor(t, is_input=False) for t in metadata["outputs"]],
        "dynamic_batching": {
            "preferred_batch_size": [preferred_batch_size],
            "max_queue_delay_microseconds": max_queue_delay_us,
        },
    }


@dataclass(frozen=True, slots=True)
class Duration:
    count: int
    seconds: float

    def json(self) -> dict[str, int]:
        return {"count": self.count, "ns": round(self.seconds * 1e9)}


@dataclass(frozen=True, slots=True)
class BatchSize:
    """The model calls of one batch size: how many, and their wall time summed."""

    batch_size: int
    calls: Duration


def model_stats(
    name: str,
    version: int,
    *,
    last_inference_s: float | None,
    inference_count: int,
    execution_count: int,
    success: Duration,
    fail: Duration,
    compute_infer: Duration,
    batches: list[BatchSize],
) -> dict[str, Any]:
    """One ``$model_stat``. ``last_inference_s``: seconds since the epoch (None: none yet).

    There is no response cache, so its hits and misses are truly 0; the queue time and the
    input and output copies are not measured (0).
    """
    return {
        "name": name,
        "version": str(version),
        "last_inference": 0 if last_inference_s is None else int(last_inference_s * 1000),
        "inference_count": inference_count,
        "execution_count": execution_count,
        "inference_stats": {
            "success": success.json(),
            "fail": fail.json(),
            "queue": NOT_MEASURED,
            "compute_input": NOT_MEASURED,
            "compute_infer": compute_infer.json(),
            "compute_output": NOT_MEASURED,
            "cache_hit": NONE,
            "cache_miss": NONE,
        },
        "batch_stats": [
            {
                "batch_size": b.batch_size,
                "compute_input": NOT_MEASURED,
                "compute_infer": b.calls.json(),
                "compute_output": NOT_MEASURED,
            }
            for b in batches
        ],
    }
