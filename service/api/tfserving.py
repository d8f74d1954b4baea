"""TensorFlow Serving's REST API (``/v1``), a thin adapter over the one prediction path.

- ``GET /v1/models``: the model names, as KServe's V1 protocol lists them
- ``GET /v1/models/{name}[/versions/{v}|/labels/{label}]``: ``model_version_status``
- ``GET /v1/models/{name}[/versions/{v}|/labels/{label}]/metadata``: the ``serving_default``
  signature
- ``POST /v1/models/{name}[/versions/{v}|/labels/{label}]:(predict|classify|regress|explain)``

The POST routes come first, so that a ":verb" URL never falls into the GET status route.

Inputs are the model's own tensors: images float32 ``[28, 28]`` in ``[0, 1]``; Pima eight raw
values (or, in the row format, objects keyed by feature name). ``:regress`` is refused (these
models are classifiers); ``:classify`` answers ``[[label, score], ...]`` per example.
``:explain`` is the verb KServe's v1 protocol adds: ``{"instances": ...}`` (or ``"inputs"``) in,
``{"predictions": [...], "explanations": [...]}`` out, one each per instance (the explanations as
the own API's explain answers them); ``"target"`` names the class to explain, as there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import Response
from starlette.convertors import StringConvertor, register_url_convertor
from starlette.types import Receive, Scope, Send

from service.api.common import (
    JSONBytesResponse,
    check_tensor_content_type,
    get_registry,
    get_settings,
    json_response,
    note_model,
    read_body,
    task_of,
)
from service.api.routing import DialectRoute, RouteKind, dialect_router, route_kind
from service.api.schemas import error_responses
from service.codecs import tfserving as tfs_codec
from service.errors import BadRequest, MethodNotAllowed, NotFound
from service.repository.disk import parse_version
from service.serving import explanations, inference
from service.serving.model import ModelVersion, VersionState
from service.serving.registry import ModelRegistry
from service.serving.tasks import ABSTAINED_OUTPUT, REASON_OUTPUT, SET_OUTPUT, Task

router = dialect_router("tfserving", prefix="/v1", tags=["tensorflow-serving"])

_STATES = {
    VersionState.LOADING: "LOADING",
    VersionState.AVAILABLE: "AVAILABLE",
    VersionState.UNLOADING: "UNLOADING",
    VersionState.FAILED: "END",
}
_PREDICT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "signature_name": {"type": "string", "default": "serving_default"},
                        "instances": {"type": "array", "description": "Row format"},
                        "inputs": {"description": "Columnar format: a tensor or {name: tensor}"},
                        "examples": {"type": "array", "description": ":classify only"},
                    },
                },
                "example": {"instances": [[6, 148, 72, 35, 0, 33.6, 0.627, 50]]},
            }
        },
    }
}


# --- predict / classify / regress ---------------------------------------------------------------
# Registered before the GET routes: an OPTIONS or wrong-method request on a ":verb" URL then
# reports the POST route's Allow header. Starlette matches "{name}:{verb}" within one segment.
VERBS = ("predict", "classify", "regress", "explain")


class _SegmentPart(StringConvertor):
    """Either side of a segment's ":", possibly empty: ``mnist:`` or ``:predict`` then reach the
    POST route (and its 404 naming what is missing), not the GET status route's 405."""

    regex = "[^/]*"


register_url_convertor("part", _SegmentPart())
_POST_DOC: dict[str, Any] = {
    "responses": error_responses(400, 404, 413, 415, 422, 503, 504),
    "openapi_extra": _PREDICT_BODY,
}
F = TypeVar("F", bound=Callable[..., Any])


class _VerbRoute(DialectRoute):
    """A ``:verb`` POST route. Asked with another method, a URL that names no verb, an unknown
    one or nothing before it gets the 404 a POST gets (there is nothing there to allow a method
    on), rather than a 405 whose Allow: POST would lead to that 404."""

    protocol = "tfserving"

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in (self.methods or ()):
            problem = _malformed_verb_url(scope["path"].rpartition("/")[2])
            if problem is not None:
                raise problem
        await super().handle(scope, receive, send)


