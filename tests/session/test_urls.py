"""Path ids (RELIABILITY #38), https-only base URLs (RELIABILITY #40), URL redaction."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from aivideo_async._exceptions import InvalidInput
from aivideo_async._session import Session, redact_url, validate_path_id

from .conftest import Serve

ID_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"

INJECTIONS = [
    "../x",
    "..",
    ".",
    "a/b",
    "%2F",
    "a%2Fb",
    "a?b=1",
    "a#frag",
    "a\r\nX-Evil: 1",
    "abc\n",
    "ümlaut",
    "١٢٣",  # non-ASCII digits
    "",
    "a" * 129,
    "a b",
    "a\\b",
]


@given(st.text(alphabet=ID_ALPHABET, min_size=1, max_size=128))
def test_valid_ids_pass_unchanged(value: str) -> None:
    assert validate_path_id("id", value) == value


@given(st.text(min_size=1, max_size=40).filter(lambda s: any(c not in ID_ALPHABET for c in s)))
def test_any_other_character_is_refused_reliability_38(value: str) -> None:
    """RELIABILITY #38: property: a single character outside the alphabet is refused."""
    with pytest.raises(InvalidInput) as caught:
        validate_path_id("job_id", value)
    assert caught.value.field == "job_id"


@pytest.mark.parametrize("value", INJECTIONS)
def test_injection_ids_refused_naming_the_param_reliability_38(value: str) -> None:
    """RELIABILITY #38: `/`, `..`, `%2F`, `?`, CR/LF, non-ASCII never enter a URL."""
    with pytest.raises(InvalidInput) as caught:
        validate_path_id("video_id", value)
    assert caught.value.field == "video_id"
    assert caught.value.value == value


@pytest.mark.anyio
@pytest.mark.parametrize("value", ["../admin", "a/b", "%2F..%2Fadmin", "x\r\nHost: evil", "é"])
async def test_session_refuses_injected_ids_before_sending_reliability_38(
    serve: Serve, value: str
) -> None:
    """RELIABILITY #38: through the session: InvalidInput naming the param, nothing sent."""
    hits: list[str] = []

    async def any_path(request: web.Request) -> web.Response:
        hits.append(request.raw_path)
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", any_path)
    base = await serve(app)
    async with Session(provider="p", base_url=base) as session:
        with pytest.raises(InvalidInput) as caught:
            await session.request("GET", "/api/video/{id}/status", path_params={"id": value})
        ok = await session.request("GET", "/api/video/{id}/status", path_params={"id": "v-1_A"})
    assert caught.value.field == "id"
    assert ok.endpoint == "GET /api/video/v-1_A/status"
    assert hits == ["/api/video/v-1_A/status"]


@pytest.mark.anyio
async def test_missing_and_extra_path_params_are_refused() -> None:
    async with Session(provider="p", base_url="https://api.example") as session:
        with pytest.raises(InvalidInput) as missing:
            await session.request("GET", "/api/video/{id}")
        with pytest.raises(InvalidInput) as extra:
            await session.request("GET", "/api/video/{id}", path_params={"id": "a", "jd": "b"})
        with pytest.raises(InvalidInput):
            await session.request("GET", "api/no-slash")
    assert missing.value.field == "id"
    assert extra.value.field == "path_params"


@pytest.mark.anyio
async def test_base_url_prefix_is_kept_and_not_normalised(serve: Serve) -> None:
    hits: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.raw_path)
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/v1/tasks/{id}", handler)
    base = await serve(app)
    async with Session(provider="p", base_url=f"{base}/v1/") as session:
        await session.request("GET", "/tasks/{id}", path_params={"id": "t1"})
    assert hits == ["/v1/tasks/t1"]


@pytest.mark.parametrize(
    "url",
    [
        "http://api.example.com",
        "http://10.0.0.1:8080",
        "ftp://api.example.com",
        "api.example.com",
        "https://user:pw@api.example.com",
        "https://api.example.com/?key=1",
    ],
)
def test_base_url_must_be_https_reliability_40(url: str) -> None:
    """RELIABILITY #40: http:// (non-loopback) and odd URLs are refused."""
    with pytest.raises(InvalidInput) as caught:
        Session(provider="p", base_url=url)
    assert caught.value.field == "base_url"
    assert "pw" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com",
        "http://127.0.0.1:8080",
        "http://127.5.0.1",
        "http://localhost:1234",
        "http://[::1]:9000",
    ],
)
def test_https_or_loopback_base_urls_are_accepted_reliability_40(url: str) -> None:
    """RELIABILITY #40: plain http only for loopback."""
    Session(provider="p", base_url=url)


def test_allow_insecure_http_flag_is_loud_reliability_40(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """RELIABILITY #40: the explicit flag allows it, with a WARNING."""
    caplog.set_level(logging.WARNING, logger="aivideo_async.session")
    session = Session(provider="p", base_url="http://staging.example", allow_insecure_http=True)
    assert session.base_url == "http://staging.example"
    assert any(
        r.levelno == logging.WARNING and "allow_insecure_http" in r.getMessage()
        for r in caplog.records
    )


@pytest.mark.anyio
async def test_absolute_download_url_must_be_https_reliability_40(tmp_path: object) -> None:
    """RELIABILITY #40: absolute (signed) URLs follow the same rule."""
    async with Session(provider="p", base_url="https://api.example") as session:
        with pytest.raises(InvalidInput) as caught:
            await session.download("http://cdn.example/v.mp4?sig=s", "/tmp/x.mp4", absolute=True)
    assert caught.value.field == "url"
    assert "sig=s" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://cdn.example/v/1.mp4?X-Amz-Signature=abc", "https://cdn.example/v/1.mp4"),
        ("https://u:p@cdn.example:8443/a#frag", "https://cdn.example:8443/a"),
        ("/api/video/1?x=1", "/api/video/1"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected
