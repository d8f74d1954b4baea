"""Exit code 0 after a graceful shutdown on SIGTERM.

uvicorn handles SIGTERM gracefully (stops accepting, finishes in-flight requests, runs the
lifespan shutdown, which drains every batcher), then restores the previous signal handler and
raises the signal again so that the process ends "killed by SIGTERM" (exit status 143). A
service that was asked to stop and did so cleanly should exit 0, which is what process managers
and the issue expect. :func:`exit_zero_on_sigterm` installs a handler that turns the re-raised
signal (or a SIGTERM that arrives before uvicorn starts) into ``SystemExit(0)``.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


def _exit_zero(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def exit_zero_on_sigterm() -> None:
    """Call before ``uvicorn.run`` from the main thread."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_zero)