def _post_verb(path: str, summary: str) -> Callable[[F], F]:
    def register(endpoint: F) -> F:
        router.add_api_route(
            path,
            endpoint,
            methods=["POST"],
            summary=summary,
            route_class_override=_VerbRoute,
            **_POST_DOC,
        )
        return endpoint

    return register


@_post_verb(
    "/models/{name:part}:{verb:part}",
    "TF Serving :predict, :classify, :regress or :explain with the default version",
)
@route_kind(RouteKind.PREDICTION)
async def call_default(name: str, verb: str, request: Request) -> Response:
    registry = get_registry(request)
    return await _call(request, registry, name, verb, registry.resolve(name, None), None)


@_post_verb(
    "/models/{name}/versions/{version:part}:{verb:part}",
    "TF Serving :predict, :classify, :regress or :explain with one version",
)
@route_kind(RouteKind.PREDICTION)
async def call_version(name: str, version: str, verb: str, request: Request) -> Response:
    registry = get_registry(request)
    mv = _resolve_number(registry, name, version)
    return await _call(request, registry, name, verb, mv, version)


@_post_verb(
    "/models/{name}/labels/{label:part}:{verb:part}",
    "TF Serving :predict, :classify, :regress or :explain with a labelled version",
)
@route_kind(RouteKind.PREDICTION)
async def call_label(name: str, label: str, verb: str, request: Request) -> Response:
    registry = get_registry(request)
    mv = _resolve_label(registry, name, label)
    return await _call(request, registry, name, verb, mv, label)


async def _call(
    request: Request,
    registry: ModelRegistry,
    name: str,
    verb: str,
    mv: ModelVersion,
    key: str | None,
) -> Response:
    if verb == "regress":
        raise BadRequest(
            f"model {name} is a classifier and has no regress signature; use :predict or :classify"
        )
    if verb not in VERBS:
        raise NotFound(_unknown_verb(verb))
    note_model(request, mv.name, mv.version)
    check_tensor_content_type(request, binary=False)
    body = await read_body(request, get_settings(request).max_body_bytes)
    resolved = registry.resolve(name, key)  # again: a swap may have retired it meanwhile
    if resolved is not mv:
        mv = resolved
        note_model(request, mv.name, mv.version)
    task = task_of(mv)
    if verb == "classify":
        return await _classify(mv, task, body)
    if verb == "explain":
        return await _explain(mv, task, body)
    req = tfs_codec.decode_predict_request(body)
    x = tfs_codec.input_array(req, task.input_name, task.input_shape, records=task.record_names)
    alpha = task.check_alpha(req.alpha)
    abstain = task.check_abstain(req.abstain)
    wanted = _check_filter(task, req.output_filter, alpha is not None, abstain)
    probs = await inference.predict(mv, x)
    if wanted is None:
        return JSONBytesResponse(tfs_codec.encode_predict_response(probs, req.format))
    outputs = {
        name: probs
        if name == task.output_name
        else _listed(task.extra_output(name, x, probs, alpha))
        for name in wanted
    }
    return JSONBytesResponse(tfs_codec.encode_predict_response(outputs, req.format))


def _listed(values: Any) -> Any:
    """Object arrays (label lists, reasons) as lists: JSON has no object tensors."""
    return values.tolist() if values.dtype == object else values


def _check_filter(
    task: Task, wanted: tuple[str, ...] | None, alpha: bool = False, abstain: bool = False
) -> tuple[str, ...] | None:
    """The outputs a request asked for (None: the model's output alone), or 400. Without an
    output_filter, ``alpha`` adds the prediction set and ``abstain`` the set and the
    abstention."""
    if wanted is None and (alpha or abstain):
        wanted = (task.output_name, SET_OUTPUT, *((ABSTAINED_OUTPUT, REASON_OUTPUT) * abstain))
    if wanted is None or wanted == (task.output_name,):
        return None
    known = (task.output_name, *task.extra_outputs)
    for name in wanted:
        if name not in known:
            raise BadRequest(
                f"unknown output {name[:64]!r} in output_filter; this model has: "
                + ", ".join(known)
            )
    return wanted


