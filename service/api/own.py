"""The service's own API: model status and metadata, report files, and predictions.

Handlers only translate HTTP: read the body (size-limited), decode it with ``service.decoding``
into an array, call the one prediction path (``service.serving.inference``) and encode the answer.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any, NamedTuple

from fastapi import Request
from fastapi.responses import Response

from service.api.common import (
    content_type,
    get_registry,
    get_settings,
    json_response,
    note_model,
    read_body,
    task_of,
)
from service.api.routing import RouteKind, dialect_router, route_kind
from service.api.schemas import (
    IMAGE_BODIES,
    IMAGE_RESPONSE_EXAMPLE,
    PIMA_EXAMPLE,
    PIMA_RESPONSE_EXAMPLE,
    PREDICT_OPENAPI,
    QUERY_PARAMETERS,
    ModelDetail,
    ModelList,
    PredictResponse,
    VersionDetail,
    error_responses,
)
from service.api.uploads import (
    decode_images,
    decode_number,
    file_task,
    form_files,
    form_images,
    from_json,
    query_options,
    same_value,
)
from service.codecs.fastjson import TensorAt
from service.codecs.jsonbody import parse_json
from service.codecs.magic import ACCEPTED_NAMES
from service.errors import BadRequest, InvalidInput, NotFound, UnsupportedMediaType
from service.inputs.images import ACCEPTED_IMAGE_TYPES
from service.inputs.numbers import best_readings
from service.inputs.preprocess import READ_A_NUMBER, SeveralDigits
from service.repository.disk import unknown_model, without_host_path
from service.serving import explanations, inference

if TYPE_CHECKING:
    import numpy as np

    from service.serving.model import ModelVersion
    from service.serving.tasks import Task
    from service.settings import Settings

router = dialect_router("own", tags=["models"])

_JSON_TYPES = ("", "application/json")
_FORM = "application/x-www-form-urlencoded"  # what curl -d and --data-binary send by default
_JSON_OBJECT = re.compile(rb"\s*\{")
_REPORT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
_MEDIA_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".svg": "image/svg+xml",
    ".md": "text/markdown; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
    ".csv": "text/csv; charset=utf-8",
    ".html": "text/plain; charset=utf-8",  # never rendered as a page
}
_MODEL_EXAMPLE = {
    "name": "mnist",
    "default_version": 1,
    "labels": {"baseline": 1},
    "versions": [{"version": 1, "state": "available", "reason": None, "runtime": "tflite"}],
    "unfinished_versions": [],
    "unloaded_versions": [],
    "ignored_folders": [],
}


# --- status and metadata ------------------------------------------------------------------------
@router.get(
    "/models",
    summary="Every model with its versions, their state, default version and labels",
    response_model=ModelList,
    responses={200: {"content": {"application/json": {"example": {"models": [_MODEL_EXAMPLE]}}}}},
)
@route_kind(RouteKind.READ)
async def list_models(request: Request) -> Response:
    return json_response({"models": get_registry(request).models()})


@router.get(
    "/models/{name}",
    summary="A model: its default version's metadata and its versions",
    response_model=ModelDetail,
    responses={
        200: {"content": {"application/json": {"example": {**_MODEL_EXAMPLE, "metadata": {}}}}},
        **error_responses(404),
    },
)
@route_kind(RouteKind.READ)
async def get_model(name: str, request: Request) -> Response:
    registry = get_registry(request)
    status = _model_status(request, name)
    default = status["default_version"]
    versions = registry.versions(name)
    chosen = next((mv for mv in versions if mv.version == default), None)
    if chosen is None:  # no available version: show the newest one that has metadata
        chosen = next((mv for mv in reversed(versions) if mv.metadata), None)
    status["metadata"] = chosen.public_metadata() if chosen is not None else None
    return json_response(status)


def _model_status(request: Request, name: str) -> dict[str, Any]:
    registry = get_registry(request)
    models = registry.model_names()
    if name not in models:
        raise NotFound(unknown_model(name, models))
    return registry.model_status(name)


@router.get(
    "/models/{name}/versions/{version}",
    summary="One version's state and metadata (without the golden sample)",
    response_model=VersionDetail,
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {"name": "mnist", "version": 1, "state": "available", "metadata": {}}
                }
            }
        },
        **error_responses(404, 503),
    },
)
@route_kind(RouteKind.READ)
async def get_version(name: str, version: str, request: Request) -> Response:
    mv = get_registry(request).lookup(name, version)
    return json_response({"name": mv.name, **mv.status(), "metadata": mv.public_metadata() or None})


@router.get(
    "/models/{name}/versions/{version}/report/{filename}",
    summary="A file of the version's training report (plots, report.md)",
    response_class=Response,
    responses={
        200: {
            "content": {"image/png": {}, "text/markdown": {}},
            "description": "The file, if metadata.json lists it.",
        },
        **error_responses(404),
    },
)
@route_kind(RouteKind.READ)
async def get_report_file(name: str, version: str, filename: str, request: Request) -> Response:
    registry = get_registry(request)
    mv = registry.lookup(name, version)
    if not _REPORT_NAME.fullmatch(filename) or not mv.metadata:
        raise NotFound("report file not found")
    try:
        path = registry.repository.report_file(mv.name, mv.version, mv.metadata, filename)
        data = path.read_bytes()
    except (KeyError, OSError, ValueError) as exc:
        raise NotFound("report file not found") from exc
    if hashlib.sha256(data).hexdigest() != mv.metadata["files"][f"report/{filename}"]:
        raise NotFound("report file does not match its checksum")
    suffix = ("." + filename.rsplit(".", 1)[-1].lower()) if "." in filename else ""
    media = _MEDIA_TYPES.get(suffix, "application/octet-stream")
    if suffix == ".md":  # versions trained before the trainer left its host's paths out
        data = _REPORT_DATA_LINE.sub(_data_line_without_host_path, data)
    return Response(data, media_type=media, headers={"X-Content-Type-Options": "nosniff"})


_REPORT_DATA_LINE = re.compile(rb"^(Data: )(.*?)(\.?)$", re.MULTILINE)


def _data_line_without_host_path(match: re.Match[bytes]) -> bytes:
    source = without_host_path(match[2].decode(errors="replace")).encode()
    return match[1] + source + match[3]


# --- prediction ---------------------------------------------------------------------------------
_PREDICT_DOC = dict(
    response_model=PredictResponse,
    openapi_extra={**PREDICT_OPENAPI, "parameters": QUERY_PARAMETERS},
    responses={
        200: {
            "content": {
                "application/json": {
                    "examples": {
                        "image": {"summary": "Image classifier", "value": IMAGE_RESPONSE_EXAMPLE},
                        "pima": {"summary": "Pima", "value": PIMA_RESPONSE_EXAMPLE},
                    }
                }
            }
        },
        **error_responses(400, 404, 413, 415, 422, 503, 504),
    },
)


@router.post(
    "/models/{name}/predict",
    summary="Predict with the model's default version (JSON, an image body, or multipart files)",
    **_PREDICT_DOC,  # type: ignore[arg-type]
)
@route_kind(RouteKind.PREDICTION)
async def predict_default(name: str, request: Request) -> Response:
    return await _predict(request, name, None)


@router.post(
    "/models/{name}/versions/{version}/predict",
    summary="Predict with one version (a number or a label such as baseline)",
    **_PREDICT_DOC,  # type: ignore[arg-type]
)
@route_kind(RouteKind.PREDICTION)
async def predict_version(name: str, version: str, request: Request) -> Response:
    return await _predict(request, name, version)


def _instances(path: tuple[str | int, ...]) -> bool:
    """Where an own-API JSON body holds its numbers."""
    return path == ("instances",)


def _takes_records(mv: ModelVersion) -> bool:
    return mv.task is not None and bool(mv.task.record_fields)


def _numbers_at(mv: ModelVersion) -> TensorAt | None:
    """Where the JSON parse looks for a boolean among numbers: the instances of an image model;
    a records model reads its instances value by value and names the feature of a boolean."""
    return None if _takes_records(mv) else _instances


def _unsupported(mv: ModelVersion, ctype: str, *also: str) -> str:
    """The 415 message, with what ``mv`` takes instead: a records model takes JSON alone (a
    CSV file is what is most often sent to it; the CLI and the client read one)."""
    shown = f"unsupported content type {ctype[:100]!r}"
    if _takes_records(mv):
        return (
            f"{shown}: model {mv.name} takes JSON records (application/json); "
            f"`predict {mv.name} --csv FILE` and the Python client read a CSV file for you"
        )
    types = ["application/json", *sorted(ACCEPTED_IMAGE_TYPES), *also]
    return f"{shown}: send {', '.join(types[:-1])} or {types[-1]}"


def _form_json(mv: ModelVersion, ctype: str, body: bytes, *also: str) -> bool:
    """Whether a body of the form type is a JSON object, as ``curl -d '{...}'`` sends one
    (TF Serving reads such a body as JSON too); any other form body is refused (415) with the
    content type to send instead."""
    if ctype != _FORM:
        return False
    if _JSON_OBJECT.match(body):
        return True
    if _takes_records(mv):
        advice = "add -H 'Content-Type: application/json'"
    else:
        form = ", or send the file as a form with -F 'file=@digit.png'" if also else ""
        advice = f"add -H 'Content-Type: image/png'{form}"
    raise UnsupportedMediaType(
        _unsupported(mv, ctype, *also)
        + f" (curl --data-binary sends this unless told otherwise: {advice})"
    )


def _check_image_body(body: bytes) -> None:
    """An empty body is a malformed request (400), as an empty JSON body is; an empty file
    among several in a multipart body is that file's problem (422)."""
    if not body:
        raise BadRequest(f"request body is empty: expected an image ({ACCEPTED_NAMES})")


