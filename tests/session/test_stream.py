"""Session.stream: SSE bodies as they arrive, status checked on entry, errors mapped."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest
from aiohttp import web

from aivideo_async._config import Limits
from aivideo_async._exceptions import (
    APIStatusError,
    AuthenticationError,
    InsufficientCredits,
    InvalidInput,
    RemoteDisconnected,
    ResponseTooLarge,
    UnexpectedContentType,
)
from aivideo_async._secret import Secret
from aivideo_async._session import HeaderKeyAuth, ResponseInfo, Session

from .conftest import API_KEY, Serve, ServeRaw, read_request

pytestmark = pytest.mark.anyio


def mapper(info: ResponseInfo) -> APIStatusError | None:
    if isinstance(info.body, Mapping) and info.body.get("code") == 2001:
        return InsufficientCredits("no credits", body_code=2001)
    return None


async def test_stream_yields_chunks_as_they_arrive(serve: Serve, key: Secret) -> None:
    seen: dict[str, str | None] = {}
    gate = asyncio.Event()

    async def sse(request: web.Request) -> web.StreamResponse:
        seen["accept"] = request.headers.get("Accept")
        seen["key"] = request.headers.get("x-api-key")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"data: one\n\n")
        await gate.wait()  # the client must see "one" before "two" exists
        await resp.write(b"data: two\n\n")
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/run_sse", sse)
    base = await serve(app)
    chunks: list[bytes] = []
    async with (
        Session(provider="p", base_url=base, auth=HeaderKeyAuth("x-api-key", key)) as session,
        session.stream("POST", "/run_sse", json={"m": 1}) as stream,
    ):
        assert stream.status == 200
        async for chunk in stream.iter_bytes():
            chunks.append(chunk)
            gate.set()
    assert b"".join(chunks) == b"data: one\n\ndata: two\n\n"
    assert seen == {"accept": "text/event-stream", "key": API_KEY}


async def test_stream_error_status_is_mapped_on_entry(serve: Serve) -> None:
    async def denied(request: web.Request) -> web.Response:
        return web.json_response({"message": "bad token"}, status=401)

    async def credits(request: web.Request) -> web.Response:
        return web.json_response({"code": 2001, "message": "no credits"})

    app = web.Application()
    app.router.add_post("/denied", denied)
    app.router.add_post("/credits", credits)
    base = await serve(app)
    async with Session(provider="p", base_url=base, error_mapper=mapper) as session:
        with pytest.raises(AuthenticationError):
            async with session.stream("POST", "/denied"):
                pytest.fail("entered a failed stream")
        with pytest.raises(InsufficientCredits):
            async with session.stream("POST", "/credits"):
                pytest.fail("entered a failed stream")


async def test_stream_wrong_content_type_reliability_19(serve: Serve) -> None:
    """RELIABILITY #19: an HTML page instead of an event stream."""

    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html/>", content_type="text/html")

    app = web.Application()
    app.router.add_post("/run_sse", html)
    base = await serve(app)
    async with Session(provider="p", base_url=base) as session:
        with pytest.raises(UnexpectedContentType) as caught:
            async with session.stream("POST", "/run_sse"):
                pytest.fail("entered a failed stream")
    assert caught.value.content_type == "text/html"


async def test_stream_reset_mid_body_is_remote_disconnected(serve_raw: ServeRaw) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n6\r\ndata: \r\n"
        )
        await writer.drain()

    base = await serve_raw(handler)
    got: list[bytes] = []

    async def consume(session: Session) -> None:
        async with session.stream("POST", "/run_sse") as stream:
            async for chunk in stream.iter_bytes():
                got.append(chunk)

    async with Session(provider="p", base_url=base) as session:
        with pytest.raises(RemoteDisconnected) as caught:
            await consume(session)
    assert b"".join(got) == b"data: "
    assert caught.value.request_sent is True


async def test_stream_error_body_over_cap_stops_reading_reliability_22(serve: Serve) -> None:
    """RELIABILITY #22: an error answer to a stream is read capped, like any body."""

    async def huge_error(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=500, headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        try:
            for _ in range(1000):
                await resp.write(b" " * 65536)
        except (ConnectionError, RuntimeError):
            pass
        return resp

    app = web.Application()
    app.router.add_post("/run_sse", huge_error)
    base = await serve(app)
    limits = Limits(max_response_bytes=10_000)
    async with Session(provider="p", base_url=base, limits=limits) as session:
        with pytest.raises(ResponseTooLarge) as caught:
            async with session.stream("POST", "/run_sse"):
                pytest.fail("entered a failed stream")
    assert caught.value.limit == 10_000


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"json": {"x": float("nan")}}, "json"),
        ({"json": {"x": object()}}, "json"),
        ({"json": {"x": 1}, "data": b"raw"}, "data"),
    ],
)
async def test_a_bad_stream_body_is_invalid_input_and_nothing_is_sent(
    serve: Serve, kwargs: dict[str, object], field: str
) -> None:
    """The same body checks as ``request``: a typed error naming the field, no request."""
    hits: list[str] = []

    async def sse(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="data: x\n\n", content_type="text/event-stream")

    app = web.Application()
    app.router.add_post("/run_sse", sse)
    base = await serve(app)
    async with Session(provider="p", base_url=base) as session:
        with pytest.raises(InvalidInput) as caught:
            async with session.stream("POST", "/run_sse", **kwargs):  # type: ignore[arg-type]
                pass
    assert caught.value.field == field
    assert hits == []
