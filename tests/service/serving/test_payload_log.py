"""The payload log's file: whole lines only, whatever the disk does; redaction that fails closed."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from service.serving.payload_log import PayloadLog

FIELDS = ["glucose", "insulin", "age"]


def payload_log(path: Path, redact: dict[str, list[str]] | None = None) -> PayloadLog:
    return PayloadLog(
        path,
        rate=1.0,
        max_bytes=1 << 20,
        backups=1,
        buffer_bytes=1 << 20,
        redact={} if redact is None else redact,
    )


def capture(log: PayloadLog, request_id: str, model: str = "pima") -> None:
    fields = FIELDS if model == "pima" else None
    x = np.ones((1, 3), np.float32) if fields else np.ones((1, 2, 2), np.float32)
    log.capture(request_id, model, 1, fields, x, np.full((1, 1), 0.5, np.float32))


def records(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


class ShortWrites:
    """A file that takes only ``room`` more bytes, as a full disk does (then raises ENOSPC)."""

    def __init__(self, inner: Any, room: int) -> None:
        self.inner, self.room = inner, room

    def write(self, data: bytes) -> int:
        if self.room <= 0:
            raise OSError(28, "No space left on device")
        n = self.inner.write(data[: self.room])
        self.room -= n
        return int(n)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_short_write_keeps_whole_lines_and_the_next_write_is_readable(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    log = payload_log(path)
    capture(log, "a")
    log.drain()
    one = len(path.read_bytes())
    log._file = ShortWrites(log._file, room=one + one // 2)  # room for one line and a half
    for name in ("b", "c", "d"):
        capture(log, name)
    log.drain()
    assert [r["request_id"] for r in records(path)] == ["a", "b"]  # no half line left
    assert (log.lines, log.errors) == (2, 2)
    capture(log, "e")  # the disk has room again (the log reopened its file)
    log.drain()
    assert [r["request_id"] for r in records(path)] == ["a", "b", "e"]
    assert (log.lines, log.errors) == (3, 2)


def test_a_short_write_keeps_what_another_writer_appended(tmp_path: Path) -> None:
    """Two workers append to one file: the cut is measured from the file's end, not from what
    this writer alone wrote."""
    path = tmp_path / "p.jsonl"
    mine, other = payload_log(path), payload_log(path)
    capture(mine, "a1")
    mine.drain()
    one = len(path.read_bytes())
    capture(other, "b1")
    other.drain()
    mine._file = ShortWrites(mine._file, room=one + one // 2)
    capture(mine, "a2")
    capture(mine, "a3")
    mine.drain()
    assert [r["request_id"] for r in records(path)] == ["a1", "b1", "a2"]


def test_a_line_cut_before_the_log_opened_its_file_stays_apart(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"request_id": "cut by a crash"')
    log = payload_log(path)
    capture(log, "next")
    log.drain()
    lines = path.read_bytes().splitlines()
    assert lines[0] == b'{"request_id": "cut by a crash"'
    assert orjson.loads(lines[1])["request_id"] == "next"


def test_a_log_left_nearly_full_by_the_last_run_is_rotated_within_its_budget(
    tmp_path: Path,
) -> None:
    """A restart finds the file nearly at max_bytes: the first writes must rotate it, not add
    a second budget's worth to it (the split used to see an empty file until it was open)."""
    path = tmp_path / "p.jsonl"
    line = b'{"request_id": "old"}\n'
    path.write_bytes(line * 99)
    budget = len(line) * 100
    log = PayloadLog(path, rate=1.0, max_bytes=budget, backups=1, buffer_bytes=1 << 20, redact={})
    capture(log, "new")  # longer than the one old line's worth of room left
    log.drain()
    log.close()
    rotated = path.with_name("p.jsonl.1")
    assert rotated.read_bytes() == line * 99  # the old file, as it was
    assert [r["request_id"] for r in records(path)] == ["new"]
    assert path.stat().st_size <= budget


def test_a_misspelt_field_leaves_the_whole_input_out_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "p.jsonl"
    log = payload_log(path, {"pima": ["glucoze"], "mnist": ["pixles"]})
    with caplog.at_level(logging.WARNING, "service.payload_log"):
        capture(log, "r1")
        capture(log, "r2")
        capture(log, "i1", model="mnist")
        log.drain()
    lines = records(path)
    assert all(r["redacted"] == ["*"] and "inputs" not in r for r in lines)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2  # once per model
    assert "'glucoze'" in warnings[0] and "'pixles'" in warnings[1] and "image" in warnings[1]


