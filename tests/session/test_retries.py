"""Retries: idempotent only, full jitter, Retry-After in both forms, the shared budget."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from aiohttp import web

from aivideo_async._config import RetryPolicy, Timeouts
from aivideo_async._exceptions import (
    RateLimited,
    RemoteDisconnected,
    ServerError,
)
from aivideo_async._secret import Secret
from aivideo_async._session import HeaderKeyAuth, Session

from .conftest import FixedRandom, RecordingSleep, Serve, ServeRaw, read_request

pytestmark = pytest.mark.anyio


def make_session(base: str, key: Secret, sleep: RecordingSleep, **kwargs: object) -> Session:
    return Session(
        provider="testprov",
        base_url=base,
        auth=HeaderKeyAuth("x-api-key", key),
        sleep=sleep,
        rng=FixedRandom(0.5),
        **kwargs,  # type: ignore[arg-type]
    )


def flaky_app(
    failures: int, status: int = 503, headers: dict[str, str] | None = None
) -> tuple[web.Application, list[str]]:
    hits: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.method)
        if len(hits) <= failures:
            return web.json_response({"error": "busy"}, status=status, headers=headers)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/r", handler)
    return app, hits


async def test_get_503_retried_with_full_jitter_reliability_24(
    serve: Serve, key: Secret, fake_sleep: RecordingSleep
) -> None:
    """RELIABILITY #24: GET failures retried with full jitter, charged to the budget."""
    app, hits = flaky_app(failures=3)
    base = await serve(app)
    policy = RetryPolicy(attempts=6, base=0.5, cap=30.0)
    async with make_session(base, key, fake_sleep, retry=policy) as session:
        resp = await session.request("GET", "/r")
        tokens_after = session.retry_budget.tokens
    assert resp.json() == {"ok": True}
    assert hits == ["GET"] * 4
    # rng fixed at 0.5: half of the ceilings 0.5, 1, 2 (no real waiting happened)
    assert fake_sleep.calls == [0.25, 0.5, 1.0]
    assert tokens_after == 500 - 3 * 5 + 1  # three retries paid, one success refunded


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_post_503_is_never_retried(
    serve: Serve, key: Secret, fake_sleep: RecordingSleep, method: str
) -> None:
    app, hits = flaky_app(failures=5)
    base = await serve(app)
    async with make_session(base, key, fake_sleep) as session:
        with pytest.raises(ServerError):
            await session.request(method, "/r", json={})
    assert hits == [method]
    assert fake_sleep.calls == []


async def test_explicit_idempotent_false_get_is_not_retried(
    serve: Serve, key: Secret, fake_sleep: RecordingSleep
) -> None:
    app, hits = flaky_app(failures=5)
    base = await serve(app)
    async with make_session(base, key, fake_sleep) as session:
        with pytest.raises(ServerError):
            await session.request("GET", "/r", idempotent=False)
    assert len(hits) == 1


async def test_retry_after_delay_seconds_reliability_13(
    serve: Serve, key: Secret, fake_sleep: RecordingSleep
) -> None:
    """RELIABILITY #13: Retry-After as delay-seconds is honoured exactly."""
    app, hits = flaky_app(failures=1, status=429, headers={"Retry-After": "7"})
    base = await serve(app)
    async with make_session(base, key, fake_sleep) as session:
        await session.request("GET", "/r")
    assert fake_sleep.calls == [7.0]
    assert len(hits) == 2


async def test_retry_after_http_date_read_against_date_header_reliability_13_32(
    serve: Serve, key: Secret, fake_sleep: RecordingSleep
) -> None:
    """RELIABILITY #13 (HTTP-date form) and #32 (read against the response Date, not our clock)."""
    server_now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)  # a badly skewed server clock
    headers = {
        "Date": format_datetime(server_now, usegmt=True),
        "Retry-After": format_datetime(server_now + timedelta(seconds=30), usegmt=True),
    }
    hits: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(1)
        if len(hits) == 1:
            resp = web.json_response({"error": "slow down"}, status=503)
            resp.headers.update(headers)  # aiohttp would otherwise stamp its own Date
            return resp
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/r", handler)
    base = await serve(app)
    async with make_session(base, key, fake_sleep) as session:
        await session.request("GET", "/r")
    assert fake_sleep.calls == [30.0]


