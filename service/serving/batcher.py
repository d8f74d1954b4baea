"""Micro-batching: one bounded queue and one inference thread per loaded model version.

Requests are ``(rows, future)``. The event loop hands them to the thread in groups, from a
``call_soon`` callback: one lock round and one thread wake-up per group instead of per request.
A group closes at the first loop iteration that adds no request to it, or at ``max_batch_size``
rows, or after :data:`MAX_TICKS` iterations: while the loop is still reading and parsing
requests the model waits, and when the loop has nothing more to add the model starts at once
(no timer, so a lone request waits one loop iteration, never a time window). Every group wakes
the thread, switches the core over to it and back, and runs the model, so fewer, larger groups
serve more requests per second than handing over every iteration's requests.

The thread takes everything already queued, up to ``max_batch_size`` rows (a single larger
request runs alone), concatenates, runs the model once, checks that it got one output row per
input row, and hands each request its slice back on the event loop with
``call_soon_threadsafe`` (one callback per batch). ``max_wait`` (off by default) also holds a
batch open in the thread while more requests keep arriving. A full queue answers ``Overloaded``
immediately (requests already answered, past their deadline, do not count). ``stop()`` refuses
new work and drains what was accepted.

**On the loop.** A group whose model call is known to be shorter than the hand-off itself runs
on the event loop instead, in the ``call_soon`` callback that closes it: waking the thread,
switching the GIL to it and back, and waking the loop again cost more than the call of a model
that answers in microseconds. Which groups qualify is decided by measured call time, never by
the model: each call's CPU time on its thread (what it would cost the loop; a wall clock would
add the waits for the GIL and, on a shared machine, for the core), wherever it ran, goes into a
running estimate per batch size rounded up to a power of two (LiteRT's interpreter sizes). A
group runs on the loop only when its size's estimate is at most ``inline_max_s``, the thread is
idle (so the runtime is never entered from two threads at once, and requests keep their order),
and ``max_wait`` is off (holding a batch open is the thread's job). A size with no estimate yet
goes to the thread, which measures it; a model that gets slower moves back to the thread on its
own. ``inline_max_s=0`` keeps every call on the thread.

**Counting.** Each successful call is tallied under its exact number of rows, with the wall time
already taken for the observer and the requests it answered (the V2 statistics read
:meth:`Batcher.tallies`): a few additions per call, none per request. An explanation's perturbed
rows (:meth:`Batcher.submit_uncounted`) are no client's request: the calls they run in are
tallied without them (a call of nothing else not at all), their time is summed for the
explanation, and the explanation is tallied apart as one call of the rows it explains
(:meth:`Batcher.count_explanation`, :meth:`Batcher.explanations`). Only while an explanation is
in flight does a call look at its requests one by one to tell them apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from service.errors import DeadlineExceeded, NotReady, Overloaded, ServeError

log = logging.getLogger("service.batcher")
MAX_TICKS = 16  # loop iterations a group may stay open while requests keep joining it
# A call at most this long runs on the event loop (see the module doc): about what handing it to
# the thread costs (waking the thread, the GIL's trip there and back, the loop's wake-up), so one
# core does less work in all; and the loop's other requests wait no longer than the parsing of
# one or two of them takes.
INLINE_MAX_S = 100e-6
# Running estimate of a batch size's call time: each new timing moves it by this fraction, and a
# timing counts at most CLIP times the estimate, so one call stalled by the scheduler on a shared
# core does not send the model back to the thread for long.
SMOOTHING = 0.1
CLIP = 8.0

PredictFn = Callable[[np.ndarray], np.ndarray]
BatchObserver = Callable[[int, float], None]  # (rows, seconds), on the thread that ran the call


class BatchError(ServeError):
    """The model failed on a batch (a bug or a broken model, not bad input)."""

    status_code = 500


@dataclass(frozen=True, slots=True)
class CallTally:
    """The successful runtime calls of one batch size (``rows``), for the V2 statistics."""

    rows: int
    calls: int
    seconds: float  # their wall time, summed
    requests: int  # the requests they answered
    request_seconds: float  # each request charged its call's wall time, summed


@dataclass(slots=True)
class _Item:
    x: np.ndarray
    future: asyncio.Future[np.ndarray]
    loop: asyncio.AbstractEventLoop
    cost: list[float] | None = None  # an explanation's rows: the seconds of the calls they ran in


class Batcher:
    """Coalesces concurrent requests for one model version into batched runtime calls."""

    def __init__(
        self,
        name: str,
        predict: PredictFn,
        *,
        max_batch_size: int = 64,
        max_wait_s: float = 0.0,
        queue_size: int = 2048,
        observer: BatchObserver | None = None,
        inline_max_s: float | None = None,
    ) -> None:
        self.name = name
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.inline_max_s = INLINE_MAX_S if inline_max_s is None else inline_max_s
        self.call_s: dict[int, float] = {}  # estimated CPU s per call, by padded batch size
        self.queue_size = queue_size
        self.observer = observer
        self._predict = predict
        self._items: deque[_Item] = deque()
        # Loop side: the open group of requests, handed to the thread together by _flush (one
        # lock round and one wake-up per group).
        self._pending: list[_Item] = []
        self._pending_rows = 0
        self._flush_handle: asyncio.Handle | None = None
        self._seen_rows = 0  # pending rows at the last iteration, while a group is open
        self._ticks = 0  # iterations the open group has lasted
        self._tick_loop: asyncio.AbstractEventLoop | None = None
        self._cond = threading.Condition()
        self._queued_rows = 0
        self._busy_rows = 0
        self._closed = True
        self._thread: threading.Thread | None = None
        self.inline_batches = 0
        # The successful calls by their rows: [calls, seconds, requests beyond one per call,
        # their seconds (each charged its call's)], from the call's own timing: no cost per
        # request, and a lone request (the usual call) adds nothing to the last two.
        self.tally: dict[int, list[float]] = {}
        # the explanations, each as one call of the rows it explained and its calls' seconds;
        # kept apart from ``tally``, which the inference thread writes, as the loop writes this
        self.explained: dict[int, list[float]] = {}
        self._uncounted = 0  # explanation submissions in flight (loop side)
        self.last_call = 0.0  # time.perf_counter() at the start of the last successful call
        self.failed_calls = 0
        self.failed_rows = 0

    # --- event-loop side -------------------------------------------------------------------
    @property
    def queued_rows(self) -> int:
        return self._queued_rows + self._pending_rows

    @property
    def running(self) -> bool:
        return not self._closed

    @property
    def batches(self) -> int:
        """Runtime calls as tallied (an explanation as one), failed ones included."""
        return self.failed_calls + sum(t.calls for t in self.tallies() + self.explanations())

    @property
    def rows(self) -> int:
        """Rows handed to the runtime as tallied (an explanation's as the rows it explained),
        those of failed calls included."""
        return self.failed_rows + sum(
            t.rows * t.calls for t in self.tallies() + self.explanations()
        )

    def tallies(self) -> list[CallTally]:
        """The successful calls by batch size, smallest first (a copy: calls go on meanwhile);
        no explanation's (:meth:`explanations`)."""
        return _tallies(self.tally)

    def explanations(self) -> list[CallTally]:
        """The explanations, each as one call of the rows it explained timed by its model calls,
        by those rows: counted in a version's totals, but no batch size's time (an explanation
        of two rows took the time of its hundreds of perturbed ones)."""
        return _tallies(self.explained)

    def count_explanation(self, rows: int, seconds: float) -> None:
        """Tally an explanation of ``rows`` rows whose model calls took ``seconds`` (the cost
        :meth:`submit_uncounted` summed) as one call: what its client asked for."""
        tally = self.explained.get(rows)
        if tally is None:
            tally = self.explained[rows] = [0, 0.0, 0, 0.0]
        tally[0] += 1
        tally[1] += seconds

    def last_call_epoch_s(self) -> float | None:
        """When the last successful call started, in seconds since the epoch (None: no call
        yet); the call notes only ``perf_counter``, the epoch's clock is read here."""
        if not self.last_call:
            return None
        return time.time() - (time.perf_counter() - self.last_call)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._closed = False
        self._thread = threading.Thread(
            target=self._worker, name=f"batcher-{self.name}", daemon=True
        )
        self._thread.start()

    async def submit_uncounted(
        self, x: np.ndarray, cost: list[float], timeout: float | None = None
    ) -> np.ndarray:
        """:meth:`submit` for rows that are no request of their own (an explanation's perturbed
        inputs): left out of the tallies, and the seconds of each call they run in added to
        ``cost[0]``."""
        self._uncounted += 1
        try:
            return await self.submit(x, timeout, cost)
        finally:
            self._uncounted -= 1

    async def submit(
        self, x: np.ndarray, timeout: float | None = None, cost: list[float] | None = None
    ) -> np.ndarray:
        """Queue ``x`` (n rows) and wait for its n output rows. Must run inside the event loop.
        ``cost`` is :meth:`submit_uncounted`'s.

        Raises Overloaded when the queue is full, NotReady once stopped, and DeadlineExceeded
        when ``timeout`` seconds pass first (the rows are then skipped if not yet started).
        """
        n = len(x)
        loop = asyncio.get_running_loop()
        if self._closed:
            raise NotReady(f"model {self.name} is not accepting requests", retry_after=1.0)
        queued = self._queued_rows + self._pending_rows
        if queued and queued + n > self.queue_size:
            queued = self._drop_answered()
            if queued and queued + n > self.queue_size:
                raise Overloaded(f"model {self.name} is overloaded: queue is full, retry later")
        future: asyncio.Future[np.ndarray] = loop.create_future()
        item = _Item(x, future, loop, cost)
        if self._tick_loop is None:
            self._tick_loop = loop
        if loop is self._tick_loop:
            self._pending.append(item)
            self._pending_rows += n
            if self._flush_handle is None:  # a new group: a lone request goes next iteration
                self._seen_rows = self._pending_rows
                self._flush_handle = loop.call_soon(self._flush)
        else:  # another event loop, so another thread: hand it over at once
            with self._cond:
                self._items.append(item)
                self._queued_rows += n
                self._cond.notify()
        if timeout is None:
            return await future
        timer = loop.call_later(timeout, _expire, future, timeout)
        try:
            return await future
        finally:
            timer.cancel()

    def _drop_answered(self) -> int:
        """Forget the waiting requests already answered (their deadline passed, or their client
        left): their rows would be skipped, and only hold room that a live request can take.
        Runs only when the queue looks full. Returns the rows still waiting."""
        live = [item for item in self._pending if not item.future.done()]
        if len(live) != len(self._pending):
            self._pending = live
            self._pending_rows = sum(len(item.x) for item in live)
        with self._cond:
            if any(item.future.done() for item in self._items):
                self._items = deque(item for item in self._items if not item.future.done())
                self._queued_rows = sum(len(item.x) for item in self._items)
        return self._queued_rows + self._pending_rows

    def _flush(self, force: bool = False) -> None:
        """Hand the pending group to the inference thread once a loop iteration added nothing.

        Runs once per loop iteration while a group is open (see the module doc); ``force``
        hands it over at once.
        """
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        rows = self._pending_rows
        keep = keep_open(rows, self._seen_rows, self._ticks, self.max_batch_size)
        if keep and not force and self._tick_loop is not None:
            self._seen_rows = rows
            self._ticks += 1
            self._flush_handle = self._tick_loop.call_soon(self._flush)
            return
        self._seen_rows = self._ticks = 0
        items, self._pending = self._pending, []
        rows, self._pending_rows = self._pending_rows, 0
        if not items:
            return
        if self._runs_inline(rows):
            items = [item for item in items if not item.future.done()]  # past their deadline
            if items:
                self.inline_batches += 1
                self._run(items, inline=True)
            return
        with self._cond:
            self._items.extend(items)
            self._queued_rows += rows
            self._cond.notify()

    def _runs_inline(self, rows: int) -> bool:
        """Whether a group of ``rows`` rows runs on the loop (see the module doc)."""
        if self.max_wait_s > 0 or rows > self.max_batch_size or self._closed:
            return False
        estimate = self.call_s.get(padded(rows))
        if estimate is None or estimate > self.inline_max_s:
            return False
        return not self._items and not self._busy_rows  # the thread has nothing to do

    def _note_call(self, rows: int, seconds: float) -> None:
        """Fold one call's CPU time into its batch size's estimate."""
        size = padded(rows)
        estimate = self.call_s.get(size)
        if estimate is None:
            self.call_s[size] = seconds
        else:
            seconds = min(seconds, CLIP * estimate)
            self.call_s[size] = estimate + SMOOTHING * (seconds - estimate)

    async def stop(self) -> None:
        """Refuse new requests, finish every accepted one, then end the thread."""
        self._flush(force=True)  # accepted, not yet handed over
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.to_thread(thread.join)

    # --- inference thread ---------------------------------------------------------------------
    def _take(self, batch: list[_Item], rows: int) -> int:
        """Move queued items into ``batch`` while they fit. Caller holds the lock."""
        while self._items:
            n = len(self._items[0].x)
            if batch and rows + n > self.max_batch_size:
                break
            item = self._items.popleft()
            self._queued_rows -= n
            if item.future.done():  # cancelled or past its deadline
                continue
            batch.append(item)
            rows += n
            if rows >= self.max_batch_size:
                break
        return rows

    def _next_batch(self) -> list[_Item] | None:
        batch: list[_Item] = []
        with self._cond:
            while not self._items:
                if self._closed:
                    return None
                self._cond.wait()
            # busy before the first item leaves the queue: the loop, seeing neither queued items
            # nor a busy thread, may run a call itself (see _runs_inline)
            self._busy_rows = len(self._items[0].x)
            rows = self._take(batch, 0)
            if len(batch) > 1 and self.max_wait_s > 0:
                # Requests are arriving together: hold the batch open a little for more.
                deadline = time.monotonic() + self.max_wait_s
                while rows < self.max_batch_size and not self._closed:
                    if not self._items:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0 or not self._cond.wait(remaining):
                            break
                    if self._items and rows + len(self._items[0].x) > self.max_batch_size:
                        break
                    rows = self._take(batch, rows)
            self._busy_rows = rows
        return batch

    def _worker(self) -> None:
        while (batch := self._next_batch()) is not None:
            if batch:
                self._run(batch)

    def _run(self, batch: list[_Item], inline: bool = False) -> None:
        """Run ``batch`` as one call and answer its requests: directly when ``inline`` (on the
        loop), else through each request's loop."""
        sizes = [len(item.x) for item in batch]
        total = sum(sizes)
        deliver = _deliver_now if inline else self._deliver
        # read before the call: an explanation's part that times out during it has left the
        # count by the time it ends, but its rows are in this call all the same
        uncounted = self._uncounted
        try:
            x = batch[0].x if len(batch) == 1 else np.concatenate([item.x for item in batch])
            started, cpu = time.perf_counter(), time.thread_time()
            out = self._predict(x)
            seconds, cpu = time.perf_counter() - started, time.thread_time() - cpu
            if len(out) != total:
                raise BatchError(f"model returned {len(out)} outputs for {total} inputs")
        except Exception as exc:
            self.failed_calls += 1
            self.failed_rows += total
            if not isinstance(exc, ServeError):
                log.exception("inference failed for %s", self.name)
                exc = BatchError("internal error during inference")
            deliver(batch, None, exc)
            return
        finally:
            if not inline:
                self._busy_rows = 0
        self._note_call(total, cpu)
        self.last_call = started
        if self.observer is not None:
            self.observer(total, seconds)
        if uncounted:
            self._count_apart(batch, sizes, seconds)
        else:
            self._count(total, seconds, len(sizes))
        if len(sizes) == 1:  # a lone request: the whole output is its own
            deliver(batch, [out], None)
            return
        results: list[np.ndarray] = []
        offset = 0
        for n in sizes:
            results.append(out[offset : offset + n])
            offset += n
        deliver(batch, results, None)

    def _count(self, rows: int, seconds: float, requests: int) -> None:
        """Tally a successful call of ``rows`` rows that answered ``requests`` requests."""
        tally = self.tally.get(rows)
        if tally is None:
            tally = self.tally[rows] = [0, 0.0, 0, 0.0]
        tally[0] += 1
        tally[1] += seconds
        if requests > 1:
            tally[2] += requests - 1
            tally[3] += seconds * (requests - 1)

    def _count_apart(self, batch: list[_Item], sizes: list[int], seconds: float) -> None:
        """Tally a call that may hold an explanation's rows: the clients' requests only, and
        the call's time added to each explanation's cost."""
        rows = requests = 0
        for item, n in zip(batch, sizes, strict=True):
            if item.cost is None:
                rows += n
                requests += 1
            else:
                item.cost[0] += seconds
        if requests:
            self._count(rows, seconds, requests)

    @staticmethod
    def _deliver(
        batch: list[_Item], results: list[np.ndarray] | None, error: BaseException | None
    ) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Item, np.ndarray | None]]] = {}
        for i, item in enumerate(batch):
            by_loop.setdefault(item.loop, []).append(
                (item, None if results is None else results[i])
            )
        for loop, pairs in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_settle, pairs, error)


