"""A small synchronous Python client for the service's own API, built on httpx.

    from service.client import Client
    with Client("http://127.0.0.1:8000") as client:
        result = client.predict("mnist", "digit.png", top_k=3)
        print(result["predictions"][0]["label"])

Inputs accepted by :meth:`Client.predict`:

* a path (``str`` or ``Path``) to a PNG, JPEG or WebP file, sent as the raw body; a ``.csv``
  path is read as Pima records (one row per record, a header naming the features);
* ``bytes`` holding a PNG, JPEG or WebP file;
* a NumPy array: one image ``(28, 28)``/``(784,)``, a batch ``(N, 28, 28)``/``(N, 784)``, one Pima
  record ``(8,)`` or a batch ``(N, 8)``; integer arrays are sent with ``scale="byte"`` (0-255);
* Pima records: one ``{feature: value}`` mapping or a list of them;
* a list of paths, sent together as a multipart upload.

Every failure (server down, timeout, error answer) raises :class:`ClientError` with a message that
says what happened; ``status_code`` is set when the server answered.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import numpy as np

DEFAULT_URL = "http://127.0.0.1:8000"
URL_ENV = "SERVE_URL"
API_KEY_ENV = "SERVE_API_KEY"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_NON_FEATURES = {"outcome", "diabetes", "class", "label"}  # CSV columns that are not inputs

ImageInput = str | os.PathLike[str] | bytes | np.ndarray
Records = Mapping[str, float] | Sequence[Mapping[str, float]]
PredictInput = ImageInput | Records | Sequence[str | os.PathLike[str]]


class ClientError(Exception):
    """A request failed. ``status_code`` is the HTTP status when the server answered, else None."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


def image_content_type(data: bytes, source: str | os.PathLike[str] | None = None) -> str:
    """``image/png``, ``image/jpeg`` or ``image/webp`` from the file's magic bytes; ClientError
    otherwise, naming ``source`` (the file) when given."""
    if data.startswith(_PNG_MAGIC):
        return "image/png"
    if data.startswith(_JPEG_MAGIC):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    where = f"{source}: " if source is not None else ""
    raise ClientError(f"{where}not a PNG, JPEG or WebP image (unrecognised file signature)")


def read_records_csv(path: str | os.PathLike[str]) -> list[dict[str, float]]:
    """Read Pima records from a CSV with a header row; numeric columns only, extra ones dropped."""
    records: list[dict[str, float]] = []
    try:
        # utf-8-sig: a spreadsheet's "CSV UTF-8" starts with a byte order mark, which would
        # otherwise stick to the first column's name
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            names = [name.strip() for name in reader.fieldnames or () if name.strip()]
            twice = sorted({name for name in names if names.count(name) > 1})
            if twice:
                raise ClientError(f"{path}: the header names {', '.join(twice)} more than once")
            for line, row in enumerate(reader, start=2):
                record: dict[str, float] = {}
                for key, value in row.items():
                    if key is None:  # DictReader's key for values beyond the header's columns
                        raise ClientError(f"{path}, line {line}: more values than the header has")
                    if value is None or key.strip().lower() in _NON_FEATURES:
                        continue
                    if not key.strip() and not value.strip():
                        continue  # an unnamed empty column: a spreadsheet's trailing comma
                    try:
                        number = float(value)
                    except ValueError:
                        number = math.nan
                    if not math.isfinite(number):
                        raise ClientError(
                            f"{path}, line {line}: column {key!r} is not a number: {value!r}"
                        )
                    record[key.strip()] = number
                records.append(record)
    except OSError as exc:
        raise ClientError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ClientError(
            f"{path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at {exc.start}): "
            "give a CSV file"
        ) from None
    if not records:
        raise ClientError(f"{path} holds no records (expected a header row and data rows)")
    return records