async def _predict(request: Request, name: str, version: str | None) -> Response:
    settings = get_settings(request)
    registry = get_registry(request)
    mv = registry.resolve(name, version)  # 404/503 before reading the body
    note_model(request, mv.name, mv.version)  # a bad body's 4xx is logged with the version
    options = query_options(request)
    ctype = content_type(request)
    is_image = ctype.startswith("image/") or ctype == "application/octet-stream"
    if ctype not in _JSON_TYPES and not is_image and ctype not in ("multipart/form-data", _FORM):
        raise UnsupportedMediaType(_unsupported(mv, ctype, "multipart/form-data"))
    body = await read_body(request, settings.max_body_bytes)
    as_json = ctype in _JSON_TYPES or _form_json(mv, ctype, body, "multipart/form-data")
    if is_image:
        _check_image_body(body)
    if options["digits"] == "many":
        if not is_image:
            body, ctype = await _number_file(request, settings, as_json)
        return await _predict_number(request, name, version, body, ctype, options)
    if as_json:
        payload = parse_json(body, numbers_at=_numbers_at(mv))
        mv = registry.resolve(name, version)
        task = task_of(mv)
        x = from_json(payload, task, settings, options, request)
    else:
        task = file_task(registry.resolve(name, version))
        if is_image:
            x = await decode_images([(body, ctype, "")], settings, task)
        else:
            x = await form_images(request, settings, task)
        mv = registry.resolve(name, version)  # no await from here to the queue
        task = file_task(mv)
    threshold = task.check_threshold(options["threshold"])
    predictions, alpha = await _run(request, mv, task, x, options, threshold)
    result: dict[str, Any] = {"model": mv.name, "version": mv.version, "predictions": predictions}
    result.update(task.answer_fields(threshold))
    if alpha is not None:
        result["alpha"] = alpha
    return json_response(result)


