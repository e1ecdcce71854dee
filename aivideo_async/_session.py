"""
The async session layer: every HTTP exchange of the library goes through here.

One :class:`Session` wraps one :class:`aiohttp.ClientSession` (owned, or
borrowed and then never closed) for one provider and adds what the provider
bindings must not have to think about:

* a base URL that must be ``https`` (plain ``http`` only for loopback, or with
  the loudly named ``allow_insecure_http`` flag; RELIABILITY #40);
* authentication (:class:`HeaderKeyAuth`, :class:`BearerAuth` with a
  single-flight refresh; RELIABILITY #28);
* path ids validated before they enter a URL (RELIABILITY #38);
* JSON in and out with a content-type check and a streaming size cap
  (RELIABILITY #19, #20, #22);
* errors mapped at one boundary (:func:`map_aiohttp_errors` for transport
  errors, an :data:`ErrorMapper` hook plus the status for answers); no aiohttp
  exception escapes and no header value reaches a message (RELIABILITY #39);
* retries for idempotent calls only: full jitter, ``Retry-After`` in both
  forms, a shared :class:`~aivideo_async._backoff.RetryBudget`
  (RELIABILITY #13, #24), and an optional overall ``deadline`` per call that
  no retry sleep may pass (RELIABILITY #26); redirects are never followed
  (RELIABILITY #21);
* streaming responses (SSE) and atomic downloads that resume a reset with
  ``Range`` + ``If-Range`` when the server allows it (RELIABILITY #34-#37).

Time goes through the injected ``clock``/``sleep``/``rng`` seam, so tests of
the retry schedule never wait.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import functools
import hashlib
import ipaddress
import json as _jsonlib
import logging
import math
import os
import pathlib
import re
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Mapping
from types import TracebackType
from typing import Any, BinaryIO, Final, Protocol, Self, TypeVar, runtime_checkable
from urllib.parse import quote

import aiohttp
import anyio
import anyio.to_thread
import attrs
from aiohttp.client_proto import ResponseHandler
from aiohttp.connector import Connection
from aiohttp.tracing import Trace
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ._backoff import RetryBudget, compute_delay, parse_retry_after
from ._config import (
    DEFAULT_LIMITS,
    DEFAULT_RETRY_POLICY,
    DEFAULT_TIMEOUTS,
    Limits,
    RetryPolicy,
    Timeouts,
)
from ._exceptions import (
    AIVideoError,
    APIStatusError,
    AuthenticationError,
    BadRequest,
    Conflict,
    ConnectError,
    DecodeError,
    DownloadError,
    InvalidInput,
    NotFound,
    PaymentRequired,
    PoolTimeout,
    RateLimited,
    ReadTimeout,
    RemoteDisconnected,
    RequestMaybeSent,
    ResponseTooLarge,
    ServerError,
    TLSError,
    TotalTimeout,
    TransportError,
    UnexpectedContentType,
    UnexpectedRedirect,
)
from ._secret import Secret
from ._types import JSON, Clock, RandomSource, Sleep, anyio_sleep, monotonic_clock, system_random
from ._version import __version__

__all__ = [
    "Auth",
    "BearerAuth",
    "ErrorMapper",
    "HeaderKeyAuth",
    "Response",
    "ResponseInfo",
    "Session",
    "StreamResponse",
    "default_status_error",
    "map_aiohttp_errors",
    "redact_url",
    "validate_path_id",
]

_log = logging.getLogger("aivideo_async.session")
_T = TypeVar("_T")

_PATH_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
_MAX_DOWNLOAD_REDIRECTS: Final = 5
_TEXT_LIMIT: Final = 2048
_CHUNK: Final = 64 * 1024
_USER_AGENT: Final = f"aivideo_async/{__version__}"
_URL_QUERY = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s?#'\"<>]*)\?[^\s'\"<>]*")
_REDACTED: Final = "<redacted>"
_NO_HEADERS: Final[Mapping[str, str]] = {}


# ---------------------------------------------------------------------------
# URL helpers


def validate_path_id(name: str, value: object) -> str:
    """
    Check an id that goes into a URL path and return it percent-quoted.

    Only ``^[A-Za-z0-9_-]{1,128}$`` is accepted, so ``..``, ``/``, ``%2F``,
    ``?``, CR/LF and non-ASCII never reach a URL (RELIABILITY #38).

    Args:
        name: the parameter name, used in the error.
        value: the id.

    Returns:
        The id, quoted with no safe characters (a no-op for valid ids).

    Raises:
        InvalidInput: naming ``name``, the value and the expected shape.

    Example:
        >>> validate_path_id("job_id", "abc-123_X")
        'abc-123_X'
        >>> try:
        ...     validate_path_id("job_id", "../admin")
        ... except InvalidInput as err:
        ...     print(err.field, repr(err.value))
        job_id '../admin'
    """
    if not isinstance(value, str) or _PATH_ID.fullmatch(value) is None:
        raise InvalidInput(field=name, value=value, expected="1-128 characters of A-Z a-z 0-9 _ -")
    return quote(value, safe="")


@functools.lru_cache(maxsize=256)
def _path_template(path: str) -> tuple[tuple[str, ...], tuple[str, ...], frozenset[str]]:
    """
    ``path`` checked, then split into its literal pieces, its ``{placeholder}``
    names (one more literal than names) and the set of those names; done once
    per template.

    Raises:
        InvalidInput: ``path`` does not start with ``/`` or has ``?`` or ``#``.

    Example:
        >>> _path_template("/api/video/{id}/status")
        (('/api/video/', '/status'), ('id',), frozenset({'id'}))
    """
    if not path.startswith("/") or "?" in path or "#" in path:
        raise InvalidInput(
            field="path", value=path, expected="a path starting with '/' without '?' or '#'"
        )
    parts = _PLACEHOLDER.split(path)
    names = tuple(parts[1::2])
    return tuple(parts[0::2]), names, frozenset(names)


def redact_url(url: str | URL) -> str:
    """
    Return ``scheme://host[:port]/path`` of a URL: no user info, query or fragment.

    Signed download URLs carry their signature in the query string, so only
    this form may appear in logs and messages (RELIABILITY #39).

    Example:
        >>> redact_url("https://user:pw@cdn.example/v/1.mp4?X-Amz-Signature=abc#t")
        'https://cdn.example/v/1.mp4'
    """
    try:
        parsed = url if isinstance(url, URL) else URL(str(url), encoded=True)
        if not parsed.is_absolute():
            return parsed.raw_path or "/"
        return str(parsed.with_user(None).with_query(None).with_fragment(None))
    except (ValueError, TypeError):
        return "<invalid url>"


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_url(url: URL, *, field: str, allow_insecure_http: bool) -> None:
    """Refuse non-https URLs (RELIABILITY #40), URLs with credentials, and relative URLs."""
    shown = redact_url(url)
    if not url.is_absolute() or not url.host:
        raise InvalidInput(field=field, value=shown, expected="an absolute https:// URL")
    if url.user is not None or url.password is not None:
        raise InvalidInput(field=field, value=shown, expected="a URL without user info")
    if url.scheme == "https":
        return
    if url.scheme == "http":
        if _is_loopback(url.host):
            return
        if allow_insecure_http:
            _log.warning(
                "allow_insecure_http=True: sending requests in clear text to %s; "
                "use this only in tests",
                shown,
            )
            return
    raise InvalidInput(
        field=field,
        value=shown,
        expected="an https:// URL (plain http only for 127.0.0.1/::1/localhost, "
        "or allow_insecure_http=True in tests)",
    )


# ---------------------------------------------------------------------------
# Auth


@runtime_checkable
class Auth(Protocol):
    """
    An authentication strategy.

    ``headers()`` gives the headers to add to a request; ``refresh(sent)`` is
    called after an authentication failure with the auth headers that failed.
    Concurrent callers must share one refresh; it returns ``True`` when a
    retry may help.

    Example:
        >>> isinstance(HeaderKeyAuth("x-api-key", Secret("k")), Auth)
        True
    """

    async def headers(self) -> Mapping[str, str]: ...

    async def refresh(self, failed: Mapping[str, str]) -> bool: ...


def _check_header_value(field: str, value: str) -> None:
    # aiohttp would raise a ValueError quoting the value; refuse it here without showing it.
    if any(ch in value for ch in "\r\n\x00"):
        raise InvalidInput(field=field, value=_REDACTED, expected="no CR, LF or NUL characters")


class _Headers(dict[str, str]):
    """
    Request headers that may hold a credential: a ``dict`` whose repr shows
    the names only, so a traceback printed with its locals (pytest ``-l``,
    rich's ``show_locals``) does not show the key (RELIABILITY #39).
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<headers {sorted(self)!r}, values hidden>"


class HeaderKeyAuth:
    """
    A static API key sent in a named header (``x-api-key``, ``key``).

    The key is a :class:`~aivideo_async._secret.Secret`; it shows in no repr.
    A static key cannot be refreshed, so ``refresh`` returns ``False``.

    Example:
        >>> HeaderKeyAuth("x-api-key", Secret("sk-123"))
        HeaderKeyAuth(header='x-api-key', key=Secret('**********'))
    """

    __slots__ = ("_header", "_key")

    def __init__(self, header: str, key: Secret) -> None:
        if not isinstance(key, Secret):
            raise InvalidInput(field="key", value=_REDACTED, expected="a Secret")
        if not header or not re.fullmatch(r"[A-Za-z0-9-]+", header):
            raise InvalidInput(field="header", value=header, expected="an HTTP header name")
        _check_header_value("key", key.get_secret_value())
        self._header = header
        self._key = key

    @property
    def header(self) -> str:
        """The header name."""
        return self._header

    async def headers(self) -> Mapping[str, str]:
        """Return ``{header: key}``."""
        return self._static_headers()

    def _static_headers(self) -> _Headers:
        # The session merges these once (the key never changes), instead of
        # awaiting headers() on every request.
        return _Headers({self._header: self._key.get_secret_value()})

    async def refresh(self, failed: Mapping[str, str]) -> bool:
        """A static key cannot be refreshed: return ``False``."""
        return False

    def __repr__(self) -> str:
        return f"HeaderKeyAuth(header={self._header!r}, key={self._key!r})"


class BearerAuth:
    """
    ``Authorization: Bearer <token>`` with a token fetched lazily from an async provider.

    The token is cached. ``refresh`` drops it and fetches a new one; concurrent
    refreshes after the same failed token share one provider call
    (single-flight, RELIABILITY #28).

    Example:
        >>> async def token() -> Secret:
        ...     return Secret("nmv_usr_1")
        >>> BearerAuth(token)
        BearerAuth(token=None)
    """

    __slots__ = ("_lock", "_provider", "_token")

    def __init__(self, token_provider: Callable[[], Awaitable[Secret]]) -> None:
        self._provider = token_provider
        self._token: Secret | None = None
        self._lock = anyio.Lock()

    async def _fetch(self) -> Secret:
        token = await self._provider()
        if not isinstance(token, Secret):
            raise InvalidInput(field="token_provider", value=_REDACTED, expected="a Secret")
        _check_header_value("token", token.get_secret_value())
        return token

    async def headers(self) -> Mapping[str, str]:
        """Return the ``Authorization`` header, fetching the token once if needed."""
        token = self._token
        if token is None:
            async with self._lock:
                if self._token is None:
                    self._token = await self._fetch()
                token = self._token
        return {"Authorization": f"Bearer {token.get_secret_value()}"}

    async def refresh(self, failed: Mapping[str, str]) -> bool:
        """
        Replace the token that failed; return ``True`` (a retry may help).

        When another task already replaced it (the cached token differs from
        the one in ``failed``), nothing is fetched.
        """
        sent = failed.get("Authorization")
        async with self._lock:
            current = self._token
            if current is not None and sent != f"Bearer {current.get_secret_value()}":
                return True
            self._token = None
            self._token = await self._fetch()
            return True

    def __repr__(self) -> str:
        return f"BearerAuth(token={self._token!r})"


# ---------------------------------------------------------------------------
# Responses


@attrs.frozen
class ResponseInfo:
    """
    What a provider :data:`ErrorMapper` sees of a response.

    Attributes:
        provider: the provider name.
        endpoint: ``"METHOD /path"`` (no query).
        status: the HTTP status.
        headers: the response headers (case-insensitive).
        body: the decoded JSON body, or ``None`` when it did not decode.
        text: the body text, truncated to 2 KiB (for messages).
        retry_after: the parsed ``Retry-After`` in seconds (both forms, read
            against the response ``Date``), or ``None``; not clamped.

    Example:
        >>> info = ResponseInfo(provider="nemovideo", endpoint="GET /api/x", status=200,
        ...                     headers={}, body={"code": 1002}, text='{"code": 1002}',
        ...                     retry_after=None)
        >>> info.body
        {'code': 1002}
    """

    provider: str
    endpoint: str
    status: int
    headers: Mapping[str, str] = attrs.field(repr=False)
    body: JSON | None
    text: str = attrs.field(repr=False)
    retry_after: float | None


ErrorMapper = Callable[[ResponseInfo], APIStatusError | None]
"""
A per-provider hook called for every response, 2xx included.

It returns the error a body code means (body codes win over the HTTP status,
RELIABILITY #18), or ``None`` to fall back to :func:`default_status_error`.

Example::

    def nemo_errors(info: ResponseInfo) -> APIStatusError | None:
        if isinstance(info.body, dict) and info.body.get("code") == 2001:
            return InsufficientCredits("no credits", body_code=2001)
        return None
"""


class _Unset(enum.Enum):
    UNSET = "UNSET"


_UNSET: Final = _Unset.UNSET


@attrs.frozen
class Response:
    """
    A complete response: status, headers, the body bytes and the endpoint.

    Example:
        >>> Response(status=200, headers={}, body=b'{"jobId": "j1"}', endpoint="POST /x").json()
        {'jobId': 'j1'}
    """

    status: int
    headers: Mapping[str, str] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)
    endpoint: str
    _decoded: JSON | _Unset = attrs.field(default=_UNSET, repr=False, eq=False, alias="decoded")

    def json(self) -> JSON:
        """
        Return the decoded body; ``None`` for an empty body.

        Raises:
            DecodeError: the body is not JSON (path ``$``; RELIABILITY #20).
        """
        if not isinstance(self._decoded, _Unset):
            return self._decoded
        return _decode_json(self.body, endpoint=self.endpoint, status=self.status, provider=None)


def _decode_json(body: bytes, *, endpoint: str, status: int, provider: str | None) -> JSON:
    try:
        # What json.loads(body) does, with one decoder made once (loads() builds
        # a decoder and its scanner on every call when given parse_constant),
        # and the scanner called directly for the usual body: UTF-8, an object
        # or array from the first byte to the last.
        if body[:1] in _JSON_OPENERS and body[1:2] != b"\x00":
            text = body.decode("utf-8", "surrogatepass")
            value: JSON
            value, end = _JSON_SCAN(text, 0)
            if end == len(text):
                return value
        text = body.decode(_jsonlib.detect_encoding(body), "surrogatepass")
        value = _JSON_DECODER.decode(text)
    except (ValueError, UnicodeDecodeError, StopIteration) as exc:
        if not body.strip():
            return None
        raise DecodeError(
            f"response body is not valid JSON ({type(exc).__name__})",
            path="$",
            body_digest=hashlib.sha256(body).hexdigest(),
            provider=provider,
            status_code=status,
            endpoint=endpoint,
        ) from exc
    return value


def _request_body(
    json: JSON | None, data: aiohttp.FormData | bytes | None
) -> bytes | aiohttp.FormData | None:
    """
    The body of a call: ``json`` encoded compactly, else ``data``.

    Raises:
        InvalidInput: both given, or ``json`` is not JSON-serialisable (NaN included).

    Example:
        >>> _request_body({"a": 1}, None)
        b'{"a":1}'
    """
    if json is None:
        return data
    if data is not None:
        raise InvalidInput(field="data", value="<body>", expected="not both json and data")
    try:
        return _jsonlib.dumps(json, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            field="json", value=type(json).__name__, expected="a JSON-serialisable value"
        ) from exc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_JSON_DECODER: Final = _jsonlib.JSONDecoder(parse_constant=_reject_constant)
# The decoder's C scanner (typeshed leaves the attribute out): (value, end) of
# the JSON value at an index; StopIteration when there is none.
_JSON_SCAN: Final[Callable[[str, int], tuple[Any, int]]] = _JSON_DECODER.scan_once  # type: ignore[attr-defined]
_JSON_OPENERS: Final = (b"{", b"[")


@functools.lru_cache(maxsize=64)
def _is_json_type(content_type: str | None) -> bool:
    if content_type is None:
        return True  # absent: accepted if the body decodes
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json")
    )


def _media_type(headers: Mapping[str, str]) -> str | None:
    value = headers.get("Content-Type")
    if value is None:
        return None
    return value.split(";", 1)[0].strip().lower()


def _message_from(info: ResponseInfo) -> str:
    body = info.body
    if isinstance(body, Mapping):
        for key in ("message", "msg", "error_description", "error", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value[:300]
            if isinstance(value, Mapping):
                inner = value.get("message")
                if isinstance(inner, str) and inner:
                    return inner[:300]
    text = info.text.strip()
    if text:
        return text[:300]
    return f"HTTP {info.status}"


def _body_code(info: ResponseInfo) -> str | int | None:
    if isinstance(info.body, Mapping):
        code = info.body.get("code")
        if isinstance(code, str | int) and not isinstance(code, bool):
            return code
    return None


def default_status_error(info: ResponseInfo) -> APIStatusError | None:
    """
    Map an HTTP status to an error; ``None`` for 2xx.

    400 :class:`BadRequest`, 401 :class:`AuthenticationError`, 402/403
    :class:`PaymentRequired`, 404 :class:`NotFound`, 409 :class:`Conflict`,
    429 :class:`RateLimited` (with ``retry_after``), 5xx :class:`ServerError`,
    any other status :class:`BadRequest`.

    Example:
        >>> info = ResponseInfo(provider="miraflow", endpoint="GET /api/video/x", status=404,
        ...                     headers={}, body={"error": "video not found"}, text="",
        ...                     retry_after=None)
        >>> default_status_error(info)
        NotFound('[miraflow] GET /api/video/x -> HTTP 404: video not found')
    """
    status = info.status
    if 200 <= status < 300:
        return None
    kwargs: dict[str, Any] = {
        "provider": info.provider,
        "status_code": status,
        "body_code": _body_code(info),
        "endpoint": info.endpoint,
        "body": info.body if info.body is not None else info.text,
    }
    message = _message_from(info)
    if status == 429:
        return RateLimited(message, retry_after=info.retry_after, **kwargs)
    cls: type[APIStatusError]
    if status == 401:
        cls = AuthenticationError
    elif status in (402, 403):
        cls = PaymentRequired
    elif status == 404:
        cls = NotFound
    elif status == 409:
        cls = Conflict
    elif status >= 500:
        cls = ServerError
    else:
        cls = BadRequest
    return cls(message, **kwargs)


class StreamResponse:
    """
    An open streaming response (server-sent events, large bodies).

    Read it with :meth:`iter_bytes` inside the :meth:`Session.stream` block;
    transport errors while reading are mapped like any other.

    Example::

        async with session.stream("POST", "/run_sse", json=payload) as stream:
            async for chunk in stream.iter_bytes():
                decoder.feed(chunk)
    """

    __slots__ = ("_provider", "_resp", "_timeouts", "endpoint", "headers", "status")

    def __init__(
        self, resp: aiohttp.ClientResponse, *, provider: str, endpoint: str, timeouts: Timeouts
    ) -> None:
        self._resp = resp
        self._provider = provider
        self._timeouts = timeouts
        self.status: int = resp.status
        self.headers: Mapping[str, str] = resp.headers
        self.endpoint: str = endpoint

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """Yield the body as it arrives, in chunks of any size."""
        phase = _Phase()
        phase.sent = True
        while True:
            with map_aiohttp_errors(
                provider=self._provider,
                endpoint=self.endpoint,
                phase=phase,
                timeouts=self._timeouts,
            ):
                chunk = await self._resp.content.readany()
            if not chunk:
                return
            yield chunk

    def __repr__(self) -> str:
        return f"StreamResponse(status={self.status}, endpoint={self.endpoint!r})"


# ---------------------------------------------------------------------------
# The error boundary


class _Phase:
    """
    How far one attempt got, filled in by :class:`_PhaseConnector` (owned sessions).

    ``sent`` is set once the connector hands out a connection: from then on
    the request may reach the server. That is conservative by a hair (a
    failure between getting the connection and writing the first byte is
    reported as "maybe sent"), never the other way round.
    """

    __slots__ = ("queued", "sent", "tracked")

    def __init__(self) -> None:
        self.tracked = False  # the connector saw the attempt: the negative facts below are reliable
        self.queued = False  # waiting for a free pooled connection
        self.sent = False  # a connection was handed out: the request may be on the wire


_CURRENT_PHASE: contextvars.ContextVar[_Phase | None] = contextvars.ContextVar(
    "aivideo_async_phase", default=None
)
"""The attempt the running task is making (set around ``ClientSession.request``)."""


class _SendWatch:
    """
    What the requests made under :func:`_watch_sends` tell about a cancelled
    create: the orchestrator journals ``not_sent`` instead of ``unknown`` only
    when a request of ours was cancelled before it got a connection and no
    request may have reached the server (RELIABILITY #8, #9).
    """

    __slots__ = ("maybe_sent", "unsent")

    def __init__(self) -> None:
        self.maybe_sent = False  # a request got a connection, or could not be tracked
        self.unsent = False  # a tracked request ended before it got a connection

    @property
    def provably_unsent(self) -> bool:
        """Positive evidence that nothing left: none of ours got a connection."""
        return self.unsent and not self.maybe_sent


_SEND_WATCH: contextvars.ContextVar[_SendWatch | None] = contextvars.ContextVar(
    "aivideo_async_send_watch", default=None
)


@contextlib.contextmanager
def _watch_sends(watch: _SendWatch) -> Iterator[_SendWatch]:
    """Record in ``watch`` how far every API request made in this block got."""
    token = _SEND_WATCH.set(watch)
    try:
        yield watch
    finally:
        _SEND_WATCH.reset(token)


class _PhaseConnector(aiohttp.TCPConnector):
    """
    A :class:`aiohttp.TCPConnector` that records, for the attempt in
    :data:`_CURRENT_PHASE`, whether it is waiting for the pool, connecting, or
    holding a connection (RELIABILITY #8).

    This replaces aiohttp trace hooks: any ``TraceConfig`` makes aiohttp send a
    dozen signals per request (each chunk received included), which cost more
    than a fifth of a bare GET; this costs one context-variable read per
    request.
    """

    async def connect(
        self, req: aiohttp.ClientRequest, traces: list[Trace], timeout: aiohttp.ClientTimeout
    ) -> Connection:
        phase = _CURRENT_PHASE.get()
        if phase is None:
            return await super().connect(req, traces, timeout)
        phase.tracked = True
        phase.queued = True  # until a pooled connection is free or a new one is being made
        conn = await super().connect(req, traces, timeout)
        phase.queued = False
        phase.sent = True
        return conn

    async def _create_connection(
        self, req: aiohttp.ClientRequest, traces: list[Trace], timeout: aiohttp.ClientTimeout
    ) -> ResponseHandler:
        phase = _CURRENT_PHASE.get()
        if phase is not None:
            phase.queued = False  # a slot was free: connecting, not waiting
        return await super()._create_connection(req, traces, timeout)


def _strip_queries(text: str) -> str:
    return _URL_QUERY.sub(r"\1?<redacted>", text)


def _scrub(exc: BaseException) -> BaseException:
    """
    Remove request headers and URL query strings from an aiohttp exception.

    It stays the ``__cause__`` of our error, so a formatted traceback prints
    it; ``ClientResponseError`` keeps the request headers (the key) in its
    ``request_info``, and some messages embed the full URL (RELIABILITY #39).
    """
    if isinstance(exc, aiohttp.ClientResponseError):
        safe = URL(redact_url(exc.request_info.real_url), encoded=True)
        exc.request_info = aiohttp.RequestInfo(
            url=safe,
            method=exc.request_info.method,
            headers=CIMultiDictProxy(CIMultiDict()),
            real_url=safe,
        )
    exc.args = tuple(_strip_queries(a) if isinstance(a, str) else a for a in exc.args)
    return exc


def _classify(exc: BaseException, phase: _Phase) -> type[AIVideoError]:
    not_sent_yet = phase.tracked and not phase.sent
    if isinstance(exc, aiohttp.ClientSSLError):
        return TLSError
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        # aiohttp's ``connect`` timeout covers the pool wait and the TCP connect;
        # the connector tells them apart (RELIABILITY #8).
        return PoolTimeout if phase.queued else ConnectError
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectError
    if isinstance(exc, aiohttp.ServerTimeoutError):  # sock_read
        return ConnectError if not_sent_yet else ReadTimeout
    if isinstance(exc, TimeoutError):  # the ``total`` deadline
        if not_sent_yet:
            return PoolTimeout if phase.queued else ConnectError
        return TotalTimeout
    if isinstance(exc, aiohttp.ClientError):
        return ConnectError if not_sent_yet else RemoteDisconnected
    return TransportError


def _transport_message(
    exc: BaseException, kind: type[AIVideoError], timeouts: Timeouts | None
) -> str:
    if kind is TLSError:
        detail = (
            f": {_strip_queries(str(exc))}" if isinstance(exc, aiohttp.ClientConnectorError) else ""
        )
        return f"TLS handshake or certificate verification failed{detail}"
    if kind is PoolTimeout:
        connect = f" within {timeouts.connect} s" if timeouts else ""
        return f"no pooled connection became free{connect}; the request was not sent"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _strip_queries(str(exc))
    if kind is ConnectError:
        connect = f" within {timeouts.connect} s" if timeouts else ""
        return f"could not connect{connect}; the request was not sent"
    if kind is ReadTimeout:
        read = f" for {timeouts.read} s" if timeouts else ""
        return f"no data from the server{read}"
    if kind is TotalTimeout:
        total = f" of {timeouts.total} s" if timeouts and timeouts.total else ""
        return f"the overall deadline{total} passed before the response was complete"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection without a (complete) response"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "the response body was truncated or malformed"
    if isinstance(exc, aiohttp.ClientResponseError):
        return "the server sent a malformed HTTP response"
    if isinstance(exc, aiohttp.ClientOSError):
        return f"connection error: {exc.strerror or type(exc).__name__}"
    return f"HTTP transport failed ({type(exc).__name__})"


@contextlib.contextmanager
def map_aiohttp_errors(
    *,
    provider: str | None,
    endpoint: str | None,
    phase: _Phase | None = None,
    timeouts: Timeouts | None = None,
) -> Iterator[None]:
    """
    Translate aiohttp and timeout errors into this library's tree: THE boundary.

    Not-sent failures (refused, DNS, TLS, connect or pool timeout) become
    :class:`~aivideo_async._exceptions.RequestNotSent` subclasses; anything
    after the first request byte becomes a ``RequestMaybeSent`` subclass.
    Always ``raise ... from`` the original, scrubbed of headers and query
    strings. Cancellation is never caught.

    Example:
        >>> import aiohttp
        >>> try:
        ...     with map_aiohttp_errors(provider="miraflow", endpoint="GET /api/avatars"):
        ...         raise aiohttp.ServerDisconnectedError()
        ... except RemoteDisconnected as err:
        ...     print(err.request_sent, type(err.__cause__).__name__)
        True ServerDisconnectedError
    """
    try:
        yield
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise _transport_error(
            exc, provider=provider, endpoint=endpoint, phase=phase, timeouts=timeouts
        ) from _scrub(exc)


def _transport_error(
    exc: BaseException,
    *,
    provider: str | None,
    endpoint: str | None,
    phase: _Phase | None,
    timeouts: Timeouts | None,
) -> AIVideoError:
    """
    The error that :func:`map_aiohttp_errors` raises for ``exc`` (an
    ``aiohttp.ClientError`` or ``TimeoutError``); the caller raises it
    ``from _scrub(exc)``. The hot paths call it from a plain ``except`` (no
    context manager per request).
    """
    if isinstance(exc, aiohttp.InvalidURL):
        return InvalidInput(field="url", value=redact_url(str(exc.url)), expected="a valid URL")
    kind = _classify(exc, phase or _Phase())
    message = _transport_message(exc, kind, timeouts)
    return kind(message, provider=provider, endpoint=endpoint)


# ---------------------------------------------------------------------------
# The session


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


class _AttemptNotes:
    """
    What one attempt learned that the retry loop needs (a server hint), and
    the time the call's deadline leaves it (``None``: no deadline).
    """

    __slots__ = ("remaining", "retry_after")

    def __init__(self, remaining: float | None = None) -> None:
        self.retry_after: float | None = None
        self.remaining = remaining

    def clamp(self, timeouts: Timeouts) -> Timeouts:
        """``timeouts`` shortened so that this attempt ends by the call's deadline."""
        left = self.remaining
        if left is None or (timeouts.total is not None and timeouts.total <= left):
            return timeouts
        left = max(left, 0.001)  # already past it: the attempt times out at once
        return Timeouts(
            connect=min(timeouts.connect, left), read=min(timeouts.read, left), total=left
        )


def check_deadline(deadline: object) -> None:
    """
    Refuse a ``deadline`` that is not ``None`` or a positive finite number of seconds.

    Example:
        >>> check_deadline(5)
        >>> check_deadline(-1)
        Traceback (most recent call last):
        ...
        aivideo_async.InvalidInput: deadline: got -1, expected None or a positive number of seconds
    """
    if deadline is None:
        return
    if (
        isinstance(deadline, bool)
        or not isinstance(deadline, int | float)
        or not math.isfinite(deadline)
        or deadline <= 0
    ):
        raise InvalidInput(
            field="deadline", value=deadline, expected="None or a positive number of seconds"
        )


class Session:
    """
    The async HTTP session of one provider client.

    Use it as an async context manager (or call :meth:`aclose`). It creates its
    own :class:`aiohttp.ClientSession` on entry (connection pool sized by
    ``limits``), or borrows ``session`` and then never closes it.

    Args:
        provider: the provider name put on every error.
        base_url: ``https://...``; plain ``http`` only for loopback hosts or
            with ``allow_insecure_http`` (RELIABILITY #40).
        auth: :class:`HeaderKeyAuth`, :class:`BearerAuth` or ``None``.
        headers: default headers for API calls (not sent to absolute URLs).
        timeouts: per-attempt timeouts; ``connect`` includes the pool wait.
        limits: pool sizes and the response/download byte caps.
        retry: the retry policy of idempotent calls.
        session: an aiohttp session to borrow (never closed here).
        error_mapper: the provider's body-code hook (:data:`ErrorMapper`).
        clock, sleep, rng: the time seam.
        allow_insecure_http: allow ``http://`` to non-loopback hosts. Tests only.
        retry_budget: a budget to share with other sessions; by default one
            per session, sized by ``retry``.

    Example::

        async with Session(provider="miraflow", base_url="https://app.miraflow.ai",
                           auth=HeaderKeyAuth("x-api-key", Secret.from_env("MIRAFLOW_API_KEY"))
                           ) as session:
            avatars = (await session.request("GET", "/api/avatars")).json()
    """

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        auth: Auth | None = None,
        headers: Mapping[str, str] | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        limits: Limits = DEFAULT_LIMITS,
        retry: RetryPolicy = DEFAULT_RETRY_POLICY,
        session: aiohttp.ClientSession | None = None,
        error_mapper: ErrorMapper | None = None,
        clock: Clock = monotonic_clock,
        sleep: Sleep = anyio_sleep,
        rng: RandomSource = system_random,
        allow_insecure_http: bool = False,
        retry_budget: RetryBudget | None = None,
    ) -> None:
        if not provider:
            raise InvalidInput(field="provider", value=provider, expected="a non-empty name")
        try:
            url = URL(base_url)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(
                field="base_url", value=redact_url(str(base_url)), expected="a URL"
            ) from exc
        if url.query_string or url.fragment:
            raise InvalidInput(
                field="base_url",
                value=redact_url(url),
                expected="a URL without query or fragment",
            )
        _check_url(url, field="base_url", allow_insecure_http=allow_insecure_http)
        for name, value in (headers or {}).items():
            _check_header_value(f"headers[{name}]", value)
        self.provider = provider
        self.base_url = str(url).rstrip("/")
        # The base as a URL and its path prefix: a request URL is the base with
        # its path replaced (yarl's with_path), several times cheaper than
        # parsing base_url + path again on every request.
        self._base = URL(self.base_url, encoded=True)
        self._base_path = self._base.raw_path.rstrip("/")
        self._auth = auth
        self._headers: dict[str, str] = {"User-Agent": _USER_AGENT, **(headers or {})}
        # What a JSON call without extra headers sends (before auth): the
        # per-request merge of the common case, done once.
        self._json_headers: dict[str, str] = {**self._headers, "Accept": "application/json"}
        # A static key (HeaderKeyAuth) is merged into those once as well.
        self._static_auth: _Headers | None = None
        self._authed_headers = self._authed_json_headers = _Headers()
        if isinstance(auth, HeaderKeyAuth):
            self._static_auth = auth._static_headers()
            self._authed_headers = _Headers({**self._headers, **self._static_auth})
            self._authed_json_headers = _Headers({**self._json_headers, **self._static_auth})
        self._timeouts = timeouts
        self._default_client_timeout = _client_timeout(timeouts)
        self._limits = limits
        self._retry = retry
        self._client: aiohttp.ClientSession | None = session
        self._owns_client = session is None
        self._error_mapper = error_mapper
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._allow_insecure_http = allow_insecure_http
        self.retry_budget: RetryBudget = retry_budget or RetryBudget(
            capacity=retry.budget, retry_cost=retry.retry_cost, timeout_cost=retry.timeout_cost
        )
        self._state = _State.UNOPENED
        # A 429 on a read pauses every read of this session (one provider host) until its
        # Retry-After has passed, not just the request that got it (RELIABILITY #25).
        self._paused_until = 0.0
        self.host_pauses = 0
        """How many times a 429 paused every read of this session."""

    @property
    def paused_for(self) -> float:
        """
        Seconds left of the pause a 429 put on this session's reads (0 when none).

        Example:
            >>> Session(provider="p", base_url="https://api.example").paused_for
            0.0
        """
        return max(0.0, self._paused_until - self._clock())

    # -- lifecycle -----------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._ensure_client()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the owned aiohttp session (a borrowed one is left open). Idempotent."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        client, self._client = self._client, None
        if self._owns_client and client is not None:
            await client.close()

    def _ensure_client(self) -> aiohttp.ClientSession:
        if self._state is _State.CLOSED:
            raise RuntimeError(f"Session for {self.provider} is closed")
        if self._client is None:
            connector = _PhaseConnector(
                limit=self._limits.connections, limit_per_host=self._limits.per_host
            )
            self._client = aiohttp.ClientSession(
                connector=connector,
                # Cookies from one host must never ride along to a signed-URL host.
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=_client_timeout(self._timeouts),
            )
        self._state = _State.OPENED
        return self._client

    def __repr__(self) -> str:
        owned = "owned" if self._owns_client else "borrowed"
        return (
            f"Session(provider={self.provider!r}, base_url={redact_url(self.base_url)!r}, "
            f"auth={self._auth!r}, headers={sorted(self._headers)!r}, "
            f"state={self._state.value}, client={owned})"
        )

    # -- URL building ----------------------------------------------------------

    def _build_url(
        self, method: str, path: str, path_params: Mapping[str, str] | None, *, absolute: bool
    ) -> tuple[URL, str]:
        if absolute:
            try:
                url = URL(path, encoded=True)
            except (ValueError, TypeError) as exc:
                raise InvalidInput(field="url", value=redact_url(path), expected="a URL") from exc
            _check_url(url, field="url", allow_insecure_http=self._allow_insecure_http)
            if path_params:
                raise InvalidInput(
                    field="path_params", value=sorted(path_params), expected="none with a full URL"
                )
            return url, f"{method} {redact_url(url)}"
        literals, names, name_set = _path_template(path)
        params = path_params or {}
        filled = path
        if names or params:
            pieces = [literals[0]]
            for name, literal in zip(names, literals[1:], strict=True):
                if name not in params:
                    raise InvalidInput(field=name, value=None, expected="a path parameter value")
                value: object = params[name]
                if isinstance(value, str) and _PATH_ID.fullmatch(value) is not None:
                    # A valid id is its own percent-quoted form: skip the quoting.
                    pieces.append(value)
                else:
                    pieces.append(validate_path_id(name, value))  # raises, naming the field
                pieces.append(literal)
            # Every name was found above, so a size difference means extra names.
            if len(params) != len(name_set) and (extra := set(params) - name_set):
                raise InvalidInput(
                    field="path_params",
                    value=sorted(extra),
                    expected=f"only names used in {path!r}",
                )
            filled = "".join(pieces)
        # encoded=True: yarl must not normalise '..' or re-split segments (RELIABILITY #38);
        # so the URL's raw path is exactly this string.
        raw_path = self._base_path + filled
        return self._base.with_path(raw_path, encoded=True), f"{method} {raw_path}"

    # -- one attempt -------------------------------------------------------------

    async def _open(
        self,
        method: str,
        url: URL,
        endpoint: str,
        *,
        params: Mapping[str, str] | None,
        body: bytes | aiohttp.FormData | None,
        headers: Mapping[str, str],
        timeouts: Timeouts,
    ) -> aiohttp.ClientResponse:
        client = self._ensure_client()
        phase = _Phase()
        token = _CURRENT_PHASE.set(phase)
        # The boundary of map_aiohttp_errors, as a plain ``except``: no context
        # manager per request on the poll hot path.
        try:
            return await client.request(
                method,
                url,
                params=params,
                data=body,
                headers=headers,
                allow_redirects=False,  # never forward credentials (RELIABILITY #21)
                timeout=(
                    self._default_client_timeout
                    if timeouts is self._timeouts
                    else _client_timeout(timeouts)
                ),
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _transport_error(
                exc, provider=self.provider, endpoint=endpoint, phase=phase, timeouts=timeouts
            ) from _scrub(exc)
        finally:
            _CURRENT_PHASE.reset(token)
            watch = _SEND_WATCH.get()
            if watch is not None:
                if phase.tracked and not phase.sent:
                    watch.unsent = True  # ended (cancelled, timed out) before a connection
                else:
                    watch.maybe_sent = True

    async def _read_capped(
        self, resp: aiohttp.ClientResponse, endpoint: str, cap: int, timeouts: Timeouts
    ) -> bytes:
        """Read the body, stopping as soon as it passes ``cap`` (RELIABILITY #22)."""
        length = resp.content_length
        if length is not None and length > cap:
            raise ResponseTooLarge(
                f"Content-Length {length} is over the {cap}-byte cap",
                limit=cap,
                provider=self.provider,
                status_code=resp.status,
                endpoint=endpoint,
            )
        content = resp.content
        buf = bytearray()
        while True:
            try:
                chunk = await content.read(_CHUNK)
            except (TimeoutError, aiohttp.ClientError) as exc:
                phase = _Phase()
                phase.sent = True
                err = _transport_error(
                    exc, provider=self.provider, endpoint=endpoint, phase=phase, timeouts=timeouts
                )
                # A truncated answer to a create: its outcome is unknown, and the
                # journal keeps a digest of what did arrive (RELIABILITY #4).
                if buf and isinstance(err, RequestMaybeSent):
                    err.body_digest = hashlib.sha256(buf).hexdigest()
                raise err from _scrub(exc)
            if not chunk:
                return bytes(buf)
            if not buf and len(chunk) <= cap and content.at_eof() and content.exception() is None:
                # Fast path: the whole body in one chunk and the stream already
                # ended cleanly (every small status answer), so the next read
                # could only return b"": skip it.
                return chunk
            buf += chunk
            if len(buf) > cap:
                raise ResponseTooLarge(
                    f"response body is over the {cap}-byte cap; reading stopped",
                    limit=cap,
                    provider=self.provider,
                    status_code=resp.status,
                    endpoint=endpoint,
                )

    def _info(
        self,
        resp: aiohttp.ClientResponse,
        endpoint: str,
        body: bytes,
        *,
        json_type: bool | None = None,
    ) -> tuple[ResponseInfo, DecodeError | None]:
        """
        The :class:`ResponseInfo` of an answer, and the error decoding its body
        raised (``None``: decoded, or not a JSON content type, or empty). The
        body is decoded once here; the success path reuses it.
        """
        headers = resp.headers
        if json_type is None:
            json_type = _is_json_type(headers.get("Content-Type"))
        decoded: JSON | None = None
        decode_error: DecodeError | None = None
        if body and json_type:
            try:
                decoded = _decode_json(
                    body, endpoint=endpoint, status=resp.status, provider=self.provider
                )
            except DecodeError as exc:
                decode_error = exc
        retry_after = None
        if (hint := headers.get("Retry-After")) is not None:
            retry_after = parse_retry_after(
                hint,
                date_header=headers.get("Date"),
                cap=float("inf"),  # clamp later: an over-cap hint must be seen (RELIABILITY #13)
            )
        info = ResponseInfo(
            provider=self.provider,
            endpoint=endpoint,
            status=resp.status,
            headers=headers,
            body=decoded,
            text=body[:_TEXT_LIMIT].decode("utf-8", "replace"),
            retry_after=retry_after,
        )
        return info, decode_error

    def _mapped(self, info: ResponseInfo, *, use_mapper: bool) -> APIStatusError | None:
        if use_mapper and self._error_mapper is not None:
            err = self._error_mapper(info)
            if err is not None:
                if err.provider is None:
                    err.provider = info.provider
                if err.endpoint is None:
                    err.endpoint = info.endpoint
                if err.status_code is None:
                    err.status_code = info.status
                return err
        return default_status_error(info)

    def _redirect_error(self, resp: aiohttp.ClientResponse, endpoint: str) -> UnexpectedRedirect:
        location = resp.headers.get("Location")
        shown = redact_url(location) if location else None
        return UnexpectedRedirect(
            f"HTTP {resp.status} redirect to {shown or '(no Location)'} was not followed",
            location=shown,
            provider=self.provider,
            status_code=resp.status,
            endpoint=endpoint,
        )

    def _content_type_error(self, info: ResponseInfo, expected: str) -> UnexpectedContentType:
        media = _media_type(info.headers)
        return UnexpectedContentType(
            f"expected {expected}, got {media or 'no Content-Type'}",
            content_type=media,
            provider=self.provider,
            status_code=info.status,
            endpoint=info.endpoint,
        )

    async def _json_attempt(
        self,
        method: str,
        url: URL,
        endpoint: str,
        *,
        params: Mapping[str, str] | None,
        body: bytes | aiohttp.FormData | None,
        headers: Mapping[str, str],
        timeouts: Timeouts,
        expect_json: bool,
        cap: int,
        notes: _AttemptNotes,
        use_mapper: bool,
    ) -> Response:
        resp = await self._open(
            method, url, endpoint, params=params, body=body, headers=headers, timeouts=timeouts
        )
        try:
            if 300 <= resp.status < 400:
                raise self._redirect_error(resp, endpoint)
            content = resp.content
            if content.is_eof() and content.exception() is None and content.total_bytes <= cap:
                # The whole body has already arrived (every small answer): take it
                # without a read coroutine.
                data = content.read_nowait()
            else:
                data = await self._read_capped(resp, endpoint, cap, timeouts)
        except BaseException:
            resp.close()
            raise
        resp.release()
        json_type = _is_json_type(resp.headers.get("Content-Type"))
        info, decode_error = self._info(resp, endpoint, data, json_type=json_type)
        notes.retry_after = info.retry_after
        err = self._mapped(info, use_mapper=use_mapper)
        content_ok = json_type or not data.strip()
        if err is not None:
            # A gateway's HTML page on a 5xx is not the provider speaking (RELIABILITY #19);
            # a 4xx status (401, 404, 429...) means what it says whatever the body, and a
            # 503 with Retry-After is a real back-off signal.
            gateway_page = info.status >= 500 and info.retry_after is None
            if expect_json and not content_ok and gateway_page and err.body_code is None:
                raise self._content_type_error(info, "application/json") from err
            raise err
        if not expect_json:
            return Response(status=resp.status, headers=resp.headers, body=data, endpoint=endpoint)
        if not content_ok:
            raise self._content_type_error(info, "application/json")
        # content_ok: a JSON type (decoded by _info when the body is not empty)
        # or a blank body (None, as _decode_json gives).
        if decode_error is not None:
            raise decode_error
        decoded = info.body
        return Response(
            status=resp.status, headers=resp.headers, body=data, endpoint=endpoint, decoded=decoded
        )

    # -- retries -----------------------------------------------------------------

    async def _with_retries(
        self,
        endpoint: str,
        *,
        idempotent: bool,
        authenticated: bool,
        attempt_fn: Callable[[Mapping[str, str], _AttemptNotes], Awaitable[_T]],
        deadline: float | None = None,
    ) -> _T:
        retry = self._retry
        retries = 0
        auth_refreshed = False
        started = self._clock()
        # Measured on the injected (monotonic) clock, like every delay (RELIABILITY #32).
        ends_at = None if deadline is None else started + deadline
        gate = idempotent  # creates follow the orchestrator's own 429 rule (RELIABILITY #12)
        while True:
            if gate and self._paused_until:  # (0.0 until a 429 paused this session)
                await self._wait_for_host_pause(endpoint, ends_at)
            gate = idempotent
            auth_headers: Mapping[str, str] = _NO_HEADERS
            if authenticated and self._auth is not None:
                auth_headers = self._static_auth or await self._auth.headers()
            notes = _AttemptNotes(None if ends_at is None else ends_at - self._clock())
            try:
                result = await attempt_fn(auth_headers, notes)
            except AuthenticationError:
                # One single-flight refresh; only an idempotent call is resent
                # (a create may already have run, RELIABILITY #16, #28).
                if (
                    auth_refreshed
                    or not authenticated
                    or self._auth is None
                    or not await self._auth.refresh(auth_headers)
                ):
                    raise
                auth_refreshed = True
                if not idempotent or (ends_at is not None and self._clock() >= ends_at):
                    raise
                _log.debug("%s [%s]: credential refreshed; resending", endpoint, self.provider)
                continue
            except AIVideoError as exc:
                if idempotent and isinstance(exc, RateLimited) and exc.retry_after:
                    self._pause_host(exc.retry_after)
                delay = self._retry_delay(exc, notes, idempotent=idempotent, retries=retries)
                if delay is None:
                    raise
                if ends_at is not None and self._clock() + delay >= ends_at:
                    # The retry could not even start before the deadline: a Retry-After
                    # longer than the time left is surfaced now, not slept through
                    # (RELIABILITY #13, #26).
                    _log.debug(
                        "%s [%s]: a retry in %.3f s would pass the %.3f s deadline "
                        "(%.3f s left); giving up: %s",
                        endpoint,
                        self.provider,
                        delay,
                        deadline,
                        ends_at - self._clock(),
                        _reason(exc),
                    )
                    raise
                timeout = isinstance(exc, ReadTimeout | TotalTimeout | PoolTimeout)
                if not self.retry_budget.try_acquire(timeout=timeout):
                    _log.debug(
                        "%s [%s]: retry budget exhausted (%r); failing fast: %s",
                        endpoint,
                        self.provider,
                        self.retry_budget,
                        _reason(exc),
                    )
                    raise
                if isinstance(exc, RateLimited) and idempotent:
                    gate = False  # this call sleeps the hint itself, just below
                retries += 1
                _log.debug(
                    "%s [%s]: retry %d of %d in %.3f s (%.3f s elapsed) after %s",
                    endpoint,
                    self.provider,
                    retries,
                    retry.attempts - 1,
                    delay,
                    self._clock() - started,
                    _reason(exc),
                )
                await self._sleep(delay)
                if ends_at is not None and self._clock() >= ends_at:
                    raise  # the sleep overran (a real clock): no time left to try
                continue
            budget = self.retry_budget
            if budget.tokens < budget.capacity:
                budget.record_success()
            return result

    def _pause_host(self, seconds: float) -> None:
        until = self._clock() + min(seconds, self._retry.retry_after_cap)
        if until > self._paused_until:
            self._paused_until = until
            self.host_pauses += 1
            _log.debug("[%s]: 429: every read waits %.3f s", self.provider, seconds)

    async def _wait_for_host_pause(self, endpoint: str, ends_at: float | None) -> None:
        remaining = self._paused_until - self._clock()
        if remaining <= 0:
            return
        if ends_at is not None and self._clock() + remaining >= ends_at:
            raise RateLimited(
                f"the provider asked every request to wait {remaining:.3f} s (an earlier 429); "
                "that is past this call's deadline",
                retry_after=remaining,
                provider=self.provider,
                status_code=None,
                endpoint=endpoint,
            )
        _log.debug("%s [%s]: waiting %.3f s for a 429 pause", endpoint, self.provider, remaining)
        await self._sleep(remaining)

    def _retry_delay(
        self, exc: AIVideoError, notes: _AttemptNotes, *, idempotent: bool, retries: int
    ) -> float | None:
        """The delay before the next try, or ``None`` when ``exc`` must be raised."""
        if not idempotent:
            return None  # never resend a non-idempotent call (RFC 9110 §9.2.2)
        if retries + 1 >= self._retry.attempts:
            return None
        # UnexpectedContentType: a proxy's HTML page, transient for a read (RELIABILITY #19).
        # A TLS or certificate failure is not transient: never retried (RELIABILITY #7).
        retryable = isinstance(
            exc, TransportError | RateLimited | ServerError | UnexpectedContentType
        ) and not isinstance(exc, TLSError)
        if not retryable:
            return None
        hint = exc.retry_after if isinstance(exc, RateLimited) else None
        if hint is None and isinstance(exc, APIStatusError | UnexpectedContentType):
            hint = notes.retry_after
        if hint is not None:
            if hint > self._retry.retry_after_cap:
                # Sleeping for hours inside a request helps nobody: surface it.
                return None
            return hint
        return compute_delay(
            retries,
            base=self._retry.base,
            cap=self._retry.cap,
            jitter=self._retry.jitter,
            rng=self._rng,
        )

    def _request_headers(
        self,
        auth_headers: Mapping[str, str],
        extra: Mapping[str, str] | None,
        *,
        absolute: bool,
        base: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        if not extra and base is not None:
            # The common call: the merge was done once (aiohttp copies what it is given).
            if auth_headers is self._static_auth:
                json_base = base is self._json_headers
                return self._authed_json_headers if json_base else self._authed_headers
            if not auth_headers:
                return dict(base)
        if base is None:
            base = {"User-Agent": _USER_AGENT} if absolute else self._headers
        merged = _Headers(base)
        for name, value in (extra or {}).items():
            _check_header_value(f"headers[{name}]", value)
            merged[name] = value
        merged.update(auth_headers)
        return merged

    # -- public API ----------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json: JSON | None = None,
        data: aiohttp.FormData | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        timeouts: Timeouts | None = None,
        expect_json: bool = True,
        max_bytes: int | None = None,
        authenticated: bool = True,
        absolute: bool = False,
        deadline: float | None = None,
    ) -> Response:
        """
        Send one API call and return the complete response.

        Args:
            method: the HTTP method.
            path: ``/api/video/{id}/status`` (placeholders filled from
                ``path_params``), or a full URL with ``absolute=True``.
            path_params: values for the placeholders, validated by
                :func:`validate_path_id`.
            params: the query string.
            json: a JSON body (sent as ``application/json``).
            data: a form or raw bytes body (not with ``json``).
            headers: extra headers for this call.
            idempotent: whether a retry is safe; by default true for GET,
                HEAD, PUT, DELETE, OPTIONS, false otherwise. Non-idempotent
                calls are never retried.
            timeouts: per-attempt timeouts (default: the session's).
            expect_json: check the content type and decode the body.
            max_bytes: body cap (default ``limits.max_response_bytes``).
            authenticated: add the auth headers.
            absolute: ``path`` is a full URL (e.g. a presigned upload URL);
                no auth and no session headers are sent to it.
            deadline: seconds from now (on the session's clock) for the
                whole call, retries included: each attempt's timeouts are
                shortened to end by it, and a retry whose backoff or
                ``Retry-After`` would end at or after it is not made (the
                last error is raised at once; RELIABILITY #13, #26).

        Returns:
            The :class:`Response`.

        Raises:
            InvalidInput: a bad path id, URL or header value; nothing sent.
            TransportError: ``RequestNotSent`` or ``RequestMaybeSent`` kinds.
            APIStatusError: the provider's error (status or body code).
            ProtocolError: wrong content type, bad JSON, too large, redirect.

        Example::

            resp = await session.request("GET", "/api/video/{id}/status",
                                         path_params={"id": job_id})
            status = resp.json()
        """
        method = method.upper()
        check_deadline(deadline)
        url, endpoint = self._build_url(method, path, path_params, absolute=absolute)
        body = _request_body(json, data)
        base: Mapping[str, str] | None = None
        extra: dict[str, str] = {}
        if not headers and json is None and not absolute:
            # The common call (a poll): the session headers plus Accept, merged
            # and checked once in __init__ rather than per request.
            base = self._json_headers if expect_json else self._headers
        else:
            extra = dict(headers or {})
        if json is not None:
            extra.setdefault("Content-Type", "application/json")
        if expect_json and base is None:
            extra.setdefault("Accept", "application/json")
        is_idempotent = method in _IDEMPOTENT_METHODS if idempotent is None else idempotent
        per_call = timeouts or self._timeouts
        cap = max_bytes if max_bytes is not None else self._limits.max_response_bytes

        # A plain function returning the attempt's coroutine: one coroutine frame
        # fewer on every resumption of a call that is mostly waiting.
        def attempt(auth_headers: Mapping[str, str], notes: _AttemptNotes) -> Awaitable[Response]:
            return self._json_attempt(
                method,
                url,
                endpoint,
                params=params,
                body=body,
                headers=self._request_headers(auth_headers, extra, absolute=absolute, base=base),
                timeouts=per_call if notes.remaining is None else notes.clamp(per_call),
                expect_json=expect_json,
                cap=cap,
                notes=notes,
                use_mapper=not absolute,
            )

        return await self._with_retries(
            endpoint,
            idempotent=is_idempotent,
            authenticated=authenticated and not absolute,
            attempt_fn=attempt,
            deadline=deadline,
        )

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json: JSON | None = None,
        data: aiohttp.FormData | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        timeouts: Timeouts | None = None,
        accept: str = "text/event-stream",
        authenticated: bool = True,
        deadline: float | None = None,
    ) -> AsyncIterator[StreamResponse]:
        """
        Open a streaming response; the connection is released on exit.

        The status is checked on entry: an error body is read (capped) and
        mapped like :meth:`request`; a 2xx of another type than ``accept`` is
        read, offered to the error mapper, else :class:`UnexpectedContentType`.
        Only an idempotent call failing before the body starts is retried.

        ``deadline`` (seconds from now, on the session's clock) bounds the
        opening, retries included: no retry or backoff starts past it, and an
        attempt still waiting for its answer then raises
        :class:`TotalTimeout` (maybe sent). Reading the body is not bounded by
        it (a stream may last; use ``timeouts.read`` for silence).

        Example::

            async with session.stream("POST", "/run_sse", json=payload) as stream:
                async for chunk in stream.iter_bytes():
                    ...
        """
        method = method.upper()
        check_deadline(deadline)
        url, endpoint = self._build_url(method, path, path_params, absolute=False)
        extra = dict(headers or {})
        extra.setdefault("Accept", accept)
        body = _request_body(json, data)
        if json is not None:
            extra.setdefault("Content-Type", "application/json")
        is_idempotent = method in _IDEMPOTENT_METHODS if idempotent is None else idempotent
        per_call = timeouts or self._timeouts
        wanted = accept.split(";", 1)[0].strip().lower()

        async def attempt(
            auth_headers: Mapping[str, str], notes: _AttemptNotes
        ) -> aiohttp.ClientResponse:
            opening = self._open(
                method,
                url,
                endpoint,
                params=params,
                body=body,
                headers=self._request_headers(auth_headers, extra, absolute=False),
                timeouts=per_call,
            )
            if notes.remaining is None:
                resp = await opening
            else:
                with anyio.move_on_after(max(notes.remaining, 0.0)) as scope:
                    resp = await opening
                if scope.cancelled_caught:
                    raise TotalTimeout(
                        f"the {deadline} s deadline passed before the stream opened",
                        provider=self.provider,
                        endpoint=endpoint,
                    )
            try:
                if 300 <= resp.status < 400:
                    raise self._redirect_error(resp, endpoint)
                media = _media_type(resp.headers)
                type_ok = wanted in ("*/*", "") or media == wanted
                if 200 <= resp.status < 300 and type_ok:
                    return resp
                raw = await self._read_capped(
                    resp, endpoint, self._limits.max_response_bytes, per_call
                )
                info, _ = self._info(resp, endpoint, raw)
                notes.retry_after = info.retry_after
                err = self._mapped(info, use_mapper=True)
                if err is not None:
                    raise err
                raise self._content_type_error(info, wanted)
            except BaseException:
                resp.close()
                raise

        resp = await self._with_retries(
            endpoint,
            idempotent=is_idempotent,
            authenticated=authenticated,
            attempt_fn=attempt,
            deadline=deadline,
        )
        try:
            yield StreamResponse(resp, provider=self.provider, endpoint=endpoint, timeouts=per_call)
        finally:
            resp.close()

    async def download(
        self,
        url_or_path: str,
        dest: str | os.PathLike[str],
        *,
        path_params: Mapping[str, str] | None = None,
        absolute: bool = False,
        max_bytes: int | None = None,
        progress: Callable[[int, int | None], None] | None = None,
        content_types: Collection[str] | None = None,
        timeouts: Timeouts | None = None,
        deadline: float | None = None,
    ) -> pathlib.Path:
        """
        Download a file atomically to ``dest`` and return its path.

        The body goes to a temporary file in ``dest``'s folder, is fsynced and
        then ``os.replace``-d into place (and the folder fsynced), so ``dest``
        only ever holds a complete file: when the length is known (from
        ``Content-Length`` or ``Content-Range``) a shorter body is an error. On
        any failure (size cap, content type, reset, disk full, cancellation)
        the temporary file is removed (RELIABILITY #34, #36, #37).

        Transport errors are retried up to the retry policy. A retry resumes
        with ``Range: bytes=N-`` and ``If-Range: <ETag>`` when the first
        answer had ``Accept-Ranges: bytes`` and a strong ``ETag``; the part is
        appended only if it is a ``206`` whose ``Content-Range`` starts at
        ``N`` and runs to the end of the same file. A ``200`` instead (the file
        changed) is written from zero, and any other mismatch asks for the
        whole file again; without those headers a retry restarts from zero
        (RELIABILITY #34). Redirects are followed by hand (at most 5, https or
        loopback only) and never with credentials or custom headers
        (RELIABILITY #35); with ``absolute=True`` no auth is sent at all.

        Args:
            url_or_path: an API path (``/api/video/{id}/download``) or, with
                ``absolute=True``, a full (signed) URL.
            dest: the target file.
            path_params: values for the path placeholders.
            absolute: ``url_or_path`` is a full URL; send it no auth/headers.
            max_bytes: cap (default ``limits.max_download_bytes``).
            progress: called as ``progress(done, total)`` after each chunk
                (``total`` from Content-Length, or ``None``); after a resume
                ``done`` continues from the bytes already on disk.
            content_types: allowed media-type prefixes (``("video/",)``);
                ``None`` accepts anything but ``text/html``.
            timeouts: per-attempt timeouts (default: the session's).
            deadline: seconds from now (on the session's clock) for the whole
                download, retries and resumes included: each attempt's
                timeouts are shortened to end by it, and no retry starts (or
                backoff is slept) past it, as for :meth:`request`.

        Raises:
            InvalidInput: a bad path id, URL or ``deadline``; nothing sent.
            DownloadError: the file could not be written, or the server sent
                part of a file that was not asked for.
            ResponseTooLarge, UnexpectedContentType, UnexpectedRedirect,
            TransportError, APIStatusError (a 403 from an expired signed URL is
            :class:`PaymentRequired` with status 403, RELIABILITY #33).

        Example::

            path = await session.download(result.download_url, "out/video.mp4",
                                          absolute=True, content_types=("video/",))
        """
        check_deadline(deadline)
        target = pathlib.Path(dest)
        url, endpoint = self._build_url("GET", url_or_path, path_params, absolute=absolute)
        cap = max_bytes if max_bytes is not None else self._limits.max_download_bytes
        per_call = timeouts or self._timeouts
        # One temp file for every attempt of this call, so a retry can append to it.
        partial = _Partial()

        async def attempt(auth_headers: Mapping[str, str], notes: _AttemptNotes) -> pathlib.Path:
            return await self._download_once(
                url,
                endpoint,
                target,
                partial,
                auth_headers=auth_headers,
                absolute=absolute,
                cap=cap,
                progress=progress,
                content_types=content_types,
                timeouts=per_call if notes.remaining is None else notes.clamp(per_call),
                notes=notes,
            )

        try:
            return await self._with_retries(
                endpoint,
                idempotent=True,
                authenticated=not absolute,
                attempt_fn=attempt,
                deadline=deadline,
            )
        finally:
            partial.discard()  # a no-op after success: the file was moved into place

    async def _download_once(
        self,
        url: URL,
        endpoint: str,
        target: pathlib.Path,
        partial: _Partial,
        *,
        auth_headers: Mapping[str, str],
        absolute: bool,
        cap: int,
        progress: Callable[[int, int | None], None] | None,
        content_types: Collection[str] | None,
        timeouts: Timeouts,
        notes: _AttemptNotes,
    ) -> pathlib.Path:
        offset = partial.resume_offset()
        while True:
            # Offsets only mean something in the identity encoding (aiohttp would
            # otherwise decompress and the byte counts would not match the file).
            extra = {"Accept-Encoding": "identity"}
            if offset:
                assert partial.etag is not None  # resume_offset() checked it
                extra["Range"] = f"bytes={offset}-"
                extra["If-Range"] = partial.etag
            resp = await self._open_download(
                url,
                endpoint,
                auth_headers=auth_headers,
                absolute=absolute,
                extra=extra,
                ranged=bool(offset),
                timeouts=timeouts,
                notes=notes,
            )
            try:
                if offset and resp.status != 200:
                    problem = partial.check_part(resp, offset)
                    if problem is not None:
                        # A part we cannot trust (or a 416): ask for the whole file again.
                        _log.debug(
                            "%s [%s]: resume at byte %d refused (%s); restarting from zero",
                            endpoint,
                            self.provider,
                            offset,
                            problem,
                        )
                        partial.restart()
                        offset = 0
                        continue
                else:
                    if offset:
                        # If-Range answered with the whole file: it changed, or the
                        # server ignores ranges. Start over with this body.
                        _log.debug(
                            "%s [%s]: resume at byte %d answered with HTTP 200; "
                            "restarting from zero",
                            endpoint,
                            self.provider,
                            offset,
                        )
                        offset = 0
                    partial.restart()
                    if resp.status == 206 and (problem := partial.check_part(resp, 0)):
                        raise DownloadError(
                            f"HTTP 206 to a request without Range ({problem})",
                            provider=self.provider,
                            status_code=206,
                            endpoint=endpoint,
                        )
                    partial.remember(resp)
                self._check_download_type(resp, endpoint, content_types)
                return await self._write_atomically(
                    resp,
                    endpoint,
                    target,
                    partial,
                    offset=offset,
                    cap=cap,
                    progress=progress,
                    timeouts=timeouts,
                )
            finally:
                resp.close()

    async def _open_download(
        self,
        url: URL,
        endpoint: str,
        *,
        auth_headers: Mapping[str, str],
        absolute: bool,
        extra: Mapping[str, str],
        ranged: bool,
        timeouts: Timeouts,
        notes: _AttemptNotes,
    ) -> aiohttp.ClientResponse:
        """Follow redirects by hand; return the final 2xx (or a 416 to a ranged request)."""
        current = url
        first_hop = True
        for _hop in range(_MAX_DOWNLOAD_REDIRECTS + 1):
            # Only the first hop to the API itself carries auth and session headers.
            with_creds = first_hop and not absolute
            headers = self._request_headers(
                auth_headers if with_creds else {}, extra, absolute=not with_creds
            )
            resp = await self._open(
                "GET", current, endpoint, params=None, body=None, headers=headers, timeouts=timeouts
            )
            try:
                if resp.status in _REDIRECT_STATUSES:
                    location = resp.headers.get("Location")
                    if not location:
                        raise self._redirect_error(resp, endpoint)
                    nxt = current.join(URL(location, encoded=True))
                    if not (
                        nxt.scheme == "https"
                        or (nxt.scheme == "http" and _is_loopback(nxt.host))
                        or (nxt.scheme == "http" and self._allow_insecure_http)
                    ):
                        raise UnexpectedRedirect(
                            f"refused to follow a redirect to {redact_url(nxt)} (https only)",
                            location=redact_url(nxt),
                            provider=self.provider,
                            status_code=resp.status,
                            endpoint=endpoint,
                        )
                    _log.debug(
                        "%s [%s]: following HTTP %d to %s without credentials",
                        endpoint,
                        self.provider,
                        resp.status,
                        redact_url(nxt),
                    )
                    resp.close()
                    current, first_hop = nxt, False
                    continue
                if 300 <= resp.status < 400:
                    raise self._redirect_error(resp, endpoint)
                if 200 <= resp.status < 300 or (ranged and resp.status == 416):
                    return resp
                raw = await self._read_capped(
                    resp, endpoint, self._limits.max_response_bytes, timeouts
                )
                info, _ = self._info(resp, endpoint, raw)
                notes.retry_after = info.retry_after
                err = self._mapped(info, use_mapper=with_creds)
                raise err or self._content_type_error(info, "a 2xx answer")
            except BaseException:
                resp.close()
                raise
        raise UnexpectedRedirect(
            f"more than {_MAX_DOWNLOAD_REDIRECTS} redirects",
            location=redact_url(current),
            provider=self.provider,
            endpoint=endpoint,
        )

    def _check_download_type(
        self, resp: aiohttp.ClientResponse, endpoint: str, allowed: Collection[str] | None
    ) -> None:
        media = _media_type(resp.headers) or "application/octet-stream"
        ok = media != "text/html" if allowed is None else any(media.startswith(p) for p in allowed)
        if not ok:
            raise UnexpectedContentType(
                f"download of type {media} refused (allowed: "
                f"{', '.join(allowed) if allowed is not None else 'anything but text/html'})",
                content_type=media,
                provider=self.provider,
                status_code=resp.status,
                endpoint=endpoint,
            )

    async def _write_atomically(
        self,
        resp: aiohttp.ClientResponse,
        endpoint: str,
        target: pathlib.Path,
        partial: _Partial,
        *,
        offset: int,
        cap: int,
        progress: Callable[[int, int | None], None] | None,
        timeouts: Timeouts,
    ) -> pathlib.Path:
        """
        Write the body at ``offset`` of the temp file, check its length, move it to ``target``.

        The temp file outlives a failed attempt (``partial`` keeps its path and
        how many bytes it holds) so the next attempt can resume;
        :meth:`download` removes it when the call fails for good.
        """
        total = partial.total
        if total is not None and total > cap:
            raise ResponseTooLarge(
                f"the file is {total} bytes, over the {cap}-byte download cap",
                limit=cap,
                provider=self.provider,
                status_code=resp.status,
                endpoint=endpoint,
            )
        folder = target.parent if str(target.parent) else pathlib.Path(".")
        try:
            # Like `curl --create-dirs`: a missing target folder is created, not an error.
            folder.mkdir(parents=True, exist_ok=True)
            fh = partial.open(folder, target.name)
        except OSError as exc:
            raise DownloadError(
                f"cannot create a temporary file in {folder}: {exc.strerror}",
                provider=self.provider,
                endpoint=endpoint,
            ) from exc
        phase = _Phase()
        phase.sent = True
        with fh:
            try:
                # Drop whatever an abandoned attempt left past the resume point.
                fh.truncate(offset)
                fh.seek(offset)
            except OSError as exc:
                raise DownloadError(
                    f"cannot prepare the temporary file for {target.name}: {exc.strerror}",
                    provider=self.provider,
                    endpoint=endpoint,
                ) from exc
            partial.done = offset
            while True:
                with map_aiohttp_errors(
                    provider=self.provider, endpoint=endpoint, phase=phase, timeouts=timeouts
                ):
                    chunk = await resp.content.read(_CHUNK)
                if not chunk:
                    break
                if partial.done + len(chunk) > cap:
                    raise ResponseTooLarge(
                        f"download is over the {cap}-byte cap; reading stopped",
                        limit=cap,
                        provider=self.provider,
                        status_code=resp.status,
                        endpoint=endpoint,
                    )
                try:
                    fh.write(chunk)
                except OSError as exc:
                    raise DownloadError(
                        f"cannot write {target.name}: {exc.strerror}",
                        provider=self.provider,
                        endpoint=endpoint,
                    ) from exc
                # Counted only once written: this is where a resume starts.
                partial.done += len(chunk)
                if progress is not None:
                    progress(partial.done, total)
            if total is not None and partial.done != total:
                # A close-delimited body that ended early: aiohttp sees no error.
                raise RemoteDisconnected(
                    f"the body ended after {partial.done} of {total} bytes",
                    provider=self.provider,
                    status_code=resp.status,
                    endpoint=endpoint,
                )
            try:
                fh.flush()
                await anyio.to_thread.run_sync(os.fsync, fh.fileno())
            except OSError as exc:
                raise DownloadError(
                    f"cannot flush {target.name}: {exc.strerror}",
                    provider=self.provider,
                    endpoint=endpoint,
                ) from exc
        assert partial.path is not None  # partial.open() set it
        try:
            os.replace(partial.path, target)
        except OSError as exc:
            raise DownloadError(
                f"cannot move the download into {target}: {exc.strerror}",
                provider=self.provider,
                endpoint=endpoint,
            ) from exc
        partial.path = None  # moved: nothing left to discard
        await anyio.to_thread.run_sync(_fsync_dir, folder)
        return target


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)
_STRONG_ETAG = re.compile(r'"[\x21\x23-\x7e\x80-\xff]*"')


def _identity_encoded(resp: aiohttp.ClientResponse) -> bool:
    encoding = resp.headers.get("Content-Encoding", "").strip().lower()
    return encoding in ("", "identity")


class _Partial:
    """
    One download's temporary file and what a resume needs (RELIABILITY #34).

    ``etag`` is set only when the full answer allowed a resume (``Accept-Ranges:
    bytes``, a strong ``ETag``, no content coding); ``total`` is the file's
    length when known; ``done`` the bytes safely written to ``path``.
    """

    __slots__ = ("done", "etag", "path", "total")

    def __init__(self) -> None:
        self.path: pathlib.Path | None = None
        self.done = 0
        self.etag: str | None = None
        self.total: int | None = None

    def resume_offset(self) -> int:
        """Where a retry may resume, or 0 to restart from the beginning."""
        if self.path is None or self.etag is None or self.done <= 0:
            return 0
        if self.total is not None and self.done >= self.total:
            return 0
        return self.done

    def restart(self) -> None:
        self.done = 0
        self.etag = None
        self.total = None

    def remember(self, resp: aiohttp.ClientResponse) -> None:
        """Record the length and the resume validator of a whole-file answer."""
        if not _identity_encoded(resp):
            return  # lengths and ranges refer to the encoded bytes: neither is usable
        if resp.status != 206:  # a 206 already set ``total`` in check_part()
            self.total = resp.content_length
        etag = resp.headers.get("ETag", "").strip()
        ranges = {t.strip().lower() for t in resp.headers.get("Accept-Ranges", "").split(",")}
        if "bytes" in ranges and _STRONG_ETAG.fullmatch(etag):
            self.etag = etag

    def check_part(self, resp: aiohttp.ClientResponse, offset: int) -> str | None:
        """Why a 206 cannot be appended at ``offset`` (``None``: it can; ``total`` is set)."""
        if resp.status != 206:
            return f"HTTP {resp.status} instead of 206"
        etag = resp.headers.get("ETag")
        if offset and etag is not None and etag.strip() != self.etag:
            return "the ETag changed"
        if not _identity_encoded(resp):
            return "the part has a content coding"
        match = _CONTENT_RANGE.fullmatch(resp.headers.get("Content-Range", "").strip())
        if match is None:
            return "no valid Content-Range"
        start, end = int(match.group(1)), int(match.group(2))
        complete = None if match.group(3) == "*" else int(match.group(3))
        if start != offset:
            return f"the part starts at byte {start}, not {offset}"
        if end < start:
            return "an empty or inverted Content-Range"
        if complete is not None and self.total is not None and complete != self.total:
            return f"the file is now {complete} bytes, not {self.total}"
        known = complete if complete is not None else self.total
        if known is not None and end != known - 1:
            return f"the part ends at byte {end}, not at the end of the {known}-byte file"
        length = resp.content_length
        if length is not None and length != end - start + 1:
            return "Content-Length does not match Content-Range"
        self.total = known if known is not None else end + 1
        return None

    def open(self, folder: pathlib.Path, name: str) -> BinaryIO:
        """Open the temp file for writing, creating it in ``folder`` the first time."""
        if self.path is None:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
            self.path = pathlib.Path(tmp_name)
            return os.fdopen(fd, "r+b")
        return open(self.path, "r+b")

    def discard(self) -> None:
        """Remove the temp file, if any (synchronous: safe under cancellation)."""
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self.path = None


def _fsync_dir(folder: pathlib.Path) -> None:
    """Persist the rename itself; not every platform can open a folder, which is fine."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@functools.lru_cache(maxsize=64)
def _client_timeout(timeouts: Timeouts) -> aiohttp.ClientTimeout:
    # connect: pool wait + TCP/TLS (not sent); sock_read: the silence between
    # chunks; total: the only guard against a trickle (RELIABILITY #5).
    # Cached: both are frozen, and a session asks for the same few every request.
    return aiohttp.ClientTimeout(
        total=timeouts.total,
        connect=timeouts.connect,
        sock_connect=timeouts.connect,
        sock_read=timeouts.read,
    )


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
