"""Optional API keys (bearer tokens) for prediction and a separate admin key for the lifecycle.

The request edge asks :class:`Auth` before any body is read, with the kind the route table gives
the request's route:

- **prediction** routes need ``settings.api_key`` when one is set;
- **admin** routes (the model lifecycle) need ``settings.admin_key``. Without an admin key they
  answer only clients on the loopback interface, so an exposed port never lets strangers unload
  models; set ``SERVE_ADMIN_KEY`` to use them from elsewhere.

A key setting may hold several comma-separated keys (for rotation). Keys are compared with
``hmac.compare_digest`` on their SHA-256 digests (constant time, whatever the lengths), they are
never logged, and error messages never echo what the client sent. A missing key, or one sent
without the ``Bearer`` scheme, gets 401 with ``WWW-Authenticate: Bearer``; a wrong one gets 403.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI
from pydantic import SecretStr
from starlette.types import Scope

from service.api.routing import RouteKind
from service.http.routes import RouteTable
from service.settings import MAX_KEYS, Settings, split_keys

_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def parse_keys(secret: SecretStr | str | None) -> tuple[bytes, ...]:
    """SHA-256 digests of the comma-separated keys of a setting (empty: no key required)."""
    if isinstance(secret, str):
        secret = SecretStr(secret)
    return tuple(hashlib.sha256(k.encode()).digest() for k in split_keys(secret)[:MAX_KEYS])


def key_matches(presented: str, digests: Sequence[bytes]) -> bool:
    """Constant-time check of ``presented`` against every allowed key (no early exit)."""
    candidate = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
    found = False
    for digest in digests:
        found |= hmac.compare_digest(candidate, digest)
    return found


def authorization(headers: Sequence[tuple[bytes, bytes]]) -> tuple[str, str] | None:
    """The scheme and the credentials of the ``Authorization`` header (``("Bearer", key)``; a
    bare key is a scheme without credentials); None when there is none."""
    for key, value in headers:
        if key == b"authorization":
            scheme, _, credentials = value.decode("latin-1").strip().partition(" ")
            return scheme, credentials.strip()
    return None


class Auth:
    """Decides, before any body is read, whether a request may go on (the edge asks)."""

    def __init__(self, settings: Settings) -> None:
        self.predict_keys = parse_keys(settings.api_key)
        self.admin_keys = parse_keys(settings.admin_key)

    def problem(self, scope: Scope, kind: RouteKind | None) -> tuple[int, str] | None:
        """None to let the request through, else the status (401/403) and the error message.

        ``kind`` is the kind of the request's route (None: no route matched).
        """
        if scope["method"] == "OPTIONS":  # CORS preflight
            return None
        if kind is RouteKind.ADMIN:
            return self._check_admin(scope)
        if kind is RouteKind.PREDICTION and self.predict_keys:
            return self._check(scope, self.predict_keys, "an API key")
        return None

    def _check_admin(self, scope: Scope) -> tuple[int, str] | None:
        if self.admin_keys:
            return self._check(scope, self.admin_keys, "the admin key")
        client = scope.get("client")
        host = client[0] if client else None
        if host is None or host in _LOOPBACK:
            return None  # loopback, a unix socket, or an in-process test transport
        return 403, "lifecycle endpoints are disabled for remote clients: set SERVE_ADMIN_KEY"

    @staticmethod
    def _check(scope: Scope, digests: Sequence[bytes], what: str) -> tuple[int, str] | None:
        found = authorization(scope["headers"])
        if found is None:
            return 401, f"missing credentials: send {what} as 'Authorization: Bearer <key>'"
        scheme, token = found
        if scheme.lower() != "bearer":  # the scheme may be the key itself: never echoed
            return 401, (
                f"the Authorization header does not use the Bearer scheme: send {what} as "
                "'Authorization: Bearer <key>'"
            )
        if not token:
            return 401, "malformed Authorization header: expected 'Bearer <key>'"
        if not key_matches(token, digests):
            return 403, f"invalid credentials: the bearer token is not {what}"
        return None


def security_openapi(settings: Settings) -> dict[str, Any]:
    """OpenAPI ``securitySchemes`` for the keys that are configured (for ``/docs``)."""
    schemes: dict[str, Any] = {}
    if settings.api_key is not None:
        schemes["apiKey"] = {"type": "http", "scheme": "bearer", "description": "Prediction key"}
    schemes["adminKey"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "Lifecycle key (SERVE_ADMIN_KEY); without it, loopback clients only",
    }
    return schemes


def document_security(
    openapi: dict[str, Any], settings: Settings, routes: RouteTable
) -> dict[str, Any]:
    """Add the security schemes and per-operation requirements (plus 401/403) to a schema."""
    openapi.setdefault("components", {}).setdefault("securitySchemes", {}).update(
        security_openapi(settings)
    )
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path, operations in openapi.get("paths", {}).items():
        for method, op in operations.items():
            kind = routes.kind_of(method.upper(), path)
            if kind is RouteKind.ADMIN:
                op["security"] = [{"adminKey": []}]
            elif kind is RouteKind.PREDICTION and settings.api_key is not None:
                op["security"] = [{"apiKey": []}]
            else:
                continue
            responses = op.setdefault("responses", {})
            for code, text in (("401", "Missing credentials"), ("403", "Invalid credentials")):
                responses.setdefault(
                    code,
                    {"description": text, "content": {"application/json": {"schema": error_ref}}},
                )
    return openapi


def install_openapi(app: FastAPI, settings: Settings, routes: Callable[[], RouteTable]) -> None:
    """Make ``app.openapi()`` declare the bearer schemes and the protected operations, by the
    route table in force (``routes()``: the one the edge checks requests against)."""
    inner = app.openapi

    def openapi() -> dict[str, Any]:
        return document_security(inner(), settings, routes())

    app.openapi = openapi  # type: ignore[method-assign]
