"""How a route says what it is: its kind, declared on the endpoint, and its protocol, declared
on its module's router.

The route table (``service.http.routes``) reads both from the app's routes; authentication, the
deadline, the prediction fast path, the metrics' protocol label and the OpenAPI security notes
all read that table, so a new route is protected and measured by declaring it here, once.

    router = dialect_router("own", tags=["models"])

    @router.post("/models/{name}/predict")
    @route_kind(RouteKind.PREDICTION)
    async def predict(name: str, request: Request) -> Response: ...
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

from fastapi import APIRouter
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute

F = TypeVar("F", bound=Callable[..., Any])
KIND_ATTRIBUTE = "route_kind"


class RouteKind(StrEnum):
    PREDICTION = "prediction"  # runs a model: the API key, the deadline, the fast path
    ADMIN = "admin"  # changes what is served: the admin key, no deadline (a load is never cut)
    READ = "read"  # status, metadata, documentation, the page, metrics
    HEALTH = "health"  # liveness and readiness probes


def route_kind(kind: RouteKind) -> Callable[[F], F]:
    """Declare the kind of the endpoint below (put it under the router's decorator)."""

    def mark(endpoint: F) -> F:
        setattr(endpoint, KIND_ATTRIBUTE, kind)
        return endpoint

    return mark


def kind_of(endpoint: Any) -> RouteKind | None:
    kind = getattr(endpoint, KIND_ATTRIBUTE, None)
    return kind if isinstance(kind, RouteKind) else None


class DialectRoute(APIRoute):
    """An APIRoute that knows its protocol (FastAPI keeps the route class when a router is
    included, so the app's own copy of the route still knows it)."""

    protocol: ClassVar[str] = "other"


def dialect_router(protocol: str, **kwargs: Any) -> APIRouter:
    """An APIRouter whose routes report ``protocol`` (the metrics' and access log's label)."""
    route_class = type(f"{protocol.title()}Route", (DialectRoute,), {"protocol": protocol})
    return APIRouter(route_class=route_class, **kwargs)


def protocol_of(route: Any) -> str:
    return route.protocol if isinstance(route, DialectRoute) else "other"


def paths_of_kind(routes: Sequence[BaseRoute], kind: RouteKind) -> frozenset[str]:
    """The path templates, as the app dispatches them (with the prefixes of included routers),
    of the routes among ``routes`` (an app's) that declare ``kind``."""
    return frozenset(
        context.path_format or context.original_route.path_format
        for context in iter_route_contexts(routes)
        if isinstance(context.original_route, APIRoute)
        and kind_of(context.original_route.endpoint) is kind
    )
