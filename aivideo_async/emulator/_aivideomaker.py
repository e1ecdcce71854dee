"""
AIVideoMaker routes (PROVIDER_APIS.md §4): generate per model with the §4.3
payload contract enforced, task list/detail/status, cancel while SUBMITTED,
and the 60-per-minute query limit with ``Retry-After``.

HTTP codes (ASSUMED, §5 #19): 400 validation, 401 bad key, 402 insufficient
credits, 404 unknown task or another key's task, 405 cancel by POST/DELETE,
429 past the query limit. Credits follow AVM-REF: ``t2v``/``i2v`` duration x 1,
``lv`` segments x 5 x 15, ``t2v_v3``/``i2v_v3`` duration x 10; a failed task is
refunded when it fails, a cancelled one at cancel time. A create with a
``webhookUrl`` header gets one POST of its task-detail JSON when the task ends
(COMPLETED, FAILED or CANCEL), from a single background task of the app.

Example:
    >>> cost("lv", {"prompt": ["a", "b"]}), cost("t2v_v3", {"duration": "10"})
    (150, 100)
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import math
import re
from typing import Any, Literal

import aiohttp
import attrs
from aiohttp import web

from ._media import base_url, check_signed, png, sample_mp4, serve_bytes, signed_url
from ._state import EmulatorState, Job
from ._status import status_of
from ._wire import BadBody, Reject, error_response, json_response, parse_body, s3_error

__all__ = ["AIVideoMaker", "MODELS", "cost"]

P = "aivideomaker"
Ratio = Literal["16:9", "9:16", "1:1"]
Dur = Literal["5", "8"]
DurV3 = Literal["5", "10", "15", "20"]


@attrs.frozen
class T2V:
    """``t2v`` body."""

    prompt: str
    aspectRatio: Ratio
    duration: Dur


@attrs.frozen
class I2V:
    """``i2v`` body (an undocumented ``aspectRatio`` is accepted and ignored, §5 #22)."""

    image: str
    duration: Dur
    prompt: str | None = None
    aspectRatio: str | None = None


@attrs.frozen
class LV:
    """``lv`` body: 1-6 segment prompts, 5 s each."""

    image: str
    prompt: list[str]


@attrs.frozen
class T2V3:
    """``t2v_v3`` body."""

    prompt: str
    aspectRatio: Ratio
    duration: DurV3


@attrs.frozen
class I2V3:
    """``i2v_v3`` body."""

    image: str
    duration: DurV3
    prompt: str | None = None


MODELS: dict[str, type[Any]] = {"t2v": T2V, "i2v": I2V, "lv": LV, "t2v_v3": T2V3, "i2v_v3": I2V3}
"""The husu whitelist: model id -> payload class."""

_DATA_URI = re.compile(r"data:image/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=\s]+$")
_WINDOW = 60.0


def cost(model: str, body: dict[str, Any]) -> int:
    """Credits a create costs (AVM-REF figures)."""
    if model == "lv":
        return len(body["prompt"]) * 5 * 15
    per = 10 if model.endswith("_v3") else 1
    return int(body["duration"]) * per


def _fail(status: int, message: str, headers: dict[str, str] | None = None) -> Reject:
    return Reject(error_response(P, status, message, headers=headers))


class AIVideoMaker:
    """
    The AIVideoMaker handlers over a shared :class:`EmulatorState`.

    Example:
        >>> from aivideo_async.emulator._state import EmulatorConfig, EmulatorState
        >>> [r[2] for r in AIVideoMaker(EmulatorState(EmulatorConfig())).routes()][:2]
        ['aivideomaker.create', 'aivideomaker.list']
    """

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self._seq = itertools.count()

    @property
    def jobs(self) -> dict[str, Job]:
        """AIVideoMaker's tasks (looked up each time: ``reset`` replaces the dict)."""
        return self.state.jobs[P]

    def routes(self) -> list[tuple[str, str, str, Any]]:
        """``(method, path, endpoint class, handler)`` for every AIVideoMaker route."""
        return [
            ("POST", "/api/v1/generate/{model}", "aivideomaker.create", self.generate),
            ("GET", "/api/v1/tasks", "aivideomaker.list", self.list_tasks),
            ("GET", "/api/v1/tasks/{id}", "aivideomaker.detail", self.detail),
            ("GET", "/api/v1/tasks/{id}/status", "aivideomaker.status", self.status),
            ("PUT", "/api/v1/tasks/{id}/cancel", "aivideomaker.cancel", self.cancel),
            ("POST", "/api/v1/tasks/{id}/cancel", "aivideomaker.cancel", self.cancel_wrong_method),
            (
                "DELETE",
                "/api/v1/tasks/{id}/cancel",
                "aivideomaker.cancel",
                self.cancel_wrong_method,
            ),
            ("GET", "/s3/aivideomaker/{kind}/{name}", "aivideomaker.download", self.s3_get),
        ]

    # -- helpers ---------------------------------------------------------------------------
    def _key(self, request: web.Request) -> str:
        key = request.headers.get("key")
        if not self.state.key_accepted(P, key):
            raise _fail(401, "Invalid or missing API key")
        assert key is not None
        return key

    def _query(self, request: web.Request) -> str:
        """Auth plus the per-key query rate limit (60 per minute by default)."""
        key = self._key(request)
        limit = self.state.config.aivideomaker_query_limit
        if limit > 0:
            now = self.state.now()
            window = self.state.query_windows.get(key)
            if window is None:
                window = self.state.query_windows[key] = collections.deque()
            while window and window[0] <= now - _WINDOW:
                window.popleft()
            if len(window) >= limit:
                retry = max(1, math.ceil(window[0] + _WINDOW - now))
                raise _fail(429, "Too many requests", {"Retry-After": str(retry)})
            window.append(now)
        return key

    def _task(self, request: web.Request, key: str) -> Job:
        job = self.jobs.get(request.match_info["id"])
        if job is None or job.key != key:
            raise _fail(404, f"Task not found: {request.match_info['id']}")
        return job

    def _task_json(self, base: str, job: Job, now: float) -> dict[str, Any]:
        status = status_of(job, now)
        output = None
        completed = None
        if status == "COMPLETED":
            url = signed_url(
                self.state,
                base,
                "GET",
                f"/s3/aivideomaker/tasks/{job.id}.mp4",
                self.state.config.download_url_ttl,
            )
            output = {"videoUrl": url, "url": url}  # both names: §4.2 CONFLICT
            completed = self.state.iso(job.ends_at())
        elif status == "FAILED":
            completed = self.state.iso(job.ends_at())
        elif status == "CANCEL" and job.cancelled_at is not None:
            completed = self.state.iso(job.cancelled_at)
        return {
            "id": job.id,
            "createdAt": self.state.iso(job.created),
            "model": job.kind,
            "input": job.data["input"],
            "output": output,
            "status": status,
            "completedAt": completed,
        }

    # -- handlers --------------------------------------------------------------------------
    async def generate(self, request: web.Request) -> web.Response:
        """``POST /api/v1/generate/{model}``."""
        key = self._key(request)
        model = request.match_info["model"]
        cls = MODELS.get(model)
        if cls is None:
            raise _fail(400, f"Invalid model {model!r}; expected one of: {', '.join(MODELS)}")
        raw = await request.read()
        try:
            body = parse_body(cls, raw)
        except BadBody as exc:
            raise _fail(400, f"Invalid payload for {model}: {exc}") from None
        fields = attrs.asdict(body)
        if model == "i2v":
            fields.pop("aspectRatio", None)  # accepted, ignored
        if "image" in fields:
            image = fields["image"]
            if not (image.startswith(("https://", "http://")) or _DATA_URI.match(image)):
                raise _fail(
                    400,
                    f"Invalid payload for {model}: image must be a public URL or a "
                    "data:image/...;base64,... URI",
                )
        prompt: Any = fields.get("prompt")
        if model == "lv":
            if not 1 <= len(prompt) <= 6 or not all(p.strip() for p in prompt):
                raise _fail(
                    400,
                    "Invalid payload for lv: prompt must hold 1-6 non-empty strings, "
                    f"got {len(prompt)}",
                )
        elif model.startswith("t2v") and not prompt.strip():
            raise _fail(400, f"Invalid payload for {model}: prompt must not be empty")
        state = self.state
        now = state.now()
        price = cost(model, fields)
        account = state.account(P, key)
        if account.balance(now)[0] < price:
            raise _fail(402, "Insufficient credits")
        duration, fails = state.draw_job(now)
        task_id = state.ids.cuid("ck")
        base = base_url(request)
        if "image" in fields and fields["image"].startswith("data:"):
            # The backend stores an uploaded image as an R2 URL, not the base64 (AVM-REF).
            fields["image"] = signed_url(
                state, base, "GET", f"/s3/aivideomaker/inputs/{task_id}.png", 7 * 86400.0
            )
        job = Job(
            task_id,
            P,
            model,
            key,
            created=now,
            duration=duration,
            fails=fails,
            wall_created=state.wall(now),
            data={"input": fields, "cost": price, "webhookUrl": request.headers.get("webhookUrl")},
        )
        self.jobs[task_id] = job
        account.charge(price, due=job.ends_at(), now=now, job=job)
        if job.data["webhookUrl"]:
            job.data["base"] = base
            self._notify_at(job.ends_at(), task_id)
        state.stats.on_create(P, raw, request.path)
        task_url = f"{base}/api/v1/tasks/{task_id}"
        return json_response(
            {
                "status": "SUBMITTED",
                "taskId": task_id,
                "responseUrl": task_url,
                "statusUrl": f"{task_url}/status",
                "cancelUrl": f"{task_url}/cancel",
            }
        )

    async def list_tasks(self, request: web.Request) -> web.Response:
        """``GET /api/v1/tasks``: this key's tasks, newest first."""
        key = self._query(request)
        now = self.state.now()
        tasks = [
            self._task_json(base_url(request), j, now)
            for j in reversed(self.jobs.values())
            if j.key == key
        ]
        return json_response({"tasks": tasks})

    async def detail(self, request: web.Request) -> web.Response:
        """``GET /api/v1/tasks/{id}``."""
        key = self._query(request)
        return json_response(
            self._task_json(base_url(request), self._task(request, key), self.state.now())
        )

    async def status(self, request: web.Request) -> web.Response:
        """``GET /api/v1/tasks/{id}/status``: ``{"status": ...}`` only."""
        key = self._query(request)
        job = self._task(request, key)
        return json_response({"status": status_of(job, self.state.now())})

    async def cancel(self, request: web.Request) -> web.Response:
        """``PUT /api/v1/tasks/{id}/cancel``: only while SUBMITTED."""
        key = self._key(request)
        job = self._task(request, key)
        now = self.state.now()
        status = status_of(job, now)
        if status != "SUBMITTED":
            raise _fail(400, f"Task can only be cancelled while SUBMITTED; it is {status}")
        job.cancelled_at = now
        self.state.account(P, key).refund(job.data["cost"], job)
        if job.data["webhookUrl"]:
            self._notify_at(now, job.id)
        return json_response({"status": "CANCEL"})

    # -- webhooks --------------------------------------------------------------------------
    def _notify_at(self, due: float, task_id: str) -> None:
        heapq.heappush(self.state.webhooks, (due, next(self._seq), task_id))
        self.state.wake.set()

    async def webhook_pump(self, http: aiohttp.ClientSession) -> None:
        """Deliver due webhooks: one task for the whole emulator, never one per job.

        A task created with a ``webhookUrl`` header gets one POST of its task-detail
        JSON (ASSUMED payload, §5 #16) when it reaches a terminal status; delivery is
        attempted once, and counted in the stats as ``webhooks`` sent/failed.
        """
        state = self.state
        pending: set[asyncio.Task[None]] = set()
        try:
            while True:
                now = state.now()
                heap = state.webhooks
                while heap and heap[0][0] <= now:
                    _due, _seq, task_id = heapq.heappop(heap)
                    job = self.jobs.get(task_id)
                    if job is None or status_of(job, now) not in ("COMPLETED", "FAILED", "CANCEL"):
                        continue  # reset since, or cancelled earlier: its own entry fires
                    if job.data.get("notified"):
                        continue
                    job.data["notified"] = True
                    body = self._task_json(job.data["base"], job, now)
                    t = asyncio.ensure_future(self._deliver(http, job.data["webhookUrl"], body))
                    pending.add(t)
                    t.add_done_callback(pending.discard)
                if state.closing.is_set():
                    break  # after one last pass, so a webhook due at shutdown still goes
                timeout = heap[0][0] - now if heap else None
                state.wake.clear()
                waiter = asyncio.ensure_future(state.wake.wait())
                closer = asyncio.ensure_future(state.closing.wait())
                try:
                    await asyncio.wait(
                        {waiter, closer}, timeout=timeout, return_when="FIRST_COMPLETED"
                    )
                finally:
                    waiter.cancel()
                    closer.cancel()
        finally:
            if pending:
                # Let deliveries in flight finish briefly, then give up on the rest.
                _done, late = await asyncio.wait(set(pending), timeout=1.0)
                for t in late:
                    t.cancel()
                await asyncio.gather(*late, return_exceptions=True)

    async def _deliver(self, http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> None:
        stats = self.state.stats
        try:
            async with http.post(url, json=body, timeout=aiohttp.ClientTimeout(total=10)) as r:
                await r.read()
                ok = r.status < 400
        except (aiohttp.ClientError, TimeoutError, ValueError):
            ok = False
        stats.webhooks["sent" if ok else "failed"] += 1

    async def cancel_wrong_method(self, request: web.Request) -> web.Response:
        """POST and DELETE on cancel: 405 (only PUT cancels)."""
        raise _fail(405, "Method not allowed; use PUT", {"Allow": "PUT"})

    async def s3_get(self, request: web.Request) -> web.Response:
        """Signed downloads: ``tasks/{id}.mp4`` results and ``inputs/{id}.png`` images."""
        denied = check_signed(self.state, request)
        if denied is not None:
            raise Reject(denied)
        kind, name = request.match_info["kind"], request.match_info["name"]
        stem, _, ext = name.rpartition(".")
        job = self.jobs.get(stem)
        if job is not None:
            if kind == "tasks" and ext == "mp4" and job.phase(self.state.now()) == "succeeded":
                return serve_bytes(request, sample_mp4(), "video/mp4")
            if kind == "inputs" and ext == "png":
                return serve_bytes(request, png(64, 64, seed=len(stem)), "image/png")
        raise Reject(s3_error(404, "NoSuchKey", "The specified key does not exist"))
