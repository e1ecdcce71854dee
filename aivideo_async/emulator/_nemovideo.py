"""
NemoVideo routes (PROVIDER_APIS.md §2-3): anonymous token, session, ``/run_sse``
with ADK-style events and heartbeats, upload, credits, state with a draft,
render submit/poll/download/cancel.

Behaviour choices (ASSUMED where the sources are silent):

* Body codes (1001 token, 1002 session, 2001 credits, 4001/4002 upload) come in
  the ``{"code", "message", "data": null}`` envelope with HTTP 200, so a client
  must read the body code before the HTTP status (RELIABILITY #18). HTTP-level
  errors use the same envelope with ``code`` = the HTTP status: 400 (missing
  ``X-Client-Id``, bad body), 402 (missing ``X-Skill-*`` attribution headers),
  404, 409 (a render id already used), 422 (empty ``new_message.parts``).
* A turn's work happens on the emulator clock whether or not the client stays
  connected: the draft changes and credits settle at their due times, so a
  client that lost the stream sees the change by polling the state.
* A turn is classified from its text: edit words (add, music, title, trim,
  cut, remove, change, edit, subtitle) make an edit (``edit_multitrack``,
  50 credits); generation words (generate, make, create, render a video) make
  a generation (``generate_video_with_seedance``, then a second stage adding
  BGM and a title, 100 credits); anything else is a plain chat turn.
* About 30 % of edit and generation turns end with tool events only, no text.
* Heartbeats cycle through the three documented forms: an SSE comment
  ``: heartbeat``, ``data: {"type":"heartbeat"}`` and an empty ``data:`` line.

Example:
    >>> classify("Make a 5-second sunset timelapse"), classify("add background music")
    ('generate', 'edit')
    >>> classify("hello")
    'chat'
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import itertools
import math
import re
from typing import Any, Literal

import attrs
from aiohttp import web

from ._faults import STREAM_FAULT, FaultRule
from ._media import base_url, check_signed, png, sample_mp4, serve_bytes, signed_url
from ._state import EmulatorState, Job
from ._status import render_progress, status_of
from ._wire import BadBody, Reject, dumps, error_response, json_response, parse_body, s3_error

__all__ = ["NemoVideo", "classify"]

P = "nemovideo"
TOKEN_TTL = 7 * 86400.0
GENERATE_COST = 100
EDIT_COST = 50
VIDEO_EXT = {"mp4", "mov", "avi", "webm", "mkv"}
IMAGE_EXT = {"jpg", "jpeg", "png", "gif", "webp"}
AUDIO_EXT = {"mp3", "wav", "m4a", "aac"}
_ATTRIBUTION = ("X-Skill-Source", "X-Skill-Version", "X-Skill-Platform")
_RENDER_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}$")
_EDIT_WORDS = (
    "add",
    "music",
    "bgm",
    "title",
    "subtitle",
    "trim",
    "cut",
    "remove",
    "change",
    "edit",
)
_GEN_WORDS = ("generate", "make", "create", "video", "clip")
_HEARTBEATS = (b": heartbeat", b'data: {"type":"heartbeat"}', b"data:")


def classify(text: str) -> Literal["generate", "edit", "chat"]:
    """Which kind of turn a user message starts (see the module docstring)."""
    lowered = text.lower()
    words = set(re.findall(r"[a-z]+", lowered))
    if words & set(_EDIT_WORDS):
        return "edit"
    if words & set(_GEN_WORDS):
        return "generate"
    return "chat"


@attrs.frozen
class SessionBody:
    """Body of ``POST /api/tasks/me/with-session/nemo_agent``."""

    task_name: str
    language: str | None = None


@attrs.frozen
class ClaimBody:
    """Body of ``POST /api/auth/claim-token``."""

    task_id: str
    session_id: str


@attrs.frozen
class Part:
    """One ``new_message`` part; the emulator understands text parts."""

    text: str


@attrs.frozen
class Content:
    """``new_message``."""

    parts: list[Part]
    role: str | None = None


@attrs.frozen
class RunSseBody:
    """Body of ``POST /run_sse`` (ADK ``RunAgentRequest``, snake_case)."""

    app_name: str
    user_id: str
    session_id: str
    new_message: Content
    streaming: bool = False
    state_delta: dict[str, Any] | None = None


@attrs.frozen
class UrlUpload:
    """JSON body of the URL upload variant."""

    urls: list[str]
    source_type: Literal["url"] = "url"


@attrs.frozen
class RenderOutput:
    """``output`` of a render submit."""

    format: Literal["mp4"] = "mp4"
    quality: Literal["low", "medium", "high"] = "high"
    resolution: str | None = None
    fps: int | None = None


@attrs.frozen
class RenderBody:
    """Body of ``POST /api/render/proxy/lambda`` (``sessionId`` is camelCase)."""

    id: str
    sessionId: str
    draft: dict[str, Any]
    output: RenderOutput | None = None


class Session:
    """A NemoVideo session: its state, and draft changes due at future times."""

    def __init__(self, sid: str, user: str, task_id: str, task_name: str) -> None:
        self.sid = sid
        self.user = user
        self.task_id = task_id
        self.task_name = task_name
        self.video_infos: list[dict[str, Any]] = []
        self.generated_media: list[dict[str, Any]] = []
        self.draft: dict[str, Any] = {
            "d": 0,
            "m": {"title": task_name, "width": 1920, "height": 1080},
            "t": [],
        }
        self._pending: list[tuple[float, int, str, dict[str, Any]]] = []
        self._seq = itertools.count()

    def schedule(self, due: float, action: str, args: dict[str, Any]) -> None:
        """Apply ``action`` to the draft at emulator time ``due``."""
        heapq.heappush(self._pending, (due, next(self._seq), action, args))

    def settle(self, now: float) -> None:
        """Apply every change due by ``now``."""
        while self._pending and self._pending[0][0] <= now:
            _due, _seq, action, args = heapq.heappop(self._pending)
            self._apply(action, args)

    def _apply(self, action: str, args: dict[str, Any]) -> None:
        draft = self.draft
        tracks: list[dict[str, Any]] = draft["t"]
        if action == "generate":
            ms = int(args["seconds"] * 1000)
            tracks.append(
                {
                    "tt": 0,
                    "sg": [
                        {"id": args["clip"], "d": ms, "src": args["url"], "prompt": args["prompt"]}
                    ],
                }
            )
            draft["d"] = max(draft["d"], ms)
            self.generated_media.append(
                {"type": "video", "url": args["url"], "duration": args["seconds"]}
            )
        elif action == "decorate":
            d = draft["d"]
            tracks.append({"tt": 1, "sg": [{"id": args["clip"] + "-bgm", "d": d, "name": "bgm"}]})
            tracks.append(
                {
                    "tt": 7,
                    "sg": [
                        {"id": args["clip"] + "-title", "d": min(d, 2000), "text": args["title"]}
                    ],
                }
            )
        elif action == "edit":
            what = args["what"]
            if what == "music":
                tracks[:] = [t for t in tracks if t.get("tt") != 1]
                tracks.append(
                    {"tt": 1, "sg": [{"id": args["clip"], "d": draft["d"], "name": "bgm"}]}
                )
            elif what == "title":
                tracks.append(
                    {"tt": 7, "sg": [{"id": args["clip"], "d": 2000, "text": args["text"]}]}
                )
            elif what == "trim":
                draft["d"] = max(1000, draft["d"] - 1000)
                for track in tracks:
                    for seg in track.get("sg", []):
                        seg["d"] = min(seg.get("d", 0), draft["d"])
            else:
                draft["m"]["title"] = args["text"][:60]

    def json(self) -> dict[str, Any]:
        """The ``data`` of ``GET .../latest``."""
        return {
            "session_id": self.sid,
            "task_id": self.task_id,
            "task_name": self.task_name,
            "state": {
                "video_infos": self.video_infos,
                "draft": self.draft,
                "canvas_config": {"width": 1920, "height": 1080},
                "video_analyses": {},
                "generated_media": self.generated_media,
            },
        }


def _ok(data: Any) -> web.Response:
    return json_response({"code": 0, "message": "success", "data": data})


def _fail(status: int, message: str, code: int | None = None) -> Reject:
    # Body codes travel with HTTP 200; HTTP-level errors carry their status as the code.
    http = 200 if code is not None else status
    return Reject(error_response(P, http, message, code=code if code is not None else status))


def _ext(name: str) -> str:
    return name.rsplit("?", 1)[0].rsplit(".", 1)[-1].lower() if "." in name else ""


def _file_type(ext: str) -> str | None:
    if ext in VIDEO_EXT:
        return "video"
    if ext in IMAGE_EXT:
        return "image"
    if ext in AUDIO_EXT:
        return "audio"
    return None


class NemoVideo:
    """
    The NemoVideo handlers over a shared :class:`EmulatorState`.

    Example:
        >>> from aivideo_async.emulator._state import EmulatorConfig, EmulatorState
        >>> "/run_sse" in [r[1] for r in NemoVideo(EmulatorState(EmulatorConfig())).routes()]
        True
    """

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    @property
    def jobs(self) -> dict[str, Job]:
        """Renders and turns (looked up each time: ``reset`` replaces the dict)."""
        return self.state.jobs[P]

    def routes(self) -> list[tuple[str, str, str, Any]]:
        """``(method, path, endpoint class, handler)`` for every NemoVideo route."""
        return [
            ("POST", "/api/auth/anonymous-token", "nemovideo.token", self.anonymous_token),
            ("POST", "/api/auth/claim-token", "nemovideo.token", self.claim_token),
            ("POST", "/api/tasks/me/with-session/nemo_agent", "nemovideo.session", self.session),
            ("POST", "/run_sse", "nemovideo.run_sse", self.run_sse),
            ("POST", "/api/upload-video/nemo_agent/me/{sid}", "nemovideo.upload", self.upload),
            ("GET", "/api/credits/balance/simple", "nemovideo.credits", self.credits),
            ("GET", "/api/state/nemo_agent/me/{sid}/latest", "nemovideo.state", self.get_state),
            ("POST", "/api/render/proxy/lambda", "nemovideo.render", self.render),
            # The deprecated submit path of the initial skill (NV-INIT): the same body and job.
            ("POST", "/api/render/proxy/draft", "nemovideo.render", self.render),
            ("GET", "/api/render/proxy/lambda/{id}", "nemovideo.render_status", self.render_status),
            (
                "POST",
                "/api/render/proxy/lambda/{id}/cancel",
                "nemovideo.render_cancel",
                self.render_cancel,
            ),
            ("GET", "/api/render/proxy/{id}/download", "nemovideo.download", self.render_download),
            ("GET", "/s3/nemovideo/{kind}/{name}", "nemovideo.download", self.s3_get),
        ]

    # -- helpers ---------------------------------------------------------------------------
    def _user(self, request: web.Request) -> str:
        """Check the bearer token (1001) and the attribution headers (HTTP 402)."""
        state = self.state
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _fail(200, "token invalid or expired", code=1001)
        info = state.tokens.get(token)
        if info is None:
            if not state.key_accepted(P, token):
                raise _fail(200, "token invalid or expired", code=1001)
            # A manual API token: its user is derived from the token, it does not expire.
            user = "usr_" + hashlib.sha256(token.encode()).hexdigest()[:12]
            info = state.tokens[token] = {"user": user, "expires": None, "expired": False}
        if info["expired"] or (info["expires"] is not None and state.now() >= info["expires"]):
            raise _fail(200, "token invalid or expired", code=1001)
        missing = [h for h in _ATTRIBUTION if not request.headers.get(h)]
        if missing:
            raise _fail(402, f"missing attribution header(s): {', '.join(missing)}")
        return str(info["user"])

    def _session(self, sid: str, user: str) -> Session:
        session = self.state.sessions.get(sid)
        if session is None or session.user != user:
            raise _fail(200, "session not found", code=1002)
        assert isinstance(session, Session)
        return session

    async def _json(self, request: web.Request, cls: type[Any]) -> tuple[Any, bytes]:
        raw = await request.read()
        try:
            return parse_body(cls, raw), raw
        except BadBody as exc:
            raise _fail(400, str(exc)) from None

    # -- auth and session ------------------------------------------------------------------
    async def anonymous_token(self, request: web.Request) -> web.Response:
        """``POST /api/auth/anonymous-token``: ``X-Client-Id`` required."""
        client_id = request.headers.get("X-Client-Id", "").strip()
        if not client_id:
            raise _fail(400, "X-Client-Id header is required")
        state = self.state
        user = state.client_users.get(client_id)
        if user is None:
            # The same client id always maps to the same user, so sessions survive a new token.
            user = "anon_" + hashlib.sha256(client_id.encode()).hexdigest()[:12]
            state.client_users[client_id] = user
        now = state.now()
        if state.config.nemovideo_token_limit:
            # The documented limit: one anonymous token per client per 7 days. A token that
            # expired early (1001) frees the slot, so the refresh flow still works.
            live = [
                info["expires"]
                for info in state.tokens.values()
                if info.get("client") == client_id
                and not info["expired"]
                and info["expires"] is not None
                and info["expires"] > now
            ]
            if live:
                retry = max(1, math.ceil(max(live) - now))
                raise Reject(
                    error_response(
                        P,
                        429,
                        "anonymous token limit: 1 per client per 7 days",
                        headers={"Retry-After": str(retry)},
                    )
                )
        token = "nmv_usr_" + state.ids.alnum(24)
        state.tokens[token] = {
            "user": user,
            "expires": now + TOKEN_TTL,
            "expired": False,
            "client": client_id,
        }
        available, _frozen = state.account(P, user).balance(now)
        return _ok(
            {
                "token": token,
                "credits": available,
                "user_id": user,
                "expires_at": state.iso(now + TOKEN_TTL),
            }
        )

    async def claim_token(self, request: web.Request) -> web.Response:
        """``POST /api/auth/claim-token``."""
        user = self._user(request)
        body, _raw = await self._json(request, ClaimBody)
        session = self._session(body.session_id, user)
        if session.task_id != body.task_id:
            raise _fail(404, f"task {body.task_id} does not belong to session {body.session_id}")
        return _ok({"claim_token": "clm_" + self.state.ids.alnum(24), "expires_in": 604800})

    async def session(self, request: web.Request) -> web.Response:
        """``POST /api/tasks/me/with-session/nemo_agent``."""
        user = self._user(request)
        body, _raw = await self._json(request, SessionBody)
        if not body.task_name.strip():
            raise _fail(400, "task_name must not be empty")
        sid = self.state.ids.digits(19)
        task_id = "task_" + self.state.ids.hex(8)
        self.state.sessions[sid] = Session(sid, user, task_id, body.task_name)
        return _ok({"task_id": task_id, "session_id": sid})

    async def credits(self, request: web.Request) -> web.Response:
        """``GET /api/credits/balance/simple``."""
        user = self._user(request)
        available, frozen = self.state.account(P, user).balance(self.state.now())
        return _ok({"available": available, "frozen": frozen, "total": available + frozen})

    async def get_state(self, request: web.Request) -> web.Response:
        """``GET /api/state/nemo_agent/me/{sid}/latest``."""
        user = self._user(request)
        session = self._session(request.match_info["sid"], user)
        session.settle(self.state.now())
        return _ok(session.json())

    # -- upload ----------------------------------------------------------------------------
    def _file_info(self, base: str, name: str, digest: str) -> dict[str, Any]:
        ext = _ext(name)
        kind = _file_type(ext)
        if kind is None:
            raise _fail(200, f"unsupported file type: {name}", code=4001)
        url = signed_url(
            self.state,
            base,
            "GET",
            f"/s3/nemovideo/uploads/{digest[:24]}.{ext}",
            self.state.config.download_url_ttl,
        )
        video = kind == "video"
        return {
            "filename": name.rsplit("/", 1)[-1].split("?", 1)[0],
            "file_type": kind,
            "cdn_url": url,
            "duration": 2.0 if kind != "image" else 0.0,
            "width": 160 if kind != "audio" else None,
            "height": 90 if kind != "audio" else None,
            "fps": 12 if video else None,
            "hash": digest,
        }

    async def upload(self, request: web.Request) -> web.Response:
        """``POST /api/upload-video/nemo_agent/me/{sid}``: multipart ``files`` or JSON URLs."""
        user = self._user(request)
        session = self._session(request.match_info["sid"], user)
        base = base_url(request)
        files: list[dict[str, Any]] = []
        if request.content_type.startswith("multipart/"):
            limit = self.state.config.upload_max_bytes
            reader = await request.multipart()
            async for part in reader:
                if getattr(part, "name", None) != "files" or not getattr(part, "filename", None):
                    raise _fail(400, "multipart field must be 'files' with a file name")
                name = str(part.filename)  # type: ignore[union-attr]
                if _file_type(_ext(name)) is None:
                    raise _fail(200, f"unsupported file type: {name}", code=4001)
                digest = hashlib.sha256()
                size = 0
                while chunk := await part.read_chunk(65536):  # type: ignore[union-attr]
                    size += len(chunk)
                    if size > limit:
                        raise _fail(200, f"file too large: {name} (limit {limit} bytes)", code=4002)
                    digest.update(chunk)
                files.append(self._file_info(base, name, digest.hexdigest()))
            if not files:
                raise _fail(400, "no files in the upload")
        else:
            body, _raw = await self._json(request, UrlUpload)
            if not body.urls:
                raise _fail(400, "urls must not be empty")
            for url in body.urls:
                if not url.startswith(("http://", "https://")):
                    raise _fail(400, f"not an http(s) URL: {url!r}")
                digest_hex = hashlib.sha256(url.encode()).hexdigest()
                files.append(self._file_info(base, url, digest_hex))
        session.video_infos.extend(files)
        return _ok({"files": files, "session_state_applied": True})

    # -- run_sse ---------------------------------------------------------------------------
    def _event(self, inv: str, content: dict[str, Any], at: float, **extra: Any) -> dict[str, Any]:
        event: dict[str, Any] = {
            "content": content,
            "invocationId": inv,
            "author": "nemo_agent",
            "actions": {"stateDelta": {}, "artifactDelta": {}, "requestedAuthConfigs": {}},
        }
        event.update(extra)
        event["id"] = self.state.ids.alnum(8)
        event["timestamp"] = round(self.state.wall(at), 3)
        return event

    def _plan(
        self, session: Session, user: str, text: str, streaming: bool, now: float, base: str
    ) -> tuple[list[tuple[float, Any]], int]:
        """Build a turn: ``[(due time, event dict or heartbeat None)]`` and its cost.

        Draft changes and credits are scheduled here, at the times the events
        report them, so they happen even if nobody reads the stream.
        """
        state = self.state
        rng = state.sse_rng
        scale = state.config.time_scale
        kind = classify(text)
        inv = "e-" + state.ids.uuid()
        steps: list[tuple[float, Any]] = []
        t = now

        def say(message: str, at: float) -> float:
            if streaming:
                # ADK streaming: partial chunks, then the aggregated text as one event.
                words = message.split(" ")
                third = max(1, len(words) // 3)
                for i in range(0, len(words), third):
                    chunk = " ".join(words[i : i + third]) + (" " if i + third < len(words) else "")
                    steps.append(
                        (
                            at,
                            self._event(
                                inv, {"parts": [{"text": chunk}], "role": "model"}, at, partial=True
                            ),
                        )
                    )
                    at += 0.01 * scale
            steps.append(
                (at, self._event(inv, {"parts": [{"text": message}], "role": "model"}, at))
            )
            return at

        def tool(
            name: str, args: dict[str, Any], at: float, work: float, response: dict[str, Any]
        ) -> float:
            call_id = "adk-" + state.ids.uuid()
            call = {
                "parts": [{"functionCall": {"id": call_id, "name": name, "args": args}}],
                "role": "model",
            }
            steps.append((at, self._event(inv, call, at, longRunningToolIds=[])))
            # Scaled with the jobs, but never sparser than every 15 s of real time, so a
            # client's read timeout sized for the real service still sees keep-alives.
            hb = min(15.0, state.config.sse_heartbeat_interval * scale)
            beat = at
            end = at + work
            while beat < end:  # the first heartbeat right after the call: every long tool has one
                steps.append((beat, None))
                beat += hb
            resp = {
                "parts": [
                    {"functionResponse": {"id": call_id, "name": name, "response": response}}
                ],
                "role": "user",
            }
            steps.append((end, self._event(inv, resp, end)))
            return end

        if kind == "chat":
            say("I can generate videos and edit them. Tell me what to make.", t + 0.02 * scale)
            return steps, 0

        duration, fails = state.draw_job(now)
        silent = rng.random() < 0.3
        cost = GENERATE_COST if kind == "generate" else EDIT_COST
        clip = "clip_" + state.ids.hex(8)
        if kind == "generate":
            job_duration = duration + 0.4 * duration + 0.1 * scale
        else:
            job_duration = 0.5 * duration + 0.05 * scale
        job = Job(
            f"turn:{inv}",
            P,
            kind,
            user,
            created=now,
            duration=job_duration,
            fails=fails,
            wall_created=state.wall(now),
            data={"session": session.sid},
        )
        self.jobs[job.id] = job
        state.account(P, user).charge(cost, due=job.ends_at(), now=now, job=job)
        if kind == "generate":
            url = signed_url(
                state, base, "GET", f"/s3/nemovideo/media/{clip}.mp4", state.config.download_url_ttl
            )
            t = say(f"Sure, generating a 5-second clip: {text[:80]}", t)
            t += 0.05 * scale
            if fails:
                t = tool(
                    "generate_video_with_seedance",
                    {"prompt": text[:200], "duration": 5},
                    t,
                    duration,
                    {"status": "error", "error": "generation failed"},
                )
                say(
                    "I encountered a temporary issue generating the video. Please try again.",
                    t + 0.02 * scale,
                )
                return steps, cost
            t = tool(
                "generate_video_with_seedance",
                {"prompt": text[:200], "duration": 5},
                t,
                duration,
                {"status": "ok", "video_url": url, "duration": 5},
            )
            session.schedule(
                t, "generate", {"seconds": 5.0, "url": url, "clip": clip, "prompt": text[:200]}
            )
            t = tool(
                "edit_multitrack",
                {"action": "add_bgm_and_title"},
                t + 0.02 * scale,
                0.4 * duration,
                {"status": "ok"},
            )
            session.schedule(t, "decorate", {"clip": clip, "title": text[:40]})
            if not silent:
                say(
                    "Your clip is ready. Want background music or a different title?",
                    t + 0.02 * scale,
                )
            return steps, cost
        lowered = text.lower()
        if "music" in lowered or "bgm" in lowered:
            what = "music"
        elif "title" in lowered or "subtitle" in lowered:
            what = "title"
        elif "trim" in lowered or "cut" in lowered or "shorter" in lowered:
            what = "trim"
        else:
            what = "other"
        result = {"status": "error", "error": "edit failed"} if fails else {"status": "ok"}
        t = tool(
            "edit_multitrack",
            {"action": what, "instruction": text[:200]},
            t,
            0.5 * duration,
            result,
        )
        if fails:
            say("I encountered a temporary issue applying that edit.", t + 0.02 * scale)
            return steps, cost
        session.schedule(t, "edit", {"what": what, "clip": clip, "text": text})
        if not silent:
            say("Done. Anything else?", t + 0.02 * scale)
        return steps, cost

    async def run_sse(self, request: web.Request) -> web.StreamResponse:
        """``POST /run_sse``: an ADK-style event stream for one turn."""
        state = self.state
        user = self._user(request)
        raw = await request.read()
        try:
            body = parse_body(RunSseBody, raw)
        except BadBody as exc:
            raise _fail(400, str(exc)) from None
        if body.app_name != "nemo_agent":
            raise _fail(404, f"app not found: {body.app_name}")
        if not body.new_message.parts:
            raise _fail(422, "new_message.parts must not be empty")
        session = self._session(body.session_id, user)
        if body.user_id not in ("me", user):
            raise _fail(200, "session not found", code=1002)
        text = " ".join(p.text for p in body.new_message.parts).strip()
        if not text:
            raise _fail(422, "new_message has no text")
        now = state.now()
        kind = classify(text)
        need = GENERATE_COST if kind == "generate" else EDIT_COST if kind == "edit" else 0
        if need and state.account(P, user).balance(now)[0] < need:
            raise _fail(200, "insufficient credits", code=2001)
        steps, cost = self._plan(session, user, text, body.streaming, now, base_url(request))
        if cost:
            state.stats.on_create(P, raw, request.path)
        fault = STREAM_FAULT.get()
        if fault is not None and fault.kind in ("drop_after_commit", "stall_after_commit"):
            if fault.kind == "stall_after_commit":
                await state.sleep(float(fault.param("seconds")))
            _close(request)
            return web.Response()
        return await self._stream(request, steps, now, fault)

    async def _stream(
        self,
        request: web.Request,
        steps: list[tuple[float, Any]],
        start: float,
        fault: FaultRule | None,
    ) -> web.StreamResponse:
        state = self.state
        kind = fault.kind if fault is not None else ""
        ending = b"\n"
        frag: tuple[int, int] | None = None
        after = -1
        stall = 0.0
        if fault is not None:
            if kind == "sse_line_endings":
                ending = {"lf": b"\n", "cr": b"\r", "crlf": b"\r\n"}[str(fault.param("ending"))]
            elif kind == "sse_fragment":
                frag = (int(fault.param("min")), int(fault.param("max")))
            elif kind in ("sse_stall", "sse_close_mid_event"):
                after = int(fault.param("after_events"))
                stall = float(fault.params.get("seconds", 30.0))
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        sent = 0
        beats = 0
        try:
            await resp.prepare(request)
            for due, event in steps:
                wait = due - state.now()
                if wait > 0 and not await state.sleep(wait):
                    break  # shutting down
                if event is None:
                    line = _HEARTBEATS[beats % len(_HEARTBEATS)]
                    beats += 1
                    frame = line + ending + ending
                else:
                    frame = b"data: " + dumps(event) + ending + ending
                if sent == after and event is not None:
                    if kind == "sse_stall":
                        await state.sleep(stall)
                        _close(request)
                        return resp
                    await resp.write(frame[: max(1, len(frame) // 2)])
                    _close(request)
                    return resp
                if frag is None:
                    await resp.write(frame)
                else:
                    rng = state.sse_rng
                    i = 0
                    while i < len(frame):
                        n = rng.randint(frag[0], frag[1])
                        await resp.write(frame[i : i + n])
                        i += n
                        await asyncio.sleep(0)  # let each fragment go out on its own
                if event is not None:
                    sent += 1
            await resp.write_eof()
        except ConnectionError:
            pass  # the client went away; the turn's work still completes on the clock
        return resp

    # -- render ----------------------------------------------------------------------------
    def _render(self, request: web.Request, user: str) -> Job:
        job = self.jobs.get(request.match_info["id"])
        if job is None or job.kind != "render" or job.key != user:
            raise _fail(404, f"render not found: {request.match_info['id']}")
        return job

    async def render(self, request: web.Request) -> web.Response:
        """``POST /api/render/proxy/lambda``: the client chooses the render id."""
        state = self.state
        user = self._user(request)
        body, raw = await self._json(request, RenderBody)
        self._session(body.sessionId, user)
        if not _RENDER_ID.match(body.id):
            raise _fail(400, f"render id must match [A-Za-z0-9_.-]{{1,128}}, got {body.id!r}")
        if body.id in self.jobs:
            raise _fail(409, f"render id already exists: {body.id}")
        tracks = body.draft.get("t")
        if not isinstance(tracks, list) or not any(
            isinstance(tr, dict) and tr.get("sg") for tr in tracks
        ):
            raise _fail(400, "draft has no track with segments; nothing to render")
        now = state.now()
        duration, fails = state.draw_job(now)
        d = body.draft.get("d")
        job = Job(
            body.id,
            P,
            "render",
            user,
            created=now,
            duration=duration,
            fails=fails,
            wall_created=state.wall(now),
            data={
                "session": body.sessionId,
                "seconds": d / 1000 if isinstance(d, int | float) and d > 0 else 2.0,
            },
        )
        self.jobs[body.id] = job
        state.stats.on_create(P, raw, request.path)
        return json_response(
            {"success": True, "data": {"id": body.id, "status": "pending", "progress": 5}}
        )

    async def render_status(self, request: web.Request) -> web.Response:
        """``GET /api/render/proxy/lambda/{id}`` (the v1.9 shape: top-level status)."""
        user = self._user(request)
        job = self._render(request, user)
        now = self.state.now()
        status = status_of(job, now)
        out: dict[str, Any] = {
            "id": job.id,
            "status": status,
            "progress": render_progress(job, now),
        }
        if status == "completed":
            out["output"] = {
                "url": signed_url(
                    self.state,
                    base_url(request),
                    "GET",
                    f"/s3/nemovideo/renders/{job.id}.mp4",
                    self.state.config.download_url_ttl,
                ),
                "duration": job.data["seconds"],
                "size": len(sample_mp4()),
            }
        elif status == "failed":
            out["error"] = "cancelled" if job.cancelled_at is not None else "render failed"
        return json_response(out)

    async def render_cancel(self, request: web.Request) -> web.Response:
        """``POST /api/render/proxy/lambda/{id}/cancel``: while pending or processing."""
        user = self._user(request)
        job = self._render(request, user)
        now = self.state.now()
        status = status_of(job, now)
        if status not in ("pending", "processing"):
            raise _fail(
                400, f"render is {status}; only a pending or processing render can be cancelled"
            )
        job.cancelled_at = now
        return json_response({"success": True})

    async def render_download(self, request: web.Request) -> web.Response:
        """``GET /api/render/proxy/{id}/download``: the MP4 (auth needed)."""
        user = self._user(request)
        job = self._render(request, user)
        if status_of(job, self.state.now()) != "completed":
            raise _fail(404, f"render {job.id} is not completed")
        return serve_bytes(request, sample_mp4(), "video/mp4")

    async def s3_get(self, request: web.Request) -> web.Response:
        """Signed downloads: ``renders/{id}.mp4``, ``media/{clip}.mp4``, ``uploads/...``."""
        denied = check_signed(self.state, request)
        if denied is not None:
            raise Reject(denied)
        kind, name = request.match_info["kind"], request.match_info["name"]
        stem, _, ext = name.rpartition(".")
        if kind == "renders" and ext == "mp4":
            job = self.jobs.get(stem)
            if job is not None and status_of(job, self.state.now()) == "completed":
                return serve_bytes(request, sample_mp4(), "video/mp4")
        elif kind in ("media", "uploads"):
            if ext in IMAGE_EXT:
                return serve_bytes(request, png(64, 64), "image/png")
            return serve_bytes(request, sample_mp4(), "video/mp4")
        raise Reject(s3_error(404, "NoSuchKey", "The specified key does not exist"))


def _close(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.close()
