"""Decoding processes for uploaded pictures: the same pixels as in-process decoding, client
errors with their status and JSON body, a worker that dies, and threads on a single core."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from service.api import uploads
from service.api.uploads import DecodeWorkers
from service.errors import InvalidInput, NotReady, ServeError, UnsupportedMediaType
from service.inputs.images import decode_image
from service.settings import Settings
from tests.service.inputs.test_images_worker import photo_png

pytestmark = pytest.mark.anyio


async def filled(pool: DecodeWorkers) -> DecodeWorkers:
    """``pool`` started and waited for until every worker is up."""
    pool.start()
    for _ in range(600):  # a spawned worker imports numpy and Pillow first
        if pool.ready == pool.size:
            break
        await asyncio.sleep(0.05)
    assert pool.ready == pool.size
    return pool


@pytest.fixture(scope="module")
async def workers() -> AsyncIterator[DecodeWorkers]:
    pool = await filled(DecodeWorkers(2))
    yield pool
    for proc in list(pool._procs.values()):
        proc.kill()


async def test_same_pixels_as_in_process(workers: DecodeWorkers) -> None:
    png = photo_png()
    got = await asyncio.gather(*(workers.decode(png, None, 100_000, "digit") for _ in range(5)))
    want = decode_image(png, max_pixels=100_000)
    for image in got:
        np.testing.assert_array_equal(image, want)
    assert workers.ready == 2 and len(workers._idle) == 2  # all handed back


async def test_client_errors_pass_through(workers: DecodeWorkers) -> None:
    with pytest.raises(InvalidInput, match="cannot be decoded"):
        await workers.decode(b"\x89PNG\r\n\x1a\n" + bytes(5000), None, 100_000, "digit")
    with pytest.raises(UnsupportedMediaType):
        await workers.decode(photo_png(), "image/gif", 100_000, "digit")
    assert len(workers._idle) == 2


async def test_large_body_to_a_watched_descriptor(workers: DecodeWorkers) -> None:
    """A body larger than the socket buffer, after the event loop watched the descriptor."""
    png = photo_png()
    await workers.decode(png, None, 100_000, "digit")
    with pytest.raises(InvalidInput):
        await workers.decode(b"\x89PNG\r\n\x1a\n" + bytes(3_000_000), None, 100_000, "digit")


async def test_a_worker_dead_before_its_picture_is_replaced_the_picture_not_failed() -> None:
    """A worker killed while idle (the out-of-memory killer, an operator): the picture handed to
    it next never reached it, so it is not failed with a 500. The last worker gone: a 503 with
    Retry-After while new ones start."""
    pool = await filled(DecodeWorkers(1))
    proc = next(iter(pool._procs.values()))
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(5)
    with pytest.raises(NotReady) as caught:
        await pool.decode(photo_png(), None, 100_000, "digit")
    assert caught.value.status_code == 503 and caught.value.headers == {"Retry-After": "1"}
    assert pool.ready == 0
    await filled(pool)
    assert (await pool.decode(photo_png(), None, 100_000, "digit")).shape == (28, 28)
    for proc in list(pool._procs.values()):
        proc.kill()


async def test_a_worker_dead_while_idle_leaves_its_picture_to_another() -> None:
    pool = await filled(DecodeWorkers(2))
    dead = pool._procs[pool._idle[-1].fileno()]  # the one the next picture goes to
    os.kill(dead.pid, signal.SIGKILL)
    dead.join(5)
    assert (await pool.decode(photo_png(), None, 100_000, "digit")).shape == (28, 28)
    assert pool.ready == 1 and dead not in pool._procs.values()
    for proc in list(pool._procs.values()):
        proc.kill()


async def test_pictures_sent_after_every_worker_died_get_503_not_a_wait() -> None:
    """Two pictures, both workers dead: the first finds them dead, the second finds none left
    and must not wait for a worker nobody will hand back (it waited for the deadline)."""
    pool = await filled(DecodeWorkers(2))
    for proc in list(pool._procs.values()):
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(5)
    pictures = [pool.decode(photo_png(), None, 100_000, "digit") for _ in range(3)]
    done = await asyncio.wait_for(asyncio.gather(*pictures, return_exceptions=True), 5)
    assert all(isinstance(result, NotReady) for result in done)
    assert pool.ready == 0


async def test_a_worker_dead_while_decoding_fails_its_picture() -> None:
    """Its picture may be what killed it: not handed to another worker, a 500."""
    pool = await filled(DecodeWorkers(2))
    proc = pool._procs[pool._idle[-1].fileno()]
    decoding = asyncio.ensure_future(pool.decode(photo_png(), None, 100_000, "digit"))
    await asyncio.sleep(0)  # handed over
    os.kill(proc.pid, signal.SIGKILL)
    with pytest.raises(ServeError) as caught:
        await decoding
    assert caught.value.status_code == 500 and "while reading this picture" in str(caught.value)
    for proc in list(pool._procs.values()):
        proc.kill()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
async def test_a_worker_signalled_with_its_server_answers_until_the_server_stops_it(
    signum: int,
) -> None:
    """SIGTERM to the whole process group (a supervisor stopping the server): the pictures the
    server accepted are still decoded; the server stops its workers when it exits. SIGHUP (a
    reload, which the server lives through) leaves the workers running too."""
    pool = await filled(DecodeWorkers(1))
    proc = next(iter(pool._procs.values()))
    os.kill(proc.pid, signum)
    await asyncio.sleep(0.2)
    assert (await pool.decode(photo_png(), None, 100_000, "digit")).shape == (28, 28)
    pool.close()
    assert proc.exitcode == 0 and pool.ready == 0  # it left by itself, not killed


async def test_close_stops_a_worker_that_is_still_starting() -> None:
    """At exit the server stops its workers, also one it is still starting: such a worker
    ignores SIGTERM, and multiprocessing's own exit handler would wait for it for ever."""
    pool = DecodeWorkers(1)
    pool.start()
    for _ in range(200):  # the process is started; it is still importing numpy and Pillow
        if pool._children:
            break
        await asyncio.sleep(0.01)
    ((proc, _),) = pool._children
    pool.close()
    assert not proc.is_alive() and pool.ready == 0
    pool.start()  # closed: no worker starts again
    await asyncio.sleep(0.2)
    assert not pool._children


