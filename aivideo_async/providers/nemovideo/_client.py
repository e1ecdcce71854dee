"""
The async NemoVideo client: every endpoint of PROVIDER_APIS.md §2.3, the chat
stream of ``/run_sse``, and the :class:`~aivideo_async.JobBackend` for renders.

All IO goes through :class:`~aivideo_async._session.Session`; the wire facts
live in :mod:`._wire`, the chat parsing in :mod:`._chat`.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import pathlib
import re
import stat
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import IO, Any, Final, Self, TypeVar

import aiohttp
import anyio
import anyio.to_thread

from ..._config import (
    DEFAULT_CREATE_TIMEOUTS,
    DEFAULT_LIMITS,
    DEFAULT_RETRY_POLICY,
    DEFAULT_TIMEOUTS,
    Limits,
    RetryPolicy,
    Timeouts,
)
from ..._exceptions import (
    APIStatusError,
    DownloadError,
    InvalidInput,
    JobCancelled,
    JobFailed,
    JobTimeout,
    NotFound,
    SessionNotFound,
    TransportError,
)
from ..._models import JobState, JobStatus
from ..._secret import Secret
from ..._session import BearerAuth, Session, redact_url
from ..._types import (
    JSON,
    NOT_GIVEN,
    Clock,
    NotGiven,
    RandomSource,
    Sleep,
    anyio_sleep,
    monotonic_clock,
    system_random,
)
from ..._version import __version__
from .._base import JobSpec
from .._common import VIDEO_TYPES, by_deadline, error_mapper, resolve_api_key
from ._chat import ChatEvent, StreamError, TextEvent, ToolCall, iter_chat_events
from ._draft import Draft, timeline_summary
from ._wire import (
    ANONYMOUS_TOKEN_PATH,
    CLAIM_TOKEN_PATH,
    CREATE_SESSION_PATH,
    CREDITS_PATH,
    DEFAULT_MAX_UPLOAD_BYTES,
    LEGACY_RENDER_PATH,
    PROVIDER,
    RENDER_CANCEL_PATH,
    RENDER_DOWNLOAD_PATH,
    RENDER_KIND,
    RENDER_PATH,
    RENDER_STATUS_PATH,
    RUN_SSE_PATH,
    STATE_PATH,
    UPLOAD_PATH,
    AnonymousToken,
    ClaimToken,
    Credits,
    RenderStatus,
    SessionInfo,
    SessionState,
    UploadResult,
    build_claim_token_body,
    build_create_session_body,
    build_render_body,
    build_run_sse_body,
    build_upload_urls_body,
    check_message,
    check_upload_file,
    guess_content_type,
    map_error,
    new_render_id,
    parse_anonymous_token,
    parse_claim_token,
    parse_credits,
    parse_render_status,
    parse_render_submit,
    parse_session_info,
    parse_session_state,
    parse_upload_result,
    validate_render_id,
)

__all__ = [
    "NemoVideo",
    "ChatStream",
    "DEFAULT_BASE_URL",
    "DEFAULT_WEB_URL",
    "DEFAULT_CLIENT_ID_FILE",
    "DEFAULT_CHAT_TIMEOUTS",
    "load_client_id",
]

logger = logging.getLogger("aivideo_async.nemovideo")
_T = TypeVar("_T")

DEFAULT_BASE_URL: Final = "https://mega-api-prod.nemovideo.ai"
DEFAULT_WEB_URL: Final = "https://nemovideo.com"
DEFAULT_CLIENT_ID_FILE: Final = "~/.config/nemovideo/client_id"
"""Where the skill keeps its ``X-Client-Id``; the same file keeps the same anonymous user."""

DEFAULT_CHAT_TIMEOUTS: Final = Timeouts(connect=5.0, read=330.0, total=900.0)
"""``/run_sse`` may run 15 minutes (NV-SKILL); the per-read limit sits above the chat's
idle timeout (300 s) so the idle timeout, which counts heartbeats, decides."""

_CLIENT_ID: Final = re.compile(r"^[A-Za-z0-9_-]{8,128}$")


class _ClientState(enum.Enum):
    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


def load_client_id(path: str | os.PathLike[str]) -> str:
    """
    Read the persisted ``X-Client-Id`` at ``path``, creating it (a UUID4) if absent.

    The file is written atomically with mode 0600, its folder created as
    needed. The same client id keeps the same anonymous user (NemoVideo
    allows one anonymous token per client per 7 days and refreshes an expired
    one for the same id).

    Raises:
        InvalidInput: the file holds something that is not a client id.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> first = load_client_id(folder / "nemo" / "client_id")
        >>> first == load_client_id(folder / "nemo" / "client_id")
        True
    """
    target = pathlib.Path(path).expanduser()
    try:
        existing = target.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        if not _CLIENT_ID.match(existing):
            raise InvalidInput(
                field="client_id_file",
                value=str(target),
                expected="a file holding a client id (8-128 of A-Z a-z 0-9 _ -)",
                provider=PROVIDER,
            )
        return existing
    client_id = str(uuid.uuid4())
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(client_id + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            # Another process may have created it meanwhile: keep theirs.
            os.link(tmp, target)
        except FileExistsError:
            return load_client_id(target)
        except OSError:
            os.replace(tmp, target)  # file systems without hard links
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return client_id


class _StaticBearer(BearerAuth):
    """A token the caller gave: sent as is, never "refreshed" into another identity."""

    async def refresh(self, failed: Mapping[str, str]) -> bool:
        return False


class ChatStream:
    """
    The events of one chat turn; an async iterator and an async context manager.

    Iterate it once. Use ``async with`` (or :meth:`aclose`) when you may stop
    early, so the connection is released at once.

    Attributes:
        session_id: the session the message went to (after a renewal, the new one).
        saw_text: a :class:`TextEvent` (not a thought) arrived. About 30 % of
            edits end with tool calls only; then check the state.
        tool_calls: the :class:`ToolCall` events seen so far.
        dropped: the stream was lost (a ``StreamError(dropped=True)`` was
            yielded); the turn may still be running remotely. Never re-send:
            use :meth:`NemoVideo.wait_for_state_change`.

    Example:
        Plain block (needs a server)::

            async with nemo.chat(sid, "Add background music") as stream:
                async for event in stream:
                    if isinstance(event, TextEvent):
                        print(event.text)
            if stream.dropped or not stream.saw_text:
                state = await nemo.wait_for_state_change(sid, since=before)
    """

    def __init__(
        self,
        events: Callable[[ChatStream], AsyncGenerator[ChatEvent, None]],
        session_id: str | None,
    ) -> None:
        self.session_id = session_id
        self._events = events(self)  # an async generator: nothing runs until iterated
        self.saw_text = False
        self.dropped = False
        self.tool_calls: list[ToolCall] = []

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ChatEvent:
        event = await self._events.__anext__()
        if isinstance(event, TextEvent) and not event.thought:
            self.saw_text = True
        elif isinstance(event, ToolCall):
            self.tool_calls.append(event)
        elif isinstance(event, StreamError) and event.dropped:
            self.dropped = True
        return event

    async def aclose(self) -> None:
        """
        Stop reading and release the connection (idempotent).

        Example:
            Plain block::

                stream = nemo.chat(sid, "hello")
                first = await anext(stream)
                await stream.aclose()
        """
        await self._events.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return (
            f"ChatStream(session_id={self.session_id!r}, saw_text={self.saw_text}, "
            f"tool_calls={len(self.tool_calls)}, dropped={self.dropped})"
        )


def _attribution(name: str, value: object) -> str:
    if not isinstance(value, str) or not value or any(c in value for c in "\r\n\x00"):
        raise InvalidInput(
            field=name, value=value, expected="a non-empty header value", provider=PROVIDER
        )
    return value


class NemoVideo:
    """
    Async client of the NemoVideo API (``mega-api-prod.nemovideo.ai``).

    Authentication, in order: ``token`` (a :class:`~aivideo_async.Secret` or
    string), the environment variable ``NEMO_TOKEN``, else an anonymous token
    fetched on first use with the ``X-Client-Id`` kept in ``client_id_file``.
    On code 1001 an anonymous token is fetched again for the same client id
    (single-flight across concurrent calls) and an idempotent call is resent
    once; a token you gave is never swapped for another identity.

    Code 1002 (session lost) starts a new session only where that is safe:
    for :meth:`chat` and the uploads called with ``session_id=None`` (the
    client's own current session), whose rejected request changed nothing. A
    session you name is yours: its loss is raised as
    :class:`~aivideo_async.SessionNotFound`. :meth:`state` and renders never
    switch sessions (a new session has an empty draft).

    Args:
        token: the bearer token (``nmv_usr_...``); see above.
        base_url: the API root; ``NEMO_API_URL`` or production by default.
        web_url: the web app root for claim links (``NEMO_WEB_URL``).
        client_id_file: where the anonymous ``X-Client-Id`` persists.
        skill_source, skill_version, skill_platform: the ``X-Skill-*``
            attribution headers every call carries (exports fail with 402
            without them).
        session: an :class:`aiohttp.ClientSession` to borrow (never closed here).
        timeouts: timeouts of reads and small calls.
        create_timeouts: timeouts of render submits and uploads.
        chat_timeouts: transport timeouts of ``/run_sse``.
        chat_idle_timeout: seconds without any byte (heartbeats count) before
            :class:`~aivideo_async.StreamIdleTimeout`.
        chat_heartbeat_only_timeout: seconds of nothing but heartbeats before
            giving up (NemoVideo: 10 minutes); ``None`` disables it.
        max_upload_bytes: the local cap checked before an upload starts.
        limits, retry: pool/size limits and the retry policy of idempotent calls.
        clock, sleep, rng: the time seam (tests pass fakes).
        allow_insecure_http: allow ``http://`` to a non-loopback host (tests only).

    Example:
        Plain block (needs a server)::

            async with NemoVideo() as nemo:                      # anonymous token
                info = await nemo.create_session(language="en")
                before = await nemo.state(info.session_id)
                async with nemo.chat(info.session_id, "Make a 5-second sunset clip") as chat:
                    async for event in chat:
                        if isinstance(event, TextEvent):
                            print(event.text)
                state = await nemo.state(info.session_id)
                print(timeline_summary(state.draft))
    """

    def __init__(
        self,
        token: Secret | str | None = None,
        *,
        base_url: str | None = None,
        web_url: str | None = None,
        client_id_file: str | os.PathLike[str] = DEFAULT_CLIENT_ID_FILE,
        skill_source: str = "aivideo_async",
        skill_version: str = __version__,
        skill_platform: str = "unknown",
        session: aiohttp.ClientSession | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        create_timeouts: Timeouts = DEFAULT_CREATE_TIMEOUTS,
        chat_timeouts: Timeouts = DEFAULT_CHAT_TIMEOUTS,
        chat_idle_timeout: float | None = 300.0,
        chat_heartbeat_only_timeout: float | None = 600.0,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        limits: Limits = DEFAULT_LIMITS,
        retry: RetryPolicy = DEFAULT_RETRY_POLICY,
        clock: Clock = monotonic_clock,
        sleep: Sleep = anyio_sleep,
        rng: RandomSource = system_random,
        allow_insecure_http: bool = False,
    ) -> None:
        if token is not None or os.environ.get("NEMO_TOKEN"):
            token = resolve_api_key(token, variable="NEMO_TOKEN")
        limit: object = max_upload_bytes  # callers may pass anything; check at runtime
        if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
            raise InvalidInput(
                field="max_upload_bytes", value=max_upload_bytes, expected="a positive int"
            )
        self._token = token
        self._anonymous = token is None
        self._client_id_file = pathlib.Path(client_id_file).expanduser()
        self.base_url = (base_url or os.environ.get("NEMO_API_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.web_url = (web_url or os.environ.get("NEMO_WEB_URL") or DEFAULT_WEB_URL).rstrip("/")
        headers = {
            "X-Skill-Source": _attribution("skill_source", skill_source),
            "X-Skill-Version": _attribution("skill_version", skill_version),
            "X-Skill-Platform": _attribution("skill_platform", skill_platform),
        }
        auth: BearerAuth
        if token is not None:
            static = token

            async def given() -> Secret:
                return static

            auth = _StaticBearer(given)
        else:
            auth = BearerAuth(self._fetch_anonymous_token)
        common: dict[str, Any] = {
            "provider": PROVIDER,
            "base_url": self.base_url,
            "timeouts": timeouts,
            "limits": limits,
            "retry": retry,
            "session": session,
            "error_mapper": _error_mapper,
            "clock": clock,
            "sleep": sleep,
            "rng": rng,
            "allow_insecure_http": allow_insecure_http,
        }
        self._api = Session(auth=auth, headers=headers, **common)
        # The anonymous-token call sends only X-Client-Id (§2.3 #1): a
        # session without auth or attribution headers.
        self._anon = Session(retry_budget=self._api.retry_budget, **common)
        self._create_timeouts = create_timeouts
        self._chat_timeouts = chat_timeouts
        self._chat_idle_timeout = chat_idle_timeout
        self._chat_heartbeat_only_timeout = chat_heartbeat_only_timeout
        self._max_upload_bytes = max_upload_bytes
        self._clock = clock
        self._sleep = sleep
        self._state = _ClientState.UNOPENED
        self._session_id: str | None = None
        self._session_lock = anyio.Lock()

    # -- lifecycle ---------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state is _ClientState.CLOSED:
            raise RuntimeError("this NemoVideo client is closed")
        await self._api.__aenter__()
        await self._anon.__aenter__()
        self._state = _ClientState.OPENED
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """
        Close the client's own HTTP sessions (a borrowed aiohttp session stays open).

        Example:
            Plain block::

                nemo = NemoVideo()
                await nemo.__aenter__()
                await nemo.aclose()
        """
        self._state = _ClientState.CLOSED
        await self._api.aclose()
        await self._anon.aclose()

    def __repr__(self) -> str:
        auth = "anonymous" if self._anonymous else "token"
        return (
            f"NemoVideo(base_url={redact_url(self.base_url)!r}, auth={auth}, "
            f"current_session={self._session_id!r}, state={self._state.value})"
        )

    @property
    def provider(self) -> str:
        """
        ``"nemovideo"`` (the :class:`~aivideo_async.JobBackend` name).

        Example:
            >>> NemoVideo(token="t").provider
            'nemovideo'
        """
        return PROVIDER

    @property
    def current_session_id(self) -> str | None:
        """
        The session used when a method gets ``session_id=None`` (created on first use).

        Example:
            >>> NemoVideo(token="t").current_session_id is None
            True
        """
        return self._session_id

    # -- auth --------------------------------------------------------------------

    async def client_id(self) -> str:
        """
        The persisted ``X-Client-Id`` (read, or created, from ``client_id_file``).

        Example:
            Plain block::

                print(await nemo.client_id())
        """
        return await anyio.to_thread.run_sync(load_client_id, self._client_id_file)

    async def anonymous_token(self) -> AnonymousToken:
        """
        ``POST /api/auth/anonymous-token`` with the persisted ``X-Client-Id``.

        The client calls this itself when it has no token; call it to see the
        starting credits. It does not change the token the client uses.

        Raises:
            BadRequest: HTTP 400 (``X-Client-Id`` missing or refused).
            RateLimited: HTTP 429 (1 token per client and 10 per IP per 7 days).

        Example:
            Plain block::

                token = await nemo.anonymous_token()
                print(token.credits)          # the token itself stays a Secret
        """
        client_id = await self.client_id()
        resp = await self._anon.request(
            "POST",
            ANONYMOUS_TOKEN_PATH,
            headers={"X-Client-Id": client_id},
            # The same client id gets the same user back: resending is harmless.
            idempotent=True,
            authenticated=False,
        )
        token = parse_anonymous_token(resp.json(), endpoint=resp.endpoint, status_code=resp.status)
        return token

    async def _fetch_anonymous_token(self) -> Secret:
        token = await self.anonymous_token()
        logger.debug("fetched an anonymous NemoVideo token (%s credits)", token.credits)
        return token.token

    async def claim_token(self, task_id: str, session_id: str) -> ClaimToken:
        """
        ``POST /api/auth/claim-token``: a token that lets a browser claim this work.

        Example:
            Plain block::

                claim = await nemo.claim_token(info.task_id, info.session_id)
                print(claim.claim_url(nemo.web_url))
        """
        resp = await self._api.request(
            "POST",
            CLAIM_TOKEN_PATH,
            json=build_claim_token_body(task_id, session_id),
            # Each call only mints another link for the same work.
            idempotent=True,
        )
        return parse_claim_token(resp.json(), endpoint=resp.endpoint, status_code=resp.status)

    async def claim_url(self, task_id: str, session_id: str) -> str:
        """
        The browser link ``<web_url>/workspace/claim?ct=<claim_token>``.

        Example:
            Plain block::

                print(await nemo.claim_url(info.task_id, info.session_id))
        """
        return (await self.claim_token(task_id, session_id)).claim_url(self.web_url)

    # -- sessions ----------------------------------------------------------------

    async def create_session(
        self, task_name: str = "project", *, language: str | None = None
    ) -> SessionInfo:
        """
        ``POST /api/tasks/me/with-session/nemo_agent``: a new editing session.

        Sent once, never retried (each call creates a project); after a 1001
        answer the anonymous token is refreshed and
        :class:`~aivideo_async.AuthenticationError` raised, so a second call
        is safe (the rejected one created nothing). The first
        session created becomes :attr:`current_session_id` if there is none.

        Example:
            Plain block::

                info = await nemo.create_session(language="en")
                print(info.task_id, info.session_id)
        """
        resp = await self._api.request(
            "POST",
            CREATE_SESSION_PATH,
            json=build_create_session_body(task_name, language),
            idempotent=False,
            timeouts=self._create_timeouts,
        )
        info = parse_session_info(resp.json(), endpoint=resp.endpoint, status_code=resp.status)
        if self._session_id is None:
            self._session_id = info.session_id
        return info

    async def _current_session(self) -> str:
        async with self._session_lock:
            if self._session_id is None:
                info = await self.create_session()
                self._session_id = info.session_id
            return self._session_id

    async def _renew_session(self, lost: str) -> str:
        async with self._session_lock:
            if self._session_id == lost:
                logger.warning("NemoVideo session %s was lost (1002); starting a new one", lost)
                info = await self.create_session()
                self._session_id = info.session_id
            assert self._session_id is not None
            return self._session_id

    async def state(self, session_id: str | None = None) -> SessionState:
        """
        ``GET /api/state/nemo_agent/me/<sid>/latest``: the session's state and draft.

        Raises:
            SessionNotFound: code 1002 (never answered by switching sessions).

        Example:
            Plain block::

                state = await nemo.state(sid)
                print(timeline_summary(state.draft))
        """
        sid = session_id if session_id is not None else await self._current_session()
        resp = await self._api.request("GET", STATE_PATH, path_params={"session_id": sid})
        return parse_session_state(resp.json(), endpoint=resp.endpoint, status_code=resp.status)

    async def timeline(self, session_id: str | None = None) -> str:
        """
        The session's draft as readable lines (``Video: ... (0-10s)``).

        Example:
            Plain block::

                print(await nemo.timeline(sid))
        """
        return timeline_summary((await self.state(session_id)).draft)

    async def credits(self) -> Credits:
        """
        ``GET /api/credits/balance/simple``.

        Example:
            Plain block::

                balance = await nemo.credits()
                print(balance.available, balance.frozen, balance.total)
        """
        resp = await self._api.request("GET", CREDITS_PATH)
        return parse_credits(resp.json(), endpoint=resp.endpoint, status_code=resp.status)

    # -- uploads -----------------------------------------------------------------

    async def upload_files(
        self, session_id: str | None, files: Sequence[str | os.PathLike[str]]
    ) -> UploadResult:
        """
        Upload local files (multipart field ``files``, repeated) into a session.

        Every file's type (by extension) and size are checked before any byte
        is sent. The upload is sent once (not idempotent: a resend would add
        the files twice); with ``session_id=None`` a lost current session
        (1002) is replaced and the upload sent to the new one.

        Raises:
            InvalidInput: no files, an unsupported type, an empty file or one
                over ``max_upload_bytes``; a missing file.
            UnsupportedMedia, MediaTooLarge: codes 4001 / 4002 from the server.

        Example:
            Plain block::

                result = await nemo.upload_files(sid, ["intro.mp4", "logo.png"])
                print([f.cdn_url for f in result.files])
        """
        if isinstance(files, str | os.PathLike) or not files:
            raise InvalidInput(
                field="files", value=files, expected="a non-empty list of paths", provider=PROVIDER
            )
        paths = [pathlib.Path(f) for f in files]
        checked: list[tuple[pathlib.Path, str]] = []
        for i, path in enumerate(paths):
            try:
                info = await anyio.to_thread.run_sync(path.stat)
            except OSError as exc:
                raise InvalidInput(
                    field=f"files[{i}]",
                    value=str(path),
                    expected=f"a readable file ({exc.strerror})",
                    provider=PROVIDER,
                ) from exc
            if not stat.S_ISREG(info.st_mode):
                raise InvalidInput(
                    field=f"files[{i}]",
                    value=str(path),
                    expected="a regular file",
                    provider=PROVIDER,
                )
            size = info.st_size
            check_upload_file(
                path.name, size, max_bytes=self._max_upload_bytes, field=f"files[{i}]"
            )
            checked.append((path, guess_content_type(path.name)))

        async def send(sid: str) -> UploadResult:
            with contextlib.ExitStack() as stack:
                form = aiohttp.FormData()
                for path, content_type in checked:
                    handle: IO[bytes] = await anyio.to_thread.run_sync(path.open, "rb")
                    stack.callback(handle.close)
                    form.add_field("files", handle, filename=path.name, content_type=content_type)
                return await self._post_upload(sid, data=form)

        return await self._in_session(session_id, send)

    async def upload_urls(self, session_id: str | None, urls: Sequence[str]) -> UploadResult:
        """
        Import media by URL (``{"urls": [...], "source_type": "url"}``).

        Raises:
            InvalidInput: no URLs, or one that is not absolute ``https://``.

        Example:
            Plain block::

                await nemo.upload_urls(sid, ["https://example.com/clip.mp4"])
        """
        body = build_upload_urls_body(urls)
        return await self._in_session(session_id, lambda sid: self._post_upload(sid, json=body))

    async def _post_upload(
        self, sid: str, *, data: aiohttp.FormData | None = None, json: JSON | None = None
    ) -> UploadResult:
        # Never resent (not idempotent): a resend would add the media twice.
        resp = await self._api.request(
            "POST",
            UPLOAD_PATH,
            path_params={"session_id": sid},
            data=data,
            json=json,
            idempotent=False,
            timeouts=self._create_timeouts,
        )
        return parse_upload_result(resp.json(), endpoint=resp.endpoint, status_code=resp.status)

    async def _in_session(self, session_id: str | None, call: Callable[[str], Awaitable[_T]]) -> _T:
        if session_id is not None:
            return await call(session_id)
        sid = await self._current_session()
        try:
            return await call(sid)
        except SessionNotFound:
            # A 1002 answer means nothing was applied: safe to send to a new session.
            return await call(await self._renew_session(sid))

    # -- renders -----------------------------------------------------------------

    def render_spec(
        self,
        session_id: str,
        draft: Draft | SessionState | Mapping[str, Any],
        *,
        render_id: str | None = None,
        output_format: str | None = "mp4",
        quality: str | None = "high",
        extra_output: Mapping[str, Any] | None = None,
        legacy_path: bool = False,
    ) -> JobSpec:
        """
        A render submit as a :class:`~aivideo_async.JobSpec` (no IO).

        ``legacy_path=True`` sends it to the deprecated ``POST /api/render/proxy/draft``
        of the initial API (same body); the render is polled as any other.

        The render id is chosen here (``render_<uuid>``, in
        :attr:`~aivideo_async.JobSpec.client_job_id`) so that a submit whose
        answer was lost can be checked with :meth:`find_submission`.

        Raises:
            InvalidInput: the draft has no track with segments, or a bad id.

        Example:
            Plain block::

                state = await nemo.state(sid)
                spec = nemo.render_spec(sid, state)
                handle = await orchestrator.submit(spec, key="sunset-export")
        """
        if isinstance(draft, SessionState):
            draft = draft.draft
        rid = render_id if render_id is not None else new_render_id()
        payload = build_render_body(
            render_id=rid,
            session_id=session_id,
            draft=draft,
            output_format=output_format,
            quality=quality,
            extra_output=extra_output,
        )
        return JobSpec(
            provider=PROVIDER,
            kind=RENDER_KIND,
            method="POST",
            path=LEGACY_RENDER_PATH if legacy_path else RENDER_PATH,
            payload=payload,
            client_job_id=rid,
            meta={"session_id": session_id},
            origin=self,
        )

    async def submit_render(
        self,
        session_id: str,
        draft: Draft | SessionState | Mapping[str, Any],
        *,
        output_format: str | None = "mp4",
        quality: str | None = "high",
    ) -> str:
        """
        Build a render spec and submit it once; return the render id.

        Never resent. On :class:`~aivideo_async.RequestMaybeSent` the render
        may exist: look for it with :meth:`find_submission` (or poll the id
        from :meth:`render_spec`) before submitting again.

        Example:
            Plain block::

                render_id = await nemo.submit_render(sid, await nemo.state(sid))
        """
        spec = self.render_spec(session_id, draft, output_format=output_format, quality=quality)
        return await self.create(spec)

    async def submit_once(self, spec: JobSpec) -> str:
        """
        Send a render spec's submit exactly once (never retried); the same as :meth:`create`,
        named like the other clients' convenience.

        Example:
            Plain block::

                render_id = await nemo.submit_once(nemo.render_spec(sid, state))
        """
        return await self.create(spec)

    async def create(self, spec: JobSpec) -> str:
        """
        Send a render spec's submit exactly once; return the render id.

        Errors are the session's: :class:`~aivideo_async.RequestNotSent` means
        provably not sent; any failure after the first byte is ambiguous and is
        raised as is (never retried, whatever its kind).

        Example:
            Plain block::

                render_id = await nemo.create(nemo.render_spec(sid, state))
        """
        if spec.provider != PROVIDER or spec.kind != RENDER_KIND:
            raise InvalidInput(
                field="spec",
                value=f"{spec.provider}/{spec.kind}",
                expected=f"a {PROVIDER}/{RENDER_KIND} spec",
                provider=PROVIDER,
            )
        render_id = validate_render_id(spec.client_job_id, field="spec.client_job_id")
        resp = await self._api.request(
            spec.method,
            spec.path,
            json=dict(spec.payload),
            idempotent=False,
            timeouts=self._create_timeouts,
        )
        return parse_render_submit(
            resp.json(), render_id=render_id, endpoint=resp.endpoint, status_code=resp.status
        )

    async def render_status(self, render_id: str) -> RenderStatus:
        """
        ``GET /api/render/proxy/lambda/<id>`` in any of the three answer shapes.

        Raises:
            NotFound: no such render.

        Example:
            Plain block::

                status = await nemo.render_status(render_id)
                print(status.status, status.progress, status.url)
        """
        validate_render_id(render_id)
        resp = await self._api.request(
            "GET", RENDER_STATUS_PATH, path_params={"render_id": render_id}
        )
        return parse_render_status(
            resp.json(), render_id=render_id, endpoint=resp.endpoint, status_code=resp.status
        )

    async def poll(self, kind: str, job_id: str) -> JobStatus:
        """
        The :class:`~aivideo_async.JobBackend` poll: a render's mapped status.

        Example:
            Plain block::

                status = await nemo.poll("render", render_id)
                print(status.state, status.progress)
        """
        self._check_kind(kind)
        return (await self.render_status(job_id)).job_status

    async def poll_many(self, kind: str, job_ids: Sequence[str]) -> Mapping[str, JobStatus] | None:
        """
        ``None``: NemoVideo has no render list endpoint, so renders are polled one by one.

        Example:
            Plain block::

                assert await nemo.poll_many("render", ["render_1"]) is None
        """
        self._check_kind(kind)
        return None

    def supports_cancel(self, kind: str) -> bool:
        """
        Renders can be cancelled (``POST .../cancel``; documented only in NV-REF44).

        Example:
            >>> NemoVideo(token="t").supports_cancel("render")
            True
        """
        return kind == RENDER_KIND

    async def cancel(self, kind: str, job_id: str) -> None:
        """
        The :class:`~aivideo_async.JobBackend` cancel: :meth:`cancel_render`.

        Example:
            Plain block::

                await nemo.cancel("render", render_id)
        """
        self._check_kind(kind)
        await self.cancel_render(job_id)

    async def cancel_render(self, render_id: str) -> None:
        """
        ``POST /api/render/proxy/lambda/<id>/cancel``: cancel a pending render.

        Cancelling twice is harmless, so the call may be retried.

        Example:
            Plain block::

                await nemo.cancel_render(render_id)
        """
        validate_render_id(render_id)
        await self._api.request(
            "POST",
            RENDER_CANCEL_PATH,
            path_params={"render_id": render_id},
            idempotent=True,
        )

    async def find_submission(self, spec: JobSpec, *, since: float) -> str | None:
        """
        Check whether a render submit whose answer was lost created the render.

        The id was chosen by the client, so this is an exact lookup: poll it;
        ``None`` when the provider does not know it (the submit never landed).

        Example:
            Plain block::

                spec = nemo.render_spec(sid, state)
                try:
                    await nemo.create(spec)
                except RequestMaybeSent:
                    found = await nemo.find_submission(spec, since=started)
        """
        if spec.provider != PROVIDER or spec.kind != RENDER_KIND or not spec.client_job_id:
            return None
        try:
            status = await self.render_status(spec.client_job_id)
        except NotFound:
            return None
        return status.render_id

    def _check_kind(self, kind: str) -> None:
        if kind != RENDER_KIND:
            raise InvalidInput(
                field="kind", value=kind, expected=f"{RENDER_KIND!r}", provider=PROVIDER
            )

    async def wait_for_render(
        self,
        render_id: str,
        *,
        interval: float = 10.0,
        max_polls: int = 30,
        sleep: Sleep | None = None,
    ) -> RenderStatus:
        """
        Poll a render until it finishes (standalone use; the orchestrator polls by itself).

        The default schedule is NV-REF44's: every 10 s, at most 30 polls (the
        official skill uses 30 s x 10).

        Returns:
            The completed :class:`RenderStatus` (with its ``url``).

        Raises:
            JobFailed: the render failed.
            JobCancelled: the render was cancelled.
            JobTimeout: not finished after ``max_polls`` polls (it keeps running).

        Example:
            Plain block::

                render_id = await nemo.submit_render(sid, state)
                done = await nemo.wait_for_render(render_id)
                await nemo.download_render(done, "out/sunset.mp4")
        """
        polls: object = max_polls  # callers may pass anything; check at runtime
        if isinstance(polls, bool) or not isinstance(polls, int) or polls < 1:
            raise InvalidInput(field="max_polls", value=max_polls, expected="an int >= 1")
        nap = sleep or self._sleep
        for poll in range(max_polls):
            if poll:
                await nap(interval)
            status = await self.render_status(render_id)
            job = status.job_status
            if job.state is JobState.SUCCEEDED:
                return status
            if job.state is JobState.FAILED:
                raise JobFailed(job.message or "render failed", job_id=render_id, provider=PROVIDER)
            if job.state is JobState.CANCELED:
                raise JobCancelled("render cancelled", job_id=render_id, provider=PROVIDER)
        raise JobTimeout(
            f"render not finished after {max_polls} polls", job_id=render_id, provider=PROVIDER
        )

    async def download_render(
        self,
        render: str | RenderStatus,
        dest: str | os.PathLike[str],
        *,
        max_bytes: int | None = None,
        deadline: float | None = None,
    ) -> pathlib.Path:
        """
        Download a completed render atomically to ``dest``.

        It fetches ``output.url`` (no credentials go to it); a 403 there (an
        expired signed URL) refetches the status once for a fresh URL; when
        the URL is missing or cannot be reached it falls back to
        ``GET /api/render/proxy/<id>/download``. ``deadline`` (seconds)
        bounds the whole download, lookups and retries included.

        Raises:
            DownloadError: the render is not completed, or the file could not
                be written.
            TotalTimeout: the deadline passed (the temporary file is removed).

        Example:
            Plain block::

                path = await nemo.download_render(render_id, "out/sunset.mp4", deadline=600)
        """
        return await by_deadline(
            deadline,
            lambda: self._download_render(render, dest, max_bytes),
            provider=PROVIDER,
            what=f"the download to {os.fspath(dest)!r}",
        )

    async def _download_render(
        self,
        render: str | RenderStatus,
        dest: str | os.PathLike[str],
        max_bytes: int | None,
    ) -> pathlib.Path:
        status = render if isinstance(render, RenderStatus) else await self.render_status(render)
        if status.job_status.state is not JobState.SUCCEEDED:
            raise DownloadError(
                f"render {status.render_id} is {status.status!r}, not completed",
                provider=PROVIDER,
            )
        url = status.url
        refetched = False
        while url:
            try:
                return await self._api.download(
                    url, dest, absolute=True, max_bytes=max_bytes, content_types=VIDEO_TYPES
                )
            except APIStatusError as exc:
                if exc.status_code == 403 and not refetched:
                    refetched = True
                    url = (await self.render_status(status.render_id)).url
                    continue
                logger.debug("render URL failed (%s); using the download path", exc)
            except TransportError as exc:
                logger.debug("render URL unreachable (%s); using the download path", exc)
            break
        return await self._api.download(
            RENDER_DOWNLOAD_PATH,
            dest,
            path_params={"render_id": status.render_id},
            max_bytes=max_bytes,
            content_types=VIDEO_TYPES,
        )

    # -- chat --------------------------------------------------------------------

    def chat(
        self,
        session_id: str | None,
        text: str,
        *,
        idle_timeout: float | None | NotGiven = NOT_GIVEN,
    ) -> ChatStream:
        """
        Send one message to the agent (``POST /run_sse``) and stream its events.

        Yields :class:`TextEvent`, :class:`ToolCall`, :class:`ToolResult`,
        :class:`Heartbeat` and :class:`StreamError`. The POST is never re-sent
        (a turn may generate video and cost credits): a stream lost midway
        yields ``StreamError(dropped=True)`` and ends; then poll with
        :meth:`wait_for_state_change`. With ``session_id=None`` the client's
        current session is used, and a 1002 answer (nothing was run) moves
        to a new session once.

        Raises:
            InvalidInput: empty ``text``.
            StreamIdleTimeout: no byte (heartbeats count) for ``idle_timeout``
                seconds, or nothing but heartbeats for the heartbeat-only limit.
            SessionNotFound, AuthenticationError, InsufficientCredits: on entry,
                before anything ran. After code 1001 an anonymous token has
                already been refreshed, so calling ``chat`` again is safe; the
                client does not do it for you (a create is never resent).

        Example:
            Plain block (needs a server)::

                async with nemo.chat(sid, "Make a 5-second sunset timelapse") as chat:
                    async for event in chat:
                        match event:
                            case TextEvent(text=text):
                                print(text)
                            case StreamError(dropped=True):
                                print("connection lost; the turn may still be running")
        """
        check_message(text)  # now, not at the first event
        idle = self._chat_idle_timeout if isinstance(idle_timeout, NotGiven) else idle_timeout

        def events(stream: ChatStream) -> AsyncGenerator[ChatEvent, None]:
            return self._chat_events(stream, text, idle)

        return ChatStream(events, session_id)

    async def _chat_events(
        self, stream: ChatStream, text: str, idle: float | None
    ) -> AsyncGenerator[ChatEvent, None]:
        implicit = stream.session_id is None
        sid = stream.session_id if stream.session_id is not None else await self._current_session()
        stream.session_id = sid
        async with contextlib.AsyncExitStack() as stack:
            try:
                resp = await stack.enter_async_context(self._open_chat(sid, text))
            except SessionNotFound:
                if not implicit:
                    raise
                # Rejected before anything ran: sending to a new session is no resend.
                sid = stream.session_id = await self._renew_session(sid)
                resp = await stack.enter_async_context(self._open_chat(sid, text))
            async for event in iter_chat_events(
                resp,
                idle_timeout=idle,
                heartbeat_only_timeout=self._chat_heartbeat_only_timeout,
                clock=self._clock,
            ):
                yield event

    @contextlib.asynccontextmanager
    async def _open_chat(self, sid: str, text: str) -> AsyncIterator[Any]:
        async with self._api.stream(
            "POST",
            RUN_SSE_PATH,
            json=build_run_sse_body(sid, text),
            idempotent=False,
            timeouts=self._chat_timeouts,
        ) as resp:
            yield resp.iter_bytes()

    async def wait_for_state_change(
        self,
        session_id: str,
        since: SessionState | str | None,
        *,
        first_delay: float = 30.0,
        interval: float = 60.0,
        max_unchanged: int = 5,
        sleep: Sleep | None = None,
    ) -> SessionState:
        """
        Poll the session state until it differs from ``since`` (§2.4 recovery).

        After a dropped chat stream, or a turn that ended with tool calls only:
        wait ``first_delay`` (30 s), query the state, then every ``interval``
        (60 s); after ``max_unchanged`` unchanged queries (about 5 minutes)
        give up. Never re-sends the message.

        Args:
            session_id: the session.
            since: the state (or its :attr:`~SessionState.fingerprint`) from
                before the message; ``None`` takes the current state as the
                baseline first.
            first_delay, interval, max_unchanged: the schedule.
            sleep: overrides the client's sleep (tests pass a fake).

        Raises:
            JobTimeout: the state did not change in ``max_unchanged`` queries.

        Example:
            Plain block::

                before = await nemo.state(sid)
                async with nemo.chat(sid, "Add background music") as chat:
                    async for event in chat:
                        ...
                if chat.dropped or not chat.saw_text:
                    after = await nemo.wait_for_state_change(sid, since=before)
                    print(timeline_summary(after.draft))
        """
        if isinstance(max_unchanged, bool) or not isinstance(max_unchanged, int):
            raise InvalidInput(field="max_unchanged", value=max_unchanged, expected="an int >= 1")
        if max_unchanged < 1:
            raise InvalidInput(field="max_unchanged", value=max_unchanged, expected="an int >= 1")
        nap = sleep or self._sleep
        if since is None:
            since = await self.state(session_id)
        baseline = since.fingerprint if isinstance(since, SessionState) else since
        started = self._clock()
        delay = first_delay
        for _ in range(max_unchanged):
            await nap(delay)
            state = await self.state(session_id)
            if state.fingerprint != baseline:
                return state
            delay = interval
        raise JobTimeout(
            f"session state unchanged after {max_unchanged} queries "
            f"({self._clock() - started:.0f} s); the turn probably failed",
            job_id=session_id,
            provider=PROVIDER,
        )


_error_mapper = error_mapper(map_error)
