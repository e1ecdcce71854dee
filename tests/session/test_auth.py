"""Auth strategies: header keys and Bearer with a single-flight refresh (RELIABILITY #16, #28)."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from aivideo_async._exceptions import AuthenticationError, InvalidInput
from aivideo_async._secret import Secret
from aivideo_async._session import BearerAuth, HeaderKeyAuth, Session

from .conftest import RecordingSleep, Serve

pytestmark = pytest.mark.anyio


class TokenSource:
    """Hands out tok-1, tok-2, ... and counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> Secret:
        self.calls += 1
        await asyncio.sleep(0.01)  # let concurrent callers pile up on the lock
        return Secret(f"tok-{self.calls}")


def token_app(valid: str) -> tuple[web.Application, list[str | None]]:
    seen: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization")
        seen.append(auth)
        if auth != f"Bearer {valid}":
            return web.json_response({"message": "token expired"}, status=401)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/api/x", handler)
    return app, seen


async def test_twenty_concurrent_401s_share_one_refresh_reliability_28(
    serve: Serve, fake_sleep: RecordingSleep
) -> None:
    """RELIABILITY #28: 20 concurrent requests get 401 once -> exactly one refresh call."""
    app, seen = token_app(valid="tok-2")
    base = await serve(app)
    source = TokenSource()
    async with Session(
        provider="nemovideo", base_url=base, auth=BearerAuth(source), sleep=fake_sleep
    ) as session:
        results = await asyncio.gather(*(session.request("GET", "/api/x") for _ in range(20)))
    assert all(r.json() == {"ok": True} for r in results)
    assert source.calls == 2  # the first fetch, then exactly one refresh
    assert seen.count("Bearer tok-1") == 20
    assert seen.count("Bearer tok-2") == 20
    assert fake_sleep.calls == []  # an auth retry is not a backoff retry


async def test_second_401_after_refresh_raises_authentication_error_reliability_28(
    serve: Serve,
) -> None:
    """RELIABILITY #28: a second 401 raises AuthenticationError (no refresh loop)."""
    app, seen = token_app(valid="never")
    base = await serve(app)
    source = TokenSource()
    async with Session(provider="p", base_url=base, auth=BearerAuth(source)) as session:
        with pytest.raises(AuthenticationError) as caught:
            await session.request("GET", "/api/x")
    assert caught.value.status_code == 401
    assert source.calls == 2
    assert seen == ["Bearer tok-1", "Bearer tok-2"]


async def test_401_on_create_refreshes_but_never_resends_reliability_16(serve: Serve) -> None:
    """RELIABILITY #16: a 401 on a create is raised after a refresh; the create is not resent."""
    app, seen = token_app(valid="tok-2")
    base = await serve(app)
    source = TokenSource()
    async with Session(provider="p", base_url=base, auth=BearerAuth(source)) as session:
        with pytest.raises(AuthenticationError):
            await session.request("POST", "/api/x", json={})
        # the refreshed token serves the next call
        ok = await session.request("POST", "/api/x", json={})
    assert ok.json() == {"ok": True}
    assert seen == ["Bearer tok-1", "Bearer tok-2"]
    assert source.calls == 2


async def test_static_key_401_is_raised_without_resend(serve: Serve, key: Secret) -> None:
    app, seen = token_app(valid="x")
    base = await serve(app)
    async with Session(provider="p", base_url=base, auth=HeaderKeyAuth("x-api-key", key)) as s:
        with pytest.raises(AuthenticationError):
            await s.request("GET", "/api/x")
    assert len(seen) == 1


async def test_unauthenticated_call_sends_no_auth(serve: Serve) -> None:
    app, seen = token_app(valid="tok-1")
    base = await serve(app)
    source = TokenSource()
    async with Session(provider="p", base_url=base, auth=BearerAuth(source)) as session:
        with pytest.raises(AuthenticationError):
            await session.request("POST", "/api/x", authenticated=False)
    assert seen == [None]
    assert source.calls == 0


async def test_header_injection_in_key_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        HeaderKeyAuth("x-api-key", Secret("abc\r\nX-Evil: 1"))
    assert "X-Evil" not in str(caught.value)
    with pytest.raises(InvalidInput):
        HeaderKeyAuth("bad header", Secret("k"))


async def test_bearer_token_with_newline_is_refused(serve: Serve) -> None:
    async def bad() -> Secret:
        return Secret("tok\nX-Evil: 1")

    app, seen = token_app(valid="x")
    base = await serve(app)
    async with Session(provider="p", base_url=base, auth=BearerAuth(bad)) as session:
        with pytest.raises(InvalidInput) as caught:
            await session.request("GET", "/api/x")
    assert "X-Evil" not in str(caught.value)
    assert seen == []
