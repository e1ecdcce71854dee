"""A 429 on a read pauses every read of the session, not only the one that got it."""

from __future__ import annotations

import pytest
from aiohttp import web

from aivideo_async._config import RetryPolicy
from aivideo_async._exceptions import RateLimited
from aivideo_async._session import Session

from .conftest import FixedRandom, Serve
from .test_deadline import FakeTime

pytestmark = pytest.mark.anyio

ONE_TRY = RetryPolicy(attempts=1, jitter=False)


def limited_app(seen: list[str]) -> web.Application:
    async def limited(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({"error": "slow down"}, status=429, headers={"Retry-After": "7"})

    async def ok(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/limited", limited)
    app.router.add_get("/other", ok)
    app.router.add_post("/create", ok)
    return app


def session_on(base: str, time: FakeTime) -> Session:
    return Session(
        provider="p",
        base_url=base,
        clock=time.clock,
        sleep=time.sleep,
        rng=FixedRandom(0.5),
        retry=ONE_TRY,
    )


async def test_a_429_pauses_every_read_of_the_host_reliability_25(serve: Serve) -> None:
    """RELIABILITY #25: the whole host waits for Retry-After, not just one request."""
    seen: list[str] = []
    base = await serve(limited_app(seen))
    time = FakeTime()
    async with session_on(base, time) as session:
        with pytest.raises(RateLimited):
            await session.request("GET", "/limited")
        assert session.paused_for == 7.0
        assert session.host_pauses == 1
        started = time.now
        await session.request("GET", "/other")  # another read: waits out the pause first
        assert time.sleeps == [7.0]
        assert time.now - started == 7.0
        assert session.paused_for == 0.0
        await session.request("GET", "/other")  # the pause is over: no more waiting
    assert time.sleeps == [7.0]
    assert seen == ["/limited", "/other", "/other"]


async def test_a_read_whose_deadline_ends_inside_the_pause_raises_at_once_reliability_25(
    serve: Serve,
) -> None:
    """RELIABILITY #25/#26: a pause longer than the call's time left is not slept through."""
    seen: list[str] = []
    base = await serve(limited_app(seen))
    time = FakeTime()
    async with session_on(base, time) as session:
        with pytest.raises(RateLimited):
            await session.request("GET", "/limited")
        with pytest.raises(RateLimited) as caught:
            await session.request("GET", "/other", deadline=3)
    assert caught.value.retry_after == 7.0
    assert time.sleeps == []
    assert seen == ["/limited"]  # the paused read never left


async def test_creates_are_not_held_by_the_read_pause_reliability_12_25(serve: Serve) -> None:
    """RELIABILITY #12: a create's 429 rule belongs to the orchestrator; the read pause leaves
    creates alone (they are never retried by the session either)."""
    seen: list[str] = []
    base = await serve(limited_app(seen))
    time = FakeTime()
    async with session_on(base, time) as session:
        with pytest.raises(RateLimited):
            await session.request("GET", "/limited")
        await session.request("POST", "/create", json={})
    assert time.sleeps == []
    assert seen == ["/limited", "/create"]
