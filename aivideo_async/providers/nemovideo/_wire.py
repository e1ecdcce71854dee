"""
NemoVideo wire layer: attrs models and pure build/parse functions (no IO).

Facts from PROVIDER_APIS.md §2: JSON is snake_case everywhere except render
submit's ``sessionId``; answers come in a ``{"code", "message", "data"}``
envelope (``code`` 0 is success), while the render proxy answers in one of
three shapes (CONFLICT §2.3 #9), all accepted by :func:`parse_render_status`.
Body codes are mapped to exceptions before HTTP statuses (RELIABILITY #18) by
:func:`map_error`.
"""

from __future__ import annotations

import mimetypes
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final, Generic, TypeVar

import attrs

from ..._exceptions import (
    APIStatusError,
    AuthenticationError,
    BadRequest,
    DecodeError,
    InsufficientCredits,
    InvalidInput,
    MediaTooLarge,
    PaymentRequired,
    RateLimited,
    SessionNotFound,
    UnsupportedMedia,
)
from ..._models import JobResult, JobState, JobStatus
from ..._secret import Secret
from .._common import make_converter, structure, unstructure, wire_name
from ._draft import Draft, parse_draft

__all__ = [
    "PROVIDER",
    "APP_NAME",
    "USER_ID",
    "RENDER_KIND",
    "ANONYMOUS_TOKEN_PATH",
    "CLAIM_TOKEN_PATH",
    "CREATE_SESSION_PATH",
    "RUN_SSE_PATH",
    "UPLOAD_PATH",
    "CREDITS_PATH",
    "STATE_PATH",
    "RENDER_PATH",
    "RENDER_STATUS_PATH",
    "RENDER_DOWNLOAD_PATH",
    "RENDER_CANCEL_PATH",
    "UPLOAD_EXTENSIONS",
    "DEFAULT_MAX_UPLOAD_BYTES",
    "AnonymousToken",
    "ClaimToken",
    "SessionInfo",
    "UploadedFile",
    "UploadResult",
    "Credits",
    "SessionState",
    "RenderStatus",
    "RenderOutput",
    "new_render_id",
    "validate_render_id",
    "build_create_session_body",
    "build_claim_token_body",
    "build_run_sse_body",
    "check_message",
    "build_upload_urls_body",
    "build_render_body",
    "check_upload_file",
    "guess_content_type",
    "parse_anonymous_token",
    "parse_claim_token",
    "parse_session_info",
    "parse_upload_result",
    "parse_credits",
    "parse_session_state",
    "parse_render_status",
    "parse_render_submit",
    "render_job_status",
    "map_error",
]

T = TypeVar("T")

PROVIDER: Final = "nemovideo"
APP_NAME: Final = "nemo_agent"
USER_ID: Final = "me"
"""The literal user id in paths and in ``/run_sse``; the backend finds the user from the token."""
RENDER_KIND: Final = "render"

ANONYMOUS_TOKEN_PATH: Final = "/api/auth/anonymous-token"
CLAIM_TOKEN_PATH: Final = "/api/auth/claim-token"
CREATE_SESSION_PATH: Final = "/api/tasks/me/with-session/nemo_agent"
RUN_SSE_PATH: Final = "/run_sse"
UPLOAD_PATH: Final = "/api/upload-video/nemo_agent/me/{session_id}"
CREDITS_PATH: Final = "/api/credits/balance/simple"
STATE_PATH: Final = "/api/state/nemo_agent/me/{session_id}/latest"
RENDER_PATH: Final = "/api/render/proxy/lambda"
LEGACY_RENDER_PATH: Final = "/api/render/proxy/draft"
"""The deprecated submit path of the initial NemoVideo skill (same body as ``RENDER_PATH``)."""
RENDER_STATUS_PATH: Final = "/api/render/proxy/lambda/{render_id}"
RENDER_DOWNLOAD_PATH: Final = "/api/render/proxy/{render_id}/download"
RENDER_CANCEL_PATH: Final = "/api/render/proxy/lambda/{render_id}/cancel"

UPLOAD_EXTENSIONS: Final[Mapping[str, str]] = {
    **dict.fromkeys(("mp4", "mov", "avi", "webm", "mkv"), "video"),
    **dict.fromkeys(("jpg", "jpeg", "png", "gif", "webp"), "image"),
    **dict.fromkeys(("mp3", "wav", "m4a", "aac"), "audio"),
}
"""Accepted upload extensions (§2.3 #5a) and the ``file_type`` each one gives.
``jpeg`` is accepted as a spelling of ``jpg``."""

DEFAULT_MAX_UPLOAD_BYTES: Final = 500 * 1024 * 1024
"""The largest upload the skills mention (500 MB, ``video-miricanvas``); the real
limit behind code 4002 is unknown (ASSUMED, §5 #13), so it is configurable."""

