"""A small synchronous Python client for the service's own API, built on httpx.

    from service.client import Client
    with Client("http://127.0.0.1:8000") as client:
        result = client.predict("mnist", "digit.png", top_k=3)
        print(result["predictions"][0]["label"])

Inputs accepted by :meth:`Client.predict` and :meth:`Client.explain`:

* a path (``str`` or ``Path``) to a PNG, JPEG or WebP file, sent as the raw body; a ``.csv``
  path is read as Pima records (one row per record, a header naming the features; a version
  whose metadata lists other names for them, such as Kaggle's, takes those too);
* ``bytes`` holding a PNG, JPEG or WebP file;
* a NumPy array: one image ``(28, 28)``/``(784,)``, a batch ``(N, 28, 28)``/``(N, 784)``, one Pima
  record ``(8,)`` or a batch ``(N, 8)``. ``uint8`` arrays are read as 0-255, ``bool`` arrays as
  ink masks (True is ink), any other numbers by the server's ``auto`` rule (0-255 when a value is
  above 1, else 0-1); ``scale=`` says it outright;
* the same as plain (nested) Python lists of numbers, sent as they are;
* Pima records: one ``{feature: value}`` mapping or a list of them;
* a list of paths, sent together as a multipart upload (predict only).

Every failure (server down, timeout, error answer, an input that cannot be sent) raises
:class:`ClientError` with a message that says what happened; ``status_code`` is set when the
server answered, ``retry_after`` when it asked to be asked again later. Answers 429, and 503 with
a ``Retry-After`` (overloaded, model loading), are retried (``retries``, honouring it, at most
``max_retry_wait`` seconds of waiting in all); a 503 without one (a version that failed to load)
is raised at once.
"""

from __future__ import annotations

import csv
import json
import math
import numbers
import os
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import httpx
import numpy as np

DEFAULT_URL = "http://127.0.0.1:8000"
URL_ENV = "SERVE_URL"
_WHERE = f"Client(base_url=...) or ${URL_ENV}"
# a URL's user name and password (up to its last @ before the path), kept out of messages
_USERINFO = re.compile(r"^([^/?#@]*://)?[^/?#]*@")
API_KEY_ENV = "SERVE_API_KEY"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
# CSV columns that are not inputs, dropped here as well as by the server (a version's metadata
# names its label column) because versions trained before that are strict about every column
_NON_FEATURES = {"outcome", "diabetes", "class", "label"}
SCALES = ("auto", "unit", "byte")
# the server's deadline header; it refuses (422) a value that is not in (0, 300] seconds
TIMEOUT_HEADER = "X-Request-Timeout"
MAX_SERVER_TIMEOUT_S = 300.0
MAX_TIMEOUT_S = 1e6  # beyond it a deadline overflows the clock (use None for no limit)
EXCERPT_CHARS = 120  # of an answer that is not what was asked for, shown in its error
RETRY_BACKOFF_S = 0.5  # first wait after a 429 without Retry-After; doubled each time
_sleep = time.sleep  # module-level so tests can replace the wait

ImageInput = str | os.PathLike[str] | bytes | np.ndarray
Records = Mapping[str, float] | Sequence[Mapping[str, float]]
PredictInput = ImageInput | Records | Sequence[Any]
Scale = Literal["auto", "unit", "byte"]
Integer = int | np.integer[Any]  # NumPy numbers are taken where Python ones are
Number = float | Integer | np.floating[Any]
Flag = bool | np.bool_


