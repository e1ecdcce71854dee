"""Properties of the pure pieces: the default status mapping and URL redaction."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aivideo_async._exceptions import (
    AuthenticationError,
    BadRequest,
    Conflict,
    NotFound,
    PaymentRequired,
    RateLimited,
    ServerError,
)
from aivideo_async._session import ResponseInfo, default_status_error, redact_url


def info(status: int, body: object = None, retry_after: float | None = None) -> ResponseInfo:
    return ResponseInfo(
        provider="p",
        endpoint="GET /x",
        status=status,
        headers={},
        body=body,  # type: ignore[arg-type]
        text="",
        retry_after=retry_after,
    )


EXPECTED = {
    401: AuthenticationError,
    402: PaymentRequired,
    403: PaymentRequired,
    404: NotFound,
    409: Conflict,
    429: RateLimited,
}


@given(st.integers(min_value=200, max_value=599))
def test_default_mapping_covers_every_status(status: int) -> None:
    err = default_status_error(info(status))
    if status < 300:
        assert err is None
        return
    assert err is not None
    assert err.status_code == status
    assert err.endpoint == "GET /x"
    if status >= 500:
        assert type(err) is ServerError
    else:
        assert type(err) is EXPECTED.get(status, BadRequest)


@given(st.one_of(st.none(), st.floats(min_value=0, max_value=1e6)))
def test_rate_limited_keeps_retry_after(retry_after: float | None) -> None:
    err = default_status_error(info(429, retry_after=retry_after))
    assert isinstance(err, RateLimited)
    assert err.retry_after == retry_after


@given(
    host=st.from_regex(r"[a-z][a-z0-9-]{0,20}\.example", fullmatch=True),
    path=st.from_regex(r"(/[A-Za-z0-9_.-]{1,10}){0,4}", fullmatch=True),
    query=st.text(alphabet="abcdefXYZ0123456789=&%-_", min_size=1, max_size=40),
)
def test_redact_url_never_keeps_query_or_user_info(host: str, path: str, query: str) -> None:
    """RELIABILITY #39: a signed URL's query never survives redaction."""
    url = f"https://user:pw@{host}{path}?{query}#frag"
    shown = redact_url(url)
    assert shown == f"https://{host}{path or ''}" or shown == f"https://{host}{path or '/'}"
    assert "?" not in shown
    assert "@" not in shown