def test_named_fields_are_left_out_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    log = payload_log(path, {"pima": ["glucose"]})
    capture(log, "r1")
    log.drain()
    (line,) = records(path)
    assert line["inputs"] == [{"insulin": 1.0, "age": 1.0}] and line["redacted"] == ["glucose"]


def test_an_input_left_out_whole_is_not_held_in_the_buffer(tmp_path: Path) -> None:
    log = payload_log(tmp_path / "p.jsonl", {"*": ["*"]})
    log.buffer_bytes = 300  # room for three answers (80 bytes), not for one 28x28 input
    for i in range(3):
        log.capture(f"i{i}", "mnist", 1, None, np.ones((1, 28, 28), np.float32), np.ones((1, 10)))
    assert log.dropped == 0 and log.drain() == 3


def test_a_log_deleted_with_its_folder_or_moved_away_starts_a_new_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "logs" / "p.jsonl"
    log = payload_log(path)
    capture(log, "a")
    log.drain()
    shutil.rmtree(path.parent)  # the folder removed while the server runs
    capture(log, "b")
    log.drain()
    assert [r["request_id"] for r in records(path)] == ["b"]
    path.rename(tmp_path / "archived.jsonl")  # archived by hand, as logrotate would
    capture(log, "c")
    log.drain()
    assert [r["request_id"] for r in records(path)] == ["c"]
    assert [r["request_id"] for r in records(tmp_path / "archived.jsonl")] == ["b"]
    assert (log.lines, log.errors) == (3, 0)
    assert caplog.text.count("was moved or deleted while open") == 2


def test_a_failed_rotation_loses_no_written_line_and_the_next_file_fills_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "p.jsonl"
    log = payload_log(path)
    capture(log, "a")
    log.drain()
    one = len(path.read_bytes())
    log.max_bytes = 3 * one + one // 2  # three lines per file (lines differ by a few bytes)
    real = os.replace

    def refused(src: Any, dst: Any) -> None:
        raise OSError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refused)
    for name in ("b", "c", "d"):
        capture(log, name)
    log.drain()  # a, b, c fill the file; its rotation fails; d goes on in the same file
    assert (log.lines, log.errors) == (4, 0)
    monkeypatch.setattr(os, "replace", real)
    capture(log, "e")
    log.drain()
    assert [r["request_id"] for r in records(path.with_name("p.jsonl.1"))] == ["a", "b", "c", "d"]
    assert [r["request_id"] for r in records(path)] == ["e"]


def test_another_workers_rotation_is_followed_without_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "p.jsonl"
    mine, other = payload_log(path), payload_log(path)
    capture(mine, "a")
    mine.drain()
    capture(other, "b")
    other.drain()
    other._rotate()  # the other worker rotates the shared path: a new file is there
    capture(mine, "c")
    mine.drain()
    assert [r["request_id"] for r in records(path)] == ["c"]
    assert "moved or deleted" not in caplog.text


def test_a_path_that_is_a_link_rotates_the_file_it_leads_to(tmp_path: Path) -> None:
    """The log kept on another disk behind a link: the target is rotated beside itself and the
    link keeps leading to the current file (renaming the link left the target where it was and
    put a plain file in the link's place)."""
    store = tmp_path / "disk"
    store.mkdir()
    target = store / "payloads.jsonl"
    path = tmp_path / "p.jsonl"
    path.symlink_to(target)  # leads nowhere until the first write
    log = payload_log(path)
    capture(log, "a")
    log.drain()
    one = len(target.read_bytes())
    log.max_bytes = 3 * one + one // 2  # three lines per file (lines differ by a few bytes)
    for name in "bcdefg":
        capture(log, name)
    log.drain()
    assert path.is_symlink() and path.resolve() == target
    assert [r["request_id"] for r in records(store / "payloads.jsonl.1")] == ["d", "e", "f"]
    assert [r["request_id"] for r in records(target)] == ["g"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk", "p.jsonl"]
    assert (log.lines, log.errors) == (7, 0)


def test_a_log_emptied_in_place_is_rotated_at_its_full_size(tmp_path: Path) -> None:
    """logrotate's copytruncate empties the open file in place: the file is still the log's,
    but the bytes copied away must no longer count toward the next rotation."""
    path = tmp_path / "p.jsonl"
    log = payload_log(path)
    capture(log, "a")
    log.drain()
    one = len(path.read_bytes())
    log.max_bytes = 3 * one + one // 2  # three lines per file (lines differ by a few bytes)
    for name in ("b", "c"):
        capture(log, name)
    log.drain()  # the file is full: a, b, c
    shutil.copy(path, tmp_path / "archived.jsonl")
    os.truncate(path, 0)  # copytruncate
    for name in ("d", "e", "f"):
        capture(log, name)
    log.drain()
    assert [r["request_id"] for r in records(path)] == ["d", "e", "f"]
    assert not path.with_name("p.jsonl.1").exists()
    capture(log, "g")
    log.drain()
    assert [r["request_id"] for r in records(path.with_name("p.jsonl.1"))] == ["d", "e", "f"]
    assert [r["request_id"] for r in records(path)] == ["g"]
    assert (log.lines, log.errors) == (7, 0)


def test_a_pipe_is_written_whole_and_never_rotated(tmp_path: Path) -> None:
    """SERVE_PAYLOAD_LOG_PATH=/dev/stdout (or a named pipe a collector reads): rotating renamed
    the pipe away from its reader and wrote the rest into a file put in its place."""
    path = tmp_path / "p.jsonl"
    os.mkfifo(path)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(path.read_bytes()), daemon=True)
    reader.start()
    time.sleep(0.3)  # the reader opens the pipe first: a pipe without one is not waited for
    log = payload_log(path)
    log.max_bytes = 1024  # a few lines' worth
    for i in range(30):
        capture(log, f"r{i}")
    log.drain()
    log.close()
    reader.join(10)
    assert stat.S_ISFIFO(os.stat(path).st_mode) and not path.with_name("p.jsonl.1").exists()
    lines = [orjson.loads(line) for line in b"".join(received).splitlines()]
    assert [line["request_id"] for line in lines] == [f"r{i}" for i in range(30)]
    assert (log.lines, log.errors) == (30, 0)


