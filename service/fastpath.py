"""Dispatch the prediction endpoints without FastAPI's router: the hot path's own routing.

FastAPI's router matches a request against every route in turn, through nested included routers,
and then solves each endpoint's dependencies; with the service's thirty-odd routes that costs more
per request than parsing the body and running the model. :class:`HotRoutes` sends a ``POST``
whose path matches one of the prediction routes straight to that route's own endpoint function;
the request edge (``service.edge``) uses it after its own checks. Nothing else changes:

- the same endpoint runs with the same arguments (path parameters as strings, the ``Request``,
  and the declared defaults of its query parameters);
- ``scope["route"]``, ``scope["endpoint"]`` and ``scope["path_params"]`` are set as the router
  sets them, so metrics and logs see the route template;
- an exception goes to the app's exception handlers, as it would through FastAPI (the handler for
  ``Exception`` answers the 500 that Starlette's server-error middleware would);
- a request with a query string for an endpoint that declares query parameters goes through
  FastAPI, which validates them, and so does every other request.

Only endpoints whose parameters are all plain ``str`` path parameters, one ``Request`` and
optional ``Query`` parameters qualify; :func:`hot_route` skips any other, and any route with
dependencies. Include the routers in the app without ``dependencies=`` (authentication is done
by the edge, with ``service.security``).
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.params import Query
from fastapi.routing import APIRoute
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
    defaults: dict[str, Any]  # query parameters and their declared defaults

    @property
    def has_query(self) -> bool:
        return bool(self.defaults)


def hot_route(route: Any) -> HotRoute | None:
    """The fast-path form of a ``POST`` APIRoute, or None when it needs FastAPI's machinery."""
    if not isinstance(route, APIRoute) or "POST" not in (route.methods or ()):
        return None
    if route.dependencies or not inspect.iscoroutinefunction(route.endpoint):
        return None
    if not all(isinstance(c, StringConvertor) for c in route.param_convertors.values()):
        return None
    try:
        hints = typing.get_type_hints(route.endpoint)
    except Exception:  # unresolvable annotations: leave it to FastAPI
        return None
    request_param: str | None = None
    defaults: dict[str, Any] = {}
    for name, param in inspect.signature(route.endpoint).parameters.items():
        annotation = hints.get(name)
        if annotation is Request:
            request_param = name
        elif name in route.param_convertors and annotation is str:
            continue
        elif isinstance(param.default, Query) and _has_default(param.default):
            defaults[name] = param.default.default
        else:
            return None
    if request_param is None:
        return None
    return HotRoute(route, route.path_regex, route.endpoint, request_param, defaults)


def _has_default(query: Query) -> bool:
    return query.default is not ... and not query.is_required()


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


def hot_routes(
    routers: Iterable[APIRouter], predicate: Callable[[APIRoute], bool]
) -> list[HotRoute]:
    """The qualifying routes of ``routers`` that ``predicate`` picks, in the routers' order."""
    found = []
    for router in routers:
        for route in router.routes:
            hot = hot_route(route)
            if hot is not None and predicate(hot.route):
                found.append(hot)
    return found


def is_prediction(route: APIRoute) -> bool:
    """The prediction endpoints: own ``.../predict``, TF Serving ``:{verb}``, V2 ``.../infer``."""
    return route.path.endswith(("/predict", "/infer", ":{verb}"))


class HotRoutes:
    """Matches a request against the hot routes and runs the endpoint (see the module doc).

    ``handlers`` is the app's live exception-handler table. An exception the endpoint raises goes
    to the handler Starlette would pick (by status, then by class, ending with ``Exception``'s,
    the app's 500 handler); one with no handler at all propagates.
    """

    def __init__(self, routes: list[HotRoute], handlers: Mapping[Any, Handler]) -> None:
        self.routes = routes
        self.handlers = handlers

    def match(self, scope: Scope, path: str | None = None) -> HotRoute | None:
        """The hot route for this ``POST``, with ``route``/``endpoint``/``path_params`` set.

        ``path`` is the request's :func:`route_path`, when the caller has it already.
        """
        if path is None:
            path = route_path(scope)
        for hot in self.routes:
            match = hot.regex.match(path)
            if match is None:
                continue
            if hot.has_query and scope.get("query_string"):
                return None  # FastAPI validates the query parameters
            scope["route"] = hot.route
            scope["endpoint"] = hot.endpoint
            scope["path_params"] = match.groupdict()
            return hot
        return None

    async def dispatch(self, hot: HotRoute, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        kwargs = {**scope["path_params"], hot.request_param: request}
        if hot.defaults:
            kwargs.update(hot.defaults)
        try:
            response = await hot.endpoint(**kwargs)
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
