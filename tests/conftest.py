from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# The emulator fixtures (`emulator`, `emulator_factory`), as users enable them in their own suites.
pytest_plugins = ["aivideo_async.emulator.pytest_plugin"]

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
