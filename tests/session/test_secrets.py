"""The key never shows: reprs, messages, tracebacks, causes, logs (RELIABILITY #39)."""

from __future__ import annotations

import asyncio
import logging
import traceback

import pytest
from aiohttp import web

from aivideo_async._config import DEFAULT_LIMITS, DEFAULT_RETRY_POLICY, DEFAULT_TIMEOUTS, Timeouts
from aivideo_async._exceptions import AIVideoError
from aivideo_async._secret import Secret
from aivideo_async._session import BearerAuth, HeaderKeyAuth, Session

from .conftest import (
    API_KEY,
    FixedRandom,
    RecordingSleep,
    Serve,
    ServeRaw,
    read_request,
    refused_port,
)

pytestmark = pytest.mark.anyio


def everything_about(exc: BaseException) -> str:
    """str, repr and the formatted traceback of an error and of its whole chain."""
    parts = ["".join(traceback.format_exception(exc))]
    seen: BaseException | None = exc
    while seen is not None:
        parts += [str(seen), repr(seen), repr(getattr(seen, "request_info", None))]
        parts += [repr(vars(seen)) if hasattr(seen, "__dict__") else ""]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


async def test_key_absent_from_reprs_errors_tracebacks_and_logs_reliability_39(
    serve: Serve,
    serve_raw: ServeRaw,
    key: Secret,
    fake_sleep: RecordingSleep,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """RELIABILITY #39: provoke every error kind with the key attached; search for it everywhere."""
    caplog.set_level(logging.DEBUG)  # every logger, aiohttp's included

    async def unauthorized(request: web.Request) -> web.Response:
        return web.json_response({"message": "invalid api key"}, status=401)

    async def broken(request: web.Request) -> web.Response:
        return web.json_response({"message": "down"}, status=503)

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("https://evil.example/steal?x=1")

    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html/>", content_type="text/html")

    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/401", unauthorized)
    app.router.add_get("/503", broken)
    app.router.add_post("/302", redirect)
    app.router.add_get("/html", html)
    app.router.add_get("/hang", hang)
    base = await serve(app)

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 abc nonsense\r\n\r\n")
        await writer.drain()

    raw_base = await serve_raw(garbage)

    errors: list[AIVideoError] = []
    sessions: list[Session] = []
    auth = HeaderKeyAuth("x-api-key", key)
    for url in (base, raw_base, f"http://127.0.0.1:{refused_port()}"):
        session = Session(
            provider="p",
            base_url=url,
            auth=auth,
            sleep=fake_sleep,
            rng=FixedRandom(),
            headers={"X-Skill-Source": "t"},
        )
        sessions.append(session)
        async with session:
            for method, path in (
                ("GET", "/401"),
                ("GET", "/503"),
                ("POST", "/302"),
                ("GET", "/html"),
                ("GET", "/hang"),
            ):
                try:
                    await session.request(
                        method,
                        path,
                        params={"q": "1"},
                        timeouts=Timeouts(connect=1, read=0.1, total=2),
                    )
                except AIVideoError as exc:
                    errors.append(exc)
                else:  # pragma: no cover - every call above fails
                    pytest.fail(f"{method} {path} succeeded")
    kinds = {type(e).__name__ for e in errors}
    assert {"AuthenticationError", "ServerError", "UnexpectedRedirect"} <= kinds
    assert {"UnexpectedContentType", "ReadTimeout", "RemoteDisconnected", "ConnectError"} <= kinds
    for error in errors:
        assert API_KEY not in everything_about(error), type(error)
    for session in sessions:
        assert API_KEY not in repr(session)
        assert API_KEY not in str(session)
    for value in (auth, key, DEFAULT_TIMEOUTS, DEFAULT_LIMITS, DEFAULT_RETRY_POLICY):
        assert API_KEY not in repr(value)
        assert API_KEY not in str(value)
    assert any("retry" in r.getMessage() for r in caplog.records)  # retries were logged
    for record in caplog.records:
        assert API_KEY not in record.getMessage()
        assert API_KEY not in repr(record.args)


async def test_bearer_token_absent_from_repr_after_fetch_reliability_39() -> None:
    """RELIABILITY #39: a cached bearer token shows redacted."""

    async def provider() -> Secret:
        return Secret(API_KEY)

    auth = BearerAuth(provider)
    headers = await auth.headers()
    assert headers["Authorization"] == f"Bearer {API_KEY}"
    assert API_KEY not in repr(auth)
    session = Session(provider="p", base_url="https://api.example", auth=auth)
    assert API_KEY not in repr(session)