class Client:
    """Synchronous client for one server. Use as a context manager, or call :meth:`close`."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = (base_url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        if key and not key.isascii():
            raise ClientError(f"the API key ({API_KEY_ENV}) must be ASCII text")
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ClientError(f"the timeout must be a positive number of seconds, got {timeout}")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.timeout = timeout
        try:
            self._http = httpx.Client(
                base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
            )
        except (httpx.InvalidURL, ValueError) as exc:
            raise ClientError(f"not a usable server URL: {self.base_url!r} ({exc})") from None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- status -------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """GET /healthz; raises ClientError when the server is down."""
        return self._json(self._send("GET", "/healthz"))

    def ready(self) -> bool:
        """True when GET /readyz answers 200 (every selected model loaded and self-tested);
        False while it does not, or while nothing answers at all (a server still starting), so
        ``while not client.ready(): time.sleep(1)`` can wait for one."""
        try:
            return self._send("GET", "/readyz", check=False).status_code == 200
        except ClientError:
            return False

    def readiness(self) -> dict[str, Any]:
        """The body of GET /readyz, whatever its status (it names what is not ready and why)."""
        return self._json(self._send("GET", "/readyz", check=False))

    def models(self) -> list[dict[str, Any]]:
        """Every model with its versions, states and default version."""
        body = self._json(self._send("GET", "/models"))
        return list(body.get("models", []))

    def model(self, name: str) -> dict[str, Any]:
        return self._json(self._send("GET", f"/models/{_seg(name)}"))

    def version(self, name: str, version: int | str) -> dict[str, Any]:
        """One version's metadata (metrics, recipe, input spec, ...)."""
        return self._json(self._send("GET", f"/models/{_seg(name)}/versions/{_seg(version)}"))

    # -- prediction ---------------------------------------------------------------------------

    def predict(
        self,
        model: str,
        data: PredictInput,
        version: int | str | None = None,
        top_k: int | None = None,
        threshold: float | None = None,
        include_input: bool = False,
    ) -> dict[str, Any]:
        """Predict with ``model`` (its default version unless ``version`` is given)."""
        path = f"/models/{_seg(model)}"
        if version is not None:
            path += f"/versions/{_seg(version)}"
        path += "/predict"
        options: dict[str, Any] = {}
        if top_k is not None:
            options["top_k"] = top_k
        if threshold is not None:
            options["threshold"] = _plain(threshold)
        if include_input:
            options["include_input"] = True
        query = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in options.items()}

        if isinstance(data, str | os.PathLike):
            source: str | os.PathLike[str] | None = data
            if Path(data).suffix.lower() == ".csv":
                data = read_records_csv(data)
            else:
                data = _read_file(data)
        else:
            source = None
        if isinstance(data, bytes):
            headers = {"Content-Type": image_content_type(data, source)}
            response = self._send("POST", path, content=data, headers=headers, params=query)
            return self._json(response)
        if isinstance(data, np.ndarray):
            return self._post_json(path, {**_array_payload(data), **options})
        if isinstance(data, Mapping):
            return self._post_json(path, {"instances": [_record(data)], **options})
        items: list[Any] = list(data) if isinstance(data, Sequence) else []
        if items and all(isinstance(d, Mapping) for d in items):
            return self._post_json(path, {"instances": [_record(d) for d in items], **options})
        if items and all(isinstance(d, str | os.PathLike) for d in items):
            files = []
            for item in items:
                content = _read_file(item)
                kind = image_content_type(content, item)
                files.append(("files", (Path(item).name, content, kind)))
            return self._json(self._send("POST", path, files=files, params=query))
        raise ClientError(
            "unsupported input: give an image path or bytes, a NumPy array, "
            "a Pima record (mapping) or a list of them, or a list of image paths"
        )

    # -- plumbing -----------------------------------------------------------------------------

    def _post_json(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self._json(self._send("POST", path, json=payload))

    def _send(self, method: str, path: str, *, check: bool = True, **kwargs: Any) -> httpx.Response:
        url = f"{self.base_url}{path}"
        try:
            response = self._http.request(method, path, **kwargs)
        except ValueError as exc:  # a body JSON cannot hold (NaN, Infinity) or a header that
            # cannot be sent (a key outside ASCII)
            raise ClientError(f"{method} {url}: the request cannot be sent: {exc}") from None
        except httpx.ConnectError:
            raise ClientError(
                f"cannot connect to the server at {self.base_url}: is it running? "
                f"Start it with `serve`, or point --url / {URL_ENV} at it."
            ) from None
        except httpx.TimeoutException:
            raise ClientError(
                f"{method} {url}: no answer within {self.timeout:g} s (timed out)"
            ) from None
        except httpx.HTTPError as exc:
            raise ClientError(f"{method} {url} failed: {exc}") from None
        if 300 <= response.status_code < 400:  # not followed: a POST would lose its body
            where = response.headers.get("location", "another URL")
            raise ClientError(
                f"{method} {url} -> {response.status_code} {response.reason_phrase}: the server "
                f"redirects to {where}; point --url / {URL_ENV} there",
                response.status_code,
            )
        if check and response.status_code >= 400:
            raise ClientError(_error_message(method, url, response), response.status_code)
        return response

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            kind = response.headers.get("content-type")
            raise ClientError(
                f"{response.request.url}: expected JSON, got {kind}", response.status_code
            ) from None
        if not isinstance(body, dict):
            raise ClientError(
                f"{response.request.url}: expected a JSON object", response.status_code
            )
        return body


def _seg(value: int | str) -> str:
    """One URL path segment; refuses separators so a name can never change the route."""
    text = str(value)
    if not text or "/" in text or "?" in text or "#" in text or text in {".", ".."}:
        raise ClientError(f"invalid model or version name: {text!r}")
    return text


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python number it holds (JSON knows no ``np.float32``)."""
    return value.item() if isinstance(value, np.generic) else value


def _record(record: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _plain(value) for key, value in record.items()}


def _read_file(path: str | os.PathLike[str]) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ClientError(f"cannot read {path}: {exc.strerror or exc}") from None


def _array_payload(array: np.ndarray) -> dict[str, Any]:
    """JSON body for an array: batch dimension added when missing, integer arrays as 0-255."""
    if array.ndim in (1, 2) and array.shape in {(28, 28), (784,), (8,)}:
        array = array[np.newaxis]
    if array.size == 0:
        raise ClientError("empty array: nothing to predict")
    payload: dict[str, Any] = {"instances": array.tolist()}
    if np.issubdtype(array.dtype, np.integer) and array.shape[-1] != 8:
        payload["scale"] = "byte"
    return payload


def _error_message(method: str, url: str, response: httpx.Response) -> str:
    detail: str
    try:
        body = response.json()
        detail = (
            str(body.get("error") or body.get("detail") or body)
            if isinstance(body, dict)
            else str(body)
        )
    except ValueError:  # not this server's JSON error (a proxy's page, another server)
        text = " ".join(response.text.split())
        detail = f"not a digitserve answer: {text[:200]}" if text else "(empty body)"
    return f"{method} {url} -> {response.status_code} {response.reason_phrase}: {detail}"
