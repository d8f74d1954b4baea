"""The training commands' signal handling: remembered, interrupting, restored, ignore kept."""

from __future__ import annotations

import os
import signal
import time

import pytest

from training import interrupts


def test_a_signal_interrupts_is_remembered_and_the_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with interrupts.handled():
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler runs (and raises) long before this ends
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            interrupts.check()  # again, as where a version is about to be published
        assert interrupts.exit_status() == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before
    interrupts.check()  # forgotten once the command is over


def test_a_signal_the_process_ignores_stays_ignored() -> None:
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupts.handled():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
