"""``python -m service.client.replay payloads.jsonl``: send a payload log to a server again and
report the answers that differ from the logged ones.

Each line's inputs go to the TF Serving predict route of the same model and version (or
``--version``), lines of that model and version merged into requests of at most ``--batch``
instances (a line with more goes alone; a merged request the server refuses, over its own limit or
for one bad line, is sent again line by line); the answer's probabilities are compared with the
logged ones (``--atol``, and the predicted class). Lines whose inputs were redacted cannot be sent
and are counted as skipped; a line that is not one of the log's records (cut by a crash, still being
written, or without a model, version, outputs and inputs) is counted as unreadable, with its number,
and the rest goes on; logged outputs that do not fit the answer's shape count as failed. A request
that fails counts its lines as failed, apart from the answers that differ; when the server cannot be
reached at all, the replay stops there with one message. Only the lines the log holds when the
replay starts are read: a server that writes the log while it is replayed to it adds the replay's
own requests, which are not replayed in turn.
Exit status: 0 when every sent line gives the same answer, 1 when some differ, fail or cannot be
read, or the server cannot be reached, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

import httpx
import numpy as np

from service.client.cli import resolved_url, seconds, server_url, version_or_label
from service.client.client import (
    API_KEY_ENV,
    DEFAULT_URL,
    URL_ENV,
    ClientError,
    auth_header,
    connect_failure,
    env_api_key,
    redacted,
)


@dataclass
class ReplayResult:
    sent: int = 0
    same: int = 0
    skipped: int = 0
    failed: int = 0
    differ: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    unreadable: list[int] = field(default_factory=list)  # line numbers
    stopped: str | None = None  # why the replay stopped early (the server cannot be reached)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "same": self.same,
            "differ": len(self.differ),
            "skipped": self.skipped,
            "failed": self.failed,
            "unreadable": len(self.unreadable),
            "differences": self.differ,
            "failures": self.failures,
            "unreadable_lines": self.unreadable,
            "stopped": self.stopped,
        }


def read_log(lines: Iterable[str], unreadable: list[int] | None = None) -> Iterator[dict[str, Any]]:
    """The log's records; the numbers of lines that are not JSON objects go to ``unreadable``
    (or raise ValueError when it is None)."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if _is_log_line(record):
            yield record
        elif unreadable is None:
            raise ValueError(f"line {number} of the payload log is not one of its records")
        else:
            unreadable.append(number)


def _is_log_line(record: Any) -> bool:
    """A payload log record: a model, a version, the outputs, and the inputs unless redacted."""
    if not isinstance(record, dict):
        return False
    inputs = record.get("inputs")
    return (
        isinstance(record.get("model"), str)
        and isinstance(record.get("version"), int | str)
        and not isinstance(record.get("version"), bool)
        and isinstance(record.get("outputs"), list)
        and (record.get("redacted") is not None or (isinstance(inputs, list) and bool(inputs)))
    )


def lines_at_start(fh: IO[bytes], size: int) -> Iterator[str]:
    """The text of the first ``size`` bytes of ``fh``, line by line (a line cut at ``size`` is
    given as it stands): what a log held when its replay started."""
    left = size
    for raw in fh:
        if left <= 0:
            break
        piece = raw[:left]
        left -= len(piece)
        yield piece.decode("utf-8", errors="replace")


# Refusals that may concern one line of a merged request, or the merging itself (a request over
# the server's instance or body limit); any other is the same for every line of the group.
_PER_LINE = frozenset({413, 422})


class _Unreachable(Exception):
    """Nothing answers at the server's address: every further request would fail the same way."""


def _predicted(row: np.ndarray) -> int:
    flat = row.reshape(-1)
    return int(flat[0] >= 0.5) if flat.size == 1 else int(np.argmax(flat))