def _tallies(tally: dict[int, list[float]]) -> list[CallTally]:
    entries = [(rows, tuple(t)) for rows, t in list(tally.items())]
    return [
        CallTally(rows, int(calls), seconds, int(calls + extra), seconds + extra_seconds)
        for rows, (calls, seconds, extra, extra_seconds) in sorted(entries)
    ]


def padded(rows: int) -> int:
    """The batch size a call of ``rows`` rows is timed under: the next power of two."""
    return 1 << (rows - 1).bit_length()


def _deliver_now(
    batch: list[_Item], results: list[np.ndarray] | None, error: BaseException | None
) -> None:
    """Answer ``batch`` on the running loop (an inline call: every item is of this loop)."""
    _settle(
        [(item, None if results is None else results[i]) for i, item in enumerate(batch)], error
    )


def keep_open(rows: int, seen: int, ticks: int, max_rows: int) -> bool:
    """Whether a group of ``rows`` pending rows waits one more loop iteration: it grew since the
    last look (``seen`` rows), is not full, and has not waited :data:`MAX_TICKS` iterations."""
    return rows != seen and rows < max_rows and ticks < MAX_TICKS


def _settle(pairs: list[tuple[_Item, np.ndarray | None]], error: BaseException | None) -> None:
    for item, result in pairs:
        if item.future.done():
            continue
        if error is not None:
            item.future.set_exception(error)
        else:
            item.future.set_result(result)  # type: ignore[arg-type]


def _expire(future: asyncio.Future[np.ndarray], timeout: float) -> None:
    if not future.done():
        future.set_exception(DeadlineExceeded(f"prediction did not finish within {timeout:g} s"))
