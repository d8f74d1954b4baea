"""The own API's operations routes: label feedback, live quality and input drift per version.

Feedback is declared a prediction route: only clients that may predict may label predictions
(it needs the API key when one is set), it has the prediction deadline, and it takes the fast
path. Quality and drift are reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import Response

from service.api.common import get_registry, get_settings, json_response, note_model, read_body
from service.api.routing import RouteKind, dialect_router, route_kind
from service.api.schemas import error_responses
from service.codecs.jsonbody import parse_json
from service.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from service.serving.operations import Operations

router = dialect_router("own", tags=["operations"])


def _operations(request: Request) -> Operations:
    ops: Operations | None = getattr(request.app.state, "operations", None)
    if ops is None:
        raise NotFound("operations are not set up on this server")
    return ops


@router.post(
    "/models/{name}/feedback",
    summary="Labels for earlier predictions: {request_id, label} or {request_id, labels}, "
    "or a list of them",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "example": {"request_id": "0f3c9a7e2b1d4c6a8e5f7a9b1c3d5e7f", "label": "7"}
                }
            },
        }
    },
    responses=error_responses(400, 404, 410, 413, 422),
)
@route_kind(RouteKind.PREDICTION)
async def feedback(name: str, request: Request) -> Response:
    ops = _operations(request)
    if name not in get_registry(request).model_names():
        raise NotFound(f"model {name[:64]!r} not found")
    note_model(request, name, None)
    payload = parse_json(await read_body(request, get_settings(request).max_body_bytes))
    if isinstance(payload, dict) and "feedback" in payload:
        payload = payload["feedback"]
    items: list[Any] = payload if isinstance(payload, list) else [payload]
    if not items:
        raise InvalidInput("no feedback: send {request_id, label} or a list of them")
    return json_response(ops.feedback(name, items))


@router.get(
    "/models/{name}/versions/{version}/quality",
    summary="Live quality of one version over the window of labelled predictions",
    responses=error_responses(404),
)
@route_kind(RouteKind.READ)
async def quality(name: str, version: str, request: Request) -> Response:
    mv = get_registry(request).lookup(name, version)
    return json_response(_operations(request).quality_report(mv))


@router.get(
    "/models/{name}/versions/{version}/drift",
    summary="Input drift of one version: PSI and KS per feature against its training reference",
    responses=error_responses(404),
)
@route_kind(RouteKind.READ)
async def drift(name: str, version: str, request: Request) -> Response:
    mv = get_registry(request).lookup(name, version)
    return json_response(_operations(request).drift_report(mv))