_RENDER_ID = re.compile(r"^render_[A-Za-z0-9_-]{1,120}$")
_CONVERTER = make_converter(naming=None)  # NemoVideo is snake_case on the wire


# ---------------------------------------------------------------------------
# Wire models (private) and the public results


@attrs.frozen
class _Envelope(Generic[T]):
    data: T
    code: int | None = None
    message: str | None = None


@attrs.frozen
class _AnonymousTokenData:
    token: str
    credits: int | None = None
    user_id: str | None = None
    expires_at: str | None = None


@attrs.frozen(kw_only=True)
class AnonymousToken:
    """
    An anonymous token (``POST /api/auth/anonymous-token``).

    Attributes:
        token: the bearer token, as a :class:`~aivideo_async.Secret`.
        credits: starting credits (100 for a new anonymous user).
        user_id: ``anon_...`` (older API versions only).
        expires_at: ISO timestamp (older API versions only).
        raw: the ``data`` object with the token redacted.

    Example:
        >>> t = AnonymousToken(token=Secret("nmv_usr_x"), credits=100)
        >>> t
        AnonymousToken(token=Secret('**********'), credits=100, user_id=None, expires_at=None)
    """

    token: Secret
    credits: int | None = None
    user_id: str | None = None
    expires_at: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)


@attrs.frozen
class _ClaimTokenData:
    claim_token: str
    expires_in: int | None = None


@attrs.frozen(kw_only=True)
class ClaimToken:
    """
    A claim token (``POST /api/auth/claim-token``): lets a browser take over the
    anonymous user's work. It cannot call the API, but anyone holding the link
    can claim the work, so it is kept as a :class:`~aivideo_async.Secret`.

    Attributes:
        claim_token: ``clm_...``.
        expires_in: lifetime in seconds (604800: 7 days).
        raw: the ``data`` object with the token redacted.

    Example:
        >>> ct = ClaimToken(claim_token=Secret("clm_abc"), expires_in=604800)
        >>> ct.claim_url("https://nemovideo.com")
        'https://nemovideo.com/workspace/claim?ct=clm_abc'
    """

    claim_token: Secret
    expires_in: int | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    def claim_url(self, web_url: str = "https://nemovideo.com") -> str:
        """
        The browser link ``<web_url>/workspace/claim?ct=<claim_token>`` (it contains the token).

        Example:
            >>> ClaimToken(claim_token=Secret("clm_1")).claim_url("https://nemovideo.com/")
            'https://nemovideo.com/workspace/claim?ct=clm_1'
        """
        from urllib.parse import quote

        token = quote(self.claim_token.get_secret_value(), safe="")
        return f"{web_url.rstrip('/')}/workspace/claim?ct={token}"


@attrs.frozen(kw_only=True)
class SessionInfo:
    """
    A new editing session (``POST /api/tasks/me/with-session/nemo_agent``).

    Attributes:
        task_id: the task (project) id.
        session_id: the session id, a numeric string; every session call takes it.
        user_id: present in older API versions only.
        raw: the ``data`` object unchanged.

    Example:
        >>> SessionInfo(task_id="task_1", session_id="5529798706024415232").session_id
        '5529798706024415232'
    """

    task_id: str
    session_id: str
    user_id: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)


@attrs.frozen(kw_only=True)
class UploadedFile:
    """
    One uploaded file as NemoVideo describes it.

    Attributes:
        cdn_url: where the file now lives.
        filename, file_type (``"video"``, ``"image"`` or ``"audio"``), duration
        (seconds), width, height, fps, hash: as reported, when reported.
        raw: the object unchanged.

    Example:
        >>> UploadedFile(cdn_url="https://cdn.example/a.mp4", file_type="video").file_type
        'video'
    """

    cdn_url: str
    filename: str | None = None
    file_type: str | None = None
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    hash: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)


@attrs.frozen(kw_only=True)
class UploadResult:
    """
    The answer to an upload (files or URLs).

    Attributes:
        files: what was stored.
        session_state_applied: whether the session state now lists the files.
        raw: the ``data`` object unchanged.

    Example:
        >>> UploadResult(files=[]).files
        []
    """

    files: list[UploadedFile]
    session_state_applied: bool | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)


@attrs.frozen(kw_only=True)
class Credits:
    """
    The credit balance (``GET /api/credits/balance/simple``).

    Attributes:
        available: credits that can be spent now.
        frozen: credits held by operations in progress.
        total: ``available + frozen``.
        raw: the ``data`` object unchanged.

    Example:
        >>> Credits(available=60, frozen=40, total=100).total
        100
    """

    available: int
    frozen: int
    total: int
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)


@attrs.frozen
class _StateBody:
    draft: Any = None
    video_infos: Any = None
    canvas_config: Any = None
    video_analyses: Any = None
    generated_media: Any = None


