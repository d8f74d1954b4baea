"""Request decoding for the service's own predict endpoints: query options, JSON bodies and
file uploads, each into a float32 array (by the version's task) or a clear 4xx error."""

from __future__ import annotations

import asyncio
import atexit
import math
import multiprocessing
import os
import signal
import threading
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from fastapi import Request
from python_multipart.multipart import parse_options_header
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.api.schemas import QUERY_PARAMETERS
from service.errors import (
    BadRequest,
    InvalidInput,
    NotReady,
    PayloadTooLarge,
    ServeError,
    UnsupportedMediaType,
)
from service.inputs.images import decode_worker, image_size, part_type
from service.inputs.preprocess import Fit
from service.serving.model import ModelVersion
from service.serving.tasks import ImageClassifier, Task
from service.settings import Settings

# Smaller pictures (icons, 28x28 drawings) decode in less time than a thread hand-off takes. Both
# bounds, as a few KB of PNG or WebP may hold a page of millions of even pixels.
THREAD_DECODE_BYTES = 4 * 1024
THREAD_DECODE_PIXELS = 128 * 128
T = TypeVar("T")
FILE_PROBLEMS = (InvalidInput, PayloadTooLarge, UnsupportedMediaType)  # named by file below
WORKER_START_S = 60.0  # a decoding process that has not imported its modules by then is given up
WORKER_STOP_S = 5.0  # a worker still decoding when the server exits is killed after this


PREDICT_QUERY = frozenset(str(p["name"]) for p in QUERY_PARAMETERS)
# How a query string may spell a boolean (any case); a JSON body's are JSON's true and false
QUERY_TRUE = ("true", "1", "yes")
QUERY_FALSE = ("false", "0", "no")


def query_options(request: Request, allowed: frozenset[str] = PREDICT_QUERY) -> dict[str, Any]:
    """top_k, threshold, include_input, alpha, abstain and digits from the query string (parsed
    here: no per-request FastAPI parameter machinery on the hot path; documented in
    ``QUERY_PARAMETERS``). A parameter not in ``allowed``, or one given twice, is a 422, as an
    unknown JSON field is."""
    options: dict[str, Any] = {
        "top_k": None,
        "threshold": None,
        "include_input": False,
        "alpha": None,
        "abstain": None,
        "digits": "one",
    }
    if not request.scope.get("query_string"):
        return options
    query = request.query_params
    for key in query:
        if key not in allowed:
            names = ", ".join(sorted(allowed))
            raise InvalidInput(f"unknown query parameter {key[:64]!r}; allowed: {names}")
        if len(query.getlist(key)) > 1:
            raise InvalidInput(f"query parameter {key} is given more than once")
    if (text := query.get("top_k")) is not None:
        # str.isdigit takes "²", int() does not; int() also refuses more than 4,300 digits
        if not (text.isascii() and text.isdigit() and len(text) <= 18):
            raise InvalidInput(
                "query parameter top_k must be a positive integer (18 digits at most)"
            )
        options["top_k"] = int(text)
    if (text := query.get("threshold")) is not None:
        try:
            options["threshold"] = float(text)
        except ValueError:
            raise InvalidInput("query parameter threshold must be a number from 0 to 1") from None
    if (text := query.get("digits")) is not None:
        if text not in ("one", "many"):
            raise InvalidInput("query parameter digits must be one or many")
        options["digits"] = text
    if (text := query.get("alpha")) is not None:
        try:  # the task checks the rest: only versions with prediction sets take it
            options["alpha"] = float(text)
        except ValueError:
            message = "query parameter alpha must be a number between 0 and 1 (exclusive)"
            raise InvalidInput(message) from None
    for key in ("include_input", "abstain"):
        if (text := query.get(key)) is not None:
            flag = text.lower()
            if flag not in QUERY_TRUE + QUERY_FALSE:
                pairs = ", ".join(
                    f"{t} or {f}" for t, f in zip(QUERY_TRUE, QUERY_FALSE, strict=True)
                )
                raise InvalidInput(f"query parameter {key} must be a boolean: {pairs} (any case)")
            options[key] = flag in QUERY_TRUE
    return options


