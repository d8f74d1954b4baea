"""Request decoding for the service's own predict endpoints: query options, JSON bodies and
image uploads, each into a float32 array (via ``service.decoding``) or a clear 4xx error."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from fastapi import Request
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from service.inputs.arrays import images_from_json
from service.inputs.images import decode_image
from service.inputs.preprocess import Fit, fit_for_labels
from service.inputs.records import records_from_json
from service.serving.model import ModelSpec, ModelVersion
from service.settings import Settings

JSON_FIELDS = {"instances", "scale", "top_k", "threshold", "include_input"}


THREAD_DECODE_BYTES = 256 * 1024  # larger image bodies are decoded off the event loop


def query_options(request: Request) -> dict[str, Any]:
    """top_k, threshold and include_input from the query string (parsed here: no per-request
    FastAPI parameter machinery on the hot path; documented in ``QUERY_PARAMETERS``)."""
    options: dict[str, Any] = {"top_k": None, "threshold": None, "include_input": False}
    if not request.scope.get("query_string"):
        return options
    query = request.query_params
    if (text := query.get("top_k")) is not None:
        if not text.isdigit():
            raise InvalidInput("query parameter top_k must be a positive integer")
        options["top_k"] = int(text)
    if (text := query.get("threshold")) is not None:
        try:
            options["threshold"] = float(text)
        except ValueError:
            raise InvalidInput("query parameter threshold must be a number from 0 to 1") from None
    if (text := query.get("include_input")) is not None:
        flag = text.lower()
        if flag not in ("true", "false", "1", "0", "yes", "no"):
            raise InvalidInput("query parameter include_input must be true or false")
        options["include_input"] = flag in ("true", "1", "yes")
    return options


def from_json(
    payload: Any, spec: ModelSpec, settings: Settings, options: dict[str, Any]
) -> np.ndarray:
    if not isinstance(payload, dict) or "instances" not in payload:
        raise InvalidInput('the body must be a JSON object with "instances"')
    unknown = sorted(set(payload) - JSON_FIELDS)
    if unknown:
        raise InvalidInput(
            f"unknown field {unknown[0][:64]!r}; allowed: {', '.join(sorted(JSON_FIELDS))}"
        )
    for key in ("top_k", "threshold", "include_input"):
        if key in payload:
            options[key] = payload[key]
    if not isinstance(options["include_input"], bool):
        raise InvalidInput("include_input must be true or false")
    if spec.features is not None:
        if "scale" in payload:
            raise InvalidInput("scale applies to image models only")
        return records_from_json(
            payload["instances"], spec.features, max_instances=settings.max_instances
        )
    scale = payload.get("scale", "auto")
    if scale not in ("auto", "unit", "byte"):
        raise InvalidInput("scale must be one of auto, unit, byte")
    return images_from_json(
        payload["instances"],
        scale=scale,
        max_instances=settings.max_instances,
    )


def image_model(mv: ModelVersion) -> ModelVersion:
    if mv.spec is None or not mv.spec.is_image:
        raise UnsupportedMediaType(f"model {mv.name} takes JSON records, not images")
    return mv


def image_fit(mv: ModelVersion) -> Fit:
    """How uploaded images are framed for this model (raises 415 for a records model)."""
    spec = image_model(mv).spec
    assert spec is not None
    return fit_for_labels(spec.labels)


async def form_images(request: Request, settings: Settings, fit: Fit) -> np.ndarray:
    limit = settings.max_upload_files
    try:
        form = await request.form(max_files=limit, max_fields=100)
    except StarletteHTTPException as exc:
        if "files" in str(exc.detail).lower():
            raise PayloadTooLarge(f"too many files: at most {limit} per request") from None
        raise InvalidInput(f"malformed multipart body: {exc.detail}") from None
    try:
        uploads = [value for _, value in form.multi_items() if not isinstance(value, str)]
        if not uploads:
            raise InvalidInput("the multipart body holds no image files")
        files = [
            (await upload.read(), upload.content_type, (upload.filename or "")[:64])
            for upload in uploads
        ]
    finally:
        await form.close()
    return await decode_images(files, settings, fit)


async def decode_images(
    files: list[tuple[bytes, str | None, str]], settings: Settings, fit: Fit
) -> np.ndarray:
    """Decode PNG/JPEG files to (n, 28, 28); large ones in a worker thread.

    ``fit`` chooses the data set's own framing: "digit" (MNIST: 20x20 box, centre of mass)
    or "item" (Fashion-MNIST: longer side to 28, centred).
    """

    def decode_all() -> np.ndarray:
        images = []
        for i, (data, ctype, filename) in enumerate(files):
            try:
                images.append(
                    decode_image(
                        data, max_pixels=settings.max_image_pixels, content_type=ctype, fit=fit
                    )
                )
            except InvalidInput as exc:
                if len(files) == 1 and not filename:
                    raise
                raise InvalidInput(f"file {i} ({filename!r}): {exc.message}") from None
        return np.stack(images)

    if sum(len(data) for data, _, _ in files) > THREAD_DECODE_BYTES:
        return await asyncio.to_thread(decode_all)
    return decode_all()
