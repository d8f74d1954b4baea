"""Dispatch the prediction endpoints without FastAPI's router: the hot path's own routing.

FastAPI's router matches a request against every route in turn and then solves each endpoint's
dependencies; with the service's thirty-odd routes that costs more per request than parsing the
body and running the model. The edge (``service.http.edge``) matches a request once against the
route table, and sends a prediction route straight to its endpoint with :class:`FastPath`.
Nothing else changes:

- the same endpoint runs with the same arguments (path parameters as strings and the
  ``Request``);
- ``scope["route"]``, ``scope["endpoint"]`` and ``scope["path_params"]`` are set as the router
  sets them, so metrics and logs see the route template;
- an exception goes to the app's exception handlers, as it would through FastAPI (the handler for
  ``Exception`` answers the 500 that Starlette's server-error middleware would).

A prediction endpoint takes only plain ``str`` path parameters and one ``Request``, and has no
dependencies: :func:`hot_route` says why a route does not qualify, and the route table refuses to
build with such a prediction route, so nothing FastAPI would run is ever skipped silently.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi.routing import APIRoute, RouteContext
from starlette.convertors import StringConvertor
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

Handler = Callable[[Request, Exception], Response | Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class HotRoute:
    route: APIRoute
    regex: re.Pattern[str]
    endpoint: Callable[..., Awaitable[Response]]
    request_param: str


def hot_route(route: APIRoute, context: RouteContext) -> HotRoute | str:
    """The fast-path form of a ``POST`` route, or the reason it needs FastAPI's machinery.

    ``context`` is the route as the app dispatches it (with what ``include_router`` added).
    """
    if "POST" not in (context.methods or ()):
        return "it is not a POST route"
    if context.dependencies or route.dependencies or route.dependant.dependencies:
        return "it has dependencies (the fast path would not run them)"
    if not inspect.iscoroutinefunction(route.endpoint):
        return "its endpoint is not a coroutine function"
    convertors = context.param_convertors
    if not all(isinstance(c, StringConvertor) for c in convertors.values()):
        return "a path parameter has a convertor"
    hints = typing.get_type_hints(route.endpoint)
    request_param: str | None = None
    for name in inspect.signature(route.endpoint).parameters:
        annotation = hints.get(name)
        if annotation is Request:
            request_param = name
        elif name not in convertors or annotation is not str:
            return f"parameter {name!r} is neither a str path parameter nor the Request"
    if request_param is None:
        return "it takes no Request"
    return HotRoute(route, context.path_regex, route.endpoint, request_param)


def route_path(scope: Scope) -> str:
    """The path the routes see: ``scope["path"]`` without the ``root_path`` prefix (as Starlette
    strips it; ASGI servers put the root path into ``path``)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if not root or not path.startswith(root):
        return path
    if path == root:
        return ""
    return path[len(root) :] if path[len(root)] == "/" else path


class FastPath:
    """Runs a hot route's endpoint (see the module doc).

    ``handlers`` is the app's live exception-handler table. An exception the endpoint raises goes
    to the handler Starlette would pick (by status, then by class, ending with ``Exception``'s,
    the app's 500 handler); one with no handler at all propagates.
    """

    def __init__(self, handlers: Mapping[Any, Handler]) -> None:
        self.handlers = handlers

    async def dispatch(
        self, hot: HotRoute, params: dict[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Run ``hot``'s endpoint with the path parameters the route table matched."""
        scope["route"] = hot.route
        scope["endpoint"] = hot.endpoint
        scope["path_params"] = params
        request = Request(scope, receive, send)
        try:
            response = await hot.endpoint(**params, **{hot.request_param: request})
        except ClientDisconnect:
            raise  # nobody to answer: the caller records it
        except Exception as exc:
            handler = self.handler(exc)
            if handler is None:
                raise
            result = handler(request, exc)
            response = await result if inspect.isawaitable(result) else result
        await response(scope, receive, send)

    def handler(self, exc: Exception) -> Handler | None:
        """The handler Starlette would pick: by status, then by class (``Exception``'s last)."""
        if isinstance(exc, HTTPException) and exc.status_code in self.handlers:
            return self.handlers[exc.status_code]
        for cls in type(exc).__mro__:
            handler = self.handlers.get(cls)
            if handler is not None:
                return handler
        return None