async def _number_file(request: Request, settings: Settings, as_json: bool) -> tuple[bytes, str]:
    """The one picture of a form sent with ``?digits=many``, and its media type."""
    how = (
        "as the body (-H 'Content-Type: image/png' --data-binary @number.png) or as a form's "
        "one file (-F file=@number.png)"
    )
    if as_json:
        raise InvalidInput(f"digits=many reads one picture of a number ({ACCEPTED_NAMES}), {how}")
    files = await form_files(request, settings)  # none: a 422 of its own
    if len(files) > 1:
        raise InvalidInput(f"digits=many reads one picture of a number, not {len(files)}: {how}")
    data, ctype, _ = files[0]
    if not data:
        raise InvalidInput(f"the form's file is empty: expected an image ({ACCEPTED_NAMES})")
    return data, ctype or "application/octet-stream"


class _Options(NamedTuple):
    """The answer's options, checked against the version."""

    top_k: int | None
    alpha: float | None
    abstain: bool


def _checked(task: Task, options: dict[str, Any]) -> _Options:
    """The options a prediction and a number share, refused (422) before the model runs: a
    refused request is neither run nor observed (payload log, feedback, drift, shadow)."""
    return _Options(
        task.check_top_k(options["top_k"]),
        task.check_alpha(options["alpha"]),
        task.check_abstain(options["abstain"]),
    )


