"""
``aiter_sse`` over a real aiohttp response from a server on 127.0.0.1:0.

The idle timeout is what is under test here, so these tests use small real
timeouts (0.2 s); the server's pauses are waits on events or short real sleeps
that the timeout is measured against.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from aivideo_async._exceptions import InvalidInput, SSELimitExceeded, StreamIdleTimeout
from aivideo_async._sse import ServerSentEvent, SSEComment, SSEDecoder, aiter_sse

pytestmark = pytest.mark.anyio

Handler = Callable[[web.StreamResponse], Awaitable[None]]


async def serve(script: Handler) -> TestServer:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await script(response)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/run_sse", handler)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    return server


async def collect(items: AsyncIterator[object]) -> list[object]:
    return [item async for item in items]


async def drain(items: AsyncIterator[ServerSentEvent], into: list[ServerSentEvent]) -> None:
    """Append each item to ``into`` until the iterator ends or raises."""
    async for item in items:
        into.append(item)


async def test_events_and_heartbeats_from_an_aiohttp_response() -> None:
    async def script(response: web.StreamResponse) -> None:
        await response.write(b": heartbeat\n")
        await response.write(b'id: 1\nevent: message\ndata: {"a": ')
        await response.write(b"1}\n\r")
        await response.write(b"\ndata: second\n\n: heartbeat\n")
        await response.write(b"data: unterminated at the end\n")

    server = await serve(script)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.make_url("/run_sse")) as resp:
                items = await collect(
                    aiter_sse(resp.content.iter_any(), idle_timeout=5, include_comments=True)
                )
            async with session.get(server.make_url("/run_sse")) as resp:
                events = await collect(aiter_sse(resp.content.iter_any(), idle_timeout=None))
    finally:
        await server.close()
    first = ServerSentEvent("message", '{"a": 1}', "1", None)
    second = ServerSentEvent("message", "second", "1", None)
    assert items == [SSEComment("heartbeat"), first, second, SSEComment("heartbeat")]
    assert events == [first, second]
    assert first.json() == {"a": 1}


async def test_silence_past_the_idle_timeout_raises() -> None:
    release = asyncio.Event()

    async def script(response: web.StreamResponse) -> None:
        await response.write(b"data: hello\n\n")
        await release.wait()  # silent until the test is over

    server = await serve(script)
    received: list[ServerSentEvent] = []
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(server.make_url("/run_sse")) as resp,
        ):
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(StreamIdleTimeout) as info:
                await drain(aiter_sse(resp.content.iter_any(), idle_timeout=0.2), received)
            waited = loop.time() - started
    finally:
        release.set()
        await server.close()
    assert received == [ServerSentEvent("message", "hello", None, None)]
    assert info.value.request_sent is True
    assert 0.2 <= waited < 5


async def test_heartbeats_count_as_activity() -> None:
    async def script(response: web.StreamResponse) -> None:
        # 0.8 s of heartbeats only (twice the 0.4 s idle timeout), one every 0.05 s.
        for _ in range(16):
            await response.write(b": keep-alive\n")
            await asyncio.sleep(0.05)
        await response.write(b"data: done\n\n")

    server = await serve(script)
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(server.make_url("/run_sse")) as resp,
        ):
            items = await collect(
                aiter_sse(resp.content.iter_any(), idle_timeout=0.4, include_comments=True)
            )
    finally:
        await server.close()
    assert items[:-1] == [SSEComment("keep-alive")] * 16
    assert items[-1] == ServerSentEvent("message", "done", None, None)


async def test_decoder_is_kept_for_reconnection_and_limits_apply() -> None:
    async def script(response: web.StreamResponse) -> None:
        await response.write(b"id: 41\ndata: a\n\nid: 42\ndata: " + b"x" * 64 + b"\n\n")

    server = await serve(script)
    decoder = SSEDecoder(max_line_bytes=32)
    received: list[ServerSentEvent] = []
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(server.make_url("/run_sse")) as resp,
        ):
            events = aiter_sse(resp.content.iter_any(), idle_timeout=5, decoder=decoder)
            with pytest.raises(SSELimitExceeded) as info:
                await drain(events, received)
    finally:
        await server.close()
    assert received == [ServerSentEvent("message", "a", "41", None)]
    assert info.value.limit == "max_line_bytes"
    assert decoder.last_event_id == "41"  # what to send as Last-Event-ID


async def test_reused_decoder_drops_the_half_event_of_a_dead_connection() -> None:
    """After an idle timeout mid-event, the next connection starts clean but keeps the id."""
    release = asyncio.Event()
    calls = 0

    async def script(response: web.StreamResponse) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await response.write(b"id: 1\ndata: a\n\nid: 2\ndata: par")
            await release.wait()
        else:
            await response.write(b"tial\n\ndata: b\n\n")

    server = await serve(script)
    decoder = SSEDecoder()
    first: list[ServerSentEvent] = []
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.make_url("/run_sse")) as resp:
                events = aiter_sse(resp.content.iter_any(), idle_timeout=0.2, decoder=decoder)
                with pytest.raises(StreamIdleTimeout):
                    await drain(events, first)
            async with session.get(server.make_url("/run_sse")) as resp:
                second = await collect(
                    aiter_sse(resp.content.iter_any(), idle_timeout=5, decoder=decoder)
                )
    finally:
        release.set()
        await server.close()
    assert first == [ServerSentEvent("message", "a", "1", None)]
    # Without the reset, "data: par" + "tial" would have made an event "partial" with id 2.
    assert second == [ServerSentEvent("message", "b", "1", None)]
    assert decoder.last_event_id == "1"


async def test_leaving_the_loop_early_resets_a_reused_decoder() -> None:
    async def source() -> AsyncIterator[bytes]:
        yield b"data: a\n\ndata: half"
        yield b" of b\n\n"

    decoder = SSEDecoder()
    events = aiter_sse(source(), idle_timeout=None, decoder=decoder)
    assert await anext(events) == ServerSentEvent("message", "a", None, None)
    await events.aclose()
    assert decoder.feed(b"\n\ndata: c\n\n") == [ServerSentEvent("message", "c", None, None)]


async def test_a_timeout_error_from_the_source_is_not_an_idle_timeout() -> None:
    async def source() -> AsyncIterator[bytes]:
        yield b"data: a\n\n"
        raise TimeoutError("the transport's own timeout")

    with pytest.raises(TimeoutError) as info:
        await collect(aiter_sse(source(), idle_timeout=5))
    assert not isinstance(info.value, StreamIdleTimeout)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan")])
async def test_bad_idle_timeout_raises_invalid_input(bad: float) -> None:
    async def source() -> AsyncIterator[bytes]:
        yield b""

    with pytest.raises(InvalidInput) as info:
        await collect(aiter_sse(source(), idle_timeout=bad))
    assert info.value.field == "idle_timeout"
