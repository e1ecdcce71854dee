"""Emulator fixtures for the provider client tests (real loopback sockets, emulator clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aivideo_async._config import RetryPolicy
from aivideo_async.emulator import Emulator, EmulatorConfig, run_emulator

# Jobs take 20-60 s of emulator time: they stay queued until a test advances
# the emulator clock, so no test waits on real time.
SLOW_JOBS = EmulatorConfig(seed=3, time_scale=100.0)

FAST_RETRY = RetryPolicy(attempts=3, base=0.01, cap=0.02, retry_after_cap=120.0)
NO_RETRY = RetryPolicy(attempts=1)


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with run_emulator(SLOW_JOBS) as emulator:
        yield emulator


class FakeSleep:
    """Records every sleep and moves the emulator clock instead of waiting."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.emulator.advance(seconds)


@pytest.fixture
def fake_sleep(emu: Emulator) -> FakeSleep:
    return FakeSleep(emu)
