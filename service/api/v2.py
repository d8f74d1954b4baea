"""The Open Inference Protocol (V2, KServe/Triton), a thin adapter over the one prediction path.

Supports Triton's ``binary_tensor_data``, ``classification``, ``model_configuration``
(``GET /v2/models/{name}[/versions/{v}]/config``) and ``statistics``
(``GET /v2/models[/{name}[/versions/{v}]]/stats``) extensions, and this server's
``explain`` extension (``POST /v2/models/{name}[/versions/{v}]/explain``: an inference request in,
the attributions as output tensors out, see docs/protocols.md). The model takes one
input (``pixels`` ``[-1, 28, 28]`` or ``features`` ``[-1, 8]``, FP32) and gives one output,
``probabilities``. Any of FP16/FP32/FP64/INT8-64/UINT8-64 is accepted for the input; for image
models UINT8 data is read as raw 0-255 pixels and divided by 255, every other type is taken as is.
Flat instances (``[-1, 784]``) are accepted for images.
"""

from __future__ import annotations

from importlib import metadata as importlib_metadata
from typing import Any

import numpy as np
import orjson
from fastapi import Request
from fastapi.responses import Response

from service.api.common import (
    Totals,
    check_tensor_content_type,
    get_registry,
    get_request_times,
    get_settings,
    header,
    json_response,
    note_model,
    read_body,
    task_of,
)
from service.api.routing import RouteKind, dialect_router, paths_of_kind, route_kind
from service.api.schemas import error_responses
from service.codecs import v2 as codec
from service.codecs import v2_response, v2_triton
from service.codecs.tensors import fit_batch
from service.errors import BadRequest, InvalidInput, NotFound, NotReady
from service.inputs.arrays import unit_from_bytes
from service.serving import explanations, inference
from service.serving.model import ModelVersion
from service.serving.registry import ModelRegistry
from service.serving.tasks import (
    ABSTAINED_OUTPUT,
    REASON_OUTPUT,
    SET_OUTPUT,
    SET_OUTPUTS,
    Task,
)

router = dialect_router("v2", prefix="/v2", tags=["v2 (open inference protocol)"])

SERVER_NAME = "digitserve"
EXTENSIONS = [
    "binary_tensor_data",
    "classification",
    "model_configuration",
    "statistics",
    "explain",
]
PLATFORMS = {"tflite": "tensorflow_lite", "savedmodel": "tensorflow_savedmodel"}
_INFER_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A V2 inference request; with the binary extension, JSON followed by "
        "tensor bytes and the Inference-Header-Content-Length header.",
        "content": {
            "application/json": {
                "schema": {"type": "object", "required": ["inputs"]},
                "example": {
                    "id": "1",
                    "inputs": [
                        {
                            "name": "features",
                            "shape": [1, 8],
                            "datatype": "FP32",
                            "data": [6, 148, 72, 35, 0, 33.6, 0.627, 50],
                        }
                    ],
                },
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}

_HEADER_LENGTH = codec.HEADER_LENGTH.encode()


_INFER_OK: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Inference response: JSON, or JSON followed by binary output tensors "
        "(application/octet-stream with Inference-Header-Content-Length)",
        "content": {"application/json": {}, "application/octet-stream": {}},
    }
}
# the documentation every infer-shaped route shares (inference and the explain extension)
_INFER_DOC = dict(
    responses={**_INFER_OK, **error_responses(400, 404, 413, 415, 422, 503, 504)},
    openapi_extra=_INFER_BODY,
)


def _server_version() -> str:
    try:
        return importlib_metadata.version(SERVER_NAME)
    except importlib_metadata.PackageNotFoundError:
        return "0.0.0"


# --- server -------------------------------------------------------------------------------------
@router.get("", summary="V2 server metadata")
@route_kind(RouteKind.READ)
async def server_metadata() -> Response:
    return json_response(
        {"name": SERVER_NAME, "version": _server_version(), "extensions": EXTENSIONS}
    )


@router.get("/health/live", summary="V2 server liveness")
@route_kind(RouteKind.HEALTH)
async def server_live() -> Response:
    return json_response({"live": True})