def test_the_event_loop_never_waits_for_a_worker_being_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Starting a process takes a while: meanwhile the event loop's own calls (asking for
    workers, forgetting a dead one) return at once."""
    starting, release = threading.Event(), threading.Event()

    class SlowProcess:
        def __init__(self, target: object, args: tuple[Any, ...], **kwargs: object) -> None:
            self.child = args[0]

        def start(self) -> None:
            starting.set()
            release.wait(20)
            self.child.send((True, None))

        def is_alive(self) -> bool:
            return False

        def join(self, timeout: float | None = None) -> None:
            pass

    class Spawn:
        Pipe = staticmethod(multiprocessing.Pipe)
        Process = SlowProcess

    monkeypatch.setattr(uploads.multiprocessing, "get_context", lambda method: Spawn())
    pool = DecodeWorkers(1)
    pool.start()
    assert starting.wait(10)
    returned = threading.Event()

    def from_the_loop() -> None:
        pool.start()
        pool._forget(SlowProcess(None, (None,)))  # type: ignore[arg-type]
        returned.set()

    threading.Thread(target=from_the_loop, daemon=True).start()
    assert returned.wait(10) and not release.is_set()  # while the process was still starting
    release.set()
    for _ in range(200):
        if pool.ready:
            break
        time.sleep(0.05)
    assert pool.ready == 1
    pool.close()
    assert pool.ready == 0 and not pool._children


async def test_decoding_threads_are_one_per_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each decoding holds a full-size picture: many large uploads at once (pictures of numbers,
    or files before the workers are up) decode a core's worth at a time, not one per upload."""
    monkeypatch.setattr(uploads, "_threads", None)
    monkeypatch.setattr(uploads, "usable_cores", lambda: 2)
    lock = threading.Lock()
    running, most = 0, 0

    def held(*args: Any) -> Any:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return np.zeros((1, 28, 28), np.float32), [[0, 0, 1, 1]], [(0, 1, True)]

    class Task:  # not an ImageClassifier: no worker process would take it anyway
        def decode_file(self, *args: Any) -> np.ndarray:
            return held()[0][0]

        def decode_digits(
            self, *args: Any
        ) -> tuple[np.ndarray, list[list[int]], list[tuple[int, int, bool]]]:
            return held()  # type: ignore[no-any-return]

    task, big = Task(), b"x" * (uploads.THREAD_DECODE_BYTES + 1)
    files = [(big, "image/png", f"f{i}") for i in range(6)]
    await asyncio.gather(
        uploads.decode_images(files, Settings(), task),  # type: ignore[arg-type]
        *(uploads.decode_number(big, "image/png", Settings(), task) for _ in range(6)),  # type: ignore[arg-type]
    )
    assert most == 2


async def test_waiters_fail_when_no_worker_is_left() -> None:
    pool = DecodeWorkers(1)
    waiter = asyncio.ensure_future(pool._acquire())
    await asyncio.sleep(0)
    a, b = multiprocessing.Pipe()
    pool._lost(a)  # the last worker gone
    with pytest.raises(NotReady):
        await waiter
    b.close()


