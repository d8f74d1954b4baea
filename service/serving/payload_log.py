"""The payload log: sampled requests and answers as JSON lines, written off the request path.

A sampled prediction is one reference appended to a bounded in-memory buffer (by bytes of input
and output); the operations thread serialises and writes what is buffered, rotating the file by
size (``path`` -> ``path.1`` -> ... ``path.<backups>``). A full buffer drops the line and a failed
write (full disk, unwritable file) drops what it was writing: each counts, and no request waits
or fails for it.

One line per request::

    {"ts": 1714000000.123, "request_id": "...", "model": "pima", "version": 1,
     "inputs": [{"pregnant": 6, ...}], "redacted": ["glucose"], "outputs": [[0.71]]}

Inputs are the decoded model inputs (images as ``side x side`` pixel values in [0, 1], records as
objects by feature name). ``redact`` names, per model, the fields left out: feature names, or
``"*"`` (or the input's name, e.g. ``pixels``) for the whole input; the ``"*"`` model applies to
models without an entry of their own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import orjson

log = logging.getLogger("service.payload_log")


class PayloadLog:
    def __init__(
        self,
        path: Path,
        *,
        rate: float,
        max_bytes: int,
        backups: int,
        buffer_bytes: int,
        redact: dict[str, list[str]],
    ) -> None:
        self.path = Path(path)
        self.rate = rate
        self.max_bytes = max_bytes
        self.backups = backups
        self.buffer_bytes = buffer_bytes
        self.redact = redact
        self._buffer: deque[tuple[float, str, str, int, Any, np.ndarray, np.ndarray]] = deque()
        self._buffered = 0  # bytes of arrays held by the buffer
        self._lock = threading.Lock()
        self._file: Any = None
        self._size = 0
        self.lines = 0  # written
        self.dropped = 0  # buffer full
        self.errors = 0  # lines lost to write errors
        self._warned_at = -1e9

    # --- event loop: O(1) per sampled request --------------------------------------------------
    def capture(
        self, request_id: str, model: str, version: int, fields: Any, x: np.ndarray, y: np.ndarray
    ) -> None:
        size = x.nbytes + y.nbytes
        with self._lock:
            if self._buffered + size > self.buffer_bytes:
                self.dropped += 1
                return
            self._buffered += size
            self._buffer.append((time.time(), request_id, model, version, fields, x, y))

    # --- operations thread ---------------------------------------------------------------------
    def drain(self) -> int:
        """Serialise and write everything buffered; returns the lines taken."""
        with self._lock:
            items, self._buffer = self._buffer, deque()
            self._buffered = 0
        if not items:
            return 0
        chunks = [self._line(*item) for item in items]
        self._write(chunks)
        return len(items)

    def _line(
        self,
        ts: float,
        request_id: str,
        model: str,
        version: int,
        fields: list[str] | None,
        x: np.ndarray,
        y: np.ndarray,
    ) -> bytes:
        hidden = self.redact.get(model, self.redact.get("*", []))
        record: dict[str, Any] = {
            "ts": round(ts, 6),
            "request_id": request_id,
            "model": model,
            "version": version,
        }
        if "*" in hidden:
            record["redacted"] = ["*"]
        elif fields:
            keep = [(i, f) for i, f in enumerate(fields) if f not in hidden]
            record["inputs"] = [{f: float(row[i]) for i, f in keep} for row in x.tolist()]
            if len(keep) < len(fields):
                record["redacted"] = [f for f in fields if f in hidden]
        else:
            record["inputs"] = x
        record["outputs"] = y
        return orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE)

    def _write(self, chunks: list[bytes]) -> None:
        """Write in as few system calls as the rotation allows (unbuffered: a line the disk
        refused is counted as lost at once, never later at a flush)."""
        group: list[bytes] = []
        size = 0
        for chunk in chunks:
            if (group or self._size) and self._size + size + len(chunk) > self.max_bytes:
                self._write_group(group, rotate_after=True)
                group, size = [], 0
            group.append(chunk)
            size += len(chunk)
        if group:
            self._write_group(group, rotate_after=False)

    def _write_group(self, group: list[bytes], *, rotate_after: bool) -> None:
        try:
            if self._file is None:
                self._open()
            if not group:
                self._rotate()
                return
            data = b"".join(group)
            written = self._file.write(data)
            if written != len(data):
                raise OSError(f"short write ({written} of {len(data)} bytes)")
            self._size += len(data)
            self.lines += len(group)
            if rotate_after:
                self._rotate()
        except OSError as exc:
            self.errors += len(group)
            self._close()
            now = time.monotonic()
            if now - self._warned_at > 60.0:  # a full disk fails every write: say so once a minute
                self._warned_at = now
                log.warning("payload log write failed (%d lines lost so far): %s", self.errors, exc)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("ab", buffering=0)
        self._size = self._file.tell()

    def _rotate(self) -> None:
        self._close()
        for i in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
        if self.backups > 0:
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)
        self._open()

    def _close(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            with contextlib.suppress(OSError):
                f.close()

    def close(self) -> None:
        self.drain()
        self._close()