# --- status and metadata ----------------------------------------------------------------------
def _version_status(
    registry: ModelRegistry, name: str, version: str | None
) -> list[dict[str, Any]]:
    if name not in registry.model_names():
        raise NotFound(f"Could not find any versions of model {name}")
    versions = registry.versions(name)
    if version is not None:
        number = parse_version(version)  # "01" is version 1, as on every other route
        versions = [mv for mv in versions if mv.version == number]
        if not versions:
            raise NotFound(f"Could not find version {version} of model {name}")
    if not versions:  # TF Serving's words, and why (unloaded, still loading, not on disk)
        raise NotFound(
            f"Could not find any versions of model {name}: {registry.why_not_ready(name)}"
        )
    return [
        {
            "version": str(mv.version),
            "state": _STATES.get(mv.state, "UNKNOWN"),
            "status": {
                "error_code": "OK" if mv.state is not VersionState.FAILED else "UNKNOWN",
                "error_message": "" if mv.state is not VersionState.FAILED else mv.reason or "",
            },
        }
        for mv in versions
    ]


def _unknown_verb(verb: str) -> str:
    said = f"unknown method :{verb[:40]}" if verb else "no method after ':'"
    return f"{said}; use " + ", ".join(f":{v}" for v in VERBS[:-1]) + f" or :{VERBS[-1]}"


def _malformed_verb_url(segment: str) -> NotFound | None:
    """The 404 of a ``{name}:{verb}`` segment that no method can use, whatever the method: no
    verb, an unknown one, or nothing named before it (as the POST route finds)."""
    named, _, verb = segment.rpartition(":")
    if verb not in VERBS:
        return NotFound(_unknown_verb(verb))
    if not named or ":" in named:
        return NotFound(f"nothing is named {named[:64]!r} before ':{verb}'")
    return None


def _refuse_verb_url(segment: str, request: Request) -> None:
    """405 for a GET of a ``:verb`` URL, 404 for an unknown verb as a POST gets. The status
    routes match a whole segment, so ``/models/pima:predict`` reaches them with
    ``name="pima:predict"`` and would be a 404 "no such model", where every other method gets the
    POST route's 405."""
    if ":" in segment:
        problem = _malformed_verb_url(segment)
        if problem is not None:
            raise problem
        raise MethodNotAllowed("POST", request.method, request.url.path)


@router.get(
    "/models",
    summary="The names of the models served (KServe's V1 protocol; TF Serving has no list)",
)
@route_kind(RouteKind.READ)
async def model_names(request: Request) -> Response:
    return json_response({"models": get_registry(request).model_names()})


@router.get(
    "/models/{name}",
    summary="TF Serving model status: every served version and its state",
    responses=error_responses(404, 405),
)
@route_kind(RouteKind.READ)
async def model_status(name: str, request: Request) -> Response:
    _refuse_verb_url(name, request)
    statuses = _version_status(get_registry(request), name, None)
    return json_response({"model_version_status": statuses})


@router.get(
    "/models/{name}/versions/{version}",
    summary="TF Serving model status of one version",
    responses=error_responses(404, 405),
)
@route_kind(RouteKind.READ)
async def version_status(name: str, version: str, request: Request) -> Response:
    _refuse_verb_url(version, request)
    statuses = _version_status(get_registry(request), name, version)
    return json_response({"model_version_status": statuses})


_TF_DTYPES = {"FP32": "DT_FLOAT", "BOOL": "DT_BOOL", "BYTES": "DT_STRING"}


def _tensor_info(name: str, shape: tuple[int, ...], dtype: str = "DT_FLOAT") -> dict[str, Any]:
    dims = [{"size": str(d), "name": ""} for d in (-1, *shape)]
    return {
        "dtype": dtype,
        "tensor_shape": {"dim": dims, "unknown_rank": False},
        "name": f"serving_default_{name}:0",
    }