def replay(
    records: Iterable[dict[str, Any]],
    client: httpx.Client,
    *,
    version: str | None = None,
    atol: float = 0.0,
    batch: int = 64,
) -> ReplayResult:
    """Send every replayable record and compare; ``client`` has the server's base URL."""
    result = ReplayResult()
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    rows: dict[tuple[str, str], int] = {}

    def flush(key: tuple[str, str]) -> None:
        group = groups.pop(key, [])
        rows.pop(key, None)
        if group and not send(key, group) and len(group) > 1:
            for rec in group:  # each line on its own: one bad line, or a limit, fails alone
                send(key, [rec])

    def send(key: tuple[str, str], group: list[dict[str, Any]]) -> bool:
        """Whether the server answered; a refusal of a merged group is left to the caller."""
        model, target = key
        instances = [inst for rec in group for inst in rec["inputs"]]
        route = "versions" if target.isdigit() else "labels"  # a label ("baseline") by name
        try:
            response = client.post(
                f"/v1/models/{model}/{route}/{target}:predict", json={"instances": instances}
            )
            if response.status_code in _PER_LINE and len(group) > 1:
                return False
            if response.status_code >= 400:
                status = f"{response.status_code} {response.reason_phrase}"
                raise ValueError(f"{status}: {_error(response)}")
            answers = np.asarray(response.json()["predictions"], dtype=np.float64)
        except httpx.ConnectError as exc:
            result.failed += len(group)
            shown = redacted(str(client.base_url).rstrip("/"))
            raise _Unreachable(connect_failure(shown, exc)) from None
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            result.failed += len(group)
            for rec in group:
                result.failures.append({"request_id": rec.get("request_id"), "error": str(exc)})
            return True
        offset = 0
        for rec in group:
            n = len(rec["inputs"])
            got = answers[offset : offset + n]
            offset += n
            try:
                want = np.asarray(rec["outputs"], dtype=np.float64).reshape(got.shape)
            except ValueError:
                result.failed += 1
                error = f"the logged outputs do not fit the answer's shape {list(got.shape)}"
                result.failures.append({"request_id": rec.get("request_id"), "error": error})
                continue
            result.sent += 1
            diff = float(np.max(np.abs(got - want))) if got.size else 0.0
            classes = [_predicted(r) for r in got] == [_predicted(r) for r in want]
            if diff <= atol and classes:
                result.same += 1
            else:
                result.differ.append(
                    {
                        "request_id": rec.get("request_id"),
                        "model": model,
                        "version": target,
                        "max_abs_diff": diff,
                        "same_class": classes,
                    }
                )
        return True

    try:
        for rec in records:
            if "inputs" not in rec or rec.get("redacted"):
                result.skipped += 1
                continue
            key = (str(rec["model"]), str(version or rec["version"]))
            n = len(rec["inputs"])
            if rows.get(key, 0) + n > batch:  # merged, never past --batch (alone it may be)
                flush(key)
            groups.setdefault(key, []).append(rec)
            rows[key] = rows.get(key, 0) + n
            if rows[key] >= batch:
                flush(key)
        for key in list(groups):
            flush(key)
    except _Unreachable as exc:  # one message, not one per line: nothing more would get through
        result.stopped = str(exc)
    return result


def difference(text: str) -> float:
    """An argparse type: a probability difference, a finite number 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a number 0 or more, got {text!r}")
    return value


def _error(response: httpx.Response) -> str:
    """The server's own error message, else the start of its body."""
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text.split())[:200] or "(empty body)"
    return str(body.get("error", body)) if isinstance(body, dict) else str(body)


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    try:
        return _main(argv, out)
    except KeyboardInterrupt:
        # a shell reports a command stopped by SIGINT as 128 + 2; the stack is of no use to anyone
        print("replay: interrupted", file=sys.stderr)
        return 130


def _main(argv: list[str] | None, out: TextIO) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m service.client.replay",
        description="Replay a payload log against a server and report the answers that differ.",
    )
    parser.add_argument("log", type=Path, help="a payload log (JSON lines)")
    parser.add_argument(
        "--url",
        type=server_url,
        help=f"server URL (default ${URL_ENV}, else {DEFAULT_URL})",
    )
    parser.add_argument(
        "--version",
        type=version_or_label,
        metavar="V",
        help="send every line, whatever its model, to this version or label instead (so with a "
        "log of several models, only those with such a version answer)",
    )
    parser.add_argument(
        "--atol",
        type=difference,
        default=1e-6,
        help="largest probability difference (default 1e-6)",
    )
    parser.add_argument("--batch", type=int, default=64, help="instances per request")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    parser.add_argument("--timeout", type=seconds, default=30.0, help="seconds (default 30)")
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        help=f"the server's API key (default ${API_KEY_ENV}; of a comma-separated list there, "
        "the first key)",
    )
    args = parser.parse_args(argv)
    if args.batch < 1:
        parser.error("--batch must be at least 1")
    if not args.log.is_file():
        what = "a folder, not a file" if args.log.is_dir() else "no such file"
        print(f"{args.log}: {what}", file=sys.stderr)
        return 2
    url = resolved_url(args, parser)
    try:
        api_key = args.api_key if args.api_key is not None else env_api_key()
        headers = auth_header(api_key, f"--api-key or ${API_KEY_ENV}")
    except ClientError as exc:
        parser.error(exc.message)
    size = args.log.stat().st_size  # what the log holds now; see the module's notes
    with (
        args.log.open("rb") as fh,
        httpx.Client(base_url=url, headers=headers, timeout=args.timeout) as client,
    ):
        unreadable: list[int] = []
        result = replay(
            read_log(lines_at_start(fh, size), unreadable),
            client,
            version=args.version,
            atol=args.atol,
            batch=args.batch,
        )
        result.unreadable = unreadable
    if result.stopped:
        print(
            f"{parser.prog}: error: {result.stopped} Stopped at the first request that could "
            "not connect",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(result.as_dict(), indent=2), file=out)
    else:
        print(
            f"sent {result.sent}, same {result.same}, differ {len(result.differ)}, "
            f"skipped (redacted) {result.skipped}, failed {result.failed}, "
            f"unreadable {len(unreadable)}",
            file=out,
        )
        for item in (result.differ + result.failures)[:20]:
            print(f"  {json.dumps(item)}", file=out)
        if unreadable:
            shown = ", ".join(map(str, unreadable[:20]))
            print(f"  unreadable lines: {shown}{' ...' if len(unreadable) > 20 else ''}", file=out)
    return 0 if not (result.differ or result.failed or unreadable or result.stopped) else 1


if __name__ == "__main__":
    raise SystemExit(main())