@attrs.frozen
class _StateData:
    session_id: str
    state: _StateBody
    task_id: str | None = None
    task_name: str | None = None


@attrs.frozen(kw_only=True)
class SessionState:
    """
    The latest state of a session (``GET /api/state/nemo_agent/me/<sid>/latest``).

    Attributes:
        session_id, task_id, task_name: as reported.
        draft: the parsed draft (see :mod:`._draft`); empty when there is none.
        video_infos, canvas_config, video_analyses, generated_media: passed
            through as JSON (their contents are undocumented).
        raw: the ``data`` object unchanged.

    Example:
        >>> s = SessionState(session_id="1", draft=parse_draft({"t": []}))
        >>> len(s.fingerprint)
        64
    """

    session_id: str
    task_id: str | None = None
    task_name: str | None = None
    draft: Draft = attrs.field(factory=Draft)
    video_infos: Any = None
    canvas_config: Any = None
    video_analyses: Any = None
    generated_media: Any = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @property
    def fingerprint(self) -> str:
        """
        A digest of the state's ``state`` object (draft and media); it changes
        when an edit or a generation lands. Pass it to
        :meth:`NemoVideo.wait_for_state_change` as ``since``.

        Example:
            >>> a = SessionState(session_id="1", raw={"state": {"draft": {"t": []}}})
            >>> b = SessionState(session_id="1", raw={"state": {"draft": {"t": [{"tt": 0}]}}})
            >>> a.fingerprint == b.fingerprint
            False
        """
        from ._draft import draft_fingerprint

        state = self.raw.get("state")
        return draft_fingerprint(state if isinstance(state, Mapping) else self.draft.raw)


@attrs.frozen
class _RenderRequest:
    id: str
    session_id: str = attrs.field(metadata=wire_name("sessionId"))
    draft: Mapping[str, Any]
    output: Mapping[str, Any] | None = None


@attrs.frozen
class RenderOutput:
    """
    ``output`` of a finished render.

    Example:
        >>> RenderOutput(url="https://cdn.example/r.mp4").url
        'https://cdn.example/r.mp4'
    """

    url: str | None = None
    duration: float | None = None
    size: int | None = None


@attrs.frozen
class _RenderBody:
    # Every spelling of every field across the three shapes (CONFLICT §2.3 #9).
    status: str
    id: str | None = None
    render_id: str | None = None
    task_id: str | None = attrs.field(default=None, metadata=wire_name("taskId"))
    progress: float | None = None
    output: RenderOutput | None = None
    output_url: str | None = attrs.field(default=None, metadata=wire_name("outputUrl"))
    created_at: float | None = attrs.field(default=None, metadata=wire_name("createdAt"))
    completed_at: float | None = attrs.field(default=None, metadata=wire_name("completedAt"))
    error: Any = None
    message: str | None = None


@attrs.frozen
class _RenderEnvelope:
    data: _RenderBody
    success: bool | None = None
    code: int | None = None
    message: str | None = None


@attrs.frozen(kw_only=True)
class RenderStatus:
    """
    One observation of a render, whichever of the three shapes it came in.

    Attributes:
        render_id: the render id (``id``, ``render_id`` or ``taskId``; else the id asked for).
        status: the raw status: ``pending``, ``processing``, ``completed``, ``failed``
            (``cancelled`` after a cancel).
        progress: percent, 0-100, when reported.
        url: the download URL (``output.url`` or ``data.outputUrl``).
        duration: seconds; size: bytes (shape (a)/(c) only).
        error: the failure message, if any.
        raw: the body unchanged.

    Example:
        >>> RenderStatus(render_id="render_1", status="completed", progress=100.0).job_status.state
        <JobState.SUCCEEDED: 'succeeded'>
    """

    render_id: str
    status: str
    progress: float | None = None
    url: str | None = None
    duration: float | None = None
    size: int | None = None
    error: str | None = None
    created_at: float | None = None
    completed_at: float | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @property
    def job_status(self) -> JobStatus:
        """
        This observation as a provider-neutral :class:`~aivideo_async.JobStatus`.

        Example:
            >>> RenderStatus(render_id="render_1", status="pending", progress=5).job_status.progress
            0.05
        """
        return render_job_status(self)


# ---------------------------------------------------------------------------
# Builders


def new_render_id() -> str:
    """
    A fresh client-chosen render id, ``render_<uuid4 hex>``.

    Example:
        >>> rid = new_render_id()
        >>> rid.startswith("render_") and len(rid) == 39
        True
    """
    return f"render_{uuid.uuid4().hex}"


