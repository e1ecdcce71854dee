"""Transport failures: not-sent vs possibly-sent, and the three timeouts (RELIABILITY #5-#8)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import anyio
import pytest
from aiohttp import web

from aivideo_async._config import Limits, RetryPolicy, Timeouts
from aivideo_async._exceptions import (
    ConnectError,
    PoolTimeout,
    ReadTimeout,
    RemoteDisconnected,
    RequestMaybeSent,
    RequestNotSent,
    TLSError,
    TotalTimeout,
)
from aivideo_async._session import Session, _Phase, _SendWatch, _watch_sends, map_aiohttp_errors

from .conftest import RecordingSleep, Serve, ServeRaw, read_request, refused_port

pytestmark = pytest.mark.anyio

ONE_TRY = RetryPolicy(attempts=1)


async def test_refused_port_is_connect_error_not_sent_reliability_6(
    fake_sleep: RecordingSleep,
) -> None:
    """RELIABILITY #6: refused connection -> ConnectError, request_sent False."""
    base = f"http://127.0.0.1:{refused_port()}"
    async with Session(provider="p", base_url=base, sleep=fake_sleep) as session:
        with pytest.raises(ConnectError) as caught:
            await session.request("POST", "/api/video/create", json={})
    err = caught.value
    assert isinstance(err, RequestNotSent)
    assert err.request_sent is False
    assert err.endpoint == "POST /api/video/create"
    assert isinstance(err.__cause__, aiohttp.ClientConnectorError)
    assert fake_sleep.calls == []  # a POST is never retried, even when provably not sent


async def test_server_closing_after_reading_is_remote_disconnected_reliability_3(
    serve_raw: ServeRaw,
) -> None:
    """RELIABILITY #3: the server read the request then closed -> possibly sent; seen once."""
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))

    base = await serve_raw(handler)
    async with Session(provider="p", base_url=base) as session:
        with pytest.raises(RemoteDisconnected) as caught:
            await session.request("POST", "/create", json={"x": 1})
    assert caught.value.request_sent is True
    assert isinstance(caught.value, RequestMaybeSent)
    assert len(seen) == 1


async def test_pool_wait_timeout_is_pool_timeout_not_sent_reliability_8(serve: Serve) -> None:
    """RELIABILITY #8: no free pooled connection within `connect` -> PoolTimeout, not sent."""
    release = asyncio.Event()
    started = asyncio.Event()
    hits: list[str] = []

    async def slow(request: web.Request) -> web.Response:
        hits.append(request.path)
        started.set()
        await release.wait()
        return web.json_response({"slow": True})

    app = web.Application()
    app.router.add_get("/slow", slow)
    app.router.add_post("/create", slow)
    base = await serve(app)
    limits = Limits(connections=1, per_host=1)
    async with Session(provider="p", base_url=base, limits=limits, retry=ONE_TRY) as session:
        holder = asyncio.ensure_future(session.request("GET", "/slow"))
        await started.wait()
        with pytest.raises(PoolTimeout) as caught:
            await session.request(
                "POST", "/create", json={}, timeouts=Timeouts(connect=0.2, read=5, total=5)
            )
        release.set()
        assert (await holder).json() == {"slow": True}
    assert caught.value.request_sent is False
    assert hits == ["/slow"]  # the create never reached the server


async def test_read_timeout_is_read_timeout_possibly_sent_reliability_1(serve: Serve) -> None:
    """RELIABILITY #1: no answer within `read` -> ReadTimeout (request_sent True); seen once."""
    release = asyncio.Event()
    hits: list[str] = []

    async def hang(request: web.Request) -> web.Response:
        hits.append(request.method)
        await release.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/create", hang)
    base = await serve(app)
    async with Session(provider="p", base_url=base) as session:
        with pytest.raises(ReadTimeout) as caught:
            await session.request(
                "POST", "/create", json={}, timeouts=Timeouts(connect=1, read=0.2, total=5)
            )
    release.set()
    assert caught.value.request_sent is True
    assert hits == ["POST"]