@pytest.mark.parametrize("value", ["soon", "-5", "Wed, 21 Oct 2015 07:28:00 GMT"])
async def test_retry_after_garbage_negative_or_past_reliability_13(
    serve: Serve, key: Secret, fake_sleep: RecordingSleep, value: str
) -> None:
    """RELIABILITY #13: garbage -> the jittered default; negative or past -> 0."""
    app, _ = flaky_app(failures=1, status=429, headers={"Retry-After": value})
    base = await serve(app)
    async with make_session(base, key, fake_sleep) as session:
        await session.request("GET", "/r")
    expected = 0.25 if value == "soon" else 0.0
    assert fake_sleep.calls == [expected]


async def test_retry_after_over_cap_raises_rate_limited_without_sleeping_reliability_13(
    serve: Serve, key: Secret, fake_sleep: RecordingSleep
) -> None:
    """RELIABILITY #13/#26: a huge Retry-After is surfaced, never slept through."""
    app, hits = flaky_app(failures=5, status=429, headers={"Retry-After": "3600"})
    base = await serve(app)
    policy = RetryPolicy(retry_after_cap=120.0)
    async with make_session(base, key, fake_sleep, retry=policy) as session:
        with pytest.raises(RateLimited) as caught:
            await session.request("GET", "/r")
    assert caught.value.retry_after == 3600.0
    assert fake_sleep.calls == []
    assert len(hits) == 1


async def test_attempts_exhausted_raises_last_error(
    serve: Serve, key: Secret, fake_sleep: RecordingSleep
) -> None:
    app, hits = flaky_app(failures=99)
    base = await serve(app)
    async with make_session(base, key, fake_sleep, retry=RetryPolicy(attempts=3)) as session:
        with pytest.raises(ServerError):
            await session.request("GET", "/r")
    assert len(hits) == 3
    assert len(fake_sleep.calls) == 2


async def test_budget_exhaustion_fails_fast_across_requests_reliability_24(
    serve: Serve, key: Secret, fake_sleep: RecordingSleep
) -> None:
    """RELIABILITY #24/#31: an empty shared budget means no more retries, for every request."""
    app, hits = flaky_app(failures=99)
    base = await serve(app)
    policy = RetryPolicy(attempts=6, budget=10, retry_cost=5)
    async with make_session(base, key, fake_sleep, retry=policy) as session:
        with pytest.raises(ServerError):
            await session.request("GET", "/r")
        assert len(hits) == 3  # two retries paid 10 tokens, then the budget was empty
        with pytest.raises(ServerError):
            await session.request("GET", "/r")
        assert session.retry_budget.tokens == 0
    assert len(hits) == 4  # the second request failed fast: one try, no retry
    assert len(fake_sleep.calls) == 2


async def test_budget_can_be_shared_between_sessions(
    serve: Serve, key: Secret, fake_sleep: RecordingSleep
) -> None:
    app, hits = flaky_app(failures=99)
    base = await serve(app)
    policy = RetryPolicy(attempts=6, budget=5, retry_cost=5)
    async with (
        make_session(base, key, fake_sleep, retry=policy) as first,
        make_session(
            base, key, fake_sleep, retry=policy, retry_budget=first.retry_budget
        ) as second,
    ):
        with pytest.raises(ServerError):
            await first.request("GET", "/r")
        with pytest.raises(ServerError):
            await second.request("GET", "/r")
    assert len(hits) == 3  # 2 for the first (one retry), 1 for the second (budget empty)


async def test_get_transport_error_is_retried(
    serve_raw: ServeRaw, key: Secret, fake_sleep: RecordingSleep
) -> None:
    """
    RELIABILITY #24: a GET whose connection is closed is retried; the retry succeeds.

    aiohttp itself may replay an idempotent request once on a dropped connection
    (RFC 9112 §9.3.1), so the first two tries fail and at least one of our
    (recorded) backoff sleeps is needed.
    """
    requests = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        await read_request(reader)
        requests += 1
        if requests <= 2:
            return  # close without answering
        body = b'{"ok":true}'
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()

    base = await serve_raw(handler)
    async with make_session(base, key, fake_sleep) as session:
        resp = await session.request("GET", "/r")
    assert resp.json() == {"ok": True}
    assert requests == 3
    assert 1 <= len(fake_sleep.calls) <= 2


async def test_post_disconnect_is_not_retried_reliability_3(
    serve_raw: ServeRaw, key: Secret, fake_sleep: RecordingSleep
) -> None:
    """RELIABILITY #3: a POST whose server closed after reading is never resent."""
    requests = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        await read_request(reader)
        requests += 1

    base = await serve_raw(handler)
    async with make_session(base, key, fake_sleep) as session:
        with pytest.raises(RemoteDisconnected) as caught:
            await session.request("POST", "/create", json={"a": 1})
    assert caught.value.request_sent is True
    assert requests == 1
    assert fake_sleep.calls == []


