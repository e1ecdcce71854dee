"""
The AIVideoMaker client: every endpoint of PROVIDER_APIS.md §4 over the session layer.

Creates are :class:`JobSpec` builders checked against the §4.3 contract before
anything is sent; :meth:`AIVideoMaker.submit_once` (or the orchestrator) sends
one exactly once.
"""

from __future__ import annotations

import base64
import logging
import mimetypes
import os
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import aiohttp
import anyio

from ..._config import (
    DEFAULT_CREATE_TIMEOUTS,
    DEFAULT_LIMITS,
    DEFAULT_RETRY_POLICY,
    DEFAULT_TIMEOUTS,
    Limits,
    RetryPolicy,
    Timeouts,
)
from ..._exceptions import APIStatusError, Conflict, DownloadError, InvalidInput
from ..._models import JobResult, JobState, JobStatus
from ..._secret import Secret
from ..._types import Clock, RandomSource, Sleep, anyio_sleep, monotonic_clock, system_random
from .._base import JobSpec
from .._common import (
    VIDEO_TYPES,
    KeyHeaderClient,
    by_deadline,
    download_signed,
    sniff_media_type,
)
from . import _wire
from ._wire import Task

__all__ = ["AIVideoMaker", "IMAGE_MEDIA_TYPES", "DEFAULT_MAX_IMAGE_BYTES"]

_log = logging.getLogger("aivideo_async.providers.aivideomaker")

IMAGE_MEDIA_TYPES: Final = frozenset({"image/png", "image/jpeg", "image/webp"})
"""Image types :meth:`AIVideoMaker.image_data_uri` turns into a data URI."""

DEFAULT_MAX_IMAGE_BYTES: Final = 10 * 1024 * 1024
"""Largest image inlined as a data URI (10 MiB; the body carries it base64-encoded)."""

# A listed task counts as a match for a lost create only if it was created no
# earlier than this many seconds before the create was sent (server clock skew).
_FIND_SKEW: Final = 60.0