def test_a_pipe_nobody_reads_is_not_waited_for(tmp_path: Path) -> None:
    """Opening a named pipe without a reader (its collector not started yet, or restarting)
    blocked the operations thread, and the shutdown's last drain, until one came."""
    path = tmp_path / "p.jsonl"
    os.mkfifo(path)
    log = payload_log(path)
    capture(log, "a")
    drained = threading.Thread(target=log.drain, daemon=True)
    drained.start()
    drained.join(5)
    try:
        assert not drained.is_alive(), "drain blocked on a pipe nobody reads"
        assert (log.lines, log.errors) == (0, 1)
    finally:
        if drained.is_alive():  # let the blocked open go, so that the test ends
            with path.open("rb"):
                drained.join(5)


def test_stdout_redirected_to_a_file_is_never_rotated(tmp_path: Path) -> None:
    """SERVE_PAYLOAD_LOG_PATH=/dev/stdout with the server's output sent to a file (``> server.log``,
    a unit's file output): that file is the server's own log, not the payload log's to rotate.
    Rotating it renamed it at every rotation (server.log.1.1.1...) while the server wrote on."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "import numpy as np\n"
        "from service.serving.payload_log import PayloadLog\n"
        "log = PayloadLog(Path('/dev/stdout'), rate=1.0, max_bytes=1024, backups=2,\n"
        "                 buffer_bytes=1 << 20, redact={})\n"
        "x, y = np.zeros((1, 8), np.float32), np.zeros((1, 1), np.float32)\n"
        "for i in range(40):\n"
        "    log.capture(f'r{i}', 'pima', 1, None, x, y)\n"
        "    log.drain()\n"
        "    print('server line', i, flush=True)\n"
        "log.close()\n"
    )
    out = tmp_path / "server.log"
    with out.open("ab") as stdout:  # appended to (>>), or each writer overwrites the other
        subprocess.run(
            [sys.executable, "-c", script],
            stdout=stdout,
            check=True,
            cwd=Path(__file__).resolve().parents[3],
            timeout=120,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["server.log"]
    lines = out.read_text().splitlines()
    assert len(lines) == 80 and sum(line.startswith("server line") for line in lines) == 40


def two_workers(path: Path) -> tuple[PayloadLog, PayloadLog]:
    """Two workers' logs on one path, with room for three lines a file; the first has written
    "a1"."""
    mine, other = payload_log(path), payload_log(path)
    capture(mine, "a1")
    mine.drain()
    one = len(path.read_bytes())
    mine.max_bytes = other.max_bytes = 3 * one + one // 2
    return mine, other


def test_the_split_counts_what_other_workers_appended(tmp_path: Path) -> None:
    """Two workers on one path: a worker counting only its own lines let the file grow to
    several times max_bytes, and rotated it only once its own share was full."""
    path = tmp_path / "p.jsonl"
    mine, other = two_workers(path)
    for name in ("b1", "b2"):
        capture(other, name)
    other.drain()  # the file is full: a1, b1, b2
    capture(mine, "a2")
    mine.drain()
    capture(other, "b3")
    other.drain()
    assert [r["request_id"] for r in records(path.with_name("p.jsonl.1"))] == ["a1", "b1", "b2"]
    assert [r["request_id"] for r in records(path)] == ["a2", "b3"]
    assert not path.with_name("p.jsonl.2").exists()


class ThenRuns:
    """A file whose next write is followed by ``then()``: another worker acting between this
    one's write and what it does next."""

    def __init__(self, inner: Any, then: Any) -> None:
        self.inner, self.then = inner, then

    def write(self, data: bytes) -> int:
        n = int(self.inner.write(data))
        then, self.then = self.then, lambda: None
        then()
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_rotation_another_worker_made_after_the_decision_is_not_made_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two workers find the same file full: the second, once it holds the rotation lock, finds
    the first one's new file at the path and writes there. Rotating again renamed that nearly
    empty file to path.1 and pushed the full one to path.2, out of the backups sooner."""
    path = tmp_path / "p.jsonl"
    mine, other = two_workers(path)
    capture(other, "b1")
    other.drain()
    capture(other, "b2")  # fills the file: a1, b1, b2
    capture(other, "b3")  # has no room: the other worker rotates once b2 is written, but ...
    capture(mine, "a2")  # ... this one, writing in between, finds the file full and rotates first
    other._file = ThenRuns(other._file, then=mine.drain)
    with caplog.at_level(logging.WARNING, "service.payload_log"):
        other.drain()
    assert [r["request_id"] for r in records(path.with_name("p.jsonl.1"))] == ["a1", "b1", "b2"]
    assert [r["request_id"] for r in records(path)] == ["a2", "b3"]
    assert not path.with_name("p.jsonl.2").exists()
    assert (mine.lines + other.lines, mine.errors + other.errors) == (5, 0)
    assert caplog.text == ""


def test_without_the_rotation_lock_the_log_rotates_as_alone_and_says_so_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A folder that takes no lock (a filesystem without flock): no line is lost for it."""

    def refused(fd: int, operation: int) -> None:
        raise OSError(37, "No locks available")

    monkeypatch.setattr("service.serving.payload_log.fcntl.flock", refused)
    path = tmp_path / "p.jsonl"
    log = payload_log(path)
    capture(log, "a")
    log.drain()
    one = len(path.read_bytes())
    log.max_bytes = 3 * one + one // 2  # three lines per file
    with caplog.at_level(logging.WARNING, "service.payload_log"):
        for name in "bcdefg":
            capture(log, name)
            log.drain()
    assert [r["request_id"] for r in records(path.with_name("p.jsonl.1"))] == ["d", "e", "f"]
    assert [r["request_id"] for r in records(path)] == ["g"]
    assert (log.lines, log.errors) == (7, 0)
    assert caplog.text.count("no lock to rotate it under") == 1


