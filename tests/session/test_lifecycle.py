"""Owned vs borrowed aiohttp sessions, aclose, repr."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from aivideo_async._config import Limits
from aivideo_async._session import Session

from .conftest import Serve

pytestmark = pytest.mark.anyio


def ok_app() -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/x", handler)
    return app


async def test_owned_session_uses_limits_and_is_closed(serve: Serve) -> None:
    base = await serve(ok_app())
    session = Session(provider="p", base_url=base, limits=Limits(connections=7, per_host=3))
    async with session:
        await session.request("GET", "/x")
        client = session._client
        assert client is not None
        connector = client.connector
        assert isinstance(connector, aiohttp.TCPConnector)
        assert (connector.limit, connector.limit_per_host) == (7, 3)
    assert client.closed
    await session.aclose()  # idempotent
    with pytest.raises(RuntimeError):
        await session.request("GET", "/x")


async def test_borrowed_session_is_never_closed(serve: Serve) -> None:
    base = await serve(ok_app())
    async with aiohttp.ClientSession() as borrowed:
        async with Session(provider="p", base_url=base, session=borrowed) as session:
            assert (await session.request("GET", "/x")).json() == {"ok": True}
        await session.aclose()
        assert not borrowed.closed
        async with borrowed.get(f"{base}/x") as resp:  # still usable
            assert resp.status == 200


async def test_session_opens_lazily_without_async_with(serve: Serve) -> None:
    base = await serve(ok_app())
    session = Session(provider="p", base_url=base)
    try:
        assert (await session.request("GET", "/x")).status == 200
    finally:
        await session.aclose()


def test_repr_names_provider_and_state() -> None:
    session = Session(provider="miraflow", base_url="https://app.example/api", headers={"A": "b"})
    text = repr(session)
    assert "miraflow" in text
    assert "unopened" in text
    assert "'b'" not in text  # header values are not shown
