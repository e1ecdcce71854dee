"""
``request(..., deadline=)``: one overall deadline across retries (RELIABILITY #13, #26, #32).

The schedule tests run on a fake clock whose ``sleep`` advances it, so they
prove the deadline is read from the injected clock and nothing really waits.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import anyio
import pytest
from aiohttp import web

from aivideo_async._config import RetryPolicy, Timeouts
from aivideo_async._exceptions import (
    InvalidInput,
    RateLimited,
    ReadTimeout,
    ServerError,
    TotalTimeout,
)
from aivideo_async._session import Session

from .conftest import FixedRandom, RecordingSleep, Serve

pytestmark = pytest.mark.anyio

NO_JITTER = RetryPolicy(attempts=10, base=1.0, cap=8.0, jitter=False)


class FakeTime:
    """A monotonic clock that only moves when ``sleep`` is awaited."""

    def __init__(self) -> None:
        self.now = 5000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def failing_app(
    status: int, headers: dict[str, str] | None = None, failures: int = 10_000
) -> tuple[web.Application, list[float]]:
    hits: list[float] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(1.0)
        if len(hits) <= failures:
            return web.json_response({"error": "busy"}, status=status, headers=headers)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/s", handler)
    return app, hits


def session_on(base: str, time: FakeTime, retry: RetryPolicy = NO_JITTER) -> Session:
    return Session(
        provider="p",
        base_url=base,
        clock=time.clock,
        sleep=time.sleep,
        rng=FixedRandom(0.5),
        retry=retry,
    )


async def test_no_backoff_sleep_ends_past_the_deadline_reliability_26_32(serve: Serve) -> None:
    """
    RELIABILITY #26/#32: backoff 1, 2, 4, ... on the injected clock with a 5 s deadline.

    Tries at t=0, 1 and 3; the next sleep (4 s) would end at t=7, so the last
    error is raised at t=3 instead. Without a deadline all ten tries are made.
    """
    app, hits = failing_app(503)
    base = await serve(app)
    time = FakeTime()
    async with session_on(base, time) as session:
        with pytest.raises(ServerError):
            await session.request("GET", "/s", deadline=5)
        assert time.sleeps == [1.0, 2.0]
        assert len(hits) == 3
        assert time.now == 5003.0

        hits.clear()
        time.sleeps.clear()
        with pytest.raises(ServerError):
            await session.request("GET", "/s")
    assert len(hits) == 10
    assert time.sleeps == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0]


async def test_retry_after_longer_than_the_time_left_raises_at_once_reliability_13_26(
    serve: Serve,
) -> None:
    """RELIABILITY #13/#26: a 10 s Retry-After (under the 120 s cap) vs a 5 s deadline."""
    app, hits = failing_app(429, {"Retry-After": "10"}, failures=1)
    base = await serve(app)
    time = FakeTime()
    async with session_on(base, time) as session:
        with pytest.raises(RateLimited) as caught:
            await session.request("GET", "/s", deadline=5)
        assert caught.value.retry_after == 10.0
        assert time.sleeps == []  # raised immediately, nothing slept
        assert len(hits) == 1

        hits.clear()  # the server answers 429 once more
        resp = await session.request("GET", "/s", deadline=30)  # enough time: honoured
    assert resp.json() == {"ok": True}
    # First the pause the earlier 429 put on every read (RELIABILITY #25), then this call's
    # own Retry-After.
    assert time.sleeps == [10.0, 10.0]


async def test_the_time_left_not_the_whole_deadline_bounds_each_retry_reliability_13(
    serve: Serve,
) -> None:
    """RELIABILITY #13: Retry-After 2 s under a 5 s deadline: slept at t=0 and t=2, not at t=4."""
    app, hits = failing_app(503, {"Retry-After": "2"})
    base = await serve(app)
    time = FakeTime()
    async with session_on(base, time) as session:
        with pytest.raises(ServerError):
            await session.request("GET", "/s", deadline=5)
    assert time.sleeps == [2.0, 2.0]
    assert len(hits) == 3


async def test_a_sleep_ending_exactly_at_the_deadline_is_not_started(serve: Serve) -> None:
    """A retry needs time to run: backoff 1 then 2 under a 3 s deadline stops after one sleep."""
    app, hits = failing_app(503)
    base = await serve(app)
    time = FakeTime()
    async with session_on(base, time) as session:
        with pytest.raises(ServerError):
            await session.request("GET", "/s", deadline=3)
    assert time.sleeps == [1.0]
    assert len(hits) == 2


async def test_each_attempt_is_shortened_to_end_by_the_deadline(
    serve: Serve, fake_sleep: RecordingSleep
) -> None:
    """
    A hung server and per-attempt timeouts of 60 s read / no total: the 0.3 s
    deadline alone ends the call (real time is what is under test here).
    """
    release = asyncio.Event()
    hits: list[str] = []

    async def hang(request: web.Request) -> web.Response:
        hits.append(request.method)
        await release.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/hang", hang)
    base = await serve(app)
    timeouts = Timeouts(connect=5, read=60, total=None)
    async with Session(
        provider="p", base_url=base, timeouts=timeouts, sleep=fake_sleep, rng=FixedRandom()
    ) as session:
        with anyio.fail_after(10), pytest.raises((ReadTimeout, TotalTimeout)) as caught:
            await session.request("GET", "/hang", deadline=0.3)
    release.set()
    assert caught.value.request_sent is True
    assert hits == ["GET"]
    assert fake_sleep.calls == []  # no time was left for a retry