def test_a_rotation_lock_held_elsewhere_puts_the_rotation_off_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker that waited too long for the lock rotated without it, and its shift of the
    backups overwrote another worker's: lines counted as written were gone. Now the file grows
    past max_bytes until the lock is free, and then rotates once."""
    monkeypatch.setattr("service.serving.payload_log._LOCK_WAIT_S", 0.05)
    monkeypatch.setattr("service.serving.payload_log._LOCK_RETRY_S", 0.0)
    path = tmp_path / "p.jsonl"
    log = payload_log(path)
    capture(log, "a")
    log.drain()
    one = len(path.read_bytes())
    log.max_bytes = 2 * one + one // 2  # two lines per file
    holder = os.open(tmp_path / ".p.jsonl.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)
    with caplog.at_level(logging.WARNING, "service.payload_log"):
        for name in "bcd":
            capture(log, name)
            log.drain()
    assert not path.with_name("p.jsonl.1").exists()
    assert [r["request_id"] for r in records(path)] == ["a", "b", "c", "d"]
    assert "put off" in caplog.text
    os.close(holder)  # the lock is free again
    capture(log, "e")
    log.drain()
    assert [r["request_id"] for r in records(path.with_name("p.jsonl.1"))] == list("abcd")
    assert [r["request_id"] for r in records(path)] == ["e"]
    assert (log.lines, log.errors) == (5, 0)


def test_a_line_another_worker_is_still_appending_is_not_ended_by_a_stray_newline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker opening the file while another's large append shows only in part took the
    line for one cut by a crash and ended it: an empty line once the append completed."""
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"request_id": "other", "y": [0.5')  # an append seen half-way

    def other_worker_finishes(seconds: float) -> None:
        with path.open("ab") as f:
            f.write(b"]}\n")

    monkeypatch.setattr("service.serving.payload_log.time.sleep", other_worker_finishes)
    log = payload_log(path)
    capture(log, "mine")
    log.drain()
    assert [r["request_id"] for r in records(path)] == ["other", "mine"]


def test_a_pipe_removed_while_its_collector_restarts_is_not_made_a_file(tmp_path: Path) -> None:
    """The log created a plain file where the collector's pipe had been, so the collector could
    not make its pipe again, and the file then grew and rotated. The lines meanwhile are lost,
    and counted."""
    path = tmp_path / "p.jsonl"
    os.mkfifo(path)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(path.read_bytes()), daemon=True)
    reader.start()
    time.sleep(0.3)
    log = payload_log(path)
    capture(log, "a")
    log.drain()
    path.unlink()
    capture(log, "b")
    log.drain()
    assert not path.exists()
    assert (log.lines, log.errors) == (1, 1)
    log.close()
    reader.join(10)
    assert b"".join(received).count(b"\n") == 1


