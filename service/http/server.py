"""The server process of ``python -m service`` (one worker): uvicorn's server, with a forced quit
that still writes out what was accepted and says it was forced.

A first SIGINT or SIGTERM stops gracefully: no new connections, accepted requests finished, then
the lifespan's shutdown (batchers drained, payload log written out). A second SIGINT during that
wait is uvicorn's forced quit: it stops waiting for requests and skips the lifespan's shutdown.
What the payload log already holds was accepted, so ``on_forced_quit`` writes it out
synchronously before the process ends, and the exit status is ``FORCED_EXIT`` (130, the shell's
status for a process stopped by SIGINT) instead of uvicorn's 0, so that a supervisor or a script
can tell a forced quit from a clean stop.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

import uvicorn
from uvicorn.config import STARTUP_FAILURE

log = logging.getLogger("service.server")
FORCED_EXIT = 130


class Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_forced_quit: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_forced_quit = on_forced_quit

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        if self.force_exit:
            log.warning("forced quit: requests still running were cut off")
            self.on_forced_quit()

    def serve_until_stopped(self) -> int:
        """Run until stopped; the exit status: 0 for a clean stop, ``FORCED_EXIT`` for a forced
        quit, uvicorn's ``STARTUP_FAILURE`` (3) when the server never started."""
        try:
            self.run()
        except KeyboardInterrupt:
            pass  # SIGINT, raised again by uvicorn once the server has stopped
        except SystemExit:  # SIGTERM's clean exit (``python -m service``), unless forced since
            if not self.force_exit:
                raise
        if not self.started:
            return STARTUP_FAILURE
        return FORCED_EXIT if self.force_exit else 0
