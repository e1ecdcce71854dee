"""
Fixtures for the provider client tests (real loopback sockets, emulator clock):
the emulator, a stand-in server for wire variants the emulator does not send,
and the create faults every client must survive without sending twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from aivideo_async._config import RetryPolicy, Timeouts
from aivideo_async._exceptions import RemoteDisconnected, RequestMaybeSent, ServerError
from aivideo_async.emulator import Emulator, EmulatorConfig, run_emulator

# Jobs take 20-60 s of emulator time: they stay queued until a test advances
# the emulator clock, so no test waits on real time.
SLOW_JOBS = EmulatorConfig(seed=3, time_scale=100.0)

# A valid 1x1 PNG: uploads and data URIs are checked against their real bytes.
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc````\x00\x00\x00\x05\x00\x01\xa5\xf6E@\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)

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


Answers = dict[str, tuple[int, Any]]
"""``"METHOD /path"`` -> (HTTP status, JSON body) the stand-in server answers."""


@pytest.fixture
async def stand_in() -> AsyncIterator[tuple[Answers, str]]:
    """A loopback server answering what the test puts in ``answers``; yields it and its URL."""
    answers: Answers = {}

    async def handler(request: web.Request) -> web.Response:
        status, body = answers[f"{request.method} {request.path}"]
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    async with TestServer(app, host="127.0.0.1") as server:
        yield answers, f"http://127.0.0.1:{server.port}"


# Short create timeouts so the stall fault turns into RequestMaybeSent quickly.
CREATE_TIMEOUTS = Timeouts(connect=1.0, read=0.2, total=1.0)

# Every create fault with the error the client raises; none may lead to a resend.
CREATE_FAULTS = pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ({"kind": "server_error", "params": {"status": 502, "commit": True}}, ServerError),
        ({"kind": "server_error", "params": {"status": 500}}, ServerError),
        ({"kind": "server_error", "params": {"status": 503}}, ServerError),
        ({"kind": "drop_after_commit"}, RemoteDisconnected),
        ({"kind": "truncate"}, RequestMaybeSent),
        ({"kind": "stall_after_commit", "params": {"seconds": 5}}, RequestMaybeSent),
    ],
)


def assert_sent_once(emu: Emulator, provider: str, fault: dict[str, Any]) -> None:
    """One create request reached the emulator; it made a job only if the fault let it commit."""
    stats = emu.stats()
    assert stats["requests_by_endpoint"][f"{provider}.create"] == 1
    committed = fault.get("params", {}).get("commit", fault["kind"] != "server_error")
    assert int(stats["creates"].get(provider, 0)) == (1 if committed else 0)