@router.get("/health/ready", summary="V2 server readiness", responses=error_responses(503))
@route_kind(RouteKind.HEALTH)
async def server_ready(request: Request) -> Response:
    ready, problems = get_registry(request).readiness()
    if ready:
        return json_response({"ready": True})
    why = "; ".join(f"{k}: {v}" for k, v in sorted(problems.items()))
    return json_response({"ready": False, "error": f"not ready: {why}"}, 503)


def _resolve(request: Request, name: str, version: str | None) -> ModelVersion:
    registry = get_registry(request)
    if version is not None and not version.isdigit():
        # the protocol has no labels: a client that asks by one is told the number it names, in
        # the URL it asked for (its metadata's URL would not answer a statistics or infer call)
        number = registry.labels(name).get(version)
        said = (
            f"; {version!r} is the label of version {number}: {_url(request, name, number)}"
            if number is not None
            else ""
        )
        raise NotFound(f"model {name} has no version {version[:40]!r}: versions are numbers{said}")
    return registry.resolve(name, version)


def _url(request: Request, name: str, version: int) -> str:
    """The path of the request's route for ``name`` and ``version``."""
    template: str = request.scope["route"].path_format
    return template.replace("{name}", name).replace("{version}", str(version))


def model_metadata(registry: ModelRegistry, mv: ModelVersion) -> dict[str, Any]:
    task = task_of(mv)
    kind = mv.runtime.kind if mv.runtime is not None else "savedmodel"
    versions = [str(v.version) for v in registry.versions(mv.name) if v.available]
    return {
        "name": mv.name,
        "versions": versions,
        "platform": PLATFORMS.get(kind, "tensorflow_savedmodel"),
        "inputs": [{"name": task.input_name, "datatype": "FP32", "shape": [-1, *task.input_shape]}],
        "outputs": [
            {"name": task.output_name, "datatype": "FP32", "shape": [-1, *task.output_shape]},
            *(
                {"name": name, "datatype": task.extra_output_datatype(name), "shape": [-1]}
                for name in task.extra_outputs
            ),
        ],
    }


# --- Triton's statistics extension ------------------------------------------------------------
# Declared before /models/{name}, which would take "stats" for a model's name.
@router.get("/models/stats", summary="V2 statistics of every model version")
@route_kind(RouteKind.READ)
async def all_stats(request: Request) -> Response:
    registry = get_registry(request)
    versions = [mv for name in registry.model_names() for mv in registry.versions(name)]
    return _stats(request, versions)


@router.get(
    "/models/{name}/stats",
    summary="V2 statistics of every version of a model",
    responses=error_responses(404, 503),
)
@route_kind(RouteKind.READ)
async def model_stats(name: str, request: Request) -> Response:
    _resolve(request, name, None)  # 404 for an unknown model, 503 when none is ready
    return _stats(request, get_registry(request).versions(name))


@router.get(
    "/models/{name}/versions/{version}/stats",
    summary="V2 statistics of one model version",
    responses=error_responses(404, 503),
)
@route_kind(RouteKind.READ)
async def version_stats(name: str, version: str, request: Request) -> Response:
    return _stats(request, [_resolve(request, name, version)])


def _stats(request: Request, versions: list[ModelVersion]) -> Response:
    """The statistics of the ``versions`` that serve: the model calls as their batcher counted
    and timed them, the requests as the request edge counted and timed them."""
    times = get_request_times(request)
    routes = paths_of_kind(request.app.routes, RouteKind.PREDICTION)
    none = Totals(0, 0.0)
    # one pass over the request series for all the versions (a poll of every model's statistics
    # must not cost the series times the versions)
    totals = {} if times is None else times.request_totals_by_version(routes)
    stats: list[dict[str, Any]] = []
    for mv in versions:
        if not mv.available or mv.batcher is None:
            continue
        ok, failed = totals.get((mv.name, str(mv.version)), (none, none))
        tallies = mv.batcher.tallies()
        counted = tallies + mv.batcher.explanations()  # no batch size's: an explanation's time
        stats.append(
            v2_triton.model_stats(
                mv.name,
                mv.version,
                last_inference_s=mv.batcher.last_call_epoch_s(),
                inference_count=sum(t.rows * t.calls for t in counted),
                execution_count=sum(t.calls for t in counted),
                success=v2_triton.Duration(*ok),
                fail=v2_triton.Duration(*failed),
                compute_infer=v2_triton.Duration(
                    sum(t.requests for t in counted), sum(t.request_seconds for t in counted)
                ),
                batches=[
                    v2_triton.BatchSize(t.rows, v2_triton.Duration(t.calls, t.seconds))
                    for t in tallies
                ],
            )
        )
    return json_response({"model_stats": stats})


