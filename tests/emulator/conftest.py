"""Fixtures for the emulator's own tests: the plugin's fixtures plus a raw aiohttp session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from aivideo_async.emulator.pytest_plugin import emulator, emulator_factory  # noqa: F401


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session (never the library's client code)."""
    async with aiohttp.ClientSession() as session:
        yield session
