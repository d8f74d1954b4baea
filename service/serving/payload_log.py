"""The payload log: sampled requests and answers as JSON lines, written off the request path.

A sampled prediction is one reference appended to a bounded in-memory buffer (by bytes of input
and output); the operations thread serialises and writes what is buffered, rotating the file by
size (``path`` -> ``path.1`` -> ... ``path.<backups>``). A full buffer drops the line and a failed
write (full disk, unwritable file) drops what it was writing: each counts, and no request waits
or fails for it.

Several processes (uvicorn workers) may write one path: each line group is one append, rotation
is decided on the file's own size (every writer's lines), and rotations are serialised by a lock
on the folder, under which a worker finding that another has just rotated takes the new file
instead of rotating it again.

One line per request::

    {"ts": 1714000000.123, "request_id": "...", "model": "pima", "version": 1,
     "inputs": [{"pregnant": 6, ...}], "redacted": ["glucose"], "outputs": [[0.71]]}

Inputs are the decoded model inputs (images as ``side x side`` pixel values in [0, 1], records as
objects by feature name). ``redact`` names, per model, the fields left out: feature names, or
``"*"`` for the whole input; the ``"*"`` model applies to models without an entry of their own.
Any name for an image (which has no fields), and a name that is not one of a record's features (a
misspelling, with a warning), leave the whole input out: a typo in a privacy setting fails closed.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson

log = logging.getLogger("service.payload_log")
_NO_INPUT = np.empty(0, np.float32)
_LOCK_WAIT_S = 2.0  # a rotation holds the lock for a few renames
_LOCK_RETRY_S = 5.0  # after a wait that timed out: no rotation is tried for this long
_SETTLE_S = 0.01  # a file ending mid-line is looked at again after this long, while it grows
_SETTLE_LOOKS = 200


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
        self._stream = False  # the open file is a pipe or a device: never rotated
        self._streamed = False  # the path was opened as a stream once: never created as a file
        self.lines = 0  # written
        self.dropped = 0  # buffer full
        self.errors = 0  # lines lost to write errors
        self._warned_at = -1e9
        self._warned_redact: set[str] = set()
        self._warned_lock_at = -1e9
        self._lock_retry_at = -1e9

    # --- event loop: O(1) per sampled request --------------------------------------------------
    def capture(
        self, request_id: str, model: str, version: int, fields: Any, x: np.ndarray, y: np.ndarray
    ) -> None:
        if "*" in self._hidden(model):
            x = _NO_INPUT  # never written: neither held nor charged to the buffer
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
        hidden = self._hidden(model)
        record: dict[str, Any] = {
            "ts": round(ts, 6),
            "request_id": request_id,
            "model": model,
            "version": version,
        }
        if "*" in hidden or self._unknown_names(model, hidden, fields):
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

    def _hidden(self, model: str) -> list[str]:
        return self.redact.get(model, self.redact.get("*", []))

    def _unknown_names(self, model: str, hidden: list[str], fields: list[str] | None) -> bool:
        """Whether the whole input is left out for a name in ``hidden`` other than ``"*"``: any
        name for an image (which has no fields: its input's name, ``pixels``, or a misspelling
        of it), or one that is not a feature of a record (a misspelt feature, with a warning
        once per model). A privacy setting with a typo must not log in full."""
        if not hidden:
            return False
        known = fields or ()  # an image has no fields: any name is unknown
        unknown = [name for name in hidden if name != "*" and name not in known]
        if fields is not None and not unknown:
            return False
        if unknown and model not in self._warned_redact:
            self._warned_redact.add(model)
            log.warning(
                "payload log: redaction for %s names %s, not among its fields (%s); its inputs "
                "are left out whole",
                model,
                ", ".join(repr(name) for name in unknown),
                ", ".join(fields) if fields is not None else "an image has none",
            )
        return True

    def _write(self, chunks: list[bytes]) -> None:
        """Write in as few system calls as the rotation allows (unbuffered: a line the disk
        refused is counted as lost at once, never later at a flush).

        The splits count from the file's size as read from the file (``_still_ours``, ``_open``,
        ``_make_room``), which holds the lines of every worker writing it: a worker counting only
        its own lets the file grow to several times ``max_bytes``."""
        if self._file is not None and not self._still_ours():
            if self._gone():  # not merely replaced by another worker's rotation
                log.warning(
                    "payload log %s was moved or deleted while open: a new file is started there",
                    self.path,
                )
            self._close()
        if self._file is None:  # so that the splits below know what the file holds already
            with contextlib.suppress(OSError):  # a failure is the group write's to count
                self._open()
        group: list[bytes] = []
        size = 0
        for chunk in chunks:
            if (
                not self._stream
                and (group or self._size)
                and self._size + size + len(chunk) > self.max_bytes
            ):
                self._write_group(group, room_for=len(chunk))
                group, size = [], 0
            group.append(chunk)
            size += len(chunk)
        if group:
            self._write_group(group, room_for=None)

    def _write_group(self, group: list[bytes], *, room_for: int | None) -> None:
        """Append ``group`` in one write; then, given ``room_for`` (the bytes of the next line,
        which the file has no room for), make room for it."""
        lost = len(group)
        try:
            if self._file is None:
                self._open()
            if group:
                data = b"".join(group)
                written = self._file.write(data)
                if written != len(data):
                    lost -= self._keep_whole_lines(group, written or 0)
                    raise OSError(f"short write ({written} of {len(data)} bytes)")
                self._size += len(data)
                self.lines += len(group)
                lost = 0  # written: a failed rotation loses none of these
            if room_for is not None:
                self._make_room(room_for)
        except OSError as exc:
            self.errors += lost
            self._close()
            now = time.monotonic()
            if now - self._warned_at > 60.0:  # a full disk fails every write: say so once a minute
                self._warned_at = now
                log.warning("payload log write failed (%d lines lost so far): %s", self.errors, exc)

    def _keep_whole_lines(self, group: list[bytes], written: int) -> int:
        """After a short write: cut the file back to the last whole line written (the next line
        would be glued onto a cut one), count the whole ones, and return how many they are.

        The write was an append, so it ended at the file's end: the cut is measured from there,
        which holds whoever else appends to the file (another worker)."""
        kept = whole = 0
        for chunk in group:
            if whole + len(chunk) > written:
                break
            whole += len(chunk)
            kept += 1
        start = os.fstat(self._file.fileno()).st_size - written
        self._file.truncate(start + whole)  # an OSError: _open starts the next write anew
        self._size += whole
        self.lines += kept
        return kept

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # O_NONBLOCK for the open only: opening a named pipe nobody reads (a collector not yet
        # started, or restarting) blocked the operations thread, and the shutdown's last drain,
        # until a reader came; it fails (ENXIO) instead, and the lines count as lost
        # A stream's path that has gone (a collector's named pipe, removed while it restarts) is
        # not created as a plain file: the collector could not make its pipe there again
        create = 0 if self._streamed else os.O_CREAT
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | create | os.O_NONBLOCK, 0o666)
        try:
            os.set_blocking(fd, True)
            self._file = os.fdopen(fd, "ab", buffering=0)
        except BaseException:
            os.close(fd)
            raise
        # a pipe or a device (/dev/stdout, to ship the log with the server's output) is a stream:
        # never rotated, since renaming it would take it from whoever reads it and write the
        # rest to a file in its place. So is /dev/stdout when the output is redirected to a
        # file: the file is the server's own output, which a rotation renamed (again at every
        # rotation: server.log.1.1.1...) while the server kept writing its logs to it.
        self._stream = not stat.S_ISREG(os.fstat(self._file.fileno()).st_mode) or _descriptor(
            self.path
        )
        if self._stream:
            self._streamed = True
            self._size = 0
            return
        self._size = self._file.tell()
        if self._size and not self._ends_line():
            # a line cut by a crash or a failed write: the next record starts on a line of its own
            self._size += self._file.write(b"\n") or 0

    def _still_ours(self) -> bool:
        """Whether the path still names the open file: a file moved away (archived by hand, as
        logrotate would, or rotated by another worker) or deleted with its folder keeps taking
        appends nobody will read.

        A file still ours is counted from its size as read, not from what this process wrote:
        other workers append to it too, and logrotate's ``copytruncate`` empties it in place
        (counting on from before would rotate as early as the bytes copied away, and push a
        full backup out for a nearly empty one)."""
        try:
            named = os.stat(self.path)
            own = os.fstat(self._file.fileno())
        except OSError:
            return False
        if (named.st_ino, named.st_dev) != (own.st_ino, own.st_dev):
            return False
        if not self._stream:
            self._size = own.st_size
        return True

    def _gone(self) -> bool:
        """Whether the path names no file at all. Another worker's rotation renames the file
        before it creates the new one: that moment is waited out under the rotation lock, or
        it would be taken for a file moved away."""
        gone = not self.path.exists()
        if not gone or self._streamed:  # a stream is never rotated: no lock to wait under
            return gone
        with self._rotation_lock():
            return not self.path.exists()

    def _ends_line(self) -> bool:
        """Whether the file ends a line. Another worker's append may be in progress (a large one
        shows page by page): a file ending mid-line is looked at again while it grows, so a
        line still being written is not taken for one cut by a crash and followed by a stray
        empty line."""
        size = -1
        for _ in range(_SETTLE_LOOKS):
            last, now = self._last_byte()
            if last == b"\n":
                return True
            if now == size:  # it stopped growing without ending its line: cut
                return False
            size = now
            time.sleep(_SETTLE_S)
        return False

    def _last_byte(self) -> tuple[bytes, int]:
        """The file's last byte, and its size."""
        with self.path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(-1, os.SEEK_END)
            return f.read(1), size

    def _make_room(self, need: int) -> None:
        """Rotate the file for a line of ``need`` bytes it has no room for, unless another
        worker has just done so.

        Every worker writing the path decides on its own, from a size read a moment before, so
        two of them can find the same file full. Checked again under the rotation lock, the
        second finds the path naming the first one's new file, opens it and decides again on
        what it holds: rotating once more would rename that nearly empty file to path.1 and
        push a full one out of the backups early, losing its lines.

        A lock held elsewhere for longer than ``_LOCK_WAIT_S`` puts the rotation off (the file
        grows past ``max_bytes`` until a later write gets the lock): rotating without it while
        others may rotate too loses lines, as their shifts of the backups overwrite each other."""
        if time.monotonic() < self._lock_retry_at:
            return  # the lock was busy a moment ago: not waited for at every write
        with self._rotation_lock() as held:
            if held is None:
                self._lock_retry_at = time.monotonic() + _LOCK_RETRY_S
                return
            if not self._still_ours():
                self._close()
                self._open()
            if self._size and self._size + need > self.max_bytes:
                self._rotate()

    @contextlib.contextmanager
    def _rotation_lock(self) -> Iterator[bool | None]:
        """Hold the lock that serialises rotations among the processes writing this log, and
        yield True when it is held, False when it cannot be had here, None when another holder
        kept it past ``_LOCK_WAIT_S``.

        The lock is an flock of a hidden file beside the one that rotates
        (``.<name>.lock``): the lock file stays while the log's files are renamed, where a
        lock on the log file itself would go with it to path.1; its dot keeps it out of
        ``payloads.jsonl*``; and opened for writing it also locks on network filesystems, whose
        flock is a lock on a byte range (a folder, opened read-only, cannot be locked there).

        Where no lock can be had (a filesystem without locks, a folder this process may not
        create the file in) rotations go ahead unserialised, as with one worker, and a warning
        says so at most once a minute: with several workers their files then rotate on top of
        one another. A folder deleted meanwhile is no failure: the path is checked again, and
        the next open creates it."""
        real = Path(os.path.realpath(self.path))
        fd = -1
        held: bool | None = False
        try:
            fd = os.open(real.with_name(f".{real.name}.lock"), os.O_RDWR | os.O_CREAT, 0o666)
            held = _flock(fd)
        except OSError as exc:
            if not isinstance(exc, FileNotFoundError):
                self._warn_lock(
                    f"no lock to rotate it under ({exc}); with SERVE_WORKERS > 1 the workers' "
                    "rotations may overwrite each other's files"
                )
        if not held and fd >= 0:
            os.close(fd)
            fd = -1
        if held is None:
            self._warn_lock(
                f"its rotation lock was held elsewhere for over {_LOCK_WAIT_S:g} s: the rotation "
                "is put off, and the file grows past its limit meanwhile"
            )
        try:
            yield held
        finally:
            if fd >= 0:
                os.close(fd)  # which releases the lock

    def _warn_lock(self, why: str) -> None:
        now = time.monotonic()
        if now - self._warned_lock_at > 60.0:
            self._warned_lock_at = now
            log.warning("payload log %s: %s", self.path, why)

    def _rotate(self) -> None:
        self._close()
        # A path that is a symbolic link (a log kept on another disk) rotates the file the link
        # leads to, beside it: renaming the link would leave its target where it was, and put a
        # plain file in the link's place. Opening the link again creates the target anew.
        path = Path(os.path.realpath(self.path))
        for i in range(self.backups - 1, 0, -1):
            older = path.with_name(f"{path.name}.{i}")
            if older.exists():
                os.replace(older, path.with_name(f"{path.name}.{i + 1}"))
        if self.backups > 0:
            os.replace(path, path.with_name(f"{path.name}.1"))
        else:
            path.unlink(missing_ok=True)
        self._open()

    def _close(self) -> None:
        self._size = 0  # unknown until the file is open again (the next file may be new)
        f, self._file = self._file, None
        if f is not None:
            with contextlib.suppress(OSError):
                f.close()

    def close(self) -> None:
        self.drain()
        self._close()


def _flock(fd: int) -> bool | None:
    """Lock ``fd`` exclusively, waiting at most ``_LOCK_WAIT_S``; None when it was held that long:
    the operations thread must not wait without end (its writes, and the shutdown's last drain,
    would stop behind it) for a lock some other program holds."""
    deadline = time.monotonic() + _LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.001)


def _descriptor(path: Path) -> bool:
    """Whether ``path`` is, or leads by symbolic links to, a name under /dev or /proc: an open
    descriptor of the process (/dev/stdout is /proc/self/fd/1), whatever file it was opened on."""
    here = Path(os.path.abspath(path))
    for _ in range(40):  # the kernel's own limit on links followed
        if here.parts[1:2] in (("dev",), ("proc",)):
            return True
        if not here.is_symlink():
            return False
        here = Path(os.path.abspath(here.parent / os.readlink(here)))
    return False