# --- model metadata, configuration and readiness -----------------------------------------------
@router.get("/models/{name}", summary="V2 model metadata", responses=error_responses(404, 503))
@route_kind(RouteKind.READ)
async def get_model(name: str, request: Request) -> Response:
    registry = get_registry(request)
    return json_response(model_metadata(registry, _resolve(request, name, None)))


@router.get(
    "/models/{name}/versions/{version}",
    summary="V2 model metadata of one version",
    responses=error_responses(404, 503),
)
@route_kind(RouteKind.READ)
async def get_version(name: str, version: str, request: Request) -> Response:
    registry = get_registry(request)
    return json_response(model_metadata(registry, _resolve(request, name, version)))


def model_config(registry: ModelRegistry, mv: ModelVersion) -> dict[str, Any]:
    """Triton's configuration of ``mv``: its tensors as :func:`model_metadata` gives them, the
    most instances a request may carry as ``max_batch_size``, and the micro-batcher's settings."""
    metadata = model_metadata(registry, mv)
    if mv.batcher is None:
        raise mv.not_ready()
    return v2_triton.model_config(
        metadata,
        max_batch_size=mv.max_instances,
        # Triton refuses a preferred size above max_batch_size (a small SERVE_MAX_INSTANCES)
        preferred_batch_size=min(mv.batcher.max_batch_size, mv.max_instances),
        max_queue_delay_us=round(mv.batcher.max_wait_s * 1e6),
    )


@router.get(
    "/models/{name}/config",
    summary="V2 model configuration (Triton's model_configuration extension)",
    responses=error_responses(404, 503),
)
@route_kind(RouteKind.READ)
async def get_config(name: str, request: Request) -> Response:
    registry = get_registry(request)
    return json_response(model_config(registry, _resolve(request, name, None)))


@router.get(
    "/models/{name}/versions/{version}/config",
    summary="V2 model configuration of one version",
    responses=error_responses(404, 503),
)
@route_kind(RouteKind.READ)
async def get_version_config(name: str, version: str, request: Request) -> Response:
    registry = get_registry(request)
    return json_response(model_config(registry, _resolve(request, name, version)))


async def _ready(request: Request, name: str, version: str | None) -> Response:
    try:
        mv = _resolve(request, name, version)
    except NotReady as exc:
        return json_response({"name": name, "ready": False, "error": exc.message}, 503)
    return json_response({"name": mv.name, "ready": True})


@router.get(
    "/models/{name}/ready", summary="V2 model readiness", responses=error_responses(404, 503)
)
@route_kind(RouteKind.HEALTH)
async def model_ready(name: str, request: Request) -> Response:
    return await _ready(request, name, None)


@router.get(
    "/models/{name}/versions/{version}/ready",
    summary="V2 model version readiness",
    responses=error_responses(404, 503),
)
@route_kind(RouteKind.HEALTH)
async def version_ready(name: str, version: str, request: Request) -> Response:
    return await _ready(request, name, version)


# --- inference ------------------------------------------------------------------------------
@router.post(
    "/models/{name}/infer",
    summary="V2 inference (JSON or binary tensor data)",
    **_INFER_DOC,  # type: ignore[arg-type]
)
@route_kind(RouteKind.PREDICTION)
async def infer(name: str, request: Request) -> Response:
    return await _infer(request, name, None)


