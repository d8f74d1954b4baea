"""Request decoding for the service's own predict endpoints: query options, JSON bodies and
file uploads, each into a float32 array (by the version's task) or a clear 4xx error."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from fastapi import Request
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from service.serving.model import ModelVersion
from service.serving.tasks import Task
from service.settings import Settings

# Smaller image bodies (icons, 28x28 drawings) decode in less time than a thread hand-off takes.
THREAD_DECODE_BYTES = 4 * 1024


def query_options(request: Request) -> dict[str, Any]:
    """top_k, threshold, include_input, alpha, abstain and digits from the query string (parsed
    here: no per-request FastAPI parameter machinery on the hot path; documented in
    ``QUERY_PARAMETERS``)."""
    options: dict[str, Any] = {
        "top_k": None,
        "threshold": None,
        "include_input": False,
        "alpha": None,
        "abstain": None,
        "digits": "one",
    }
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
    if (text := query.get("digits")) is not None:
        if text not in ("one", "many"):
            raise InvalidInput("query parameter digits must be one or many")
        options["digits"] = text
    if (text := query.get("alpha")) is not None:
        options["alpha"] = text  # the task checks it: only versions with prediction sets take it
    for key in ("include_input", "abstain"):
        if (text := query.get(key)) is not None:
            flag = text.lower()
            if flag not in ("true", "false", "1", "0", "yes", "no"):
                raise InvalidInput(f"query parameter {key} must be true or false")
            options[key] = flag in ("true", "1", "yes")
    return options


def from_json(payload: Any, task: Task, settings: Settings, options: dict[str, Any]) -> np.ndarray:
    """The instances of an own-API JSON body; its options (top_k, threshold, include_input,
    alpha, abstain) override the query string's in ``options``."""
    if not isinstance(payload, dict) or "instances" not in payload:
        raise InvalidInput('the body must be a JSON object with "instances"')
    unknown = sorted(set(payload) - task.json_fields)
    if unknown:
        allowed = ", ".join(sorted(task.json_fields))
        if unknown[0] == "scale":
            raise InvalidInput("scale applies to image models only")
        raise InvalidInput(f"unknown field {unknown[0][:64]!r}; allowed: {allowed}")
    for key in ("top_k", "threshold", "include_input", "alpha", "abstain"):
        if key in payload:
            options[key] = payload[key]
    if not isinstance(options["include_input"], bool):
        raise InvalidInput("include_input must be true or false")
    return task.decode_instances(payload, settings.max_instances)


def file_task(mv: ModelVersion) -> Task:
    """The version's task, when it takes files as the request body (else 415)."""
    if mv.task is None or not mv.task.accepts_files:
        raise UnsupportedMediaType(f"model {mv.name} takes JSON records, not images")
    return mv.task


async def form_images(request: Request, settings: Settings, task: Task) -> np.ndarray:
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
    return await decode_images(files, settings, task)


async def decode_images(
    files: list[tuple[bytes, str | None, str]], settings: Settings, task: Task
) -> np.ndarray:
    """Decode image files into the task's input batch (framed as its data set was made).

    Off the event loop, in worker threads, one per file: decoding and resampling in Pillow and
    numpy's larger operations release the GIL, so several files (or requests) use both cores.
    """

    def decode(i: int) -> np.ndarray:
        data, ctype, filename = files[i]
        try:
            return task.decode_file(data, ctype, settings.max_image_pixels)
        except InvalidInput as exc:
            if len(files) == 1 and not filename:
                raise
            raise InvalidInput(f"file {i} ({filename!r}): {exc.message}") from None

    if len(files) == 1 and len(files[0][0]) <= THREAD_DECODE_BYTES:
        return decode(0)[None]
    done = await asyncio.gather(
        *(asyncio.to_thread(decode, i) for i in range(len(files))), return_exceptions=True
    )
    for result in done:  # the first file that failed, whichever thread finished first
        if isinstance(result, BaseException):
            raise result
    return np.stack(done)  # type: ignore[arg-type]


async def decode_number(
    data: bytes, ctype: str | None, settings: Settings, task: Task
) -> tuple[np.ndarray, list[list[int]]]:
    """A picture of a number: its digits as the task's input batch, and their boxes; in a
    worker thread (a photo of a number is large, its splitting and framing take milliseconds)."""
    x, boxes = await asyncio.to_thread(task.decode_digits, data, ctype, settings.max_image_pixels)
    if len(x) > settings.max_instances:
        raise InvalidInput(
            f"the picture holds {len(x)} digits; at most {settings.max_instances} are read"
        )
    return x, boxes