class AIVideoMaker(KeyHeaderClient):
    """
    Async client of the AIVideoMaker API v1 (``key`` header auth).

    Use it as an async context manager. It owns an aiohttp session, or borrows
    ``session`` and never closes it. The key comes from ``api_key`` or the
    ``AIVIDEO_API_KEY`` environment variable and is held as a :class:`Secret`.
    Task queries are limited to 60 per minute: a 429 is retried after its
    ``Retry-After`` (reads only), then raised as :class:`RateLimited`.

    Args:
        api_key: the key (``str`` or :class:`Secret`); ``None`` reads ``AIVIDEO_API_KEY``.
        base_url: ``https://aivideomaker.ai`` by default; the emulator's URL in tests.
        session: an aiohttp session to borrow.
        timeouts: timeouts of reads; ``create_timeouts`` those of creates.
        limits, retry: pool/size limits and the retry policy of idempotent calls.
        clock, sleep, rng: the time seam (tests pass fakes).
        allow_insecure_http: allow ``http://`` to a non-loopback host (tests only).

    Raises:
        MissingCredential: no key given and ``AIVIDEO_API_KEY`` unset.

    Example::

        async with AIVideoMaker() as avm:
            spec = avm.text_to_video(prompt="a sunset over a city", duration=8)
            task_id = await avm.submit_once(spec)
            status = await avm.poll("video", task_id)
    """

    provider: Final = _wire.PROVIDER

    def __init__(
        self,
        api_key: str | Secret | None = None,
        *,
        base_url: str = _wire.DEFAULT_BASE_URL,
        session: aiohttp.ClientSession | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        create_timeouts: Timeouts = DEFAULT_CREATE_TIMEOUTS,
        limits: Limits = DEFAULT_LIMITS,
        retry: RetryPolicy = DEFAULT_RETRY_POLICY,
        max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
        clock: Clock = monotonic_clock,
        sleep: Sleep = anyio_sleep,
        rng: RandomSource = system_random,
        allow_insecure_http: bool = False,
    ) -> None:
        super().__init__(
            api_key,
            header="key",
            variable=_wire.ENV_API_KEY,
            map_error=_wire.map_error,
            base_url=base_url,
            session=session,
            timeouts=timeouts,
            create_timeouts=create_timeouts,
            limits=limits,
            retry=retry,
            clock=clock,
            sleep=sleep,
            rng=rng,
            allow_insecure_http=allow_insecure_http,
        )
        self._max_image_bytes = max_image_bytes

    # -- create builders (no IO) ------------------------------------------------------

    def text_to_video(
        self,
        *,
        prompt: str,
        aspect_ratio: str = "16:9",
        duration: int | str = 5,
        model: str = "t2v",
        webhook_url: str | None = None,
    ) -> JobSpec:
        """
        Spec of a text-to-video task: ``t2v`` (5 or 8 s) or ``t2v_v3`` (5-20 s).

        Raises:
            InvalidInput: a model, duration, aspect ratio or prompt outside §4.3.

        Example:
            >>> AIVideoMaker("k").text_to_video(prompt="a sunset", duration=10,
            ...                                 model="t2v_v3").payload
            {'prompt': 'a sunset', 'aspectRatio': '16:9', 'duration': '10'}
        """
        return _wire.build_text_to_video(
            prompt=prompt,
            aspect_ratio=aspect_ratio,
            duration=duration,
            model=model,
            webhook_url=webhook_url,
        ).built_by(self)

    def image_to_video(
        self,
        *,
        image: str,
        prompt: str | None = None,
        duration: int | str = 5,
        model: str = "i2v",
        webhook_url: str | None = None,
    ) -> JobSpec:
        """
        Spec of an image-to-video task: ``i2v`` (5 or 8 s) or ``i2v_v3`` (5-20 s).

        ``image`` is an ``https://`` URL or a ``data:image/...;base64,`` URI
        (see :meth:`image_data_uri`).

        Example:
            >>> AIVideoMaker("k").image_to_video(image="https://example.com/f.jpg").endpoint
            'POST /api/v1/generate/i2v'
        """
        return _wire.build_image_to_video(
            image=image, prompt=prompt, duration=duration, model=model, webhook_url=webhook_url
        ).built_by(self)

    def long_video(
        self, *, image: str, prompts: Sequence[str], webhook_url: str | None = None
    ) -> JobSpec:
        """
        Spec of a long video (``lv``): a first frame and 1-6 prompts of 5 s each.

        Example:
            >>> spec = AIVideoMaker("k").long_video(image="https://example.com/f.jpg",
            ...                                     prompts=["wide shot", "push in"])
            >>> spec.payload["prompt"]
            ['wide shot', 'push in']
        """
        return _wire.build_long_video(
            image=image, prompts=prompts, webhook_url=webhook_url
        ).built_by(self)

    def generate(
        self, model: str, payload: Mapping[str, Any], *, webhook_url: str | None = None
    ) -> JobSpec:
        """
        Spec of ``POST /api/v1/generate/{model}`` from a raw wire payload, checked
        against §4.3 (any of ``t2v``, ``i2v``, ``lv``, ``t2v_v3``, ``i2v_v3``).

        Example:
            >>> AIVideoMaker("k").generate("t2v", {"prompt": "x", "aspectRatio": "1:1",
            ...                                    "duration": 5}).payload["duration"]
            '5'
        """
        return _wire.build_generate(model, payload, webhook_url=webhook_url).built_by(self)

    async def image_data_uri(
        self, source: str | os.PathLike[str] | bytes, *, content_type: str | None = None
    ) -> str:
        """
        Read a local PNG/JPEG/WebP image into a ``data:image/...;base64,`` URI.

        Type (name, declared and actual bytes) and size are checked before the
        URI is built, so nothing unsupported is ever sent.

        Raises:
            InvalidInput: unreadable, empty, too large or not a supported image.

        Example::

            spec = avm.image_to_video(image=await avm.image_data_uri("frame.png"))
        """
        if isinstance(source, bytes | bytearray):
            data = bytes(source)
            name = ""
        else:
            path = anyio.Path(os.fspath(source))
            try:
                size = (await path.stat()).st_size
            except OSError as exc:
                raise InvalidInput(
                    field="image", value=str(source), expected="a readable file"
                ) from exc
            self._check_image_size(size)
            data = await path.read_bytes()
            name = path.name
        self._check_image_size(len(data))
        sniffed = sniff_media_type(data[:64])
        if sniffed not in IMAGE_MEDIA_TYPES:
            raise InvalidInput(
                field="image",
                value=name or "<bytes>",
                expected="PNG, JPEG or WebP image bytes"
                + (f" (the file looks like {sniffed})" if sniffed else ""),
                provider=_wire.PROVIDER,
            )
        declared = (content_type or (mimetypes.guess_type(name)[0] if name else None) or "").lower()
        declared = "image/jpeg" if declared == "image/jpg" else declared
        if declared and declared != sniffed:
            raise InvalidInput(
                field="content_type",
                value=declared,
                expected=f"the file's actual type ({sniffed})",
                provider=_wire.PROVIDER,
            )
        media = sniffed
        return f"data:{media};base64,{base64.b64encode(data).decode('ascii')}"

    def _check_image_size(self, size: int) -> None:
        if size <= 0 or size > self._max_image_bytes:
            raise InvalidInput(
                field="image",
                value=f"{size} bytes",
                expected=f"1 to {self._max_image_bytes} bytes",
                provider=_wire.PROVIDER,
            )

    # -- queries -------------------------------------------------------------------------

    async def list_tasks(self) -> list[Task]:
        """
        ``GET /api/v1/tasks``: this key's tasks, newest first.

        Example::

            for task in await avm.list_tasks():
                print(task.id, task.model, task.status)
        """
        resp = await self._session.request("GET", "/api/v1/tasks")
        return _wire.parse_tasks(resp.json(), endpoint=resp.endpoint)

    async def get_task(self, task_id: str) -> Task:
        """
        ``GET /api/v1/tasks/{taskId}``: the task with its input and output.

        Example::

            task = await avm.get_task(task_id)
            print(task.output.best_url if task.output else task.status)
        """
        resp = await self._session.request("GET", "/api/v1/tasks/{id}", path_params={"id": task_id})
        return _wire.parse_task(resp.json(), endpoint=resp.endpoint)

    async def task_status(self, task_id: str) -> JobStatus:
        """
        ``GET /api/v1/tasks/{taskId}/status`` as a :class:`JobStatus` (no output URL).

        Example::

            status = await avm.task_status(task_id)      # JobState.QUEUED for SUBMITTED
        """
        resp = await self._session.request(
            "GET", "/api/v1/tasks/{id}/status", path_params={"id": task_id}
        )
        return _wire.parse_status(resp.json(), job_id=task_id, endpoint=resp.endpoint)

    # -- JobBackend -------------------------------------------------------------------

    async def submit_once(self, spec: JobSpec) -> str:
        """
        Send the create of ``spec`` exactly once and return the task id.

        Never retried: a timeout, reset or 5xx after the request may have left
        raises :class:`RequestMaybeSent` / :class:`ServerError` (the
        orchestrator records the outcome as unknown); a refused connection
        raises :class:`RequestNotSent`.

        Example::

            task_id = await avm.submit_once(avm.text_to_video(prompt="waves", duration=5))
        """
        return await self.create(spec)

    async def create(self, spec: JobSpec) -> str:
        """
        :meth:`JobBackend.create`: the same as :meth:`submit_once`.

        Example::

            task_id = await avm.create(spec)
        """
        self._check_spec(spec.provider)
        headers = spec.meta.get("headers")
        resp = await self._session.request(
            spec.method,
            spec.path,
            json=dict(spec.payload),
            headers=dict(headers) if isinstance(headers, Mapping) else None,
            idempotent=False,
            timeouts=self._create_timeouts,
        )
        return _wire.parse_created(resp.json(), endpoint=resp.endpoint)

    async def poll(self, kind: str, job_id: str) -> JobStatus:
        """
        :meth:`JobBackend.poll`: the task status; once ``COMPLETED``, the task
        detail is read too so the result carries the video URL.

        Example::

            status = await avm.poll("video", task_id)
            if status.result:
                print(status.result.url)
        """
        status = await self.task_status(job_id)
        if status.state is JobState.SUCCEEDED or status.state is JobState.FAILED:
            # The status call has no output or message; the detail has both.
            return _wire.task_status(await self.get_task(job_id))
        return status

    async def poll_many(self, kind: str, job_ids: Sequence[str]) -> Mapping[str, JobStatus] | None:
        """
        :meth:`JobBackend.poll_many`: one ``GET /api/v1/tasks`` answers for every
        listed task (with output URLs); tasks not listed are absent.

        Example::

            statuses = await avm.poll_many("video", task_ids)
        """
        wanted = set(job_ids)
        return {
            task.id: _wire.task_status(task)
            for task in await self.list_tasks()
            if task.id in wanted
        }

    @staticmethod
    def webhook_job_id(body: object) -> str | None:
        """
        The task id a ``webhookUrl`` callback names (its decoded JSON body), or
        ``None``. Only the id is read: pass it to :meth:`Orchestrator.poke`,
        and the poll that follows says what happened (a callback can be
        forged; a poll cannot).

        Example:
            >>> AIVideoMaker.webhook_job_id({"id": "cktask0001", "status": "COMPLETED"})
            'cktask0001'
        """
        return _wire.webhook_job_id(body)

    def supports_cancel(self, kind: str) -> bool:
        """
        Tasks can be cancelled (while ``SUBMITTED`` only).

        Example:
            >>> AIVideoMaker("k").supports_cancel("video")
            True
        """
        return True

    async def cancel(self, kind: str, job_id: str) -> None:
        """
        ``PUT /api/v1/tasks/{taskId}/cancel``; credits are refunded.

        Raises:
            Conflict: the task is no longer ``SUBMITTED``; the message says its status.
            NotFound: unknown task (or another key's).

        Example::

            try:
                await avm.cancel("video", task_id)
            except Conflict as err:
                print(err)            # ... only while SUBMITTED; it is PROGRESS
        """
        try:
            resp = await self._session.request(
                "PUT", "/api/v1/tasks/{id}/cancel", path_params={"id": job_id}
            )
        except Conflict as err:
            current = None
            try:
                current = (await self.task_status(job_id)).raw_status
            except APIStatusError:
                pass
            if current is None:
                raise
            raise Conflict(
                f"task {job_id} cannot be cancelled: it is {current}; "
                "only SUBMITTED tasks can be cancelled",
                provider=_wire.PROVIDER,
                status_code=err.status_code,
                endpoint=err.endpoint,
                body=err.body,
            ) from err
        _wire.parse_cancel(resp.json(), endpoint=resp.endpoint)

    async def find_submission(self, spec: JobSpec, *, since: float) -> str | None:
        """
        :meth:`JobBackend.find_submission`: find the task a lost create made.

        Tasks echo their input: a match is a task of the same model, created
        after ``since`` (less clock skew), whose input equals the sent payload
        (an inlined image only has to be present: the server stores a URL).
        Returns the id of exactly one match, else ``None`` (none, ambiguous, or
        a spec whose payload was not kept).

        Example::

            task_id = await avm.find_submission(spec, since=sent_at)
        """
        [found] = await self.find_submissions([(spec, since)])
        return found

    async def find_submissions(self, requests: Sequence[tuple[JobSpec, float]]) -> list[str | None]:
        """
        :meth:`find_submission` for many lost creates, reading the task list
        once (``GET /api/v1/tasks`` counts against 60 queries a minute).

        Example::

            ids = await avm.find_submissions([(spec_a, sent_a), (spec_b, sent_b)])
        """
        tasks: list[Task] | None = None
        found: list[str | None] = []
        for spec, since in requests:
            if not spec.payload:
                # A journal that keeps only a hash of the payload cannot be matched exactly.
                found.append(None)
                continue
            if tasks is None:
                tasks = await self.list_tasks()
            found.append(_match_task(spec, since, tasks))
        return found

    # -- downloads ---------------------------------------------------------------------

    async def download(
        self,
        target: JobResult | str,
        dest: str | os.PathLike[str],
        *,
        progress: Callable[[int, int | None], None] | None = None,
        deadline: float | None = None,
    ) -> pathlib.Path:
        """
        Download a finished task's video atomically to ``dest``.

        The URL is ``output.videoUrl`` or ``output.url``; a ``str`` target (a
        task id) is looked up first. A 403 from an expired signed URL reads the
        task again for a fresh URL, once (RELIABILITY #33). ``deadline``
        (seconds) bounds the whole download, lookups and retries included.

        Raises:
            DownloadError: the task has no output URL (not completed), or the
                fresh URL was refused (403) too.
            TotalTimeout: the deadline passed (the temporary file is removed).

        Example::

            result = await handle
            await avm.download(result, "out/clip.mp4", deadline=600)
        """
        return await by_deadline(
            deadline,
            lambda: self._download(target, dest, progress),
            provider=_wire.PROVIDER,
            what=f"the download to {os.fspath(dest)!r}",
        )

    async def _download(
        self,
        target: JobResult | str,
        dest: str | os.PathLike[str],
        progress: Callable[[int, int | None], None] | None,
    ) -> pathlib.Path:
        job_id = target if isinstance(target, str) else target.job_id

        async def fresh_url() -> str:
            task = await self.get_task(job_id)
            url = task.output.best_url if task.output is not None else None
            if not url:
                raise DownloadError(
                    f"task {job_id} has no output URL (status {task.status})",
                    provider=_wire.PROVIDER,
                )
            return url

        return await download_signed(
            self._session,
            None if isinstance(target, str) else target.url,
            dest,
            fresh_url=fresh_url,
            what=f"task {job_id}",
            content_types=VIDEO_TYPES,
            progress=progress,
            log=_log,
        )


def _match_task(spec: JobSpec, since: float, tasks: Sequence[Task]) -> str | None:
    """The one task of ``tasks`` that ``spec`` made after ``since``, if exactly one."""
    model = spec.meta.get("model") or spec.path.rsplit("/", 1)[-1]
    matches: list[Task] = []
    for task in tasks:
        if task.model is not None and task.model != model:
            continue
        created = _wire.parse_timestamp(task.created_at)
        if created is None or created < since - _FIND_SKEW:
            continue
        if _wire.input_matches(spec.payload, task.input):
            matches.append(task)
    if len(matches) == 1:
        return matches[0].id
    if len(matches) > 1:
        _log.warning(
            "find_submission: %d %s tasks match the payload since %.0f; not guessing",
            len(matches),
            model,
            since,
        )
    return None