@router.post(
    "/models/{name}/versions/{version}/infer",
    summary="V2 inference with one version",
    **_INFER_DOC,  # type: ignore[arg-type]
)
@route_kind(RouteKind.PREDICTION)
async def infer_version(name: str, version: str, request: Request) -> Response:
    return await _infer(request, name, version)


async def _infer(request: Request, name: str, version: str | None) -> Response:
    mv = _resolve(request, name, version)  # 404/503 before reading the body
    note_model(request, mv.name, mv.version)
    check_tensor_content_type(request, binary=True)
    body = await read_body(request, get_settings(request).max_body_bytes)
    mv = _resolve(request, name, version)  # again: a swap may have retired it meanwhile
    req = codec.decode_infer_request(body, header(request, _HEADER_LENGTH))
    note_model(request, mv.name, mv.version)
    task = task_of(mv)
    x = model_input(task, req.inputs)
    alpha = task.check_alpha(req.parameters.get("alpha"))
    abstain = task.check_abstain(req.parameters.get("abstain"))
    requested = _requested_outputs(task, req, alpha is not None, abstain)
    probs = await inference.predict(mv, x, timeout=_timeout(mv, req.parameters))
    outputs = [_output(task, x, probs, r, req.binary_data_output, alpha) for r in requested]
    parameters = None
    if any(r.name in SET_OUTPUTS for r in requested):
        parameters = {"alpha": task.alpha if alpha is None else alpha}
    body_out, headers = v2_response.encode_infer_response(
        mv.name, str(mv.version), outputs, req.id, parameters
    )
    media_type = headers.pop("content-type")
    return Response(body_out, media_type=media_type, headers=headers)


def _timeout(mv: ModelVersion, parameters: dict[str, Any]) -> float | None:
    """Triton's request parameter ``timeout`` (microseconds) shortens the deadline."""
    value = parameters.get("timeout")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BadRequest("parameter 'timeout' must be a positive integer (microseconds)")
    return min(value / 1e6, mv.timeout_s)


def model_input(task: Task, inputs: list[codec.InputTensor]) -> np.ndarray:
    """The request's single input as the model's float32 ``[N, *input_shape]`` batch."""
    if len(inputs) != 1:
        names = ", ".join(t.name for t in inputs)
        raise InvalidInput(f"model takes one input '{task.input_name}', got {len(inputs)}: {names}")
    (t,) = inputs
    if t.name != task.input_name:
        raise InvalidInput(
            f"unexpected input '{t.name}': this model's input is '{task.input_name}'"
        )
    where = f"input '{t.name}'"
    if len(t.shape) < 2:
        raise InvalidInput(
            f"{where}: shape {list(t.shape)} has no batch dimension; "
            f"expected {[-1, *task.input_shape]}"
        )
    arr = fit_batch(t.array, task.input_shape, where)
    if t.datatype == "UINT8" and task.pixel_input:
        return unit_from_bytes(arr)
    if arr.dtype != np.float32:
        with np.errstate(over="ignore", invalid="ignore"):
            cast = arr.astype(np.float32)
        if not np.isfinite(cast).all() and np.isfinite(arr).all():  # finite until the cast
            raise InvalidInput(f"{where}: a value is beyond float32's range (3.4e38)")
        arr = cast
    return arr


def _requested_outputs(
    task: Task, req: codec.InferRequest, alpha: bool = False, abstain: bool = False
) -> list[codec.RequestedOutput]:
    """The outputs the request names; without a list, the model's output, plus the prediction
    set when the request sets ``alpha``, plus the abstention when it sets ``abstain``."""
    if req.outputs is None:
        names = [task.output_name]
        if alpha or abstain:
            names.append(SET_OUTPUT)
        if abstain:
            names += [ABSTAINED_OUTPUT, REASON_OUTPUT]
        return [codec.RequestedOutput(name) for name in names]
    known = (task.output_name, *task.extra_outputs)
    for r in req.outputs:
        if r.name not in known:
            raise BadRequest(
                f"unexpected inference output '{r.name}': the model's outputs are "
                + ", ".join(f"'{name}'" for name in known)
            )
        if r.classification and r.name != task.output_name:
            raise InvalidInput(
                f"output '{r.name}': the classification extension applies to "
                f"'{task.output_name}' only"
            )
        if r.classification > len(task.labels):
            raise InvalidInput(
                f"output '{r.name}': classification count {r.classification} exceeds the "
                f"{len(task.labels)} classes of this model"
            )
    return req.outputs