WRITER = """
import sys, time
from pathlib import Path
import numpy as np
from service.serving.payload_log import PayloadLog
path, worker, lines, max_bytes, backups = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
log = PayloadLog(Path(path), rate=1.0, max_bytes=max_bytes, backups=backups,
                 buffer_bytes=1 << 20, redact={})
x, y = np.zeros((1, 2), np.float32), np.zeros((1, 1), np.float32)
Path(f"{path}.ready{worker}").touch()
while not Path(f"{path}.go").exists():  # all start together
    time.sleep(0.001)
i = 0
while i < lines:
    for _ in range(1 + i % 3):  # groups of one to three lines
        if i < lines:
            log.capture(f"{worker}-{i:04d}", "pima", 1, None, x, y)
            i += 1
    log.drain()
    time.sleep(0.0005)  # the workers take turns at the file, as a server's do between requests
log.close()
assert (log.lines, log.errors, log.dropped) == (lines, 0, 0), (log.lines, log.errors)
"""


def test_workers_writing_one_path_rotate_it_once_per_full_file(tmp_path: Path) -> None:
    """SERVE_WORKERS=4 with the payload log on: each worker rotated on its own count, so the
    file grew past max_bytes between rotations, and two workers finding it full rotated twice,
    leaving nearly empty backups while full ones fell off the end. Every line must be kept once,
    every rotated file be full, and none hold more than max_bytes and what a racing worker
    appended while it was found full."""
    path = tmp_path / "p.jsonl"
    workers, lines, max_bytes = 4, 300, 2000
    backups = 200  # room for all of it (lines of about 100 bytes: some 60 files), and more
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, *map(str, (path, w, lines, max_bytes, backups))],
            cwd=Path(__file__).resolve().parents[3],
        )
        for w in range(workers)
    ]
    try:
        deadline = time.monotonic() + 60
        while not all(path.with_name(f"p.jsonl.ready{w}").exists() for w in range(workers)):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
            time.sleep(0.01)
        path.with_name("p.jsonl.go").touch()
        assert [p.wait(60) for p in procs] == [0] * workers
    finally:
        for p in procs:
            p.kill()
    files = [path] + [path.with_name(f"p.jsonl.{i}") for i in range(1, backups + 1)]
    files = [f for f in files if f.exists()]
    assert not path.with_name(f"p.jsonl.{backups}").exists()  # nothing fell off the end
    ids = [r["request_id"] for f in files for r in records(f)]
    assert sorted(ids) == sorted(f"{w}-{i:04d}" for w in range(workers) for i in range(lines))
    longest = max(len(line) + 1 for f in files for line in f.read_bytes().splitlines())
    group = 3 * longest
    sizes = {f.name: f.stat().st_size for f in files}
    assert len(files) > 10, sizes  # the test rotated, many times
    for f in files[1:]:
        assert sizes[f.name] > max_bytes - longest, sizes  # full: no rotation came early
    for f in files:
        # each other worker may append one group to a file between reading its size and
        # writing: all may find room in it at once
        assert sizes[f.name] <= max_bytes + (workers - 1) * group, sizes
    over = sum(size > max_bytes + group for size in sizes.values())
    assert over <= len(files) // 10, sizes  # that takes three workers in the same instant
    mixed = [f for f in files if len({r["request_id"][0] for r in records(f)}) > 1]
    assert len(mixed) > len(files) // 2  # the workers did write at the same time
