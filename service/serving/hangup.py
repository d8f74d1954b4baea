"""SIGHUP: rescan the model repository now, instead of dying.

Process managers and operators send SIGHUP to ask a daemon to take its configuration or its
files again (nginx, sshd, rsyslog); its default action ends the process, which for a server is
an outage. Here it does what ``POST /v2/repository/index`` does, without a key or a port:
new finished versions are loaded, deleted ones unloaded, and a version that failed is tried again
once its files changed, as the watcher's own ticks do. Settings are not read again (a restart
does that).

The payload log needs nothing: it notices a file moved or deleted under it at its next write.

The handler is installed first thing by the app's lifespan, so every server process has it,
uvicorn's workers too, and a SIGHUP while the models load is ignored (the start is scanning the
repository). It is installed only from the main thread (a signal handler cannot be set from
another; an app run in a test's thread goes without), and the handler that was there before
comes back when the app stops.

A SIGHUP while the server stops is ignored too. After SIGTERM or SIGINT the server drains its
requests before the app's shutdown begins, and the app is not told: loading or unloading models
then would only delay the exit (and race the shutdown's unloading). So the stop signals are
watched here, by a handler put in front of the server's own (uvicorn's, which it then calls):
once one has come, a SIGHUP is logged and ignored, and a rescan asked for during a rescan is not
run. A rescan already under way goes on until the shutdown cancels it. A stop signal whose
handler is not a Python function (the default, or ignored: no server that drains) is left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from service.serving.registry import ModelRegistry

log = logging.getLogger("service.hangup")
STOPS = (signal.SIGINT, signal.SIGTERM)  # the signals on which a server drains and stops


class Hangup:
    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: Any = None
        self._task: asyncio.Task[None] | None = None
        self._again = False  # a SIGHUP came during a rescan: one more when it ends
        self._servers: dict[int, Callable[[int, FrameType | None], Any]] = {}  # by stop signal
        self.stopping = False  # a stop signal came: the server is draining

    def start(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        self._loop = asyncio.get_running_loop()
        self.stopping = False
        self._previous = signal.signal(signal.SIGHUP, self._received)
        for signum in STOPS:
            handler = signal.getsignal(signum)
            if callable(handler):
                self._servers[signum] = handler
                signal.signal(signum, self._stop_received)

    async def stop(self) -> None:
        if self._loop is not None:
            # only its own handlers are taken back: another app started since (two in one
            # process, as tests run them) keeps the signals until it stops
            if signal.getsignal(signal.SIGHUP) == self._received:
                signal.signal(signal.SIGHUP, self._previous)
            for signum, handler in self._servers.items():
                if signal.getsignal(signum) == self._stop_received:
                    signal.signal(signum, handler)
            self._loop = None
        task, self._task = self._task, None
        if task is not None:  # the registry is about to unload everything: no use loading now
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _received(self, signum: int, frame: FrameType | None) -> None:
        # a signal handler runs between two bytecodes of whatever the main thread was doing:
        # the rescan is handed to the event loop, never run here
        loop = self._loop
        if loop is not None and not loop.is_closed():  # closed: a start that failed, exiting
            loop.call_soon_threadsafe(self._start)

    def _stop_received(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True  # a plain assignment: safe between any two bytecodes
        self._servers[signum](signum, frame)

    def _start(self) -> None:
        if self.stopping:
            log.info("SIGHUP while the server stops: ignored, it is draining its requests")
            return
        if not self.registry.started:
            log.info("SIGHUP during start-up: ignored, the start is scanning the repository")
            return
        if self._task is not None and not self._task.done():
            self._again = True  # what changed since that rescan began may have been missed
            return
        self._task = asyncio.get_running_loop().create_task(self._rescan(), name="sighup-rescan")

    async def _rescan(self) -> None:
        while True:
            self._again = False
            log.info("SIGHUP: rescanning the model repository")
            try:
                watcher = self.registry.watcher  # its tick logs what changed
                await (watcher.tick() if watcher is not None else self.registry.rescan())
                log.info("SIGHUP rescan done")
            except Exception:
                log.exception("SIGHUP rescan failed; what was served stays served")
            if not self._again or self.stopping:
                return