async def test_trickle_is_stopped_by_total_only_reliability_5(serve: Serve) -> None:
    """RELIABILITY #5: 1 byte per 0.4 s never trips `read` (1 s); only `total` (1.2 s) stops it."""
    sent = 0

    async def trickle(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        try:
            for _ in range(20):
                await resp.write(b" ")
                sent += 1
                await asyncio.sleep(0.4)
        except (ConnectionError, RuntimeError):
            pass
        return resp

    app = web.Application()
    app.router.add_get("/status", trickle)
    base = await serve(app)
    timeouts = Timeouts(connect=1, read=1, total=1.2)
    async with Session(provider="p", base_url=base, retry=ONE_TRY) as session:
        started = time.monotonic()
        with pytest.raises(TotalTimeout) as caught:
            await session.request("GET", "/status", timeouts=timeouts)
        elapsed = time.monotonic() - started
    assert caught.value.request_sent is True
    assert sent >= 3  # bytes kept arriving faster than the read timeout
    assert elapsed < 3.0


async def test_reset_mid_body_on_post_is_remote_disconnected_reliability_2_4(
    serve_raw: ServeRaw,
) -> None:
    """RELIABILITY #2/#4: a 200 with a truncated body -> RemoteDisconnected, not resent."""
    seen = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal seen
        await read_request(reader)
        seen += 1
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"jobId": "j'
        )
        await writer.drain()

    base = await serve_raw(handler)
    async with Session(provider="p", base_url=base) as session:
        with pytest.raises(RemoteDisconnected) as caught:
            await session.request("POST", "/create", json={})
    assert caught.value.request_sent is True
    assert seen == 1


def test_connect_timeout_outside_the_pool_is_connect_error_reliability_6() -> None:
    """RELIABILITY #6: aiohttp's ConnectionTimeoutError with no pool wait -> ConnectError."""
    phase = _Phase()
    phase.tracked = True
    with (
        pytest.raises(ConnectError) as caught,
        map_aiohttp_errors(provider="p", endpoint="POST /c", phase=phase),
    ):
        raise aiohttp.ConnectionTimeoutError("Connection timeout to host http://h/c?sig=zz")
    assert caught.value.request_sent is False
    assert "sig=zz" not in str(caught.value.__cause__)


def test_total_deadline_before_sending_is_not_sent() -> None:
    """The `total` deadline firing while still waiting for the pool is not sent (RELIABILITY #8)."""
    phase = _Phase()
    phase.tracked = True
    phase.queued = True
    with (
        pytest.raises(PoolTimeout),
        map_aiohttp_errors(provider="p", endpoint="GET /x", phase=phase),
    ):
        raise TimeoutError
    phase.queued = False
    phase.sent = True
    with (
        pytest.raises(TotalTimeout),
        map_aiohttp_errors(provider="p", endpoint="GET /x", phase=phase),
    ):
        raise TimeoutError


def test_cancellation_is_never_mapped() -> None:
    with pytest.raises(asyncio.CancelledError), map_aiohttp_errors(provider="p", endpoint="GET /x"):
        raise asyncio.CancelledError


async def test_tls_failure_is_tls_error_not_sent_reliability_7(serve_raw: ServeRaw) -> None:
    """RELIABILITY #7: a failed TLS handshake -> TLSError, request_sent False; never resent."""
    connections = 0

    async def plain_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.read(100)  # the ClientHello, which this server cannot speak
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    base = (await serve_raw(plain_http)).replace("http://", "https://")
    async with Session(provider="p", base_url=base) as session:
        with pytest.raises(TLSError) as caught:
            await session.request("POST", "/create", json={})
    assert caught.value.request_sent is False
    assert "TLS" in str(caught.value)
    assert connections == 1


@pytest.mark.parametrize("borrowed", [False, True], ids=["owned", "borrowed"])
async def test_a_cancelled_request_tells_whether_it_got_a_connection(
    serve: Serve, borrowed: bool
) -> None:
    """
    RELIABILITY #8 and #9: cancelled while waiting for the pool, a request of
    an owned session is provably unsent; one of a borrowed aiohttp session
    (whose connector we cannot watch) and one that got its connection may
    have been sent. The orchestrator journals ``not_sent`` only on the first.
    """
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        entered.set()
        await release.wait()
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/create", slow)
    base = await serve(app)
    client = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit_per_host=1))
    try:
        async with Session(
            provider="p",
            base_url=base,
            limits=Limits(connections=1, per_host=1),
            session=client if borrowed else None,
        ) as session:
            first, queued = _SendWatch(), _SendWatch()

            async def post(watch: _SendWatch) -> None:
                with _watch_sends(watch):
                    await session.request("POST", "/create", json={})

            async with anyio.create_task_group() as tg:
                tg.start_soon(post, first)
                await entered.wait()  # the first holds the only connection
                tg.start_soon(post, queued)
                await anyio.wait_all_tasks_blocked()  # the second waits for the pool
                tg.cancel_scope.cancel()
            release.set()
            assert first.maybe_sent
            assert not first.provably_unsent
            assert queued.provably_unsent is not borrowed
            done = _SendWatch()
            with _watch_sends(done):
                await session.request("POST", "/create", json={})
            assert done.maybe_sent
            assert not done.provably_unsent
    finally:
        await client.close()