def from_json(
    payload: Any,
    task: Task,
    settings: Settings,
    options: dict[str, Any],
    request: Request | None = None,
) -> np.ndarray:
    """The instances of an own-API JSON body; its options (top_k, threshold, include_input,
    alpha, abstain) go into ``options``. An option both in the body and in ``request``'s query
    string is a 422 unless both say the same, as a query parameter given twice is."""
    if not isinstance(payload, dict):
        raise InvalidInput('the body must be a JSON object with "instances"')
    if "instances" not in payload:
        has = ", ".join(repr(k[:64]) for k in list(payload)[:5]) or "no field"
        elsewhere = (
            " (an Open Inference Protocol body goes to /v2/models/<model>/infer, a TF Serving "
            "one to /v1/models/<model>:predict)"
            if "inputs" in payload or "examples" in payload
            else ""
        )
        raise InvalidInput(
            f'the body must have "instances" (the inputs, a list); it has {has}{elsewhere}'
        )
    unknown = sorted(set(payload) - task.json_fields)
    if unknown:
        allowed = ", ".join(sorted(task.json_fields))
        if unknown[0] == "scale":
            raise InvalidInput("scale applies to image models only")
        if unknown[0] == "digits" and isinstance(task, ImageClassifier) and task.framing == "digit":
            raise InvalidInput(
                "digits applies to a picture: a JSON body's instances are single images "
                "(send a picture of a number with ?digits=many)"
            )
        raise InvalidInput(f"unknown field {unknown[0][:64]!r}; allowed: {allowed}")
    asked = request is not None and request.scope.get("query_string")
    query = request.query_params if request is not None and asked else {}
    for key in ("top_k", "threshold", "include_input", "alpha", "abstain"):
        if key in payload:
            if key in query and not same_value(options[key], payload[key]):
                raise InvalidInput(
                    f"{key} is given both in the query string and in the body, with different "
                    "values: give it once"
                )
            options[key] = payload[key]
    if not isinstance(options["include_input"], bool):
        raise InvalidInput("include_input must be true or false")
    return task.decode_instances(payload, settings.max_instances)


def same_value(asked: Any, sent: Any) -> bool:
    """Whether a query option (parsed, or its text when the task parses it later) says what the
    body's JSON value says: ``alpha=0.1`` and ``0.1``, ``abstain=true`` and ``true``."""
    if asked == sent:
        return True
    if isinstance(sent, bool) or isinstance(asked, bool):
        return str(asked).lower() == str(sent).lower()
    try:
        return float(asked) == float(sent)
    except (TypeError, ValueError):
        return False


def file_task(mv: ModelVersion) -> Task:
    """The version's task, when it takes files as the request body (else 415)."""
    if mv.task is None or not mv.task.accepts_files:
        raise UnsupportedMediaType(
            f"model {mv.name} takes JSON records, not files: send them as a JSON body "
            "(Content-Type: application/json)"
        )
    return mv.task


async def form_images(request: Request, settings: Settings, task: Task) -> np.ndarray:
    return await decode_images(await form_files(request, settings), settings, task)


async def form_files(request: Request, settings: Settings) -> list[tuple[bytes, str | None, str]]:
    """The files of a multipart body: ``(bytes, media type, file name)`` each, the type read from
    the bytes where they tell it. A body that does not parse is a 400; a text field beside the
    files, or no file at all, is a 422."""
    limit = settings.max_upload_files
    try:
        form = await request.form(max_files=limit, max_fields=100)
    except StarletteHTTPException as exc:
        if "files" in str(exc.detail).lower():
            raise PayloadTooLarge(f"too many files: at most {limit} per request") from None
        # a body that does not parse, as malformed JSON is
        raise BadRequest(f"malformed multipart body: {exc.detail}") from None
    try:
        items = form.multi_items()
        uploads = [value for _, value in items if not isinstance(value, str)]
        fields = [key for key, value in items if isinstance(value, str)]
        if uploads and fields:  # as an unknown JSON field is: never silently ignored
            raise InvalidInput(
                f"form field {fields[0][:64]!r} is not a file: a multipart body holds only "
                "image files; options go in the query string (?top_k=2)"
            )
        if not uploads:
            _refuse_cut_short(request)
            hint = (
                " (a part without a filename is a text field: give each picture a filename, "
                "as curl -F 'file=@digit.png' does)"
                if items
                else ""
            )
            raise InvalidInput(f"the multipart body holds no image files{hint}")
        files = [
            (data, part_type(data, upload.content_type), (upload.filename or "")[:64])
            for upload in uploads
            for data in [await upload.read()]
        ]
    finally:
        await form.close()
    return files


