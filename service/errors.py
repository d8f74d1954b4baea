"""Domain errors. Each carries its HTTP status; one handler renders them all as {"error": "..."}."""

from __future__ import annotations


class ServeError(Exception):
    """Base of every error the service reports to a client."""

    status_code: int = 500

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(ServeError):
    """Malformed request body (for example JSON that does not parse)."""

    status_code = 400


class DuplicateKey(BadRequest):
    """JSON that parses, but an object of which gives one key twice: which value the client
    meant is unknown (a parser keeps the last one silently)."""


class NotFound(ServeError):
    """Unknown model, version, label or route."""

    status_code = 404


class MethodNotAllowed(ServeError):
    """A known URL asked with a method it does not answer; ``allow`` lists the ones it does."""

    status_code = 405

    def __init__(self, allow: str, method: str, path: str) -> None:
        super().__init__(method_not_allowed(method, path, allow), headers={"Allow": allow})


def method_not_allowed(method: str, path: str, allow: str) -> str:
    """The 405 message: what was asked, where, and what to use instead."""
    return f"method {method} is not allowed on {shown_path(path)}: use {allow}"


def shown_path(path: str) -> str:
    """A request's path as an error message quotes it: never more than 200 characters."""
    return path if len(path) <= 200 else f"{path[:200]}..."


class PayloadTooLarge(ServeError):
    status_code = 413


def too_large(limit: int, size: int | None = None) -> str:
    """The 413's message, in MiB as a person reads a file's size, with the exact bytes; ``size``
    is the declared length, None for a body counted while it streams (not read to its end)."""
    said = (
        f"the request body is {_readable(size)} ({size:,} bytes)"
        if size is not None
        else "the request body is larger than the limit"
    )
    return f"{said}; this server accepts at most {_readable(limit)} ({limit:,} bytes)"


def too_large_decoded(limit: int, coding: str) -> str:
    """The 413's message for a compressed body that decompresses past the limit."""
    return (
        f"the request body decompresses ({coding}) to more than the limit; this server accepts "
        f"at most {_readable(limit)} ({limit:,} bytes) once decompressed"
    )


def _readable(size: int) -> str:
    """A size as a person reads a file's: whole MiB (or KiB) as such, else to a tenth."""
    unit, scale = ("MiB", 2**20) if size >= 2**20 else ("KiB", 1024)
    value = size / scale
    return f"{value:g} {unit}" if value.is_integer() else f"{value:.1f} {unit}"


# the 503 of a body that does not fit in what the server holds of all bodies at once
BODIES_BUSY = "the server is receiving too many request bodies at once: try again shortly"


class UnsupportedMediaType(ServeError):
    status_code = 415


class InvalidInput(ServeError):
    """Well-formed request whose content is wrong: shape, type, range, NaN, too many instances."""

    status_code = 422


class NotReady(ServeError):
    """The model exists but cannot serve now (loading, failed, overloaded, shutting down).

    ``retry_after``: seconds after which asking again may succeed (sent as ``Retry-After``);
    None when only a change on the server's side will help (a version that failed to load), so
    that clients do not wait and retry in vain.
    """

    status_code = 503

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after else None
        super().__init__(message, headers=headers)


class Overloaded(NotReady):
    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message, retry_after=retry_after)


class DeadlineExceeded(ServeError):
    status_code = 504