def signature_metadata(mv: ModelVersion) -> dict[str, Any]:
    """TF Serving's GetModelMetadata answer for the ``serving_default`` signature."""
    task = task_of(mv)
    outputs = {task.output_name: _tensor_info(task.output_name, task.output_shape)}
    outputs.update(
        {
            name: _tensor_info(name, (), _TF_DTYPES[task.extra_output_datatype(name)])
            for name in task.extra_outputs
        }
    )
    signature = {
        "inputs": {task.input_name: _tensor_info(task.input_name, task.input_shape)},
        "outputs": outputs,
        "method_name": "tensorflow/serving/predict",
        "defaults": {},
    }
    return {
        "model_spec": {"name": mv.name, "signature_name": "", "version": str(mv.version)},
        "metadata": {"signature_def": {"signature_def": {"serving_default": signature}}},
    }


@router.get(
    "/models/{name}/metadata",
    summary="TF Serving model metadata (signature) of the default version",
    responses=error_responses(404, 503),
)
@route_kind(RouteKind.READ)
async def model_metadata(name: str, request: Request) -> Response:
    return json_response(signature_metadata(get_registry(request).resolve(name, None)))


@router.get(
    "/models/{name}/versions/{version}/metadata",
    summary="TF Serving model metadata (signature) of one version",
    responses=error_responses(404, 503),
)
@route_kind(RouteKind.READ)
async def version_metadata(name: str, version: str, request: Request) -> Response:
    return json_response(signature_metadata(_resolve_number(get_registry(request), name, version)))


@router.get(
    "/models/{name}/labels/{label}",
    summary="TF Serving model status of a labelled version",
    responses=error_responses(404, 405),
)
@route_kind(RouteKind.READ)
async def label_status(name: str, label: str, request: Request) -> Response:
    _refuse_verb_url(label, request)
    mv = _resolve_label(get_registry(request), name, label, available=False)
    statuses = _version_status(get_registry(request), name, str(mv.version))
    return json_response({"model_version_status": statuses})


@router.get(
    "/models/{name}/labels/{label}/metadata",
    summary="TF Serving model metadata (signature) of a labelled version",
    responses=error_responses(404, 503),
)
@route_kind(RouteKind.READ)
async def label_metadata(name: str, label: str, request: Request) -> Response:
    return json_response(signature_metadata(_resolve_label(get_registry(request), name, label)))


def _resolve_label(
    registry: ModelRegistry, name: str, label: str, *, available: bool = True
) -> ModelVersion:
    if label.isdigit() or not label:
        raise NotFound(f"label must be a name, got {label[:40]!r}; use /versions/ for numbers")
    return registry.resolve(name, label) if available else registry.lookup(name, label)


async def _classify(mv: ModelVersion, task: Task, body: bytes) -> Response:
    """TF Serving's ``:classify``: ``[[label, score], ...]`` per example."""
    doc = tfs_codec.decode_classify_request(body)
    x = tfs_codec.examples_array(doc, task.input_name, task.input_shape, records=task.record_names)
    probs = await inference.predict(mv, x)
    scores = task.class_scores(probs)
    labels = list(task.labels)
    result = [[[labels[j], float(row[j])] for j in range(len(labels))] for row in scores.tolist()]
    return json_response({"result": result})


async def _explain(mv: ModelVersion, task: Task, body: bytes) -> Response:
    """KServe v1's ``:explain``: the instances as ``:predict`` takes them, an explanation each."""
    req = tfs_codec.decode_predict_request(body, explain=True)
    x = tfs_codec.input_array(req, task.input_name, task.input_shape, records=task.record_names)
    result = await explanations.explain(mv, x, req.target)
    answer = {"predictions": result.predictions, **result.fields, "explanations": result.items}
    return json_response(answer)


def _resolve_number(registry: ModelRegistry, name: str, version: str) -> ModelVersion:
    if not version.isdigit():
        raise NotFound(f"version must be a number, got {version[:40]!r}; use /labels/ for labels")
    return registry.resolve(name, version)
