"""Session.request: JSON in/out, status and body-code mapping, content type, redirects, size cap."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import aiohttp
import pytest
from aiohttp import web

from aivideo_async._config import Limits, RetryPolicy
from aivideo_async._exceptions import (
    AIVideoError,
    APIStatusError,
    AuthenticationError,
    BadRequest,
    Conflict,
    DecodeError,
    InsufficientCredits,
    NotFound,
    PaymentRequired,
    RateLimited,
    ResponseTooLarge,
    ServerError,
    SessionNotFound,
    UnexpectedContentType,
    UnexpectedRedirect,
)
from aivideo_async._secret import Secret
from aivideo_async._session import HeaderKeyAuth, ResponseInfo, Session

from .conftest import API_KEY, RecordingSleep, Serve

pytestmark = pytest.mark.anyio

ONE_TRY = RetryPolicy(attempts=1)


def session_for(base: str, key: Secret, **kwargs: object) -> Session:
    return Session(
        provider="testprov",
        base_url=base,
        auth=HeaderKeyAuth("x-api-key", key),
        **kwargs,  # type: ignore[arg-type]
    )


async def test_json_round_trip_sends_key_default_headers_and_query(
    serve: Serve, key: Secret
) -> None:
    seen: dict[str, object] = {}

    async def handler(request: web.Request) -> web.Response:
        seen["key"] = request.headers.get("x-api-key")
        seen["skill"] = request.headers.get("X-Skill-Source")
        seen["query"] = dict(request.query)
        seen["ctype"] = request.headers.get("Content-Type")
        seen["body"] = await request.json()
        return web.json_response({"result": "success", "jobId": "j-1"})

    app = web.Application()
    app.router.add_post("/api/video/create", handler)
    base = await serve(app)
    async with session_for(base, key, headers={"X-Skill-Source": "tests"}) as session:
        resp = await session.request(
            "POST", "/api/video/create", json={"avatarId": "a1"}, params={"v": "2"}
        )
    assert resp.status == 200
    assert resp.json() == {"result": "success", "jobId": "j-1"}
    assert resp.endpoint == "POST /api/video/create"
    assert seen == {
        "key": API_KEY,
        "skill": "tests",
        "query": {"v": "2"},
        "ctype": "application/json",
        "body": {"avatarId": "a1"},
    }


async def test_key_header_named_key(serve: Serve, key: Secret) -> None:
    seen: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("key"))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/v1/x", handler)
    base = await serve(app)
    async with Session(provider="avm", base_url=base, auth=HeaderKeyAuth("key", key)) as s:
        await s.request("GET", "/v1/x")
    assert seen == [API_KEY]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, BadRequest),
        (401, AuthenticationError),
        (402, PaymentRequired),
        (403, PaymentRequired),
        (404, NotFound),
        (409, Conflict),
        (418, BadRequest),
        (422, BadRequest),
        (429, RateLimited),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
    ],
)
async def test_every_status_maps_to_its_class(
    serve: Serve, key: Secret, status: int, expected: type[APIStatusError]
) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"error": f"boom {status}", "code": 77}, status=status)

    app = web.Application()
    app.router.add_get("/api/thing", handler)
    base = await serve(app)
    async with session_for(base, key, retry=ONE_TRY) as session:
        with pytest.raises(APIStatusError) as caught:
            await session.request("GET", "/api/thing")
    err = caught.value
    assert type(err) is expected
    assert err.status_code == status
    assert err.provider == "testprov"
    assert err.endpoint == "GET /api/thing"
    assert err.message == f"boom {status}"
    assert err.body_code == 77
    assert err.body == {"error": f"boom {status}", "code": 77}


def nemo_mapper(info: ResponseInfo) -> APIStatusError | None:
    body = info.body
    if isinstance(body, Mapping):
        code = body.get("code")
        if code == 2001:
            return InsufficientCredits("insufficient credits", body_code=2001, body=body)
        if code == 1002:
            return SessionNotFound("session lost", body_code=1002, body=body)
    return None


async def test_body_code_on_200_wins_over_status_reliability_18(serve: Serve, key: Secret) -> None:
    """RELIABILITY #18: a 200 carrying an application error code is an error."""

    async def lost(request: web.Request) -> web.Response:
        return web.json_response({"code": 1002, "message": "session not found"})

    async def credits(request: web.Request) -> web.Response:
        # a 400 whose body code is more specific than the status
        return web.json_response({"code": 2001, "message": "no credits"}, status=400)

    async def fine(request: web.Request) -> web.Response:
        return web.json_response({"code": 0, "data": {"ok": True}})

    app = web.Application()
    app.router.add_get("/lost", lost)
    app.router.add_post("/credits", credits)
    app.router.add_get("/fine", fine)
    base = await serve(app)
    async with session_for(base, key, error_mapper=nemo_mapper, retry=ONE_TRY) as session:
        with pytest.raises(SessionNotFound) as lost_err:
            await session.request("GET", "/lost")
        with pytest.raises(InsufficientCredits) as credit_err:
            await session.request("POST", "/credits", json={})
        ok = await session.request("GET", "/fine")
    assert lost_err.value.status_code == 200
    assert lost_err.value.provider == "testprov"
    assert lost_err.value.endpoint == "GET /lost"
    assert credit_err.value.status_code == 400
    assert ok.json() == {"code": 0, "data": {"ok": True}}