class ClientError(Exception):
    """A request failed. ``status_code`` is the HTTP status when the server answered, else None;
    ``retry_after`` the seconds the server asked to wait (its ``Retry-After``), else None;
    ``detail`` what happened, without the client's advice on how to fix it."""

    def __init__(
        self,
        message: str,
        status_code: int | None = None,
        *,
        retry_after: float | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after
        self.detail = message if detail is None else detail


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
    """Read Pima records from a CSV with a header row, keyed by the header's names as they are
    (the server maps other copies' names, such as Kaggle's ``BloodPressure``, to its features);
    numeric columns only, the outcome column dropped."""
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
    """Synchronous client for one server. Use as a context manager, or call :meth:`close`.

    ``timeout`` is in seconds (None: wait as long as it takes); the server is asked to give up a
    little earlier (``X-Request-Timeout``), so a slow answer comes back as the server's 504 rather
    than as the client's own timeout. ``retries`` is how many times an answer 429, or 503 with a
    ``Retry-After``, is asked again, after the server's ``Retry-After`` (a 429 without one: 0.5 s,
    doubled each time), waiting at most ``max_retry_wait`` seconds in all; 0 turns retrying off.
    The server sends a 503 without ``Retry-After`` when retrying cannot help (a version that
    failed to load serves only once its files change). ``url_hint`` is how error messages say to
    point the client at another server, in the caller's terms (a command gives its options).
    A user name and password in the URL are shown as ``***`` in messages, which end up in logs."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | None = 10.0,
        transport: httpx.BaseTransport | None = None,
        retries: int = 2,
        max_retry_wait: float = 10.0,
        *,
        url_hint: str = _WHERE,
    ) -> None:
        url = base_url or os.environ.get(URL_ENV) or DEFAULT_URL
        problem = url_problem(url)
        if problem:
            where = "base_url" if base_url else f"${URL_ENV}"
            raise ClientError(f"{where}: {problem}")
        self.base_url = url.rstrip("/")
        self._shown_url = redacted(self.base_url)
        self._url_hint = url_hint
        given = api_key is not None
        key = api_key if given else env_api_key()
        headers = auth_header(key, "api_key" if given else f"${API_KEY_ENV}")
        if timeout is not None and not _positive_seconds(timeout):
            raise ClientError(
                f"the timeout must be a positive number of seconds up to {MAX_TIMEOUT_S:g}, or "
                f"None for no limit; got {timeout!r}"
            )
        if isinstance(retries, bool) or not isinstance(retries, numbers.Integral) or retries < 0:
            raise ClientError(f"retries must be a whole number, 0 or more; got {retries!r}")
        if not (_positive_seconds(max_retry_wait) or max_retry_wait == 0):
            raise ClientError(
                f"max_retry_wait must be a number of seconds, 0 or more; got {max_retry_wait!r}"
            )
        self.timeout: float | None = None if timeout is None else float(timeout)
        self.retries: int = int(retries)
        self.max_retry_wait: float = float(max_retry_wait)
        deadline = _server_deadline(self.timeout)
        if deadline is not None:
            headers[TIMEOUT_HEADER] = deadline
        self._key_sent: bool = bool(headers)
        try:
            self._http: httpx.Client = httpx.Client(
                base_url=self.base_url, headers=headers, timeout=self.timeout, transport=transport
            )
        except (httpx.InvalidURL, ValueError) as exc:
            raise ClientError(f"not a usable server URL: {self._shown_url!r} ({exc})") from None

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
        response = self._send("GET", "/models")
        body = self._json(response)
        models = body.get("models")
        if not isinstance(models, list):  # another server's JSON: a wrong URL, a proxy
            where = redacted(str(response.request.url))
            raise ClientError(f"{where}: the answer was not a model list: {excerpt(body)}", 200)
        return models

    def model(self, name: str) -> dict[str, Any]:
        """One model as :meth:`models` lists it, plus its default version's metadata."""
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
        top_k: Integer | None = None,
        threshold: Number | None = None,
        include_input: Flag = False,
        *,
        alpha: Number | None = None,
        abstain: Flag | None = None,
        digits: Literal["one", "many"] | None = None,
        scale: Scale | None = None,
    ) -> dict[str, Any]:
        """Predict with ``model`` (its default version unless ``version`` is given).

        ``alpha`` sets the prediction sets' miscoverage and ``abstain=True`` adds the abstention
        (versions with prediction sets); ``digits="many"`` reads a number of several digits in
        one picture (one image file or bytes; the answer has ``number`` and ``digits``);
        ``scale`` says how to read array values (see the module's notes)."""
        path = _route(model, version, "predict")
        options: dict[str, Any] = {}
        for name, value in (
            ("top_k", top_k),
            ("threshold", threshold),
            ("alpha", alpha),
            ("abstain", abstain),
        ):
            if value is not None:
                options[name] = _plain(value)
        if include_input:
            options["include_input"] = True
        # digits is a query parameter only: the server takes a number as an image body alone
        query = {"digits": digits} if digits is not None else {}
        kind, body = self._body(data, scale)
        if kind == "json":
            return self._post_json(path, {**body, **options}, params=_query(query))
        params = _query({**options, **query})
        if kind == "image":
            content, content_type = body
            response = self._send(
                "POST", path, content=content, headers={"Content-Type": content_type}, params=params
            )
            return self._json(response)
        return self._json(self._send("POST", path, files=body, params=params))

    def explain(
        self,
        model: str,
        data: PredictInput,
        version: int | str | None = None,
        target: str | Integer | None = None,
        *,
        scale: Scale | None = None,
    ) -> dict[str, Any]:
        """Explain ``model``'s predictions: exact Shapley values per feature for Pima records,
        an occlusion map per image (for the predicted class, or for ``target``, a label or class
        index). Takes what :meth:`predict` takes, at most 16 instances, or one image file."""
        path = _route(model, version, "explain")
        kind, body = self._body(data, scale)
        if kind == "json":
            extra = {"target": _plain(target)} if target is not None else {}
            return self._post_json(path, {**body, **extra})
        if kind == "files":
            raise ClientError(
                "explain takes one image file (its path or bytes) or JSON instances; "
                "give the files one at a time"
            )
        content, content_type = body
        params = _query({"target": target} if target is not None else {})
        response = self._send(
            "POST", path, content=content, headers={"Content-Type": content_type}, params=params
        )
        return self._json(response)

    # -- plumbing -----------------------------------------------------------------------------

    def _body(self, data: PredictInput, scale: Scale | None) -> tuple[str, Any]:
        """What to send for ``data``: ("json", payload), ("image", (bytes, type)) or ("files",
        multipart list)."""
        if scale is not None and scale not in SCALES:
            raise ClientError(f"scale must be one of {', '.join(SCALES)}; got {scale!r}")
        if isinstance(data, str | os.PathLike):
            source: str | os.PathLike[str] | None = data
            if Path(data).suffix.lower() == ".csv":
                data = read_records_csv(data)
            else:
                data = _read_file(data)
        else:
            source = None
        if isinstance(data, bytes | bytearray | memoryview):
            if scale is not None:
                raise ClientError("scale applies to arrays of values, not to image files")
            content = bytes(data)
            return "image", (content, image_content_type(content, source))
        if isinstance(data, np.ndarray):
            return "json", _array_payload(data, scale)
        if isinstance(data, Mapping):
            return "json", {"instances": [_record(data)]}
        items: list[Any] = list(data) if isinstance(data, Sequence) else []
        if isinstance(data, Sequence) and not items:
            raise ClientError("empty list: nothing to predict")
        if _numbers_as_text(items):
            raise ClientError(
                "got numbers written as text (rows from csv.reader?): convert them with float(), "
                "or give the CSV file's path"
            )
        if items and all(isinstance(d, Mapping) for d in items):
            return "json", {"instances": [_record(d) for d in items]}
        if items and all(isinstance(d, str | os.PathLike) for d in items):
            if scale is not None:
                raise ClientError("scale applies to arrays of values, not to image files")
            files = []
            for item in items:
                content = _read_file(item)
                kind = image_content_type(content, item)
                files.append(("files", (Path(item).name, content, kind)))
            return "files", files
        if items:
            payload = _list_payload(items, scale)
            if payload is not None:
                return "json", payload
        raise ClientError(
            "unsupported input: give an image path or bytes, a NumPy array or a list of numbers, "
            "a Pima record (mapping) or a list of them, or a list of image paths"
        )

    def _post_json(
        self, path: str, payload: dict[str, Any], params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        return self._json(self._send("POST", path, json=payload, params=params or None))

    def _send(self, method: str, path: str, *, check: bool = True, **kwargs: Any) -> httpx.Response:
        """One request; an answer 503 or 429 is asked again (when ``check``: a readiness probe
        wants the 503 itself) as :class:`Client` says."""
        url = f"{self._shown_url}{path}"  # for messages: the request goes to base_url
        waited = 0.0
        attempts = 1
        while True:
            response = self._send_once(method, url, path, **kwargs)
            if not check or not _worth_retrying(response):
                break
            if attempts > self.retries:
                break
            delay = _retry_after(response)
            if delay is None:
                delay = RETRY_BACKOFF_S * 2 ** (attempts - 1)
            if waited + delay > self.max_retry_wait:
                break  # asked to wait longer than allowed: say so now rather than hang
            _sleep(delay)
            waited += delay
            attempts += 1
        if 300 <= response.status_code < 400:  # not followed: a POST would lose its body
            where = redacted(response.headers.get("location", "another URL"))
            raise ClientError(
                f"{method} {url} -> {response.status_code} {response.reason_phrase}: the server "
                f"redirects to {where}; point {self._url_hint} there",
                response.status_code,
            )
        if check and response.status_code >= 400:
            detail = _error_message(method, url, response)
            message = detail
            retry_after = _retry_after(response)
            if _worth_retrying(response):
                tried = f"after {attempts} attempts" if attempts > 1 else "not retried"
                later = f", retry after {wait_text(retry_after)}" if retry_after is not None else ""
                message += f" ({tried}{later})"
            elif response.status_code == 401:
                message += f"; give the key as Client(api_key=...) or in ${API_KEY_ENV}"
            elif response.status_code == 403 and self._key_sent:
                message += f"; check the key given as Client(api_key=...) or in ${API_KEY_ENV}"
            raise ClientError(message, response.status_code, retry_after=retry_after, detail=detail)
        return response

    def _send_once(self, method: str, url: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except (ValueError, TypeError) as exc:  # a body JSON cannot hold (NaN, Infinity, an
            # object it does not know) or a header that cannot be sent (a key outside ASCII)
            raise ClientError(f"{method} {url}: the request cannot be sent: {exc}") from None
        except httpx.ConnectError as exc:
            raise ClientError(
                connect_failure(self._shown_url, exc)
                + f" Start it with `serve`, or point {self._url_hint} at it."
            ) from None
        except httpx.TimeoutException:
            within = f" within {self.timeout:g} s" if self.timeout is not None else ""
            raise ClientError(f"{method} {url}: no answer{within} (timed out)") from None
        except httpx.HTTPError as exc:
            raise ClientError(f"{method} {url} failed: {exc}") from None

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        where = redacted(str(response.request.url))
        try:
            body = response.json()
        except ValueError:
            kind = response.headers.get("content-type")
            raise ClientError(f"{where}: expected JSON, got {kind}", response.status_code) from None
        if not isinstance(body, dict):
            raise ClientError(f"{where}: expected a JSON object", response.status_code)
        return body


def excerpt(answer: Any) -> str:
    """The start of a JSON answer, for a message that says it is not what was asked for."""
    text = json.dumps(answer, ensure_ascii=False)
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def _positive_seconds(value: Any) -> bool:
    """A number above 0 and up to :data:`MAX_TIMEOUT_S` (a bool is not a number of seconds)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return 0 < float(value) <= MAX_TIMEOUT_S


def url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a server's address (None: nothing): an http(s) URL with a
    host, and no query or fragment (the API's paths are appended to it)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not rest.split("/")[0]:
        return f"not a server URL: {redacted(url)!r} (expected http://HOST:PORT or https://HOST)"
    if "?" in rest or "#" in rest:
        shown = redacted(url)
        return f"not a server URL: {shown!r} (a query or fragment cannot take the API's paths)"
    return None


def env_api_key() -> str | None:
    """``$SERVE_API_KEY`` as the key to send. The server reads that variable as a comma-separated
    list of keys and takes any one of them, so a shell that set it up for the server holds a
    list: its first key is sent (blanks dropped, as the server drops them)."""
    value = os.environ.get(API_KEY_ENV)
    if value is None or "," not in value:
        return value
    return next((key.strip() for key in value.split(",") if key.strip()), "")


def redacted(url: str) -> str:
    """``url`` with its user name and password, if it has any, shown as ``***``."""
    return _USERINFO.sub(lambda m: f"{m.group(1) or ''}***@", url, count=1)


def auth_header(key: str | None, where: str) -> dict[str, str]:
    """The ``Authorization`` header for ``key`` (none for no key). A key read from a file keeps
    its line end: whitespace around it is dropped. One that still cannot go into a header is
    refused without being shown, since error messages end up in logs."""
    key = (key or "").strip()
    if not key:
        return {}
    if "," in key:  # a bearer token is one key: the server would refuse the list as a whole
        raise ClientError(
            f"the API key ({where}) holds a comma: give one key (the server's ${API_KEY_ENV} "
            "is a comma-separated list, and any one of its keys will do)"
        )
    if not key.isascii() or not key.isprintable() or " " in key:
        raise ClientError(
            f"the API key ({where}) must be printable ASCII without spaces; the key given is not"
        )
    return {"Authorization": f"Bearer {key}"}


# how the platform's resolver says that a host name does not resolve
_UNRESOLVED = (
    "Name or service not known",
    "nodename nor servname",
    "getaddrinfo",
    "Temporary failure in name resolution",
)


def connect_failure(base_url: str, exc: Exception) -> str:
    """Why nothing answered at ``base_url``, as far as the error tells."""
    reason = str(exc)
    if "SSL" in reason or "wrong version number" in reason:
        plain = base_url.replace("https://", "http://", 1)
        return (
            f"cannot connect to the server at {base_url}: the TLS handshake failed ({reason}); "
            f"if the server speaks plain HTTP, use {plain}."
        )
    if any(words in reason for words in _UNRESOLVED):
        return f"cannot connect to the server at {base_url}: its host name does not resolve."
    return f"cannot connect to the server at {base_url}: is it running?"


def _server_deadline(timeout: float | None) -> str | None:
    """``X-Request-Timeout`` for a client that waits ``timeout`` seconds: up to a second less
    (a tenth of it for short ones), so the server's 504 arrives while the client still listens.
    None when there is no client timeout, or too short a one to leave the server any time."""
    if timeout is None:
        return None
    deadline = min(timeout - min(1.0, timeout / 10), MAX_SERVER_TIMEOUT_S)
    text = f"{deadline:.3f}"
    return text if float(text) > 0 else None


def _worth_retrying(response: httpx.Response) -> bool:
    """A 429, or a 503 that says when to ask again: the server expects to serve by then."""
    status = response.status_code
    return status == 429 or (status == 503 and "retry-after" in response.headers)


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (a number, or an HTTP date); None without one."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def wait_text(seconds: float) -> str:
    """A wait as a person reads it: tenths under 10 s, whole seconds (rounded up) above, and
    for long ones about how many minutes, hours or days (a Retry-After date far ahead)."""
    if seconds < 10:
        return f"{math.ceil(seconds * 10) / 10:g} s"
    whole = math.ceil(seconds)
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if whole >= 2 * size:
            return f"{whole} s (about {round(whole / size)} {unit})"
    return f"{whole} s"


def _route(model: str, version: int | str | None, action: str) -> str:
    path = f"/models/{_seg(model)}"
    if version is not None:
        path += f"/versions/{_seg(version)}"
    return f"{path}/{action}"


def _query(options: Mapping[str, Any]) -> dict[str, str]:
    """Query-string text: booleans as the server spells them, NumPy scalars as plain numbers."""
    return {
        key: str(value).lower() if isinstance(value, bool | np.bool_) else str(_plain(value))
        for key, value in options.items()
    }


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


def _numbers_as_text(items: list[Any]) -> bool:
    """A row of number strings, or a list of such rows, that names no file: what csv.reader
    gives, never meant as file paths."""
    rows = items if items and all(isinstance(i, list | tuple) for i in items) else [items]
    cells = [cell for row in rows for cell in row]
    if not cells or not all(isinstance(cell, str) for cell in cells):
        return False
    try:
        for cell in cells:
            float(cell)
    except ValueError:
        return False
    return not any(Path(cell).is_file() for cell in cells)


def _read_file(path: str | os.PathLike[str]) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ClientError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not data:
        raise ClientError(f"{path} is empty: nothing to send")
    return data


def _is_images(array: np.ndarray) -> bool:
    """A batch of 28x28 images, flat or not."""
    return array.shape[1:] in {(28, 28), (784,)}


def _array_payload(array: np.ndarray, scale: Scale | None = None) -> dict[str, Any]:
    """JSON body for an array: batch dimension added when missing; ``scale`` only when asked, or
    when a ``uint8`` image's values would otherwise be misread (see below)."""
    mask = array.dtype == np.bool_
    if mask:  # True is ink: as 0/1 the server's auto rule reads it as [0, 1]
        array = array.astype(np.uint8)
    if array.dtype.kind not in "iuf":
        raise ClientError(f"unsupported array of {array.dtype}: give numbers")
    if array.ndim in (1, 2) and array.shape in {(28, 28), (784,), (8,)}:
        array = array[np.newaxis]
    if array.size == 0:
        raise ClientError("empty array: nothing to predict")
    payload: dict[str, Any] = {"instances": array.tolist()}
    if scale is not None:
        payload["scale"] = scale
    elif array.dtype == np.uint8 and not mask and _is_images(array) and int(array.max()) <= 1:
        # uint8 is 0-255. The auto rule reads the same unless no value is above 1, so scale is
        # sent only then: a model that takes no scale (pima) then names the real problem
        payload["scale"] = "byte"
    return payload


def _list_payload(items: list[Any], scale: Scale | None) -> dict[str, Any] | None:
    """JSON body for a (nested) list of numbers; None when it holds something else."""
    try:
        array = np.asarray(items)
    except ValueError:  # ragged: images flat and 28x28 mixed, which the server takes as sent
        instances = [_plain_nested(item) for item in items]
        return {"instances": instances, **({"scale": scale} if scale else {})}
    if array.dtype.kind not in "biuf":
        return None
    if array.dtype.kind != "b" and any(
        isinstance(v, bool | np.bool_) for v in np.asarray(items, dtype=object).ravel()
    ):  # numpy made them 1 and 0: the server refuses such a list, so say it here
        raise ClientError("the list mixes true/false with numbers: send numbers only")
    if array.dtype == np.uint8:  # Python numbers are no uint8: read them by the auto rule
        array = array.astype(np.int64)
    return _array_payload(array, scale)


def _plain_nested(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list | tuple):
        return [_plain_nested(v) for v in value]
    return _plain(value)


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
