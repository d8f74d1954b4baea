"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from service.api.common import get_registry, json_response
from service.api.routing import RouteKind, dialect_router, route_kind
from service.api.schemas import ErrorBody, Liveness, Readiness

router = dialect_router("other", tags=["health"])


@router.get(
    "/healthz",
    summary="Liveness: 200 while the process runs",
    response_model=Liveness,
    responses={200: {"content": {"application/json": {"example": {"status": "alive"}}}}},
)
@route_kind(RouteKind.HEALTH)
async def healthz() -> Response:
    return json_response({"status": "alive"})


@router.get(
    "/readyz",
    summary="Readiness: 200 once every selected model version is loaded and self-tested",
    response_model=Readiness,
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {"status": "ready", "models": {"mnist": 1, "pima": 1}}
                }
            }
        },
        503: {
            "model": ErrorBody,
            "description": "Some selected model is not ready; the body says which and why.",
            "content": {
                "application/json": {
                    "example": {
                        "error": "not ready: mnist",
                        "status": "not ready",
                        "models": {"mnist": "version 2 is loading"},
                    }
                }
            },
        },
    },
)
@route_kind(RouteKind.HEALTH)
async def readyz(request: Request) -> Response:
    registry = get_registry(request)
    ready, problems = registry.readiness()
    if ready:
        defaults = {name: registry.default_version(name) for name in registry.model_names()}
        return json_response({"status": "ready", "models": defaults})
    body = {
        "error": "not ready: " + ", ".join(sorted(problems)),
        "status": "not ready",
        "models": problems,
    }
    return json_response(body, status_code=503)
