"""
The session layer's poll fast paths change no behaviour (loopback servers).

Covered: the one-chunk read (plain, gzip-encoded, chunked and multi-chunk
bodies all arrive whole; the byte cap still stops an oversized one), the
single JSON decode (the body a mapper saw is the body returned; bad JSON still
raises the same ``DecodeError``), the precomputed headers of a plain call and
the merge of extra ones, and the cached path templates (every path-parameter
error still names its field).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from aivideo_async._config import Limits
from aivideo_async._exceptions import DecodeError, InvalidInput, ResponseTooLarge
from aivideo_async._secret import Secret
from aivideo_async._session import HeaderKeyAuth, ResponseInfo, Session

pytestmark = pytest.mark.anyio

Serve = Callable[[web.Application], Awaitable[str]]
BIG = {"items": ["x" * 100] * 3000}  # ~310 KB: many chunks


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[TestServer] = []

    async def start(app: web.Application) -> str:
        server = TestServer(app, host="127.0.0.1", port=0)
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    yield start
    for server in servers:
        await server.close()


def _app(seen: list[dict[str, str]]) -> web.Application:
    async def small(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.json_response({"status": "inference_working", "progress": "45%"})

    async def gz(request: web.Request) -> web.Response:
        raw = json.dumps({"status": "inference_complete", "videoId": "v1"}).encode()
        return web.Response(
            body=gzip.compress(raw),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )

    async def chunked(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(b'{"status": ')
        await resp.write(b'"inference_started"}')
        await resp.write_eof()
        return resp

    async def big(request: web.Request) -> web.Response:
        return web.json_response(BIG)

    async def bad(request: web.Request) -> web.Response:
        return web.Response(body=b"{not json", content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/video/{id}/status", small)
    app.router.add_get("/gz", gz)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/big", big)
    app.router.add_get("/bad", bad)
    return app


def _session(base: str, **kw: object) -> Session:
    return Session(
        provider="test",
        base_url=base,
        auth=HeaderKeyAuth("x-api-key", Secret("k-123")),
        **kw,  # type: ignore[arg-type]
    )


async def test_every_body_shape_arrives_whole(serve: Serve) -> None:
    base = await serve(_app([]))
    async with _session(base) as session:
        small = await session.request("GET", "/api/video/{id}/status", path_params={"id": "j1"})
        gz = await session.request("GET", "/gz")
        chunked = await session.request("GET", "/chunked")
        big = await session.request("GET", "/big")
    assert small.json() == {"status": "inference_working", "progress": "45%"}
    assert isinstance(small.body, bytes)
    assert gz.json() == {"status": "inference_complete", "videoId": "v1"}
    assert chunked.json() == {"status": "inference_started"}
    assert big.json() == BIG
    assert big.body == json.dumps(BIG).encode()


async def test_the_cap_still_stops_a_large_body(serve: Serve) -> None:
    base = await serve(_app([]))
    async with _session(base, limits=Limits(max_response_bytes=1000)) as session:
        with pytest.raises(ResponseTooLarge):
            await session.request("GET", "/big")
        # Under the cap, the one-chunk path answers.
        ok = await session.request("GET", "/api/video/{id}/status", path_params={"id": "j1"})
    assert ok.json() == {"status": "inference_working", "progress": "45%"}


async def test_bad_json_raises_the_same_decode_error(serve: Serve) -> None:
    base = await serve(_app([]))
    async with _session(base) as session:
        with pytest.raises(DecodeError) as caught:
            await session.request("GET", "/bad")
    err = caught.value
    assert err.path == "$"
    assert err.status_code == 200
    assert err.endpoint == "GET /bad"
    assert err.provider == "test"
    assert err.body_digest == hashlib.sha256(b"{not json").hexdigest()


async def test_the_mapper_sees_the_body_that_is_returned(serve: Serve) -> None:
    base = await serve(_app([]))
    seen: list[object] = []

    def mapper(info: ResponseInfo) -> None:
        seen.append(info.body)

    async with _session(base, error_mapper=mapper) as session:
        resp = await session.request("GET", "/api/video/{id}/status", path_params={"id": "j1"})
    assert seen == [{"status": "inference_working", "progress": "45%"}]
    assert resp.json() == seen[0]


async def test_plain_and_extra_headers_are_sent(serve: Serve) -> None:
    seen: list[dict[str, str]] = []
    base = await serve(_app(seen))
    path = "/api/video/{id}/status"
    async with _session(base, headers={"X-Client": "bench"}) as session:
        await session.request("GET", path, path_params={"id": "j1"})
        await session.request("GET", path, path_params={"id": "j1"}, headers={"X-Extra": "1"})
        await session.request("GET", path, path_params={"id": "j1"}, expect_json=False)
        with pytest.raises(InvalidInput) as caught:
            await session.request(
                "GET", path, path_params={"id": "j1"}, headers={"X-Bad": "a\r\nb"}
            )
    assert caught.value.field == "headers[X-Bad]"
    plain, extra, raw = seen
    for sent in (plain, extra, raw):
        assert sent["x-api-key"] == "k-123"
        assert sent["X-Client"] == "bench"
        assert sent["User-Agent"].startswith("aivideo_async/")
    assert plain["Accept"] == "application/json"
    assert extra["Accept"] == "application/json"
    assert extra["X-Extra"] == "1"
    assert "X-Extra" not in plain
    assert raw.get("Accept") != "application/json"


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/video/{id}/status", {}, "id"),
        ("/api/video/{id}/status", {"id": "../admin"}, "id"),
        ("/api/video/{id}/status", {"id": 5}, "id"),
        ("/api/video/{id}/status", {"id": "j1", "other": "x"}, "path_params"),
        ("/api/avatars", {"id": "j1"}, "path_params"),
        ("/api/{a}/{b}", {"a": "ok", "b": "bad/id"}, "b"),
        ("api/avatars", {}, "path"),
        ("/api/avatars?x=1", {}, "path"),
    ],
)
async def test_path_errors_still_name_their_field(
    serve: Serve, path: str, params: dict[str, object], field: str
) -> None:
    base = await serve(_app([]))
    async with _session(base) as session:
        for _ in range(2):  # the second call uses the cached template
            with pytest.raises(InvalidInput) as caught:
                await session.request("GET", path, path_params=params)  # type: ignore[arg-type]
            assert caught.value.field == field


async def test_a_template_with_two_ids_is_filled_in_order(serve: Serve) -> None:
    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"path": request.path})

    app = web.Application()
    app.router.add_get("/api/{a}/x/{b}", echo)
    base = await serve(app)
    async with _session(base) as session:
        resp = await session.request("GET", "/api/{a}/x/{b}", path_params={"b": "B2", "a": "A1"})
    assert resp.json() == {"path": "/api/A1/x/B2"}
    assert resp.endpoint == "GET /api/A1/x/B2"


@given(
    base=st.sampled_from(
        [
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/",
            "http://localhost/v1",
            "http://[::1]:9/a/b/",
        ]
    ),
    literal=st.text(alphabet="abc/-_.%~", max_size=12),
    job_id=st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True),
)
def test_request_urls_equal_the_parsed_base_plus_path(base: str, literal: str, job_id: str) -> None:
    """The base URL with its path replaced is the URL that parsing base + path gives."""
    session = Session(provider="test", base_url=base)
    path = f"/{literal}/{{id}}/status"
    url, endpoint = session._build_url("GET", path, {"id": job_id}, absolute=False)
    expected = URL(session.base_url + f"/{literal}/{job_id}/status", encoded=True)
    assert url == expected
    assert str(url) == str(expected)
    assert endpoint == f"GET {expected.raw_path}"