async def _run(
    request: Request,
    mv: ModelVersion,
    task: Task,
    x: np.ndarray,
    options: dict[str, Any],
    threshold: float | None,
) -> tuple[list[dict[str, Any]], float | None]:
    """A prediction after decoding: the options' checks, the model call and the answer
    (:func:`_answer`)."""
    note_model(request, mv.name, mv.version)
    checked = _checked(task, options)
    probs = await inference.predict(mv, x)  # the edge enforces X-Request-Timeout
    return _answer(request, mv, task, x, probs, options, checked, threshold)


def _answer(
    request: Request,
    mv: ModelVersion,
    task: Task,
    x: np.ndarray,
    probs: np.ndarray,
    options: dict[str, Any],
    checked: _Options,
    threshold: float | None,
) -> tuple[list[dict[str, Any]], float | None]:
    """What a prediction and a number share once the model has answered: one answer per row
    with its OOD and prediction-set fields (and its input when asked), and the alpha those
    sets used (None when the version has no conformal scores)."""
    items = task.predictions(probs, checked.top_k, threshold)
    fields = task.set_fields(x, probs, checked.alpha, checked.abstain)
    for extra in (task.ood_fields(x, probs), fields):
        if extra is not None:
            for item, more in zip(items, extra, strict=True):
                item.update(more)
    if options["include_input"] is True:
        for item, row in zip(items, x, strict=True):
            item["input"] = row  # a float32 array: orjson writes it as nested lists
    if task.conformal is None:
        return items, None
    return items, task.alpha if checked.alpha is None else checked.alpha


def number_out_of_distribution(flags: np.ndarray | None) -> bool | None:
    """Whether a number's picture does not look like digits, from its digits' OOD ``flags``:
    half or more are flagged, and two at least when it has two or more (None: the version has
    no OOD flags). Some letters of a word look like digits to the model, and one odd digit is
    common in a real number: most of a word's letters are flagged, few of a number's digits,
    and one of two is too few to tell."""
    if flags is None or not flags.size:
        return None
    n = flags.size
    return bool(int(flags.sum()) >= max(n / 2, min(n, 2)))


async def _predict_number(
    request: Request,
    name: str,
    version: str | None,
    body: bytes,
    ctype: str,
    options: dict[str, Any],
) -> Response:
    """``?digits=many``: the digits of a number in one picture, left to right, each answered as
    one image is, with its box in the picture's pixels; ``number`` joins their labels. Of the
    ways to split touching digits, the one the model reads most surely is answered."""
    settings = get_settings(request)
    registry = get_registry(request)
    task = file_task(registry.resolve(name, version))
    x, boxes, spans = await decode_number(body, ctype, settings, task)
    mv = registry.resolve(name, version)  # no await from here to the queue
    task = file_task(mv)
    task.check_threshold(options["threshold"])  # refused as for one image, though unused
    note_model(request, mv.name, mv.version)
    checked = _checked(task, options)
    probs = await inference.predict(mv, x, answered=False)
    flags = task.ood_flags(x, probs)
    confidence = probs.reshape(len(probs), -1).max(axis=1)
    heights = [box[3] for box in boxes]
    chosen = best_readings(spans, confidence, flags, task.ood_density(x), heights)
    # whether the picture looks like digits is judged on the split by shape: the split chosen
    # for the most sure reading is also the one that looks most like digits (a word's letters
    # cut to look like them)
    by_shape = [i for i, span in enumerate(spans) if span[2]]
    flagged = number_out_of_distribution(None if flags is None else flags[by_shape])
    x, probs, boxes = x[chosen], probs[chosen], [boxes[i] for i in chosen]
    digits, alpha = _answer(request, mv, task, x, probs, options, checked, None)
    inference.observe(mv, x, probs)
    for item, box in zip(digits, boxes, strict=True):
        item["box"] = box
    number = "".join(str(item["label"]) for item in digits)
    result: dict[str, Any] = {"model": mv.name, "version": mv.version, "number": number}
    if flagged is not None:
        result["out_of_distribution"] = flagged
    result["digits"] = digits
    if alpha is not None:
        result["alpha"] = alpha
    return json_response(result)