def test_one_core_means_no_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uploads, "_workers", None)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert uploads.decode_workers(Settings()) is None


def test_zero_workers_means_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uploads, "_workers", None)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert uploads.decode_workers(Settings(decode_workers=0)) is None


@pytest.mark.parametrize(
    ("affinity", "cpu_max", "setting", "expected"),
    [
        (2, None, None, 2),  # no cgroup file: the affinity
        (64, None, None, uploads.DEFAULT_MAX_WORKERS),  # a big host: bounded
        (8, "100000 100000", None, 0),  # a container limited to one CPU: threads
        (8, "250000 100000", None, 3),  # 2.5 CPUs: a third worker for the half
        (8, "max 100000", None, 4),  # no quota
        (8, "garbage", None, 4),  # unreadable: the affinity
        (1, None, 3, 3),  # the setting wins
    ],
)
def test_worker_count(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    affinity: int,
    cpu_max: str | None,
    setting: int | None,
    expected: int,
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(affinity)))
    path = tmp_path / "cpu.max"
    if cpu_max is not None:
        path.write_text(cpu_max + "\n")
    monkeypatch.setattr(uploads, "CGROUP_CPU_MAX", path)
    assert uploads.worker_count(setting) == expected


async def test_upload_through_the_workers(
    client: httpx.AsyncClient, workers: DecodeWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The own API with the pictures decoded in the workers: the answer decoding in a thread
    gives, and a broken picture's 422 with its JSON error body."""
    png = photo_png()
    assert len(png) > uploads.THREAD_DECODE_BYTES
    in_thread = await client.post(
        "/models/mnist/predict", content=png, headers={"content-type": "image/png"}
    )
    monkeypatch.setattr(uploads, "decode_workers", lambda settings: workers)
    sent = []
    real = workers.decode

    async def counted(*args: object) -> np.ndarray:
        sent.append(args)
        return await real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(workers, "decode", counted)
    r = await client.post(
        "/models/mnist/predict", content=png, headers={"content-type": "image/png"}
    )
    assert r.status_code == 200, r.text
    assert sent and r.json()["predictions"] == in_thread.json()["predictions"]
    broken = b"\x89PNG\r\n\x1a\n" + bytes(5000)
    r = await client.post(
        "/models/mnist/predict", content=broken, headers={"content-type": "image/png"}
    )
    assert r.status_code == 422 and "cannot be decoded" in r.json()["error"]
    files = [("a", ("a.png", png, "image/png")), ("b", ("b.png", broken, "image/png"))]
    r = await client.post("/models/mnist/predict", files=files)
    assert r.status_code == 422 and r.json()["error"].startswith("file 1 ('b.png')")


def _png(mode: str, size: tuple[int, int], colour: int) -> bytes:
    from io import BytesIO

    from PIL import Image

    out = BytesIO()
    Image.new(mode, size, colour).save(out, "PNG")
    return out.getvalue()


def test_only_a_picture_small_in_bytes_and_in_pixels_decodes_on_the_loop() -> None:
    assert uploads.small_picture(_png("L", (28, 28), 0))
    page = _png("1", (2048, 2048), 1)  # a few KB of PNG for four million pixels
    assert len(page) <= uploads.THREAD_DECODE_BYTES and not uploads.small_picture(page)
    assert not uploads.small_picture(b"\x89PNG\r\n\x1a\n")  # no size in it: not known small


def test_a_sighup_to_the_process_group_leaves_the_resource_tracker_running() -> None:
    """multiprocessing's resource tracker, started with the first worker, ignores SIGINT and
    SIGTERM but not SIGHUP: a SIGHUP to the process group (a reload the server lives through)
    ended it, and the next worker started warned that resources might leak. In a process of its
    own: the tracker of this one may already be running."""
    script = (
        "import asyncio, os, signal, time\n"
        "from multiprocessing import resource_tracker\n"
        "from service.api.uploads import DecodeWorkers\n"
        "async def main():\n"
        "    pool = DecodeWorkers(1)\n"
        "    pool.start()\n"
        "    for _ in range(600):\n"
        "        if pool.ready:\n"
        "            break\n"
        "        await asyncio.sleep(0.05)\n"
        "    tracker = resource_tracker._resource_tracker._pid\n"
        "    os.kill(tracker, signal.SIGHUP)\n"
        "    time.sleep(0.5)\n"
        "    print('alive' if os.waitpid(tracker, os.WNOHANG)[0] == 0 else 'ended')\n"
        "    pool.close()\n"
        "asyncio.run(main())\n"
    )
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "alive", done.stderr[-2000:]