async def test_retries_logged_at_debug_with_reason_and_no_query(
    serve: Serve, key: Secret, fake_sleep: RecordingSleep, caplog: pytest.LogCaptureFixture
) -> None:
    app, _ = flaky_app(failures=1)
    base = await serve(app)
    caplog.set_level(logging.DEBUG, logger="aivideo_async.session")
    async with make_session(base, key, fake_sleep) as session:
        await session.request("GET", "/r", params={"signature": "qs-secret"})
    messages = [r.getMessage() for r in caplog.records if r.name == "aivideo_async.session"]
    retry_lines = [m for m in messages if "retry 1 of" in m]
    assert len(retry_lines) == 1
    assert "ServerError" in retry_lines[0]
    assert "GET /r" in retry_lines[0]
    assert all("qs-secret" not in m for m in messages)
    assert all(r.levelno == logging.DEBUG for r in caplog.records if "retry" in r.getMessage())


async def test_get_read_timeout_is_retried_and_charged_the_timeout_cost_reliability_24(
    serve: Serve, key: Secret, fake_sleep: RecordingSleep
) -> None:
    """
    RELIABILITY #24: a GET that times out is retried with jitter and costs the
    budget ``timeout_cost`` (10), not ``retry_cost`` (5). A 0.2 s real read
    timeout: real time is the thing under test.
    """
    release = asyncio.Event()
    hits: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(1)
        if len(hits) == 1:
            await release.wait()  # silent until the client gave up
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/r", handler)
    base = await serve(app)
    async with make_session(base, key, fake_sleep) as session:
        resp = await session.request("GET", "/r", timeouts=Timeouts(connect=1, read=0.2, total=5))
        tokens = session.retry_budget.tokens
    release.set()
    assert resp.json() == {"ok": True}
    assert len(hits) == 2
    assert fake_sleep.calls == [0.25]  # full jitter: half of the 0.5 s first ceiling
    assert tokens == 500 - 10 + 1


async def test_get_reset_mid_response_is_retried_reliability_24(
    serve_raw: ServeRaw, key: Secret, fake_sleep: RecordingSleep
) -> None:
    """RELIABILITY #24: a connection reset (RST) in the middle of a GET's body is retried."""
    requests = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        await read_request(reader)
        requests += 1
        body = b'{"status": "inference_working", "progress": 40}'
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        if requests == 1:
            writer.write(head % len(body) + body[:10])
            await writer.drain()
            writer.transport.abort()  # RST
            return
        writer.write(head % len(body) + body)
        await writer.drain()

    base = await serve_raw(handler)
    async with make_session(base, key, fake_sleep) as session:
        resp = await session.request("GET", "/r")
    assert resp.json() == {"status": "inference_working", "progress": 40}
    assert requests == 2
    assert fake_sleep.calls == [0.25]


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"])
async def test_idempotent_methods_are_retried_by_default(
    serve: Serve, key: Secret, fake_sleep: RecordingSleep, method: str
) -> None:
    app, hits = flaky_app(failures=2)
    base = await serve(app)
    async with make_session(base, key, fake_sleep) as session:
        resp = await session.request(method, "/r")
    assert resp.status == 200
    assert hits == [method] * 3
    assert len(fake_sleep.calls) == 2


async def test_post_declared_idempotent_is_retried(
    serve: Serve, key: Secret, fake_sleep: RecordingSleep
) -> None:
    """A caller may declare a POST safe to repeat (e.g. a search); then it is retried."""
    app, hits = flaky_app(failures=1)
    base = await serve(app)
    async with make_session(base, key, fake_sleep) as session:
        resp = await session.request("POST", "/r", json={"q": 1}, idempotent=True)
    assert resp.json() == {"ok": True}
    assert hits == ["POST", "POST"]


async def test_a_wall_clock_jump_does_not_touch_the_deadline_reliability_32(
    serve: Serve, key: Secret, fake_sleep: RecordingSleep, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    RELIABILITY #32: the wall clock jumps a day forward mid-call; the deadline
    is on the monotonic clock, so the retry still happens.
    """
    real_time = time.time
    hits: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(1)
        if len(hits) == 1:
            monkeypatch.setattr(time, "time", lambda: real_time() + 86_400)
            return web.json_response({"error": "busy"}, status=503)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/r", handler)
    base = await serve(app)
    async with make_session(base, key, fake_sleep) as session:
        resp = await session.request("GET", "/r", deadline=60)
    assert resp.json() == {"ok": True}
    assert len(hits) == 2
    assert fake_sleep.calls == [0.25]
