"""
The whole exception tree of ``aivideo_async``.

Every error carries the context a log line needs: ``provider``, ``status_code``
(HTTP), ``body_code`` (the provider's own code), ``message`` and ``endpoint``
(``"METHOD /path"``; never a query string, a header or a secret)::

    AIVideoError
    ├── InvalidInput (+ ValueError)           bad argument: names field, value, expected
    │   └── MissingCredential                 key not given and its variable unset
    ├── TransportError                        the HTTP exchange itself failed
    │   ├── RequestNotSent                    provably never reached the server
    │   │   ├── ConnectError                  refused, DNS, connect timeout, TLS
    │   │   │   └── TLSError
    │   │   └── PoolTimeout                   no free connection in time
    │   └── RequestMaybeSent                  bytes may have reached the server
    │       ├── ReadTimeout                   no byte for ``read`` seconds
    │       ├── TotalTimeout                  the overall deadline passed
    │       ├── RemoteDisconnected            reset / closed without (full) answer
    │       └── StreamIdleTimeout             an SSE stream went silent
    ├── APIStatusError                        the provider answered with an error
    │   ├── BadRequest                        400 / validation
    │   │   ├── UnsupportedMedia              NemoVideo 4001, wrong file type
    │   │   └── MediaTooLarge                 NemoVideo 4002, file over the limit
    │   ├── AuthenticationError               401, NemoVideo 1001
    │   ├── PaymentRequired                   402 / 403 plan restriction
    │   ├── InsufficientCredits               NemoVideo 2001, "insufficient credits"
    │   ├── NotFound                          404
    │   │   └── SessionNotFound               NemoVideo 1002 (session lost)
    │   ├── Conflict                          409 / action not allowed in this state
    │   ├── RateLimited                       429 (``retry_after``)
    │   └── ServerError                       5xx
    ├── ProtocolError                         the answer is not what the API promises
    │   ├── DecodeError                       JSON/shape mismatch (``path``, cattrs cause)
    │   ├── UnexpectedContentType             HTML proxy page instead of JSON, ...
    │   ├── ResponseTooLarge                  body over the configured cap
    │   ├── UnexpectedRedirect                3xx on an API call (never followed)
    │   └── SSELimitExceeded                  SSE line / event over its limit
    ├── DownloadError                         a download could not be completed
    ├── SubmissionOutcomeUnknown              a create may or may not have happened
    ├── SubmissionNotSent                     a create provably never left
    └── JobError                              the outcome of a tracked job
        ├── JobFailed
        ├── JobCancelled
        ├── JobTimeout
        └── JobNotFound

Which are retried: the session layer retries ``TransportError``, ``RateLimited``
and ``ServerError`` for idempotent calls only; a create is never resent (see
:class:`SubmissionOutcomeUnknown`).
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AIVideoError",
    "InvalidInput",
    "MissingCredential",
    "TransportError",
    "RequestNotSent",
    "ConnectError",
    "TLSError",
    "PoolTimeout",
    "RequestMaybeSent",
    "ReadTimeout",
    "TotalTimeout",
    "RemoteDisconnected",
    "StreamIdleTimeout",
    "APIStatusError",
    "BadRequest",
    "UnsupportedMedia",
    "MediaTooLarge",
    "AuthenticationError",
    "PaymentRequired",
    "InsufficientCredits",
    "NotFound",
    "SessionNotFound",
    "Conflict",
    "RateLimited",
    "ServerError",
    "ProtocolError",
    "DecodeError",
    "UnexpectedContentType",
    "ResponseTooLarge",
    "UnexpectedRedirect",
    "SSELimitExceeded",
    "DownloadError",
    "SubmissionOutcomeUnknown",
    "SubmissionNotSent",
    "JobError",
    "JobFailed",
    "JobCancelled",
    "JobTimeout",
    "JobNotFound",
]


class AIVideoError(Exception):
    """
    Base of every error this library raises.

    Raised when: never directly; catch it to handle any library error.

    Example:
        >>> err = AIVideoError("boom", provider="miraflow", endpoint="GET /api/avatars")
        >>> str(err)
        '[miraflow] GET /api/avatars: boom'
    """

    provider: str | None
    status_code: int | None
    body_code: str | int | None
    message: str
    endpoint: str | None
    body_digest: str | None = None
    """SHA-256 (hex) of a response body that could not be used (truncated, garbled), if any;
    the journal keeps it for an ambiguous create (RELIABILITY #4, #20)."""

    def __init__(
        self,
        message: str = "",
        *,
        provider: str | None = None,
        status_code: int | None = None,
        body_code: str | int | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status_code = status_code
        self.body_code = body_code
        self.endpoint = endpoint

    def __str__(self) -> str:
        parts: list[str] = []
        if self.provider:
            parts.append(f"[{self.provider}]")
        if self.endpoint:
            parts.append(self.endpoint)
        head = " ".join(parts)
        status = ""
        if self.status_code is not None:
            status = f"HTTP {self.status_code}"
        if self.body_code is not None:
            status = f"{status} code {self.body_code}".strip()
        if status:
            head = f"{head} -> {status}" if head else status
        if head:
            return f"{head}: {self.message}" if self.message else head
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.__dict__.copy()))


