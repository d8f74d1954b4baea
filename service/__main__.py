"""``python -m service`` / ``serve``: run the service with uvicorn (uvloop + httptools)."""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import signal
import socket
import sys
import typing
from collections.abc import Sequence
from types import FrameType
from typing import Any

import uvicorn
from pydantic import ValidationError
from pydantic_settings import SettingsError

from service.http.protocol import HeadDeadlineProtocol
from service.http.server import Server
from service.observability.logs import configure_logging
from service.settings import Settings


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _prefix() -> str:
    return str(Settings.model_config.get("env_prefix", ""))


def _option(field: str) -> str:
    return "--" + field.replace("_", "-")


def parse_args(argv: Sequence[str] | None = None) -> None:
    """``--help``, and every setting as an option: ``--port 9000`` sets ``SERVE_PORT`` for this
    run, so an option and its variable are read by one parser and reach every worker process.
    An unknown option is a usage error (exit 2), never silently ignored."""
    prefix = _prefix()
    parser = argparse.ArgumentParser(
        prog="serve",
        allow_abbrev=False,  # a prefix that names one setting today may name two tomorrow
        description="Serve the model repository over HTTP. Every setting is an environment "
        f"variable {prefix}<NAME> or the option --<name>, which wins over its variable; "
        "dicts and lists take JSON (README, Configuration).",
    )
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        # dicts and lists are shown as the JSON their variable takes
        shown = "unset" if default is None else _shown(default)
        choices = typing.get_args(field.annotation) if _is_literal(field.annotation) else ()
        one_of = f" One of: {', '.join(map(str, choices))}." if choices else ""
        help_text = f"{field.description or ''}{one_of} [{prefix}{name.upper()}; default: {shown}]"
        if "SecretStr" in str(field.annotation):
            help_text += " (other users can read a command line: prefer the variable)"
        parser.add_argument(
            _option(name), dest=name, metavar="VALUE", help=help_text.strip().replace("%", "%%")
        )
    for name, value in vars(parser.parse_args(argv)).items():
        if value is not None:
            os.environ[f"{prefix}{name.upper()}"] = value


def _shown(default: Any) -> str:
    if isinstance(default, dict | list | tuple):
        return json.dumps(default)
    return str(default)


def cannot_listen(host: str, port: int) -> str | None:
    """Why the server could not listen on ``host:port``, and which setting to change, or None
    when it can. uvicorn binds only after the lifespan, so a port in use or a host that is not
    this machine's would surface after every model had loaded, in uvicorn's words alone."""
    other_host = f"give one of this machine's addresses with {_prefix()}HOST or --host"
    try:
        # an empty host is every address, as uvicorn (asyncio) listens on it; no name to resolve
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError as exc:
        return f"{exc.strerror or exc}: {other_host} (0.0.0.0 for all of them)"
    for family, kind, proto, _, address in infos:
        try:
            sock = socket.socket(family, kind, proto)
        except OSError:  # a family this machine lacks (IPv6): uvicorn passes it over too
            continue
        with sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            try:
                sock.bind(address)
            except OSError as exc:
                reason = exc.strerror or str(exc)
                if exc.errno == errno.EADDRNOTAVAIL:
                    return f"{reason}: {host} is not an address of this machine; {other_host}"
                return (
                    f"{reason} (another server is there?); choose another port with "
                    f"{_prefix()}PORT or --port"
                )
    return None


def _is_literal(annotation: Any) -> bool:
    return typing.get_origin(annotation) is typing.Literal


def load_settings() -> Settings:
    """The settings from the environment; a bad value is one line per problem on stderr, naming
    its variable, and exit status 2 (not a traceback)."""
    try:
        return Settings()
    except ValidationError as exc:
        prefix = _prefix()
        for err in exc.errors():
            if not err["loc"]:  # a rule across several settings
                print(f"invalid settings: {err['msg']}", file=sys.stderr)
                continue
            field = str(err["loc"][0])
            where = ".".join(str(part) for part in err["loc"][1:])
            print(
                f"invalid setting {prefix}{field.upper()} ({_option(field)})"
                f"{f' at {where}' if where else ''}: {err['msg']}",
                file=sys.stderr,
            )
    except SettingsError as exc:  # a value that is not the JSON its field needs
        print(f"invalid setting {_not_json(str(exc))}", file=sys.stderr)
    raise SystemExit(2)


def _not_json(error: str) -> str:
    """pydantic-settings' 'error parsing value for field "x" from source ...', said as what is
    wrong: which setting, and the JSON it takes."""
    found = re.search(r'field "(\w+)"', error)
    field = Settings.model_fields.get(found[1]) if found else None
    if found is None or field is None:
        return error
    name = found[1]
    kind = "object" if str(field.annotation).startswith("dict") else "array"
    value = os.environ.get(f"{_prefix()}{name.upper()}", "")
    default = field.get_default(call_default_factory=True)
    like = f"such as its default {json.dumps(default)}" if default else "(see --help)"
    return (
        f"{_prefix()}{name.upper()} ({_option(name)}): {value[:80]!r} is not JSON; it takes a "
        f"JSON {kind} {like}"
    )


def main() -> None:
    # uvicorn drains and shuts down on SIGTERM, then re-raises the signal with the handler that was
    # installed before it started: this one, so a graceful stop exits 0, not -15.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    # SIGHUP's default action ends the process. The app takes it as a rescan only while it runs
    # (service.serving.hangup), and puts back what was there when it stops: ignored, then, both
    # while the app is being imported and built and after its shutdown has begun, which writes
    # out the payload log and unloads the models.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    parse_args()
    settings = load_settings()
    if why := cannot_listen(settings.host, settings.port):
        print(f"cannot listen on {settings.host}:{settings.port}: {why}", file=sys.stderr)
        raise SystemExit(1)
    log_sink = configure_logging(settings)
    HeadDeadlineProtocol.head_timeout_s = settings.request_timeout_s
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        # httptools, with a deadline on each request's head (service/http/protocol.py); named
        # by its path so that worker processes import it too
        "http": "service.http.protocol:HeadDeadlineProtocol",
        "log_config": None,  # our own logging set-up
        "access_log": False,  # the request edge logs each request once
        "timeout_graceful_shutdown": max(1, round(settings.request_timeout_s)) + 5,
    }
    if settings.workers > 1:
        uvicorn.run(
            "service.app:create_app_from_env", factory=True, workers=settings.workers, **common
        )  # type: ignore[arg-type]
    else:
        from service.app import create_app, freeze_heap

        app = create_app(settings, log_sink)
        freeze_heap()
        server = Server(uvicorn.Config(app, **common), on_forced_quit=app.state.operations.finish)
        raise SystemExit(server.serve_until_stopped())


if __name__ == "__main__":
    main()