def _output(
    task: Task,
    x: np.ndarray,
    probs: np.ndarray,
    r: codec.RequestedOutput,
    binary_default: bool,
    alpha: float | None = None,
) -> v2_response.OutputTensor:
    binary = binary_default if r.binary is None else r.binary
    if r.name != task.output_name:
        values = task.extra_output(r.name, x, probs, alpha)
        if r.name == SET_OUTPUT:  # ragged label lists: one JSON array text per instance
            values = np.array([orjson.dumps(v).decode() for v in values], dtype=object)
        datatype = task.extra_output_datatype(r.name)
        return v2_response.OutputTensor(r.name, datatype, values, binary)
    if r.classification:
        scores = task.class_scores(probs)
        strings = v2_response.classification_strings(scores, r.classification, list(task.labels))
        return v2_response.OutputTensor(r.name, "BYTES", strings, binary)
    return v2_response.OutputTensor(r.name, "FP32", probs, binary)


# --- the explain extension ------------------------------------------------------------------
@router.post(
    "/models/{name}/explain",
    summary="V2 explain extension: attributions as output tensors",
    **_INFER_DOC,  # type: ignore[arg-type]
)
@route_kind(RouteKind.PREDICTION)
async def explain(name: str, request: Request) -> Response:
    return await _explain(request, name, None)


@router.post(
    "/models/{name}/versions/{version}/explain",
    summary="V2 explain extension with one version",
    **_INFER_DOC,  # type: ignore[arg-type]
)
@route_kind(RouteKind.PREDICTION)
async def explain_version(name: str, version: str, request: Request) -> Response:
    return await _explain(request, name, version)


async def _explain(request: Request, name: str, version: str | None) -> Response:
    """An inference request (``parameters.target``: the class to explain, image models); the
    answer's outputs are the model's own output and the explanation's tensors, its parameters
    the explanation's method and units."""
    mv = _resolve(request, name, version)
    note_model(request, mv.name, mv.version)
    check_tensor_content_type(request, binary=True)
    body = await read_body(request, get_settings(request).max_body_bytes)
    mv = _resolve(request, name, version)
    req = codec.decode_infer_request(body, header(request, _HEADER_LENGTH))
    note_model(request, mv.name, mv.version)
    task = task_of(mv)
    x = model_input(task, req.inputs)
    result = await explanations.explain(
        mv, x, req.parameters.get("target"), timeout=_timeout(mv, req.parameters)
    )
    arrays = {task.output_name: result.predictions, **result.tensors}
    wanted = [codec.RequestedOutput(n) for n in arrays] if req.outputs is None else req.outputs
    outputs = []
    for r in wanted:
        if r.name not in arrays:
            raise BadRequest(
                f"unexpected explain output '{r.name}': the outputs are "
                + ", ".join(f"'{n}'" for n in arrays)
            )
        if r.classification:
            raise InvalidInput("the classification extension does not apply to explain")
        array = arrays[r.name]
        datatype = codec.v2_datatype(array.dtype)
        binary = req.binary_data_output if r.binary is None else r.binary
        outputs.append(v2_response.OutputTensor(r.name, datatype, array, binary))
    parameters = _scalar_parameters(result.fields)
    body_out, headers = v2_response.encode_infer_response(
        mv.name, str(mv.version), outputs, req.id, parameters
    )
    media_type = headers.pop("content-type")
    return Response(body_out, media_type=media_type, headers=headers)


def _scalar_parameters(fields: dict[str, Any]) -> dict[str, Any]:
    """V2 parameters hold scalars: a nested object's entries become ``key_entry``."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if isinstance(value, dict):
            out.update({f"{key}_{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out
