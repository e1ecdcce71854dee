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
from aivideo_async._session import HeaderKeyAuth, ResponseInfo, Session, _decode_json

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


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


@given(
    value=_json_values,
    before=st.sampled_from(["", " ", "\n", "\t "]),
    after=st.sampled_from(["", " ", "\n", "\r\n"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32"]),
    ensure_ascii=st.booleans(),
)
def test_json_decode_equals_json_loads(
    value: object, before: str, after: str, encoding: str, ensure_ascii: bool
) -> None:
    """The scanner fast path decodes exactly what ``json.loads`` decodes, in every encoding."""
    body = (before + json.dumps(value, ensure_ascii=ensure_ascii) + after).encode(encoding)
    assert _decode_json(body, endpoint="GET /x", status=200, provider="p") == json.loads(body)


@given(
    body=st.sampled_from(
        [
            b'{"a": 1} x',  # extra data after the value
            b'{"a": 1}{"b": 2}',
            b'{"a": NaN}',  # not JSON (json.loads would accept it)
            b"[Infinity]",
            b'{"a": -Infinity}',
            b'{"a": 1',
            b"[1, 2,]",
            b"\xff\xfe\x00",
            b'{"a": "\xff"}',
        ]
    )
)
def test_json_decode_refuses_what_is_not_json(body: bytes) -> None:
    with pytest.raises(DecodeError) as caught:
        _decode_json(body, endpoint="GET /x", status=200, provider="p")
    assert caught.value.path == "$"
    assert caught.value.body_digest == hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("body", [b"", b"  ", b"\r\n"])
def test_a_blank_body_decodes_to_none(body: bytes) -> None:
    assert _decode_json(body, endpoint="GET /x", status=200, provider="p") is None


async def test_the_merged_key_headers_hide_their_values(serve: Serve) -> None:
    """
    The headers merged once with a static key are sent on every call, and any
    frame of ours that holds them shows names only (a traceback printed with
    its locals does not show the key; RELIABILITY #39).
    """
    seen: list[dict[str, str]] = []
    base = await serve(_app(seen))
    async with _session(base) as session:
        for _ in range(3):
            await session.request("GET", "/api/video/{id}/status", path_params={"id": "j1"})
        with pytest.raises(DecodeError) as caught:
            await session.request("GET", "/bad")
    assert [s["x-api-key"] for s in seen] == ["k-123"] * 3
    shown: list[str] = []
    tb = caught.value.__traceback__
    while tb is not None:
        if "aivideo_async" in tb.tb_frame.f_code.co_filename:
            shown.extend(repr(v) for v in tb.tb_frame.f_locals.values())
        tb = tb.tb_next
    assert any("x-api-key" in text for text in shown)  # the headers were in a frame...
    assert not any("k-123" in text for text in shown)  # ...but not their value