async def test_mapper_sees_every_response_with_parsed_retry_after(
    serve: Serve, key: Secret
) -> None:
    seen: list[ResponseInfo] = []

    def mapper(info: ResponseInfo) -> APIStatusError | None:
        seen.append(info)
        return None

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"x": 1}, headers={"Retry-After": "3"})

    app = web.Application()
    app.router.add_get("/x", handler)
    base = await serve(app)
    async with session_for(base, key, error_mapper=mapper) as session:
        await session.request("GET", "/x")
    assert len(seen) == 1
    info = seen[0]
    assert (info.status, info.body, info.retry_after, info.endpoint) == (
        200,
        {"x": 1},
        3.0,
        "GET /x",
    )


@pytest.mark.parametrize("status", [200, 502])
async def test_html_proxy_page_is_unexpected_content_type_reliability_19(
    serve: Serve, key: Secret, status: int
) -> None:
    """RELIABILITY #19: an HTML proxy page (200 or 502) is not the provider's JSON."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(
            text="<html><body>Bad gateway</body></html>", content_type="text/html", status=status
        )

    app = web.Application()
    app.router.add_post("/api/video/create", handler)
    base = await serve(app)
    async with session_for(base, key) as session:
        with pytest.raises(UnexpectedContentType) as caught:
            await session.request("POST", "/api/video/create", json={})
    assert caught.value.content_type == "text/html"
    assert caught.value.status_code == status


async def test_html_proxy_page_on_a_read_is_retried_as_transient_reliability_19(
    serve: Serve, key: Secret, fake_sleep: RecordingSleep
) -> None:
    """RELIABILITY #19: transient for a poll."""
    calls = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return web.Response(text="<html>oops</html>", content_type="text/html")
        return web.json_response({"status": "inference_working"})

    app = web.Application()
    app.router.add_get("/s", handler)
    base = await serve(app)
    async with session_for(base, key, sleep=fake_sleep) as session:
        resp = await session.request("GET", "/s")
    assert resp.json() == {"status": "inference_working"}
    assert calls == 2
    assert len(fake_sleep.calls) == 1


async def test_malformed_json_is_decode_error_at_root_reliability_20(
    serve: Serve, key: Secret
) -> None:
    """RELIABILITY #20: malformed JSON -> DecodeError with path "$" and a body digest."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=b'{"jobId": "j1",', content_type="application/json")

    app = web.Application()
    app.router.add_post("/create", handler)
    base = await serve(app)
    async with session_for(base, key) as session:
        with pytest.raises(DecodeError) as caught:
            await session.request("POST", "/create", json={})
    err = caught.value
    assert err.path == "$"
    assert err.body_digest is not None
    assert len(err.body_digest) == 64
    assert err.endpoint == "POST /create"
    assert isinstance(err.__cause__, ValueError)


async def test_json_nan_is_refused(serve: Serve, key: Secret) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=b'{"x": NaN}', content_type="application/json")

    app = web.Application()
    app.router.add_get("/n", handler)
    base = await serve(app)
    async with session_for(base, key, retry=ONE_TRY) as session:
        with pytest.raises(DecodeError):
            await session.request("GET", "/n")


async def test_cross_origin_redirect_is_not_followed_reliability_21(
    serve: Serve, key: Secret
) -> None:
    """RELIABILITY #21: 302 -> UnexpectedRedirect; the other host receives nothing."""
    evil_hits: list[Mapping[str, str]] = []

    async def evil(request: web.Request) -> web.Response:
        evil_hits.append(dict(request.headers))
        return web.json_response({"stolen": True})

    evil_app = web.Application()
    evil_app.router.add_route("*", "/{tail:.*}", evil)
    evil_base = await serve(evil_app)

    async def redirecting(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"{evil_base}/collect?token=abc")

    app = web.Application()
    app.router.add_post("/api/video/create", redirecting)
    app.router.add_get("/api/avatars", redirecting)
    base = await serve(app)
    async with session_for(base, key) as session:
        with pytest.raises(UnexpectedRedirect) as post_err:
            await session.request("POST", "/api/video/create", json={"a": 1})
        with pytest.raises(UnexpectedRedirect) as get_err:
            await session.request("GET", "/api/avatars")
    assert evil_hits == []
    assert post_err.value.status_code == 302
    assert post_err.value.location == f"{evil_base}/collect"  # no query string
    assert "token=abc" not in str(get_err.value)


