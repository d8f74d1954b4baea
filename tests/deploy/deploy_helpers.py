"""Read the deployment files the way their engines do, for the tests in this folder.

Nothing here keeps a copy of a command, an environment or a healthcheck: everything is read from
docker-compose.yml, the Dockerfile and deploy/. Compose semantics implemented: `${VAR}`,
`${VAR:-default}`, `${VAR-default}` and `$$` interpolation, environment as a map or a list, a
variable without a value taken from the caller's environment, and `CMD` / `CMD-SHELL` healthchecks.
"""

from __future__ import annotations

import json
import re
import shlex
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
NGINX_CONF = ROOT / "deploy" / "nginx" / "nginx.conf"
K8S_DIR = ROOT / "deploy" / "k8s"
KSERVE_DIR = ROOT / "deploy" / "kserve"
VENV_BIN = Path(sys.executable).parent

_VAR = re.compile(r"\$(?:\$|\{(?P<braced>[^}]+)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def service(name: str) -> dict[str, Any]:
    services = load_compose()["services"]
    assert name in services, f"docker-compose.yml has no service {name!r}"
    svc = services[name]
    assert isinstance(svc, dict)
    return svc


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose-style variable interpolation of one string."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        expr = match.group("braced") or match.group("plain")
        for sep, if_empty in ((":-", True), ("-", False)):
            if sep in expr:
                name, default = expr.split(sep, 1)
                current = env.get(name)
                if current is None or (if_empty and current == ""):
                    return default
                return current
        return env.get(expr, "")

    return _VAR.sub(replace, value)


def service_env(svc: Mapping[str, Any], caller_env: Mapping[str, str]) -> dict[str, str]:
    """The environment compose gives the container (before any path remapping)."""
    raw = svc.get("environment") or {}
    items: list[tuple[str, Any]]
    if isinstance(raw, list):
        items = [(e.split("=", 1)[0], e.split("=", 1)[1] if "=" in e else None) for e in raw]
    else:
        items = list(raw.items())
    env: dict[str, str] = {}
    for key, value in items:
        if value is None:  # `KEY:` or `- KEY`: passed through from the caller, if set there
            if key in caller_env:
                env[key] = caller_env[key]
            continue
        env[key] = interpolate(str(value), caller_env)
    return env


def _host_python(argv: list[str]) -> list[str]:
    """The image's `python` is the project's interpreter: this venv's python here."""
    return [sys.executable if arg in ("python", "python3") else arg for arg in argv]


def command_argv(svc: Mapping[str, Any]) -> list[str]:
    cmd = svc["command"]
    argv = shlex.split(cmd) if isinstance(cmd, str) else [str(a) for a in cmd]
    return _host_python(argv)


def healthcheck_argv(test: str | list[str]) -> list[str]:
    if isinstance(test, str):
        return ["sh", "-c", test]
    kind, *rest = test
    if kind == "CMD":
        return _host_python(rest)
    if kind == "CMD-SHELL":
        return ["sh", "-c", " ".join(rest)]
    raise AssertionError(f"unsupported healthcheck form {kind!r}")


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool
    kind: str  # "volume" or "bind"


def mounts(svc: Mapping[str, Any]) -> list[Mount]:
    out: list[Mount] = []
    for entry in svc.get("volumes") or []:
        if isinstance(entry, str):
            parts = entry.split(":")
            source, target = parts[0], parts[1]
            read_only = len(parts) > 2 and "ro" in parts[2].split(",")
            kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        else:
            source, target = entry.get("source", ""), entry["target"]
            read_only = bool(entry.get("read_only", False))
            kind = entry.get("type", "volume")
        out.append(Mount(source, target, read_only, kind))
    return out


def remap_paths(env: Mapping[str, str], mapping: Mapping[str, Path | None]) -> dict[str, str]:
    """Point container paths at host paths.

    `mapping` maps a mount target to a host folder, or to None for a mount whose variables are
    dropped so that the program falls back to its host default (a data cache, for example).
    """
    out: dict[str, str] = {}
    for key, value in env.items():
        for target, host in mapping.items():
            if value == target or value.startswith(target.rstrip("/") + "/"):
                if host is not None:
                    out[key] = str(host) + value[len(target.rstrip("/")) :]
                break
        else:
            out[key] = value
    return out


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Instruction:
    stage: str
    keyword: str
    args: str


def dockerfile_instructions(text: str | None = None) -> list[Instruction]:
    """Instructions with continuation lines joined, each tagged with its stage name."""
    text = DOCKERFILE.read_text() if text is None else text
    logical: list[str] = []
    buffer = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        logical.append(buffer + stripped)
        buffer = ""
    out: list[Instruction] = []
    stage = ""
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            stage = words[2] if len(words) >= 3 and words[1].upper() == "AS" else words[0]
        out.append(Instruction(stage, keyword, args.strip()))
    return out


def exec_form(args: str) -> list[str]:
    """The JSON array of an exec-form instruction (CMD, HEALTHCHECK ... CMD)."""
    start = args.index("[")
    value = json.loads(args[start:])
    assert isinstance(value, list)
    return [str(v) for v in value]


def dockerignore_excludes(path: str, patterns: list[str] | None = None) -> bool:
    """Whether Docker leaves `path` (relative, '/'-separated) out of the build context.

    Docker's rules: patterns in order, the last match wins, `!` re-includes, a pattern that
    matches a folder excludes everything under it, `*` stays within one path element, `**`
    crosses any number of them.
    """
    if patterns is None:
        patterns = [
            p.strip()
            for p in DOCKERIGNORE.read_text().splitlines()
            if p.strip() and not p.strip().startswith("#")
        ]
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        regex = _glob_regex(body.strip("/"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]
