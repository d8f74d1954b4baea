"""The server process of ``python -m service`` (one worker): uvicorn's server, with a forced quit
that still writes out what was accepted and says whether it cut requests off.

A first SIGINT or SIGTERM stops gracefully: no new connections, accepted requests finished, then
the lifespan's shutdown (batchers drained, payload log written out). A second SIGINT during that
wait is uvicorn's forced quit: it stops waiting for requests and skips the lifespan's shutdown.
What the payload log already holds was accepted, so ``on_forced_quit`` writes it out
synchronously before the process ends, and the exit status is ``FORCED_EXIT`` (130, the shell's
status for a process stopped by SIGINT) instead of uvicorn's 0, so that a supervisor or a script
can tell that requests were cut off. A second SIGINT once every request has been answered (the
drain is over, the server is only finishing its shutdown) cuts nothing off: the exit status is
then a clean stop's 0. Requests still running when the graceful stop's time is up
(``timeout_graceful_shutdown``) are cancelled by uvicorn: that cuts them off too, and the exit
status says so the same way.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE

log = logging.getLogger("service.server")
FORCED_EXIT = 130


class Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_forced_quit: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_forced_quit = on_forced_quit
        self.cut_off = False  # a forced quit came while requests were still running

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        forced = self.force_exit
        super().handle_exit(sig, frame)
        if self.force_exit and not forced:
            # a request running is a task of its own; a connection without one is idle (a
            # keep-alive one that the stop is closing) and loses nothing
            self.cut_off = bool(self.server_state.tasks)

    async def _wait_tasks_to_complete(self) -> None:
        try:
            await super()._wait_tasks_to_complete()
        except asyncio.CancelledError:
            # the graceful stop's time is up (``timeout_graceful_shutdown``): the requests still
            # running are about to be cancelled, which cuts them off as a forced quit would
            self.cut_off = self.cut_off or bool(self.server_state.tasks)
            raise

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        if self.force_exit:
            if self.cut_off:
                log.warning("forced quit: requests still running were cut off")
            else:
                log.info("forced quit once every request was answered: none was cut off")
            self.on_forced_quit()
        elif self.cut_off:
            log.warning(
                "stopped: requests still running after the graceful stop's %s s were cut off",
                self.config.timeout_graceful_shutdown,
            )

    def serve_until_stopped(self) -> int:
        """Run until stopped; the exit status: 0 for a clean stop (a forced quit that cut no
        request off included), ``FORCED_EXIT`` for a stop that cut requests off, uvicorn's
        ``STARTUP_FAILURE`` (3) when the server never started."""
        try:
            self.run()
        except KeyboardInterrupt:
            pass  # SIGINT, raised again by uvicorn once the server has stopped
        except SystemExit:  # SIGTERM's clean exit (``python -m service``), unless forced since
            if not self.force_exit:
                raise
        if not self.started:
            return STARTUP_FAILURE
        return FORCED_EXIT if self.cut_off else 0