@pytest.mark.parametrize("value", [0, -1.5, math.nan, math.inf, True, "5"])
async def test_bad_deadline_is_invalid_input_and_nothing_is_sent(
    serve: Serve, value: object
) -> None:
    app, hits = failing_app(200)
    base = await serve(app)
    async with Session(provider="p", base_url=base) as session:
        with pytest.raises(InvalidInput) as caught:
            await session.request("GET", "/s", deadline=value)  # type: ignore[arg-type]
    assert caught.value.field == "deadline"
    assert hits == []


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def test_download_retries_stop_at_the_deadline(serve: Serve, tmp_path: Path) -> None:
    """``download(deadline=)``: the same bound on retries as ``request`` (RELIABILITY #26)."""
    app, hits = failing_app(503)
    base = await serve(app)
    time = FakeTime()
    async with session_on(base, time) as session:
        with pytest.raises(ServerError):
            await session.download("/s", tmp_path / "out.bin", deadline=5)
    assert time.sleeps == [1.0, 2.0]
    assert len(hits) == 3
    assert _files(tmp_path) == []


async def test_a_download_that_stalls_ends_at_its_deadline(
    serve: Serve, fake_sleep: RecordingSleep, tmp_path: Path
) -> None:
    """
    Headers and part of the body, then silence, with 60 s read and no total:
    the 0.3 s deadline ends the download, and no partial file is left.
    """
    release = asyncio.Event()
    hits: list[str] = []

    async def trickle(request: web.Request) -> web.StreamResponse:
        hits.append(request.method)
        resp = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        resp.content_length = 1000
        await resp.prepare(request)
        await resp.write(b"x" * 100)
        await release.wait()
        return resp

    app = web.Application()
    app.router.add_get("/video", trickle)
    base = await serve(app)
    timeouts = Timeouts(connect=5, read=60, total=None)
    async with Session(
        provider="p", base_url=base, timeouts=timeouts, sleep=fake_sleep, rng=FixedRandom()
    ) as session:
        with anyio.fail_after(10), pytest.raises((ReadTimeout, TotalTimeout)):
            await session.download("/video", tmp_path / "out.mp4", deadline=0.3)
        with pytest.raises(InvalidInput) as caught:
            await session.download("/video", tmp_path / "out.mp4", deadline=-1)
    release.set()
    assert caught.value.field == "deadline"
    assert hits == ["GET"]
    assert fake_sleep.calls == []
    assert _files(tmp_path) == []


async def test_stream_retries_stop_at_the_deadline(serve: Serve) -> None:
    """``stream(deadline=)``: the retry bound of ``request`` for opening a stream."""
    app, hits = failing_app(503)
    base = await serve(app)
    time = FakeTime()
    async with session_on(base, time) as session:
        with pytest.raises(ServerError):
            async with session.stream("GET", "/s", deadline=5):
                pass
    assert time.sleeps == [1.0, 2.0]
    assert len(hits) == 3


async def test_a_stream_that_does_not_open_by_its_deadline_is_a_total_timeout(
    serve: Serve, fake_sleep: RecordingSleep
) -> None:
    """No answer at all (60 s read): the 0.3 s deadline ends the open; maybe sent, no retry."""
    release = asyncio.Event()
    hits: list[str] = []

    async def hang(request: web.Request) -> web.Response:
        hits.append(request.method)
        await release.wait()
        return web.Response(text="data: late\n\n", content_type="text/event-stream")

    app = web.Application()
    app.router.add_post("/run_sse", hang)
    base = await serve(app)
    timeouts = Timeouts(connect=5, read=60, total=None)
    async with Session(
        provider="p", base_url=base, timeouts=timeouts, sleep=fake_sleep, rng=FixedRandom()
    ) as session:
        with anyio.fail_after(10), pytest.raises(TotalTimeout) as caught:
            async with session.stream("POST", "/run_sse", json={}, deadline=0.3):
                pass
        with pytest.raises(InvalidInput) as bad:
            async with session.stream("POST", "/run_sse", json={}, deadline=0):
                pass
    release.set()
    assert caught.value.request_sent is True
    assert "deadline" in str(caught.value)
    assert bad.value.field == "deadline"
    assert hits == ["POST"]
    assert fake_sleep.calls == []


async def test_the_deadline_does_not_bound_reading_an_open_stream(serve: Serve) -> None:
    """Opened in time, the stream is read to its end even after the deadline has passed."""
    gate = asyncio.Event()

    async def sse(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"data: one\n\n")
        await gate.wait()
        await resp.write(b"data: two\n\n")
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/sse", sse)
    base = await serve(app)
    chunks: list[bytes] = []
    async with Session(provider="p", base_url=base) as session:
        with anyio.fail_after(10):
            async with session.stream("GET", "/sse", deadline=0.2) as stream:
                async for chunk in stream.iter_bytes():
                    chunks.append(chunk)
                    if not gate.is_set():
                        await anyio.sleep(0.4)  # real time past the deadline is the point
                        gate.set()
    assert b"".join(chunks) == b"data: one\n\ndata: two\n\n"
