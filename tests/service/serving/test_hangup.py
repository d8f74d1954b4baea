"""SIGHUP in this process: a rescan on the event loop, none while starting, one more for a
SIGHUP during a rescan, and the previous handler back at stop."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from service.serving.hangup import Hangup

pytestmark = pytest.mark.anyio


class Registry:
    def __init__(self) -> None:
        self.started = False
        self.watcher = None
        self.rescans = 0
        self.gate = asyncio.Event()

    async def rescan(self) -> dict[str, list[str]]:
        self.rescans += 1
        await self.gate.wait()
        return {}


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.01)


async def test_sighup_rescans_once_started_and_the_old_handler_comes_back() -> None:
    registry = Registry()
    hangup = Hangup(registry)  # type: ignore[arg-type]
    before = signal.getsignal(signal.SIGHUP)
    hangup.start()
    try:
        os.kill(os.getpid(), signal.SIGHUP)  # while the models load: the start scans anyway
        await settle()
        assert registry.rescans == 0
        registry.started = True
        os.kill(os.getpid(), signal.SIGHUP)
        await settle()
        assert registry.rescans == 1
        for _ in range(3):  # during that rescan: one more when it ends, not three
            os.kill(os.getpid(), signal.SIGHUP)
        await settle()
        registry.gate.set()
        await settle()
        assert registry.rescans == 2
    finally:
        await hangup.stop()
    assert signal.getsignal(signal.SIGHUP) is before


async def test_off_the_main_thread_nothing_is_installed() -> None:
    hangup = Hangup(Registry())  # type: ignore[arg-type]
    before = signal.getsignal(signal.SIGHUP)
    await asyncio.to_thread(hangup.start)
    assert signal.getsignal(signal.SIGHUP) is before
    await hangup.stop()


async def test_a_second_app_keeps_the_signal_when_the_first_stops() -> None:
    first, second = Hangup(Registry()), Hangup(Registry())  # type: ignore[arg-type]
    before = signal.getsignal(signal.SIGHUP)
    first.start()
    second.start()
    try:
        await first.stop()
        assert signal.getsignal(signal.SIGHUP) == second._received  # not the default: a kill
    finally:
        await second.stop()
        signal.signal(signal.SIGHUP, before)


async def test_sighup_while_the_server_drains_is_ignored_and_its_stop_handler_still_runs() -> None:
    """After SIGTERM the server (here a recording handler in uvicorn's place) drains its
    requests before the app stops: a SIGHUP then neither rescans nor queues one more rescan."""
    stops: list[int] = []

    def server(signum: int, frame: object) -> None:
        stops.append(signum)

    registry = Registry()
    registry.started = True
    hangup = Hangup(registry)  # type: ignore[arg-type]
    before = signal.signal(signal.SIGTERM, server)
    try:
        hangup.start()
        try:
            os.kill(os.getpid(), signal.SIGHUP)  # a rescan under way when the stop comes
            await settle()
            assert registry.rescans == 1
            os.kill(os.getpid(), signal.SIGTERM)
            await settle()
            assert stops == [signal.SIGTERM]  # the server's handler was called
            os.kill(os.getpid(), signal.SIGHUP)
            await settle()
            registry.gate.set()  # the rescan under way ends: none after it
            await settle()
            assert registry.rescans == 1
            os.kill(os.getpid(), signal.SIGHUP)  # none under way: none started
            await settle()
            assert registry.rescans == 1
        finally:
            await hangup.stop()
        assert signal.getsignal(signal.SIGTERM) is server
    finally:
        signal.signal(signal.SIGTERM, before)


async def test_a_stop_signal_with_no_server_handler_is_left_alone() -> None:
    before = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    hangup = Hangup(Registry())  # type: ignore[arg-type]
    try:
        hangup.start()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        await hangup.stop()
    finally:
        signal.signal(signal.SIGTERM, before)
