"""
pytest fixtures that start the emulator on ``127.0.0.1:0``.

Enable with ``pytest_plugins = ["aivideo_async.emulator.pytest_plugin"]`` in a
``conftest.py`` (the async fixtures need the anyio pytest plugin, which ships
with anyio, and an ``anyio_backend`` fixture returning ``"asyncio"``).

* ``emulator``: a fresh emulator per test, seed 0, fast time scale (0.05: jobs
  take 10-30 ms).
* ``emulator_factory``: an async context factory for custom configs; every
  emulator it started is stopped after the test.

Example:
    A test using both::

        @pytest.mark.anyio
        async def test_polls(emulator, emulator_factory):
            assert emulator.base_url.startswith("http://127.0.0.1:")
            async with emulator_factory(EmulatorConfig(failure_rate=1.0)) as failing:
                ...
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import pytest

from ._app import Emulator, run_emulator
from ._state import EmulatorConfig

__all__ = ["FAST", "emulator", "emulator_factory"]

FAST = EmulatorConfig(time_scale=0.05)
"""The ``emulator`` fixture's config: seed 0, jobs of 10-30 ms."""

EmulatorFactory = Callable[[EmulatorConfig | None], AbstractAsyncContextManager[Emulator]]


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """A running emulator with :data:`FAST` config, stopped after the test."""
    async with run_emulator(FAST) as emu:
        yield emu


@pytest.fixture
async def emulator_factory() -> AsyncIterator[EmulatorFactory]:
    """``async with emulator_factory(config) as emu``; all stopped after the test."""
    async with contextlib.AsyncExitStack() as stack:

        @contextlib.asynccontextmanager
        async def factory(config: EmulatorConfig | None = None) -> AsyncIterator[Emulator]:
            emu = await stack.enter_async_context(run_emulator(config or FAST))
            yield emu

        yield factory