def validate_render_id(render_id: object, *, field: str = "render_id") -> str:
    """
    Check a render id: ``render_`` then 1-120 of ``[A-Za-z0-9_-]``.

    Raises:
        InvalidInput: otherwise (it would be unsafe in a URL path, RELIABILITY #38).

    Example:
        >>> validate_render_id("render_abc")
        'render_abc'
        >>> validate_render_id("render_../x")
        Traceback (most recent call last):
        ...
        aivideo_async.InvalidInput: [nemovideo]: render_id: got 'render_../x', expected ...
    """
    if not isinstance(render_id, str) or not _RENDER_ID.match(render_id):
        raise InvalidInput(
            field=field,
            value=render_id,
            expected="'render_' followed by 1-120 of A-Z a-z 0-9 _ -",
            provider=PROVIDER,
        )
    return render_id


def _non_empty_str(field: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(
            field=field, value=value, expected="a non-empty string", provider=PROVIDER
        )
    return value


def build_create_session_body(
    task_name: str = "project", language: str | None = None
) -> dict[str, Any]:
    """
    Body of ``POST /api/tasks/me/with-session/nemo_agent``.

    ``language`` (an ISO code such as ``en`` or ``zh-CN``) is optional: several
    skill variants send only ``task_name``.

    Example:
        >>> build_create_session_body(language="en")
        {'task_name': 'project', 'language': 'en'}
        >>> build_create_session_body()
        {'task_name': 'project'}
    """
    body: dict[str, Any] = {"task_name": _non_empty_str("task_name", task_name)}
    if language is not None:
        body["language"] = _non_empty_str("language", language)
    return body


def build_claim_token_body(task_id: str, session_id: str) -> dict[str, Any]:
    """
    Body of ``POST /api/auth/claim-token``.

    Example:
        >>> build_claim_token_body("task_1", "55")
        {'task_id': 'task_1', 'session_id': '55'}
    """
    return {
        "task_id": _non_empty_str("task_id", task_id),
        "session_id": _non_empty_str("session_id", session_id),
    }


def check_message(text: object) -> str:
    """
    Check a chat message: a non-empty string (ADK rejects an empty ``parts``).

    Raises:
        InvalidInput: otherwise, naming the field ``text``.

    Example:
        >>> check_message("Add background music")
        'Add background music'
    """
    return _non_empty_str("text", text)


def build_run_sse_body(session_id: str, text: str, *, user_id: str = USER_ID) -> dict[str, Any]:
    """
    Body of ``POST /run_sse``: ADK's request in snake_case, no ``role``, no ``streaming``.

    Raises:
        InvalidInput: ``text`` is empty (ADK rejects an empty ``parts``).

    Example:
        >>> body = build_run_sse_body("55", "Make a 5-second sunset timelapse")
        >>> body["app_name"], body["user_id"], body["session_id"]
        ('nemo_agent', 'me', '55')
        >>> body["new_message"]
        {'parts': [{'text': 'Make a 5-second sunset timelapse'}]}
    """
    return {
        "app_name": APP_NAME,
        "user_id": user_id,
        "session_id": _non_empty_str("session_id", session_id),
        "new_message": {"parts": [{"text": check_message(text)}]},
    }


def build_upload_urls_body(urls: Sequence[str]) -> dict[str, Any]:
    """
    Body of an upload by URL (§2.3 #5b). Each URL must be absolute ``https://``
    (``http://`` only for loopback hosts, i.e. the emulator).

    Raises:
        InvalidInput: no URLs, or a URL that is not absolute http(s).

    Example:
        >>> build_upload_urls_body(["https://example.com/a.mp4"])
        {'urls': ['https://example.com/a.mp4'], 'source_type': 'url'}
    """
    from urllib.parse import urlsplit

    if isinstance(urls, str) or not urls:
        raise InvalidInput(
            field="urls", value=urls, expected="a non-empty list of URLs", provider=PROVIDER
        )
    checked: list[str] = []
    for i, url in enumerate(urls):
        candidate: object = url  # callers may pass anything; check at runtime
        parts = urlsplit(url) if isinstance(candidate, str) else None
        loopback = parts is not None and parts.hostname in {"127.0.0.1", "localhost", "::1"}
        secure = parts is not None and parts.scheme == "https"
        plain = parts is not None and parts.scheme == "http" and loopback
        if parts is None or not parts.hostname or not (secure or plain):
            raise InvalidInput(
                field=f"urls[{i}]",
                value=url,
                expected="an absolute https:// URL",
                provider=PROVIDER,
            )
        checked.append(url)
    return {"urls": checked, "source_type": "url"}


def check_upload_file(
    name: str, size: int, *, max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES, field: str = "files"
) -> str:
    """
    Check a file before any byte is sent; return its ``file_type``.

    Args:
        name: the file name (its extension decides the type).
        size: its size in bytes.
        max_bytes: the local size cap.
        field: the argument name used in errors.

    Raises:
        InvalidInput: unsupported extension, empty file, or over ``max_bytes``.

    Example:
        >>> check_upload_file("clip.MP4", 1024)
        'video'
        >>> check_upload_file("notes.txt", 10)
        Traceback (most recent call last):
        ...
        aivideo_async.InvalidInput: [nemovideo]: files: got 'notes.txt', expected a file ...
    """
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    file_type = UPLOAD_EXTENSIONS.get(ext)
    if file_type is None:
        allowed = ", ".join(f".{e}" for e in sorted(UPLOAD_EXTENSIONS))
        raise InvalidInput(
            field=field,
            value=name,
            expected=f"a file ending in one of {allowed}",
            provider=PROVIDER,
        )
    if size <= 0:
        raise InvalidInput(field=field, value=name, expected="a non-empty file", provider=PROVIDER)
    if size > max_bytes:
        raise InvalidInput(
            field=field,
            value=f"{name} ({size} bytes)",
            expected=f"at most {max_bytes} bytes",
            provider=PROVIDER,
        )
    return file_type


def guess_content_type(name: str) -> str:
    """
    The MIME type sent for an uploaded file.

    Example:
        >>> guess_content_type("a.mp4")
        'video/mp4'
    """
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def build_render_body(
    *,
    render_id: str,
    session_id: str,
    draft: Draft | Mapping[str, Any],
    output_format: str | None = "mp4",
    quality: str | None = "high",
    extra_output: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """
    Body of ``POST /api/render/proxy/lambda``; ``sessionId`` is camelCase.

    The draft is sent exactly as the state gave it. The render pre-check of
    §2.3 #8 runs here: at least one track with a non-empty ``sg``.

    Args:
        render_id: the client-chosen id (:func:`new_render_id`).
        session_id: the session the draft belongs to.
        draft: ``state.draft`` (a :class:`Draft` or its JSON).
        output_format, quality: ``output`` fields; both ``None`` omits ``output``.
        extra_output: more ``output`` fields (``resolution``, ``fps``) "if supported".

    Raises:
        InvalidInput: a bad id, or a draft with nothing to render.

    Example:
        >>> body = build_render_body(render_id="render_1", session_id="55",
        ...                          draft={"t": [{"tt": 0, "sg": [{"d": 5000}]}]})
        >>> body["id"], body["sessionId"], body["output"]
        ('render_1', '55', {'format': 'mp4', 'quality': 'high'})
    """
    validate_render_id(render_id)
    parsed = draft if isinstance(draft, Draft) else parse_draft(draft, path="draft")
    if not parsed.is_exportable:
        raise InvalidInput(
            field="draft",
            value=dict(parsed.raw),
            expected="a draft whose 't' has at least one track with a non-empty 'sg'",
            provider=PROVIDER,
        )
    output: dict[str, Any] = {}
    if output_format is not None:
        output["format"] = output_format
    if quality is not None:
        output["quality"] = quality
    output.update(extra_output or {})
    request = _RenderRequest(
        id=render_id,
        session_id=_non_empty_str("session_id", session_id),
        draft=dict(parsed.raw),
        output=output or None,
    )
    return unstructure(_CONVERTER, request)


# ---------------------------------------------------------------------------
# Parsers


def _unwrap(body: Any, cls: type[T], endpoint: str, status_code: int | None) -> T:
    error = map_error(status=status_code or 200, body=body, endpoint=endpoint)
    if error is not None:
        raise error
    envelope = structure(
        _CONVERTER,
        body,
        _Envelope[cls],  # type: ignore[valid-type]
        provider=PROVIDER,
        endpoint=endpoint,
        status_code=status_code,
    )
    return envelope.data


def _redact_token(raw: Mapping[str, Any], key: str) -> dict[str, Any]:
    copy = dict(raw)
    if key in copy:
        copy[key] = "**********"
    return copy


def _data_of(body: Any) -> Mapping[str, Any]:
    data = body.get("data") if isinstance(body, Mapping) else None
    return data if isinstance(data, Mapping) else {}


def parse_anonymous_token(
    body: Any, *, endpoint: str = f"POST {ANONYMOUS_TOKEN_PATH}", status_code: int | None = None
) -> AnonymousToken:
    """
    Parse the anonymous-token answer; the token becomes a :class:`Secret`.

    Example:
        >>> t = parse_anonymous_token({"code": 0, "data": {"token": "nmv_usr_A", "credits": 100}})
        >>> t.token.get_secret_value(), t.credits, t.raw["token"]
        ('nmv_usr_A', 100, '**********')
    """
    data = _unwrap(body, _AnonymousTokenData, endpoint, status_code)
    return AnonymousToken(
        token=Secret(data.token),
        credits=data.credits,
        user_id=data.user_id,
        expires_at=data.expires_at,
        raw=_redact_token(_data_of(body), "token"),
    )


def parse_claim_token(
    body: Any, *, endpoint: str = f"POST {CLAIM_TOKEN_PATH}", status_code: int | None = None
) -> ClaimToken:
    """
    Parse the claim-token answer.

    Example:
        >>> parse_claim_token({"code": 0, "data": {"claim_token": "clm_1", "expires_in": 604800}})
        ClaimToken(claim_token=Secret('**********'), expires_in=604800)
    """
    data = _unwrap(body, _ClaimTokenData, endpoint, status_code)
    return ClaimToken(
        claim_token=Secret(data.claim_token),
        expires_in=data.expires_in,
        raw=_redact_token(_data_of(body), "claim_token"),
    )


def parse_session_info(
    body: Any, *, endpoint: str = f"POST {CREATE_SESSION_PATH}", status_code: int | None = None
) -> SessionInfo:
    """
    Parse the create-session answer.

    Example:
        >>> parse_session_info({"code": 0, "data": {"task_id": "t1", "session_id": "55"}})
        SessionInfo(task_id='t1', session_id='55', user_id=None)
        >>> parse_session_info({"code": 0, "data": {"task_id": "t1"}})
        Traceback (most recent call last):
        ...
        aivideo_async.DecodeError: [nemovideo] ...: required field missing (at $.data.session_id)
    """
    return _unwrap(body, SessionInfo, endpoint, status_code)


def parse_upload_result(
    body: Any, *, endpoint: str = "POST /api/upload-video", status_code: int | None = None
) -> UploadResult:
    """
    Parse an upload answer (files or URLs).

    Example:
        >>> r = parse_upload_result({"code": 0, "data": {"files": [
        ...     {"filename": "a.mp4", "file_type": "video", "cdn_url": "https://c/a.mp4",
        ...      "duration": 5.0, "width": 1920, "height": 1080}],
        ...     "session_state_applied": True}})
        >>> r.files[0].cdn_url, r.session_state_applied
        ('https://c/a.mp4', True)
    """
    return _unwrap(body, UploadResult, endpoint, status_code)


def parse_credits(
    body: Any, *, endpoint: str = f"GET {CREDITS_PATH}", status_code: int | None = None
) -> Credits:
    """
    Parse the credit balance.

    Example:
        >>> parse_credits({"code": 0, "data": {"available": 60, "frozen": 40, "total": 100}})
        Credits(available=60, frozen=40, total=100)
    """
    return _unwrap(body, Credits, endpoint, status_code)


def parse_session_state(
    body: Any, *, endpoint: str = "GET /api/state", status_code: int | None = None
) -> SessionState:
    """
    Parse a session state, including its draft.

    Raises:
        DecodeError: a missing ``session_id``/``state``, or a draft whose
            documented keys have the wrong types (``path`` under ``$.data.state.draft``).

    Example:
        >>> s = parse_session_state({"code": 0, "data": {"session_id": "55", "state": {
        ...     "draft": {"t": [{"tt": 0, "sg": [{"d": 5000}]}]}}}})
        >>> s.draft.is_exportable
        True
    """
    data = _unwrap(body, _StateData, endpoint, status_code)
    try:
        draft = parse_draft(data.state.draft, path="$.data.state.draft")
    except DecodeError as exc:
        exc.endpoint = endpoint
        raise
    return SessionState(
        session_id=data.session_id,
        task_id=data.task_id,
        task_name=data.task_name,
        draft=draft,
        video_infos=data.state.video_infos,
        canvas_config=data.state.canvas_config,
        video_analyses=data.state.video_analyses,
        generated_media=data.state.generated_media,
        raw=dict(_data_of(body)),
    )


def _error_text(error: Any, message: str | None) -> str | None:
    if isinstance(error, str):
        return error
    if isinstance(error, Mapping):
        text = error.get("message")
        if isinstance(text, str):
            return text
    return message if error is not None else None


def parse_render_status(
    body: Any,
    *,
    render_id: str | None = None,
    endpoint: str = "GET /api/render/proxy/lambda",
    status_code: int | None = None,
) -> RenderStatus:
    """
    Parse a render status in any of the three shapes (CONFLICT §2.3 #9):

    (a) ``{"id", "status", "progress", "output": {"url", "duration", "size"}}``;
    (b) ``{"success": true, "data": {"id", "status", "progress", "outputUrl", ...}}``
    (also inside a ``{"code": 0, "data": ...}`` envelope);
    (c) ``{"taskId", "status", "progress", "output": {"url", ...}}``.

    Args:
        body: the decoded JSON.
        render_id: the id that was asked for, used when the body names none.

    Raises:
        DecodeError: no ``status`` (at ``$.status`` or ``$.data.status``) or mistyped fields.
        APIStatusError: ``success: false`` or a non-zero ``code``.

    Example:
        >>> parse_render_status({"id": "render_1", "status": "completed", "progress": 100,
        ...                      "output": {"url": "https://c/r.mp4"}}).url
        'https://c/r.mp4'
        >>> parse_render_status({"success": True, "data": {"id": "render_1",
        ...                      "status": "completed", "outputUrl": "https://c/r.mp4"}}).url
        'https://c/r.mp4'
        >>> parse_render_status({"taskId": "render_1", "status": "processing",
        ...                      "progress": 40}).render_id
        'render_1'
    """
    error = map_error(status=status_code or 200, body=body, endpoint=endpoint)
    if error is not None:
        raise error
    if isinstance(body, Mapping) and "status" not in body and isinstance(body.get("data"), Mapping):
        inner = structure(
            _CONVERTER,
            body,
            _RenderEnvelope,
            provider=PROVIDER,
            endpoint=endpoint,
            status_code=status_code,
        ).data
    else:
        inner = structure(
            _CONVERTER,
            body,
            _RenderBody,
            provider=PROVIDER,
            endpoint=endpoint,
            status_code=status_code,
        )
    output = inner.output or RenderOutput()
    rid = inner.id or inner.render_id or inner.task_id or render_id
    if rid is None:
        raise DecodeError(
            "render status names no id", path="$.id", provider=PROVIDER, endpoint=endpoint
        )
    return RenderStatus(
        render_id=rid,
        status=inner.status,
        progress=inner.progress,
        url=output.url or inner.output_url,
        duration=output.duration,
        size=output.size,
        error=_error_text(inner.error, inner.message),
        created_at=inner.created_at,
        completed_at=inner.completed_at,
        raw=dict(body) if isinstance(body, Mapping) else {},
    )


def parse_render_submit(
    body: Any,
    *,
    render_id: str,
    endpoint: str = f"POST {RENDER_PATH}",
    status_code: int | None = None,
) -> str:
    """
    Return the render id confirmed by a submit answer.

    The answer is ``{"success": true, "data": {"id", "status", "progress"}}``
    in NV-REF44; newer versions may answer in another of the render shapes or
    without a status. The id is the client's own when the answer names none.

    Raises:
        APIStatusError: ``success: false`` or a non-zero ``code``.
        DecodeError: the answer names a different id than the one sent.

    Example:
        >>> parse_render_submit({"success": True, "data": {"id": "render_1",
        ...                      "status": "pending", "progress": 5}}, render_id="render_1")
        'render_1'
    """
    error = map_error(status=status_code or 200, body=body, endpoint=endpoint)
    if error is not None:
        raise error
    source: Any = body
    if isinstance(body, Mapping) and isinstance(body.get("data"), Mapping):
        source = body["data"]
    named = None
    if isinstance(source, Mapping):
        for key in ("id", "render_id", "taskId"):
            value = source.get(key)
            if isinstance(value, str):
                named = value
                break
    if named is not None and named != render_id:
        raise DecodeError(
            f"render submit answered id {named!r}, but {render_id!r} was sent",
            path="$.data.id",
            provider=PROVIDER,
            endpoint=endpoint,
        )
    return render_id


# ---------------------------------------------------------------------------
# Status and error mapping

_STATES: Final[Mapping[str, JobState]] = {
    "pending": JobState.QUEUED,
    "queued": JobState.QUEUED,
    "processing": JobState.RUNNING,
    "running": JobState.RUNNING,
    "rendering": JobState.RUNNING,
    "completed": JobState.SUCCEEDED,
    "succeeded": JobState.SUCCEEDED,
    "success": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
    "error": JobState.FAILED,
    "cancelled": JobState.CANCELED,
    "canceled": JobState.CANCELED,
}


def render_job_status(status: RenderStatus) -> JobStatus:
    """
    Map a render observation onto :class:`~aivideo_async.JobStatus`.

    ``pending`` -> queued, ``processing`` -> running, ``completed`` ->
    succeeded (with a :class:`~aivideo_async.JobResult` carrying the URL),
    ``failed`` -> failed (canceled when its error says ``cancelled``),
    ``cancelled`` -> canceled; anything else is running
    with ``known=False`` (RELIABILITY #29). Progress (percent) becomes a
    fraction in ``[0, 1]``; a finished render reports 1.0.

    Example:
        >>> s = render_job_status(RenderStatus(render_id="render_1", status="processing",
        ...                                    progress=45))
        >>> s.state, s.progress
        (<JobState.RUNNING: 'running'>, 0.45)
        >>> render_job_status(RenderStatus(render_id="render_1", status="weird")).known
        False
    """
    raw = status.status.strip().lower()
    state = _STATES.get(raw)
    if state is JobState.FAILED and (status.error or "").strip().lower() in _CANCELLED:
        state = JobState.CANCELED  # a cancelled render reports "failed" with that error
    progress: float | None = None
    if status.progress is not None:
        progress = min(1.0, max(0.0, status.progress / 100.0))
    if state is JobState.SUCCEEDED:
        progress = 1.0
    result = None
    if state is JobState.SUCCEEDED:
        result = JobResult(
            provider=PROVIDER,
            kind=RENDER_KIND,
            job_id=status.render_id,
            url=status.url,
            raw=status.raw,
        )
    return JobStatus(
        state=state or JobState.RUNNING,
        raw_status=status.status,
        progress=progress,
        message=status.error if state is JobState.FAILED else None,
        result=result,
        known=state is not None,
        raw=status.raw,
    )


_CANCELLED: Final = frozenset({"cancelled", "canceled"})
_CODE_ERRORS: Final[Mapping[int, type[APIStatusError]]] = {
    1001: AuthenticationError,
    1002: SessionNotFound,
    2001: InsufficientCredits,
    4001: UnsupportedMedia,
    4002: MediaTooLarge,
}
_CODE_HINTS: Final[Mapping[int, str]] = {
    1001: "token invalid or expired",
    1002: "session not found; create a new session",
    2001: "out of credits; register (anonymous users) or top up",
    4001: "unsupported file type",
    4002: "file too large",
}


def map_error(
    *,
    status: int,
    body: Any,
    endpoint: str,
    retry_after: float | None = None,
    text: str = "",
) -> APIStatusError | None:
    """
    The NemoVideo error mapper: body codes first, then HTTP statuses.

    Body codes (in ``{"code", "message", "data"}``, on any HTTP status):
    1001 -> :class:`AuthenticationError`, 1002 -> :class:`SessionNotFound`,
    2001 -> :class:`InsufficientCredits`, 4001 -> :class:`UnsupportedMedia`,
    4002 -> :class:`MediaTooLarge`; on a 2xx, another non-zero code or
    ``success: false`` -> :class:`APIStatusError`. Then HTTP: 402 -> :class:`PaymentRequired`
    (plan restriction or missing attribution headers, not credits), 429 ->
    :class:`RateLimited`, 400 on the anonymous-token endpoint ->
    :class:`BadRequest` (``X-Client-Id`` missing). Returns ``None`` to leave
    other statuses (and success) to the session's default mapping.

    Example:
        >>> map_error(status=200, body={"code": 1002, "message": "session not found",
        ...           "data": None}, endpoint="GET /api/state")
        SessionNotFound('[nemovideo] GET /api/state -> HTTP 200 code 1002: session not found')
        >>> map_error(status=200, body={"code": 0, "data": {}}, endpoint="GET /x") is None
        True
    """
    message = ""
    if isinstance(body, Mapping):
        raw_message = body.get("message")
        if isinstance(raw_message, str):
            message = raw_message
        elif isinstance(body.get("error"), str):
            message = body["error"]
        raw_code = body.get("code")
        code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else 0
        known = _CODE_ERRORS.get(code)
        # An unknown code on an HTTP error (the envelope often just repeats the
        # status, {"code": 404}) is left to the HTTP status below; on a 2xx it
        # is still an error.
        if known is not None or (code != 0 and 200 <= status < 300):
            cls = known or APIStatusError
            return cls(
                message or _CODE_HINTS.get(code, "business error"),
                provider=PROVIDER,
                status_code=status,
                body_code=code,
                endpoint=endpoint,
                body=body,
            )
        if body.get("success") is False and 200 <= status < 300:
            return APIStatusError(
                message or "the provider answered success: false",
                provider=PROVIDER,
                status_code=status,
                endpoint=endpoint,
                body=body,
            )
    message = message or text[:200]
    if status == 402:
        return PaymentRequired(
            message or "export blocked by plan restriction or missing X-Skill-* headers",
            provider=PROVIDER,
            status_code=status,
            endpoint=endpoint,
            body=body,
        )
    if status == 429:
        return RateLimited(
            message or "rate limited",
            retry_after=retry_after,
            provider=PROVIDER,
            status_code=status,
            endpoint=endpoint,
            body=body,
        )
    if status == 400 and endpoint.endswith(ANONYMOUS_TOKEN_PATH):
        return BadRequest(
            message or "X-Client-Id header missing or invalid",
            provider=PROVIDER,
            status_code=status,
            endpoint=endpoint,
            body=body,
        )
    return None


# Resolve string annotations now, while ``__module__`` still names this module:
# the package re-exports some models with ``__module__ = "aivideo_async"``, where
# cattrs could no longer resolve them lazily.
for _cls in (
    _Envelope,
    _AnonymousTokenData,
    _ClaimTokenData,
    SessionInfo,
    UploadedFile,
    UploadResult,
    Credits,
    _StateBody,
    _StateData,
    _RenderRequest,
    RenderOutput,
    _RenderBody,
    _RenderEnvelope,
):
    attrs.resolve_types(_cls)
del _cls