async def test_body_over_cap_stops_reading_reliability_22(serve: Serve, key: Secret) -> None:
    """RELIABILITY #22: a chunked body past the cap -> ResponseTooLarge; reading stops."""
    total = 64 * 1024 * 1024
    sent = 0
    finished = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        chunk = b" " * 65536
        try:
            while sent < total:
                await resp.write(chunk)
                sent += len(chunk)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            finished.set()
        return resp

    app = web.Application()
    app.router.add_get("/big", handler)
    base = await serve(app)
    async with session_for(
        base, key, limits=Limits(max_response_bytes=100_000), retry=ONE_TRY
    ) as session:
        with pytest.raises(ResponseTooLarge) as caught:
            await session.request("GET", "/big")
    await asyncio.wait_for(finished.wait(), 5)
    assert caught.value.limit == 100_000
    assert sent < total  # the client hung up; the server could not send it all


async def test_content_length_over_cap_is_refused_before_reading_reliability_22(
    serve: Serve, key: Secret
) -> None:
    """RELIABILITY #22: a declared length over the cap is refused at once."""

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"pad": "x" * 5000})

    app = web.Application()
    app.router.add_get("/big", handler)
    base = await serve(app)
    async with session_for(base, key, retry=ONE_TRY) as session:
        with pytest.raises(ResponseTooLarge):
            await session.request("GET", "/big", max_bytes=1000)
        ok = await session.request("GET", "/big", max_bytes=10_000)
    assert ok.status == 200


async def test_expect_json_false_returns_raw_bytes(serve: Serve, key: Secret) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=b"\x00\x01", content_type="application/octet-stream")

    app = web.Application()
    app.router.add_put("/upload", handler)
    base = await serve(app)
    async with session_for(base, key) as session:
        resp = await session.request("PUT", "/upload", data=b"abc", expect_json=False)
    assert resp.body == b"\x00\x01"


async def test_absolute_url_call_sends_no_auth_or_session_headers(
    serve: Serve, key: Secret
) -> None:
    """A presigned PUT gets only the headers passed for it (RELIABILITY #35 spirit)."""
    seen: list[dict[str, str]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_put("/bucket/obj", handler)
    base = await serve(app)
    async with session_for(base, key, headers={"X-Skill-Source": "t"}) as session:
        await session.request(
            "PUT",
            f"{base}/bucket/obj?X-Amz-Signature=s",
            absolute=True,
            data=b"bytes",
            headers={"Content-Type": "audio/mpeg"},
            expect_json=False,
        )
    assert len(seen) == 1
    assert "x-api-key" not in {k.lower() for k in seen[0]}
    assert "X-Skill-Source" not in seen[0]
    assert seen[0]["Content-Type"] == "audio/mpeg"


async def test_empty_2xx_body_decodes_to_none(serve: Serve, key: Secret) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_delete("/x", handler)
    base = await serve(app)
    async with session_for(base, key) as session:
        resp = await session.request("DELETE", "/x")
    assert resp.json() is None


async def test_no_aiohttp_exception_escapes(serve: Serve, key: Secret) -> None:
    async def handler(request: web.Request) -> web.Response:
        raise web.HTTPInternalServerError(text="x")

    app = web.Application()
    app.router.add_get("/x", handler)
    base = await serve(app)
    async with session_for(base, key, retry=ONE_TRY) as session:
        with pytest.raises(AIVideoError) as caught:
            await session.request("GET", "/x")
    assert not isinstance(caught.value, aiohttp.ClientError)


async def test_non_json_4xx_still_maps_by_status(serve: Serve, key: Secret) -> None:
    """A gateway's text/plain 401 or 404 means what its status says (only 2xx/5xx pages are #19)."""

    async def unauthorized(request: web.Request) -> web.Response:
        return web.Response(status=401, text="Unauthorized")

    async def missing(request: web.Request) -> web.Response:
        return web.Response(status=404, text="<html>Not Found</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/401", unauthorized)
    app.router.add_get("/404", missing)
    base = await serve(app)
    async with session_for(base, key) as session:
        with pytest.raises(AuthenticationError):
            await session.request("GET", "/401")
        with pytest.raises(NotFound) as caught:
            await session.request("GET", "/404")
    assert caught.value.body == "<html>Not Found</html>"


@pytest.mark.parametrize("status", [301, 303, 307, 308])
@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_no_redirect_status_is_followed_reliability_21(
    serve: Serve, key: Secret, status: int, method: str
) -> None:
    """
    RELIABILITY #21: every redirect status, including 307/308 (which aiohttp
    would follow re-sending the body and the key), is an UnexpectedRedirect.
    """
    other_hits: list[str] = []

    async def other(request: web.Request) -> web.Response:
        other_hits.append(request.method)
        return web.json_response({"jobId": "stolen"})

    other_app = web.Application()
    other_app.router.add_route("*", "/{tail:.*}", other)
    other_base = await serve(other_app)

    async def redirecting(request: web.Request) -> web.Response:
        return web.Response(status=status, headers={"Location": f"{other_base}/create?sig=1"})

    app = web.Application()
    app.router.add_route(method, "/api/video/create", redirecting)
    base = await serve(app)
    body = {"a": 1} if method == "POST" else None
    async with session_for(base, key) as session:
        with pytest.raises(UnexpectedRedirect) as caught:
            await session.request(method, "/api/video/create", json=body)
    assert other_hits == []
    assert caught.value.status_code == status
    assert caught.value.location == f"{other_base}/create"
