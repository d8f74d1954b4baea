"""Ctrl-C and SIGTERM while a version is written must never publish it.

Python raises ``KeyboardInterrupt`` wherever the main thread is; inside a callback (TensorFlow's
weak-reference clean-ups during ``model.export``) it is printed as "Exception ignored" and the run
goes on, to write ``metadata.json`` and exit 0. The handlers installed here also remember the
signal, and :func:`check` raises it again where a version is about to be published. SIGTERM (a
container stopped) gets the same treatment, so the half-written folder is removed on the way out.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

_received: int | None = None


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """SIGINT and SIGTERM remembered, then interrupting, in this (main) thread; the handlers
    before it (and no remembered signal) are back afterwards. A signal the process was started
    to ignore (a background job's SIGINT) stays ignored."""
    global _received
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.getsignal(signum) for signum in signals}
    for signum in signals:
        if previous[signum] is not signal.SIG_IGN:
            signal.signal(signum, _interrupt)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _received = None


def _interrupt(signum: int, frame: FrameType | None) -> None:
    global _received
    _received = signum
    raise KeyboardInterrupt(signal.Signals(signum).name)


def check() -> None:
    """Raise KeyboardInterrupt when a signal arrived, even if the first raise was swallowed."""
    if _received is not None:
        raise KeyboardInterrupt(signal.Signals(_received).name)


def exit_status() -> int:
    """The shell's status for the signal received: 128 + its number (130 for Ctrl-C)."""
    return 128 + (_received or signal.SIGINT)