def _rebuild(cls: type[AIVideoError], message: str, state: dict[str, Any]) -> AIVideoError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


# ---------------------------------------------------------------------------
# Bad input


class InvalidInput(AIVideoError, ValueError):
    """
    An argument is invalid; nothing was sent.

    Raised when: a caller passes a value the API would reject (a path id with
    ``/``, an unknown model, a duration the model does not take, a file of the
    wrong type or size). ``field``, ``value`` and ``expected`` say what and why.

    Example:
        >>> err = InvalidInput(field="aspect_ratio", value="2:1", expected="one of 16:9, 9:16")
        >>> str(err)
        "aspect_ratio: got '2:1', expected one of 16:9, 9:16"
    """

    field: str
    value: object
    expected: str

    def __init__(
        self,
        message: str = "",
        *,
        field: str,
        value: object,
        expected: str,
        provider: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        text = message or f"{field}: got {shown}, expected {expected}"
        super().__init__(text, provider=provider, endpoint=endpoint)


class MissingCredential(AIVideoError, LookupError):
    """
    No credential was given and the environment variable for it is unset.

    Raised when: :meth:`Secret.from_env` or a client constructor finds no key;
    ``variable`` names the environment variable to set.

    Example:
        >>> MissingCredential("set MIRAFLOW_API_KEY", variable="MIRAFLOW_API_KEY").variable
        'MIRAFLOW_API_KEY'
    """

    variable: str | None

    def __init__(self, message: str = "", *, variable: str | None = None) -> None:
        self.variable = variable
        super().__init__(message)


# ---------------------------------------------------------------------------
# Transport


class TransportError(AIVideoError):
    """
    The HTTP exchange failed before a complete response arrived.

    Raised when: the connection could not be made, timed out, or was cut.
    ``request_sent`` tells whether the request may have reached the server:
    ``False`` means it provably did not (safe to send again), ``True`` means it
    may have (a create must then be treated as ambiguous).

    Example:
        >>> ReadTimeout("no data for 30 s").request_sent
        True
    """

    request_sent: ClassVar[bool] = True


class RequestNotSent(TransportError):
    """
    The request provably never reached the server.

    Raised when: connecting failed, or no pooled connection became free in time.

    Example:
        >>> ConnectError("connection refused").request_sent
        False
    """

    request_sent: ClassVar[bool] = False


class ConnectError(RequestNotSent):
    """
    Raised when: the TCP connection was refused, DNS failed or the connect timeout passed.

    Example:
        >>> isinstance(ConnectError("refused"), RequestNotSent)
        True
    """


class TLSError(ConnectError):
    """
    Raised when: the TLS handshake or certificate verification failed (RELIABILITY #7).

    Example:
        >>> TLSError("certificate verify failed").request_sent
        False
    """


class PoolTimeout(RequestNotSent):
    """
    Raised when: every pooled connection stayed busy past the connect timeout (RELIABILITY #8).

    Example:
        >>> PoolTimeout("pool exhausted").request_sent
        False
    """


class RequestMaybeSent(TransportError):
    """
    The request may have reached the server; its effect is unknown.

    Raised when: a failure happened after the first request byte was written.

    Example:
        >>> RemoteDisconnected("reset").request_sent
        True
    """

    request_sent: ClassVar[bool] = True


class ReadTimeout(RequestMaybeSent):
    """
    Raised when: no byte arrived for the ``read`` timeout.

    Example:
        >>> isinstance(ReadTimeout("idle"), RequestMaybeSent)
        True
    """


class TotalTimeout(RequestMaybeSent):
    """
    Raised when: the overall ``total`` deadline passed (a trickling body, RELIABILITY #5).

    Example:
        >>> isinstance(TotalTimeout("deadline"), TransportError)
        True
    """


class RemoteDisconnected(RequestMaybeSent):
    """
    Raised when: the server closed or reset the connection before a complete
    response, or the body was truncated (RELIABILITY #2-#4).

    Example:
        >>> RemoteDisconnected("server closed").request_sent
        True
    """


class StreamIdleTimeout(RequestMaybeSent):
    """
    Raised when: an event stream sent nothing (not even a heartbeat) for its idle timeout.

    Example:
        >>> StreamIdleTimeout("no event for 15 s").request_sent
        True
    """


# ---------------------------------------------------------------------------
# Status errors


class APIStatusError(AIVideoError):
    """
    The provider answered with an error status or an error body code.

    Raised when: the HTTP status is not 2xx, or a 2xx body carries an error code
    (body codes are mapped before status codes, RELIABILITY #18). ``body`` holds
    the decoded error body (redacted of nothing secret: it comes from the server).

    Example:
        >>> err = NotFound("no such job", provider="miraflow", status_code=404,
        ...                endpoint="GET /api/video/abc/status")
        >>> str(err)
        '[miraflow] GET /api/video/abc/status -> HTTP 404: no such job'
    """

    body: object

    def __init__(
        self,
        message: str = "",
        *,
        provider: str | None = None,
        status_code: int | None = None,
        body_code: str | int | None = None,
        endpoint: str | None = None,
        body: object = None,
    ) -> None:
        super().__init__(
            message,
            provider=provider,
            status_code=status_code,
            body_code=body_code,
            endpoint=endpoint,
        )
        self.body = body


class BadRequest(APIStatusError):
    """
    Raised when: the provider rejected the request as invalid (HTTP 400, validation codes).

    Example:
        >>> BadRequest("Missing required parameter: avatarId", status_code=400).status_code
        400
    """


class UnsupportedMedia(BadRequest):
    """
    Raised when: an uploaded file type is not accepted (NemoVideo 4001).

    Example:
        >>> UnsupportedMedia("unsupported format", body_code=4001).body_code
        4001
    """


class MediaTooLarge(BadRequest):
    """
    Raised when: an uploaded file is over the provider's size limit (NemoVideo 4002).

    Example:
        >>> MediaTooLarge("file too large", body_code=4002).body_code
        4002
    """


class AuthenticationError(APIStatusError):
    """
    Raised when: the key is missing, wrong or expired (HTTP 401, NemoVideo 1001)
    and a refresh did not help (RELIABILITY #16, #28).

    Example:
        >>> AuthenticationError("invalid api key", status_code=401).status_code
        401
    """


class PaymentRequired(APIStatusError):
    """
    Raised when: the plan does not allow the call (HTTP 402/403 without a credits code).

    Example:
        >>> PaymentRequired("upgrade your plan", status_code=402).status_code
        402
    """


class InsufficientCredits(APIStatusError):
    """
    Raised when: the account has too few credits (NemoVideo 2001, Miraflow 400
    "insufficient credits", AIVideoMaker 402). Never retried (RELIABILITY #14).

    Example:
        >>> InsufficientCredits("not enough credits", body_code=2001).body_code
        2001
    """


class NotFound(APIStatusError):
    """
    Raised when: the resource does not exist (HTTP 404).

    Example:
        >>> NotFound("video not found", status_code=404).status_code
        404
    """


class SessionNotFound(NotFound):
    """
    Raised when: a NemoVideo session was lost (code 1002).

    Example:
        >>> SessionNotFound("session lost", body_code=1002).body_code
        1002
    """


class Conflict(APIStatusError):
    """
    Raised when: the action is not allowed in the resource's state (HTTP 409,
    e.g. cancelling an AIVideoMaker task that is no longer ``SUBMITTED``).

    Example:
        >>> Conflict("task already running", status_code=409).status_code
        409
    """


class RateLimited(APIStatusError):
    """
    Raised when: the provider answered 429. ``retry_after`` is the parsed hint in
    seconds, or ``None`` when absent or unreadable.

    Example:
        >>> RateLimited("slow down", status_code=429, retry_after=30.0).retry_after
        30.0
    """

    retry_after: float | None

    def __init__(
        self,
        message: str = "",
        *,
        retry_after: float | None = None,
        provider: str | None = None,
        status_code: int | None = 429,
        body_code: str | int | None = None,
        endpoint: str | None = None,
        body: object = None,
    ) -> None:
        super().__init__(
            message,
            provider=provider,
            status_code=status_code,
            body_code=body_code,
            endpoint=endpoint,
            body=body,
        )
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """
    Raised when: the provider answered 5xx. For a create this is ambiguous
    (RELIABILITY #17): a gateway may already have forwarded the request.

    Example:
        >>> ServerError("bad gateway", status_code=502).status_code
        502
    """


# ---------------------------------------------------------------------------
# Protocol


class ProtocolError(AIVideoError):
    """
    The response does not follow the provider's documented contract.

    Raised when: never directly; see the subclasses.

    Example:
        >>> isinstance(DecodeError("bad", path="$.jobId"), ProtocolError)
        True
    """


class DecodeError(ProtocolError):
    """
    Raised when: a body is not JSON, or a field is missing or mistyped.
    ``path`` is the JSON path of the first problem (``$.data.status``); the
    cattrs error is kept as ``__cause__`` (RELIABILITY #20).

    Example:
        >>> DecodeError("expected str", path="$.jobId").path
        '$.jobId'
    """

    path: str | None
    body_digest: str | None

    def __init__(
        self,
        message: str = "",
        *,
        path: str | None = None,
        body_digest: str | None = None,
        provider: str | None = None,
        status_code: int | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.path = path
        self.body_digest = body_digest
        if path and path not in message:
            message = f"{message} (at {path})" if message else f"invalid value at {path}"
        super().__init__(message, provider=provider, status_code=status_code, endpoint=endpoint)


class UnexpectedContentType(ProtocolError):
    """
    Raised when: the response is not of the expected media type, e.g. an HTML
    proxy page with 200 or 502 (RELIABILITY #19).

    Example:
        >>> UnexpectedContentType("got text/html", content_type="text/html").content_type
        'text/html'
    """

    content_type: str | None

    def __init__(
        self,
        message: str = "",
        *,
        content_type: str | None = None,
        provider: str | None = None,
        status_code: int | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.content_type = content_type
        super().__init__(message, provider=provider, status_code=status_code, endpoint=endpoint)


class ResponseTooLarge(ProtocolError):
    """
    Raised when: a body exceeds the configured byte cap; reading stops there (RELIABILITY #22).

    Example:
        >>> ResponseTooLarge("over cap", limit=1024).limit
        1024
    """

    limit: int | None

    def __init__(
        self,
        message: str = "",
        *,
        limit: int | None = None,
        provider: str | None = None,
        status_code: int | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.limit = limit
        super().__init__(message, provider=provider, status_code=status_code, endpoint=endpoint)


class UnexpectedRedirect(ProtocolError):
    """
    Raised when: an API call was answered with 3xx. Redirects are never followed
    on API calls, so credentials never reach another host (RELIABILITY #21).
    ``location`` is the target without its query string.

    Example:
        >>> UnexpectedRedirect("302", location="https://evil.example/x").location
        'https://evil.example/x'
    """

    location: str | None

    def __init__(
        self,
        message: str = "",
        *,
        location: str | None = None,
        provider: str | None = None,
        status_code: int | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.location = location
        super().__init__(message, provider=provider, status_code=status_code, endpoint=endpoint)


class SSELimitExceeded(ProtocolError):
    """
    Raised when: an event-stream line or buffered event exceeds its limit.
    ``limit`` names the limit (``"max_line_bytes"`` or ``"max_event_bytes"``).

    Example:
        >>> SSELimitExceeded("line too long", limit="max_line_bytes", size=2_000_000).limit
        'max_line_bytes'
    """

    limit: str
    size: int | None

    def __init__(self, message: str = "", *, limit: str, size: int | None = None) -> None:
        self.limit = limit
        self.size = size
        super().__init__(message or f"event stream exceeded {limit}")


# ---------------------------------------------------------------------------
# Downloads


class DownloadError(AIVideoError):
    """
    Raised when: a download failed (disk full, permission denied, wrong content
    type, expired URL twice). The temporary file is removed; the target path
    never holds a partial file (RELIABILITY #36, #37).

    Example:
        >>> DownloadError("disk full", provider="miraflow").provider
        'miraflow'
    """


# ---------------------------------------------------------------------------
# Submissions


class SubmissionOutcomeUnknown(AIVideoError):
    """
    A create call may or may not have created a job. It is never resent.

    Raised when: the request may have reached the provider but no usable answer
    came back (timeout after sending, reset, truncated or garbled 2xx, 5xx,
    cancellation mid-call; RELIABILITY #1-#5, #9, #17, #19, #20, #22). The
    journal keeps the entry as ``unknown`` until :meth:`Orchestrator.reconcile`
    or a human resolves it. ``key`` is the journal key, ``elapsed`` the seconds
    the call took, and ``__cause__`` the underlying error.

    Example:
        >>> err = SubmissionOutcomeUnknown("read timeout after sending", key="row-12",
        ...                                provider="miraflow", endpoint="POST /api/video/create")
        >>> err.key
        'row-12'
    """

    key: str
    elapsed: float | None

    def __init__(
        self,
        message: str = "",
        *,
        key: str,
        elapsed: float | None = None,
        provider: str | None = None,
        status_code: int | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.key = key
        self.elapsed = elapsed
        super().__init__(
            message or f"outcome of submission {key!r} is unknown",
            provider=provider,
            status_code=status_code,
            endpoint=endpoint,
        )


class SubmissionNotSent(AIVideoError):
    """
    A create call provably never reached the provider.

    Raised when: connecting failed before any byte was written (RELIABILITY #6,
    #8). The journal records ``not_sent``; resubmitting is allowed only through
    an explicit policy.

    Example:
        >>> SubmissionNotSent(key="row-3").key
        'row-3'
    """

    key: str

    def __init__(
        self,
        message: str = "",
        *,
        key: str,
        provider: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.key = key
        super().__init__(
            message or f"submission {key!r} was not sent",
            provider=provider,
            endpoint=endpoint,
        )


# ---------------------------------------------------------------------------
# Jobs


class JobError(AIVideoError):
    """
    A tracked job did not produce a result.

    Raised when: never directly; see the subclasses. ``job_id`` and ``key``
    identify the job.

    Example:
        >>> JobFailed("face not detected", job_id="j1", key="row-1").job_id
        'j1'
    """

    job_id: str | None
    key: str | None

    def __init__(
        self,
        message: str = "",
        *,
        job_id: str | None = None,
        key: str | None = None,
        provider: str | None = None,
        status_code: int | None = None,
        body_code: str | int | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.job_id = job_id
        self.key = key
        super().__init__(
            message,
            provider=provider,
            status_code=status_code,
            body_code=body_code,
            endpoint=endpoint,
        )


class JobFailed(JobError):
    """
    Raised when: awaiting a job whose provider reported failure.

    Example:
        >>> str(JobFailed("inference_failed", job_id="j1", provider="miraflow"))
        '[miraflow]: inference_failed'
    """


class JobCancelled(JobError):
    """
    Raised when: awaiting a job that was cancelled (locally or at the provider).

    Example:
        >>> isinstance(JobCancelled("cancelled", job_id="j1"), JobError)
        True
    """


class JobTimeout(JobError):
    """
    Raised when: a job passed its deadline. The remote job is left alone and the
    journal entry can be resumed (RELIABILITY #30).

    Example:
        >>> isinstance(JobTimeout("deadline of 1800 s passed", job_id="j1"), JobError)
        True
    """


class JobNotFound(JobError):
    """
    Raised when: the provider does not know the job past the read-after-write
    grace window (RELIABILITY #27).

    Example:
        >>> JobNotFound("404 after 30 s", job_id="j1").job_id
        'j1'
    """
