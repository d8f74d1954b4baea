"""The route table: every route of the app with its kind and protocol, in the app's order.

Built from the app's own routes (after every router is included), so what the edge checks is
exactly what FastAPI would dispatch. The edge matches each request once against it; the answer
decides authentication (prediction or admin key), the deadline (admin routes have none), the fast
path (prediction routes) and the protocol label of the metrics and the access log.

Building it fails loudly when a route declares no kind, when a prediction route cannot take the
fast path (for example dependencies added at ``include_router``, which the fast path would not
run), or when middleware was added with ``app.add_middleware`` (which the fast path would skip).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette.routing import BaseRoute, Route

from service.api.routing import RouteKind, kind_of, protocol_of
from service.http.fastpath import HotRoute, hot_route


class RouteTableError(RuntimeError):
    """The app's routes or middleware break a rule the edge relies on."""


@dataclass(frozen=True, slots=True)
class RouteEntry:
    path: str  # the route template, e.g. /models/{name}/predict
    methods: frozenset[str]
    kind: RouteKind
    protocol: str
    regex: re.Pattern[str]
    route: BaseRoute
    hot: HotRoute | None  # set for every prediction route


class RouteTable:
    def __init__(self, entries: list[RouteEntry]) -> None:
        self.entries = entries
        methods = {m for e in entries for m in e.methods}
        self._by_method = {m: [e for e in entries if m in e.methods] for m in methods}

    @classmethod
    def of_app(cls, app: FastAPI) -> RouteTable:
        if app.user_middleware:
            names = ", ".join(getattr(m.cls, "__name__", str(m.cls)) for m in app.user_middleware)
            raise RouteTableError(
                f"middleware added with add_middleware ({names}) would not run on prediction "
                "routes, which the edge dispatches directly: wrap the app's entry instead"
            )
        return cls([_entry(app, context) for context in iter_route_contexts(app.routes)])

    def match(self, method: str, path: str) -> tuple[RouteEntry, re.Match[str]] | None:
        """The route a request goes to, with the path's match; for a method no route of that
        path takes, the first route of the path (its kind still applies: a wrong method on an
        admin path needs the admin key before it learns anything)."""
        for entry in self._by_method.get(method, ()):
            found = entry.regex.match(path)
            if found is not None:
                return entry, found
        for entry in self.entries:
            found = entry.regex.match(path)
            if found is not None:
                return entry, found
        return None

    def methods_at(self, path: str) -> list[str]:
        """The methods the routes answer at ``path``, sorted (none: no route has it)."""
        found = {m for e in self.entries if e.regex.match(path) for m in e.methods}
        return sorted(found - {"HEAD"})

    def of_kind(self, kind: RouteKind) -> list[RouteEntry]:
        return [e for e in self.entries if e.kind is kind]

    def kind_of(self, method: str, path_template: str) -> RouteKind | None:
        """The kind of the route declared with this template and method (for the OpenAPI)."""
        for entry in self.entries:
            if entry.path == path_template and method in entry.methods:
                return entry.kind
        return None


def _docs_paths(app: FastAPI) -> set[str]:
    urls = (app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url)
    return {url for url in urls if url}


def _entry(app: FastAPI, context: RouteContext) -> RouteEntry:
    """One route as the app dispatches it: ``context`` carries what ``include_router`` added
    (prefix, dependencies) to the router's own route."""
    route = context.original_route
    if isinstance(route, APIRoute):
        kind = kind_of(route.endpoint)
        if kind is None:
            raise RouteTableError(
                f"route {sorted(route.methods or ())} {route.path} declares no kind: "
                "put @route_kind(RouteKind...) on its endpoint"
            )
        hot: HotRoute | None = None
        if kind is RouteKind.PREDICTION:
            fast = hot_route(route, context)
            if isinstance(fast, str):
                raise RouteTableError(
                    f"prediction route {route.path} cannot take the fast path: {fast}"
                )
            hot = fast
        methods = frozenset(context.methods or ())
        return RouteEntry(
            context.path_format or route.path_format,  # the template, without convertors
            methods,
            kind,
            protocol_of(route),
            context.path_regex,
            route,
            hot,
        )
    if isinstance(route, Route) and route.path in _docs_paths(app):
        methods = frozenset(route.methods or ("GET", "HEAD"))
        return RouteEntry(
            route.path, methods, RouteKind.READ, "other", route.path_regex, route, None
        )
    path: Any = getattr(route, "path", route)
    raise RouteTableError(f"route {path} is not an API route with a declared kind")