def _refuse_cut_short(request: Request) -> None:
    """BadRequest (400) for a multipart body without its closing delimiter: the parser drops
    the part it was reading, so "no image files" would send the client looking for the wrong
    mistake (a body cut short by a client, a proxy or a hand-written request)."""
    body: bytes = getattr(request, "_body", b"")  # read and cached by read_body
    # the header's parameters read as the multipart parser itself reads them
    _, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary", b"")
    if boundary and body and b"--" + boundary + b"--" not in body:
        shown = boundary[:70].decode("latin-1")
        raise BadRequest(
            f"malformed multipart body: it ends before its closing delimiter --{shown}-- "
            "(cut short?)"
        )


class DecodeWorkers:
    """Processes that decode and frame pictures beside the server's own.

    Framing a picture is many small numpy steps, each holding the GIL, so worker threads take
    turns on one core (two even slow each other down); processes use every core the server may
    run on, one each. A worker imports only :mod:`service.inputs` (no model, no TensorFlow) and
    is started with ``spawn``, never forked from a process that runs model threads. They start
    in the background at the first picture that needs them; until one is ready, pictures decode
    in a thread. A picture waits for an idle worker; the answer comes back through the event
    loop's own selector (no thread per request). A worker that dies while decoding fails its
    picture with a 500 and is replaced; one found dead when a picture is handed to it passes
    the picture to another (503 with Retry-After when none is left).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._idle: deque[Connection] = deque()
        self._waiters: deque[asyncio.Future[Connection]] = deque()
        self._procs: dict[int, BaseProcess] = {}  # by the parent end's file descriptor
        # every worker started and not known dead, ready or still starting, with its parent end:
        # what close() stops (a worker ignores SIGTERM and leaves when its pipe closes)
        self._children: list[tuple[BaseProcess, Connection]] = []
        self._closed = False
        # the lists above and ``_starting``: held only briefly, also on the event loop
        self._lock = threading.Lock()
        # held while a process starts (tens of ms), by the starting thread and close() only: a
        # worker is either registered in ``_children`` or never started once close() has begun
        self._start_lock = threading.Lock()
        self._starting = False
        # before multiprocessing's own exit handler (registered earlier, so run later), which
        # would signal the workers and wait for them: they ignore that signal
        atexit.register(_close_at_exit, weakref.ref(self))  # a pool dropped earlier is not kept

    @property
    def ready(self) -> int:
        """How many workers are running (idle or busy)."""
        return len(self._procs)

    def start(self) -> None:
        """Bring the pool up to its size in a background thread (spawning takes a while)."""
        with self._lock:
            if self._starting or self.ready >= self.size:
                return
            self._starting = True
        threading.Thread(target=self._spawn, name="decode-workers-start", daemon=True).start()

    def _spawn(self) -> None:
        # A process started here inherits this thread's signal mask: SIGHUP blocked, neither the
        # workers (before they ignore it) nor multiprocessing's resource tracker, started with the
        # first of them and which ignores SIGINT and SIGTERM only, die of the SIGHUP to the
        # process group that the server lives through (service.serving.hangup)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
        try:
            ctx = multiprocessing.get_context("spawn")
            for _ in range(self.size - self.ready):
                with self._start_lock:  # none starts once close() has begun
                    if self._closed:
                        return
                    parent, child = ctx.Pipe()
                    proc = ctx.Process(target=decode_worker, args=(child,), daemon=True,
                                       name="digitserve-decode")  # fmt: skip
                    proc.start()
                    with self._lock:
                        self._children.append((proc, parent))
                child.close()
                if parent.poll(WORKER_START_S) and parent.recv() == (True, None):
                    self._procs[parent.fileno()] = proc
                    self._idle.append(parent)
                else:
                    self._forget(proc)
                    proc.kill()
                    parent.close()
        except (OSError, EOFError, AssertionError):  # no processes here (a daemon, a sandbox)
            pass
        finally:
            self._starting = False

    async def decode(self, data: bytes, ctype: str | None, max_pixels: int, fit: Fit) -> np.ndarray:
        """:func:`service.inputs.images.decode_image` in a worker process."""
        while True:
            if self._idle:  # the worker that answered last: its caches are warm
                conn = self._idle.pop()
            elif self._procs:
                conn = await self._acquire()
            else:  # every worker died (no one would hand one back): as for the waiters
                raise NotReady("the image decoders are restarting; try again", retry_after=1.0)
            try:
                # uvloop leaves a watched descriptor non-blocking: a body larger than the
                # socket's buffer would fail half-sent (the idle worker reads it at once)
                os.set_blocking(conn.fileno(), True)
                conn.send((data, ctype, max_pixels, fit))
                break
            except OSError:
                # it died while idle (killed, out of memory): the picture never reached it and
                # is not to blame, so another worker takes it (new ones start at the next
                # picture)
                self._lost(conn)
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[tuple[bool, Any]] = loop.create_future()
        loop.add_reader(conn.fileno(), self._answered, loop, conn, answered)
        ok, value = await answered  # cancelled (deadline): the worker is freed when it answers
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    async def _acquire(self) -> Connection:
        waiter: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release(waiter.result())
            raise

    def _answered(
        self,
        loop: asyncio.AbstractEventLoop,
        conn: Connection,
        answered: asyncio.Future[tuple[bool, Any]],
    ) -> None:
        loop.remove_reader(conn.fileno())
        try:
            os.set_blocking(conn.fileno(), True)  # the rest of a long answer may be on its way
            answer = conn.recv()
        except (EOFError, OSError):
            self._lost(conn)
            answer = (False, ServeError("the image decoder stopped while reading this picture"))
        else:
            self._release(conn)
        if not answered.done():
            answered.set_result(answer)

    def _release(self, conn: Connection) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    def _lost(self, conn: Connection) -> None:
        """A worker died: drop it, and fail the waiters when none is left (new ones start at
        the next picture)."""
        proc = self._procs.pop(conn.fileno(), None)
        conn.close()
        if proc is not None:
            self._forget(proc)
            proc.kill()
            proc.join(1.0)
        if not self._procs:
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_exception(
                        NotReady("the image decoders are restarting; try again", retry_after=1.0)
                    )

    def _forget(self, proc: BaseProcess) -> None:
        with self._lock:
            self._children = [(p, c) for p, c in self._children if p is not proc]

    def close(self) -> None:
        """Stop every worker, ready or still starting: each reads the end of its pipe and exits.
        Workers ignore the signals a whole process group gets at shutdown (Ctrl-C, a
        supervisor's SIGTERM), so the pictures accepted before it are still decoded; the server
        stops them when it exits (before multiprocessing's own exit handler, which would signal
        them and wait)."""
        with self._start_lock, self._lock:
            self._closed = True
            children, self._children = self._children, []
        self._procs.clear()
        self._idle.clear()
        for _, conn in children:
            conn.close()
        for proc, _ in children:
            proc.join(WORKER_STOP_S)
            if proc.is_alive():
                proc.kill()
                proc.join(1.0)


def _close_at_exit(ref: weakref.ref[DecodeWorkers]) -> None:
    pool = ref()
    if pool is not None:
        pool.close()


_workers: DecodeWorkers | None = None
_workers_lock = threading.Lock()
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "<quota> <period>" or "max <period>"
DEFAULT_MAX_WORKERS = 4  # each worker holds numpy and Pillow (tens of MB): bounded on big hosts


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a container's CPU quota
    (a container limited to one CPU on a 64-core host sees all 64 in its affinity)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


def worker_count(setting: int | None) -> int:
    """How many decoding processes to run: the setting, or one per usable core (at most
    ``DEFAULT_MAX_WORKERS``); 0 when there is one core, where a process only adds its hand-off."""
    if setting is not None:
        return setting
    cores = usable_cores()
    return 0 if cores < 2 else min(cores, DEFAULT_MAX_WORKERS)


def running_decode_workers() -> int:
    """Decoding processes running now (0 before the first large picture, or with none)."""
    workers = _workers
    return 0 if workers is None else workers.ready


def decode_workers(settings: Settings) -> DecodeWorkers | None:
    """The process's decoding workers (``SERVE_DECODE_WORKERS``), started at first use; None
    when there are to be none."""
    global _workers
    with _workers_lock:
        if _workers is None:
            size = worker_count(settings.decode_workers)
            if size < 1:
                return None
            _workers = DecodeWorkers(size)
    if _workers.ready < _workers.size:
        _workers.start()
    return _workers


_threads: ThreadPoolExecutor | None = None


def decode_threads() -> ThreadPoolExecutor:
    """The threads that decode pictures when no worker process does (a picture of a number,
    uploads before the workers are up, one core): one per usable core. Each decoding holds its
    picture at full size (a 16-megapixel upload, hundreds of MB on its way to 28x28), so the
    number of threads bounds the memory; asyncio's default pool, up to 32 threads on a large
    host whatever its container's CPU limit, did not."""
    global _threads
    with _workers_lock:
        if _threads is None:
            _threads = ThreadPoolExecutor(usable_cores(), thread_name_prefix="digitserve-decode")
        return _threads


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in :func:`decode_threads`."""
    return await asyncio.get_running_loop().run_in_executor(decode_threads(), fn, *args)


def small_picture(data: bytes) -> bool:
    """Whether a file is small enough, in bytes and in the pixels its header declares, to be
    decoded on the event loop."""
    if len(data) > THREAD_DECODE_BYTES:
        return False
    size = image_size(data)
    return size is not None and size[0] * size[1] <= THREAD_DECODE_PIXELS


async def decode_images(
    files: list[tuple[bytes, str | None, str]], settings: Settings, task: Task
) -> np.ndarray:
    """Decode image files into the task's input batch (framed as its data set was made).

    Off the event loop: in :class:`DecodeWorkers` processes when the server may use more than
    one core, else (and until they are ready) in :func:`decode_threads`, one job per file. A
    small picture (:func:`small_picture`) decodes in place: a hand-off would cost more.
    """

    def named(i: int, exc: ServeError) -> ServeError:
        """The same error (422, 413 or 415), naming the file when there may be several."""
        if len(files) == 1 and not files[0][2]:
            return exc
        return type(exc)(f"file {i} ({files[i][2]!r}): {exc.message}")

    def decode(i: int) -> np.ndarray:
        data, ctype, _ = files[i]
        try:
            return task.decode_file(data, ctype, settings.max_image_pixels)
        except FILE_PROBLEMS as exc:
            raise named(i, exc) from None

    async def in_worker(workers: DecodeWorkers, fit: Fit, i: int) -> np.ndarray:
        data, ctype, _ = files[i]
        try:
            return await workers.decode(data, ctype, settings.max_image_pixels, fit)
        except FILE_PROBLEMS as exc:
            raise named(i, exc) from None

    if len(files) == 1 and small_picture(files[0][0]):
        return decode(0)[None]
    # the worker is handed what the task's decode_file would pass on: the file and the framing
    fit = task.framing if isinstance(task, ImageClassifier) else None
    workers = decode_workers(settings) if fit is not None else None
    if workers is not None and workers.ready and fit is not None:
        jobs = [in_worker(workers, fit, i) for i in range(len(files))]
    else:
        jobs = [in_thread(decode, i) for i in range(len(files))]
    done = await asyncio.gather(*jobs, return_exceptions=True)
    for result in done:  # the first file that failed, whichever thread finished first
        if isinstance(result, BaseException):
            raise result
    return np.stack(done)  # type: ignore[arg-type]


async def decode_number(
    data: bytes, ctype: str | None, settings: Settings, task: Task
) -> tuple[np.ndarray, list[list[int]], list[tuple[int, int, bool]]]:
    """A picture of a number: the digits of its ways to split as the task's input batch, their
    boxes and places (:meth:`Task.decode_digits`); in a decoding thread (a photo of a number is
    large, its splitting and framing take milliseconds). When the other splits would make the
    batch too long, only the split by shape is read."""
    x, boxes, spans = await in_thread(task.decode_digits, data, ctype, settings.max_image_pixels)
    if len(x) > settings.max_instances:
        shape = [i for i, span in enumerate(spans) if span[2]]
        if len(shape) > settings.max_instances:
            raise InvalidInput(
                f"the picture holds {len(shape)} digits; at most {settings.max_instances} are read"
            )
        x, boxes, spans = x[shape], [boxes[i] for i in shape], [spans[i] for i in shape]
    return x, boxes, spans