# --- explanation --------------------------------------------------------------------------------
_EXPLAIN_QUERY_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "target",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "Image models: the label or class index to explain",
    }
]
_EXPLAIN_DOC = dict(
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["instances"],
                        "properties": {
                            "instances": {"type": "array", "description": "As for predict"},
                            "target": {
                                "description": "Image models: the label or class index to "
                                "explain (default: the predicted class)"
                            },
                            "scale": {"type": "string", "description": "Image models, as predict"},
                        },
                    },
                    "example": {"instances": [PIMA_EXAMPLE]},
                },
                **IMAGE_BODIES,
            },
        },
        "parameters": _EXPLAIN_QUERY_PARAMETERS,
    },
    responses=error_responses(400, 404, 413, 415, 422, 503, 504),
)
_EXPLAIN_FIELDS = frozenset({"instances", "target", "scale"})
_EXPLAIN_QUERY = frozenset(str(p["name"]) for p in _EXPLAIN_QUERY_PARAMETERS)


@router.post(
    "/models/{name}/explain",
    summary="Explain predictions of the model's default version: Shapley values per feature "
    "(Pima), an occlusion map per image",
    **_EXPLAIN_DOC,  # type: ignore[arg-type]
)
@route_kind(RouteKind.PREDICTION)
async def explain_default(name: str, request: Request) -> Response:
    return await _explain(request, name, None)


@router.post(
    "/models/{name}/versions/{version}/explain",
    summary="Explain predictions of one version (a number or a label such as baseline)",
    **_EXPLAIN_DOC,  # type: ignore[arg-type]
)
@route_kind(RouteKind.PREDICTION)
async def explain_version(name: str, version: str, request: Request) -> Response:
    return await _explain(request, name, version)


async def _explain(request: Request, name: str, version: str | None) -> Response:
    """A JSON body of instances (as predict takes them) or one image file as the body."""
    settings = get_settings(request)
    registry = get_registry(request)
    mv = registry.resolve(name, version)  # 404/503 before reading the body
    note_model(request, mv.name, mv.version)
    ctype = content_type(request)
    is_image = ctype.startswith("image/") or ctype == "application/octet-stream"
    if ctype not in _JSON_TYPES and not is_image and ctype != _FORM:
        raise UnsupportedMediaType(_unsupported(mv, ctype))
    options = query_options(request, _EXPLAIN_QUERY)
    target: Any = request.query_params.get("target") if request.scope.get("query_string") else None
    body = await read_body(request, settings.max_body_bytes)
    if ctype in _JSON_TYPES or _form_json(mv, ctype, body):
        payload = parse_json(body, numbers_at=_numbers_at(mv))
        if isinstance(payload, dict):
            unknown = sorted(set(payload) - _EXPLAIN_FIELDS)
            if unknown:
                allowed = ", ".join(sorted(_EXPLAIN_FIELDS))
                raise InvalidInput(f"unknown field {unknown[0][:64]!r}; allowed: {allowed}")
            payload = dict(payload)
            sent = payload.get("target")
            if "target" in payload and target is not None and not same_value(target, sent):
                raise InvalidInput(
                    "target is given both in the query string and in the body, with different "
                    "values: give it once"
                )
            target = payload.pop("target", target)
        mv = registry.resolve(name, version)
        x = from_json(payload, task_of(mv), settings, options, request)
    else:
        _check_image_body(body)
        task = file_task(registry.resolve(name, version))
        try:
            x = await decode_images([(body, ctype, "")], settings, task)
        except SeveralDigits as exc:  # explain takes no ?digits=many: one digit at a time
            one_by_one = "explain reads one digit: crop the picture to each digit in turn"
            raise InvalidInput(exc.message.replace(READ_A_NUMBER, one_by_one)) from None
        mv = registry.resolve(name, version)  # no await from here to the queue
        file_task(mv)
    note_model(request, mv.name, mv.version)
    result = await explanations.explain(mv, x, target)
    answer: dict[str, Any] = {"model": mv.name, "version": mv.version, **result.fields}
    answer["explanations"] = result.items
    return json_response(answer)
