"""
An emulator of the Miraflow, NemoVideo and AIVideoMaker HTTP APIs on loopback.

Tests, the demo and the benchmarks run against it; you can too, to test your
own code without keys or credits. One ``aiohttp.web`` app serves all three
providers on one port, with a seeded job model, fault injection
(:mod:`aivideo_async.emulator._faults` lists every fault kind) and accounting
under ``/__emulator__/``. It imports nothing from the client layers: it
implements the wire contract of ``PROVIDER_APIS.md`` on its own.

Start it from a shell::

    python -m aivideo_async.emulator --port 8765 --seed 1 --time-scale 0.1

or in-process::

    async with run_emulator(EmulatorConfig(seed=1, time_scale=0.05)) as emu:
        print(emu.base_url)

or as pytest fixtures (``pytest_plugins = ["aivideo_async.emulator.pytest_plugin"]``):
``emulator`` and ``emulator_factory``.

Example:
    >>> from aivideo_async.emulator import EmulatorConfig, FaultRule
    >>> rule = FaultRule(endpoint="*.create", kind="drop_after_commit")
    >>> EmulatorConfig(faults=[rule]).faults[0].kind
    'drop_after_commit'
"""

from __future__ import annotations

from ._app import STATE, Emulator, build_app, run_emulator
from ._faults import ENDPOINTS, KINDS, FaultRule
from ._state import EmulatorConfig

__all__ = [
    "ENDPOINTS",
    "KINDS",
    "STATE",
    "Emulator",
    "EmulatorConfig",
    "FaultRule",
    "build_app",
    "run_emulator",
]
