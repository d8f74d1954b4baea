"""Lifecycle endpoints in the shape of the V2 model repository extension (Triton, KServe).

- ``POST /v2/repository/index``: rescans the repository (unless ``{"rescan": false}``), then
  lists every version on disk with its state: ``READY``, ``LOADING``, ``UNLOADING`` or
  ``UNAVAILABLE`` with the reason (failed, unfinished, or not selected by the version policy).
  ``{"ready": true}`` lists only ready versions.
- ``POST /v2/repository/models/{name}/load``: with ``{"parameters": {"version": N}}`` loads that
  finished version (even one the policy does not select); without it, lifts earlier unloads and
  loads what the policy selects. A version that fails to load gets 400 with the reason.
- ``POST /v2/repository/models/{name}/unload``: unloads one version, or every loaded version.
  In-flight requests finish first.

Each takes only what it reads: a query parameter, a field it does not take, or a version that is
not a number from 1 is a 422, since acting on the whole model instead would be a wrong action
answered with a 200.

All of them need the admin key (``service.http.security``). Names are checked against the strict
pattern before anything else; no path is ever built from the raw input.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel

from service.api.common import get_registry, json_response, read_body
from service.api.routing import RouteKind, dialect_router, route_kind
from service.api.schemas import ModelStatus, error_responses
from service.codecs.jsonbody import parse_json
from service.errors import BadRequest, InvalidInput
from service.repository.disk import VERSION_DIGITS, valid_name
from service.serving.model import VersionState
from service.serving.registry import ModelRegistry

router = dialect_router("v2", prefix="/v2/repository", tags=["v2 repository (admin)"])

MAX_ADMIN_BODY = 64 * 1024
MAX_VERSION = 10**VERSION_DIGITS - 1
STATES = {
    VersionState.AVAILABLE: "READY",
    VersionState.LOADING: "LOADING",
    VersionState.UNLOADING: "UNLOADING",
    VersionState.FAILED: "UNAVAILABLE",
}


class IndexEntry(BaseModel):
    name: str
    version: str
    state: Literal["READY", "LOADING", "UNLOADING", "UNAVAILABLE"]
    reason: str


def _body_doc(properties: dict[str, Any], example: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": properties,
                        "additionalProperties": False,
                    },
                    "example": example,
                }
            },
        }
    }


# what _version_param accepts, said to OpenAPI
_VERSION_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_VERSION}
_VERSION_PARAMS = {
    "parameters": {
        "type": "object",
        "properties": {"version": _VERSION_SCHEMA},
        "additionalProperties": False,
    }
}
_UNLOAD_DOC = {
    "parameters": {
        "type": "object",
        "properties": {"version": _VERSION_SCHEMA, "unload_dependents": {"type": "boolean"}},
        "additionalProperties": False,
    }
}
_INDEX_KEYS = frozenset({"ready", "rescan"})
_MODEL_KEYS = frozenset({"parameters"})


async def _options(request: Request, taken: frozenset[str]) -> dict[str, Any]:
    """The optional JSON body as a dict ({} when empty), holding only the keys in ``taken``.

    An option left unread would change what is done without a word: ``?version=1`` or a
    top-level ``{"version": 1}`` on unload took the whole model out, with a 200."""
    accepted = ", ".join(sorted(taken))
    for key in request.query_params:
        raise InvalidInput(
            f"query parameter {key[:64]!r} is not taken: options go in the JSON body, which "
            f"takes {accepted}"
        )
    body = await read_body(request, MAX_ADMIN_BODY)
    if not body.strip():
        return {}
    doc = parse_json(body)
    if not isinstance(doc, dict):
        raise InvalidInput("the body must be a JSON object")
    for key in doc:
        if key in taken:
            continue
        if key == "version" and "parameters" in taken:
            raise InvalidInput(
                "version is not taken at the top of the body: put it in parameters.version, "
                'as in {"parameters": {"version": 2}}'
            )
        raise InvalidInput(f"unknown field {key[:64]!r}; this takes {accepted}")
    return doc


# Triton's unload always sends unload_dependents; there are no ensembles here to unload with it
_UNLOAD_PARAMS = frozenset({"version", "unload_dependents"})


def _version_param(
    doc: dict[str, Any], taken: frozenset[str] = frozenset({"version"})
) -> int | None:
    """``parameters.version``, or None when ``parameters`` has none (the whole model)."""
    params = doc.get("parameters")
    if params is None:  # absent or null: a Go client sends a nil map as null
        return None
    if not isinstance(params, dict):
        raise InvalidInput("parameters must be a JSON object")
    # a parameter left unread would change what is loaded without a word: a misspelt version
    # loads the whole model back, and a Triton client's config or files would seem to apply
    for key in params:
        if key in taken:
            continue
        if key == "config" or key.startswith("file:"):
            raise InvalidInput(
                f"parameters.{key[:64]} is not supported: a version is served as its folder "
                "holds it; publish a new version number to change it"
            )
        raise InvalidInput(f"unknown parameter {key[:64]!r}; this takes {', '.join(sorted(taken))}")
    if "unload_dependents" in params and not isinstance(params["unload_dependents"], bool):
        raise InvalidInput("parameters.unload_dependents must be true or false")
    if "version" not in params:
        return None
    value = params["version"]
    # a null, 0 or "2" is not taken as "no version": that would act on the whole model
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_VERSION:
        shown = json.dumps(value)[:40]
        raise InvalidInput(
            f"parameters.version must be a version number, an integer from 1 to {MAX_VERSION} "
            f"(got {shown}); leave it out to act on the whole model"
        )
    return value


def _flag(doc: dict[str, Any], key: str, default: bool) -> bool:
    value = doc.get(key, default)
    if not isinstance(value, bool):
        raise InvalidInput(f"{key} must be true or false")
    return value


async def _known_model(registry: ModelRegistry, name: str) -> None:
    """NotFound unless ``name`` is a served model; the repository is read again only when it is
    not one (a model copied in since the last scan can be loaded)."""
    if valid_name(name) and name in registry.model_names():
        return
    on_disk: set[str] = set()
    if valid_name(name):
        scan = await asyncio.to_thread(registry.repository.scan)
        on_disk = set(scan.models) | set(scan.ignored)
    registry.require_model(name, on_disk)


@router.post(
    "/index",
    summary="Rescan the repository and list every version with its state",
    response_model=list[IndexEntry],
    responses=error_responses(400, 413, 422),
    openapi_extra=_body_doc(
        {"ready": {"type": "boolean"}, "rescan": {"type": "boolean"}}, {"ready": False}
    ),
)
@route_kind(RouteKind.ADMIN)
async def repository_index(request: Request) -> Response:
    doc = await _options(request, _INDEX_KEYS)
    ready_only, rescan = _flag(doc, "ready", False), _flag(doc, "rescan", True)
    registry = get_registry(request)
    if rescan:
        await registry.rescan()
    scan = await asyncio.to_thread(registry.repository.scan)
    entries: list[dict[str, str]] = []
    for name in registry.model_names():  # what the settings select (models, or specific's)
        loaded = {mv.version: mv for mv in registry.versions(name)}
        for folder in scan.models.get(name, []):
            mv = loaded.pop(folder.version, None)
            if mv is not None:
                state, reason = STATES[mv.state], mv.reason or ""
            elif not folder.finished:
                state, reason = "UNAVAILABLE", "unfinished: metadata.json is missing"
            else:
                state, reason = "UNAVAILABLE", "not loaded (version policy or unloaded)"
            entries.append(
                {"name": name, "version": str(folder.version), "state": state, "reason": reason}
            )
        for mv in loaded.values():  # loaded but its folder is gone: about to unload
            entries.append(
                {
                    "name": name,
                    "version": str(mv.version),
                    "state": STATES[mv.state],
                    "reason": mv.reason or "folder deleted",
                }
            )
    if ready_only:
        entries = [e for e in entries if e["state"] == "READY"]
    return json_response(entries)


@router.post(
    "/models/{name}/load",
    summary="Load a model (policy) or one version of it",
    response_model=ModelStatus,
    responses=error_responses(400, 404, 413, 422),
    openapi_extra=_body_doc(_VERSION_PARAMS, {"parameters": {"version": 2}}),
)
@route_kind(RouteKind.ADMIN)
async def repository_load(name: str, request: Request) -> Response:
    registry = get_registry(request)
    await _known_model(registry, name)
    version = _version_param(await _options(request, _MODEL_KEYS))
    if version is not None:
        mv = await registry.load(name, version)
        if not mv.available:
            raise BadRequest(f"failed to load model {name} version {version}: {mv.reason}")
    else:
        await registry.include(name)
        if registry.default_version(name) is None:
            raise BadRequest(f"failed to load model {name}: no version is available")
    return json_response(registry.model_status(name))


@router.post(
    "/models/{name}/unload",
    summary="Unload one version of a model, or all of them (in-flight requests finish first)",
    response_model=ModelStatus,
    responses=error_responses(400, 404, 413, 422),
    openapi_extra=_body_doc(_UNLOAD_DOC, {"parameters": {"version": 1}}),
)
@route_kind(RouteKind.ADMIN)
async def repository_unload(name: str, request: Request) -> Response:
    registry = get_registry(request)
    await _known_model(registry, name)
    await registry.unload(
        name, _version_param(await _options(request, _MODEL_KEYS), _UNLOAD_PARAMS)
    )
    return json_response(registry.model_status(name))
