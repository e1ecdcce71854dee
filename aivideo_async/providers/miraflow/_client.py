"""
The Miraflow client: every endpoint of PROVIDER_APIS.md §1 over the session layer.

List and get calls are methods; every create is a :class:`JobSpec` builder (no IO)
that :meth:`Miraflow.submit_once` (or the orchestrator) sends exactly once.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import pathlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
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
from ..._exceptions import APIStatusError, BadRequest, DownloadError, InvalidInput, NotFound
from ..._models import JobResult, JobState, JobStatus
from ..._secret import Secret
from ..._types import Clock, RandomSource, Sleep, anyio_sleep, monotonic_clock, system_random
from .._base import JobSpec
from .._common import (
    VIDEO_TYPES,
    KeyHeaderClient,
    by_deadline,
    download_signed,
    refused_twice,
    sniff_media_type,
)
from . import _wire
from ._wire import Avatar, Video, VideoMetadata, Voice

__all__ = ["Miraflow", "UPLOAD_MEDIA_TYPES", "DEFAULT_MAX_UPLOAD_BYTES"]

_log = logging.getLogger("aivideo_async.providers.miraflow")

UPLOAD_MEDIA_TYPES: Final = frozenset(
    {
        "audio/mpeg",
        "audio/wav",
        "audio/mp4",
        "audio/ogg",
        "audio/flac",
        "image/png",
        "image/jpeg",
        "image/webp",
    }
)
"""Media types :meth:`Miraflow.upload_media` sends: audio tracks and reference images."""

DEFAULT_MAX_UPLOAD_BYTES: Final = 200 * 1024 * 1024
"""Largest upload read into memory and sent (200 MiB); override per client."""

# Aliases seen in the wild for the accepted types (mimetypes and browsers disagree).
_TYPE_ALIASES: Final[Mapping[str, str]] = {
    "audio/mp3": "audio/mpeg",
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/x-m4a": "audio/mp4",
    "audio/m4a": "audio/mp4",
    "audio/x-flac": "audio/flac",
    "image/jpg": "image/jpeg",
}

_IMAGE_TYPES: Final = ("image/", "application/octet-stream", "binary/octet-stream")

# A listed video counts as a match for a lost create only if it was created no
# earlier than this many seconds before the create was sent (server clock skew).
_FIND_SKEW: Final = 60.0


def _normalise_type(content_type: str) -> str:
    base = content_type.split(";", 1)[0].strip().lower()
    return _TYPE_ALIASES.get(base, base)


class Miraflow(KeyHeaderClient):
    """
    Async client of the Miraflow API (``x-api-key`` auth).

    Use it as an async context manager. It owns an aiohttp session, or borrows
    ``session`` and never closes it. The key comes from ``api_key`` or the
    ``MIRAFLOW_API_KEY`` environment variable and is held as a :class:`Secret`.

    Args:
        api_key: the key (``str`` or :class:`Secret`); ``None`` reads ``MIRAFLOW_API_KEY``.
        base_url: ``https://miraflow.ai`` by default; the emulator's URL in tests.
        session: an aiohttp session to borrow.
        timeouts: timeouts of reads; ``create_timeouts`` those of creates.
        limits, retry: pool/size limits and the retry policy of idempotent calls.
        max_upload_bytes: the largest file :meth:`upload_media` accepts.
        clock, sleep, rng: the time seam (tests pass fakes).
        allow_insecure_http: allow ``http://`` to a non-loopback host (tests only).

    Raises:
        MissingCredential: no key given and ``MIRAFLOW_API_KEY`` unset.

    Example::

        async with Miraflow() as mira:
            avatars = await mira.list_avatars()
            spec = mira.video(avatar_id=avatars[0].id, name="teaser", text="Hello!")
            job_id = await mira.submit_once(spec)
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
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        clock: Clock = monotonic_clock,
        sleep: Sleep = anyio_sleep,
        rng: RandomSource = system_random,
        allow_insecure_http: bool = False,
    ) -> None:
        super().__init__(
            api_key,
            header="x-api-key",
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
        self._max_upload_bytes = max_upload_bytes
        # job id -> match tag of creates sent by this client, so that the
        # videos list (which carries names, not job ids) can answer for them.
        self._tags: dict[str, str] = {}

    # -- lists and gets -----------------------------------------------------------

    async def list_avatars(self) -> list[Avatar]:
        """
        ``GET /api/avatars``: stock avatars and the account's own.

        Example::

            for avatar in await mira.list_avatars():
                print(avatar.id, avatar.name, avatar.voice_id, avatar.is_photo)
        """
        resp = await self._session.request("GET", "/api/avatars")
        return _wire.parse_avatars(resp.json())

    async def list_voices(self) -> list[Voice]:
        """
        ``GET /api/voices`` (the list is accepted under ``voices`` or ``avatars``).

        Example::

            voices = {v.name: v.id for v in await mira.list_voices()}
        """
        resp = await self._session.request("GET", "/api/voices")
        return _wire.parse_voices(resp.json())

    async def list_videos(self) -> list[Video]:
        """
        ``GET /api/videos``: completed videos only.

        Example::

            names = [v.name for v in await mira.list_videos()]
        """
        resp = await self._session.request("GET", "/api/videos")
        return _wire.parse_videos(resp.json())

    async def get_video(self, video_id: str) -> VideoMetadata:
        """
        ``GET /api/video/{id}``: metadata and a signed ``download_url`` (24 h).

        Example::

            meta = await mira.get_video(result.download_id)
            print(meta.name, meta.download_url is not None)
        """
        resp = await self._session.request("GET", "/api/video/{id}", path_params={"id": video_id})
        return _wire.parse_video_metadata(resp.json())

    async def video_status(self, job_id: str) -> JobStatus:
        """
        ``GET /api/video/{jobId}/status`` as a :class:`JobStatus`.

        Example::

            status = await mira.video_status(job_id)
            print(status.state, status.progress)      # JobState.RUNNING 0.45
        """
        resp = await self._session.request(
            "GET", "/api/video/{id}/status", path_params={"id": job_id}
        )
        return _wire.parse_video_status(resp.json(), job_id=job_id)

    async def image_status(self, job_id: str) -> JobStatus:
        """
        ``GET /api/image/{jobId}`` as a :class:`JobStatus` (``result.url`` when done).

        Example::

            status = await mira.image_status(job_id)
        """
        resp = await self._session.request("GET", "/api/image/{id}", path_params={"id": job_id})
        return _wire.parse_image_status(resp.json(), job_id=job_id)

    async def job_status(self, job_id: str) -> JobStatus:
        """
        The general ``GET /api/job/{jobId}`` (shape ASSUMED; prefer the video and
        image status calls, which are documented).

        Example::

            status = await mira.job_status(job_id)
        """
        resp = await self._session.request("GET", "/api/job/{id}", path_params={"id": job_id})
        return _wire.parse_job_status(resp.json(), job_id=job_id)

    # -- create builders (no IO) ------------------------------------------------------

    def video(
        self,
        *,
        avatar_id: str,
        name: str,
        text: str,
        voice_id: str | None = None,
        im2vid_full: bool | None = None,
        key: str | None = None,
        tag: bool = True,
    ) -> JobSpec:
        """
        Spec of an avatar video from a script (``POST /api/video/create``).

        ``im2vid_full`` (photo avatars): ``True`` full body/background, 2-3x
        slower; ``False`` face-cropped. A short tag appended to ``name`` lets a
        lost create be found again: through an :class:`Orchestrator` it comes
        from the key given to ``submit`` (:meth:`bind_key`); ``key`` (your
        journal key) sets it here for sends without one; ``tag=False`` leaves
        the name alone.

        Example:
            >>> spec = Miraflow("k").video(avatar_id="a1", name="teaser", text="Hi",
            ...                            im2vid_full=True, key="row-1")
            >>> spec.payload["im2vid_full"], spec.payload["name"]
            (True, 'teaser #mfb5yzwhz2ik')
        """
        return _wire.build_video(
            avatar_id=avatar_id,
            name=name,
            text=text,
            voice_id=voice_id,
            im2vid_full=im2vid_full,
            key=key,
            tag=tag,
        ).built_by(self)

    def video_from_audio(
        self,
        *,
        avatar_id: str,
        name: str,
        media_id: str,
        im2vid_full: bool | None = None,
        key: str | None = None,
        tag: bool = True,
    ) -> JobSpec:
        """
        Spec of an avatar video lip-synced to an uploaded audio track.

        Get ``media_id`` from :meth:`upload_media`. Sent as multipart form.

        Example:
            >>> Miraflow("k").video_from_audio(avatar_id="a1", name="n", media_id="m1",
            ...                                tag=False).payload
            {'avatarId': 'a1', 'name': 'n', 'mediaId': 'm1'}
        """
        return _wire.build_video_from_audio(
            avatar_id=avatar_id,
            name=name,
            media_id=media_id,
            im2vid_full=im2vid_full,
            key=key,
            tag=tag,
        ).built_by(self)

    def image(
        self,
        *,
        prompt: str,
        name: str | None = None,
        aspect_ratio: str | None = None,
        negative_prompt: str | None = None,
        seed: int | None = None,
    ) -> JobSpec:
        """
        Spec of an image from a prompt (``POST /api/image/generate``).

        ``aspect_ratio``: ``1:1``, ``16:9``, ``9:16``, ``4:3`` or ``3:4``.

        Example:
            >>> Miraflow("k").image(prompt="a fox", aspect_ratio="1:1").endpoint
            'POST /api/image/generate'
        """
        return _wire.build_image(
            prompt=prompt,
            name=name,
            aspect_ratio=aspect_ratio,
            negative_prompt=negative_prompt,
            seed=seed,
        ).built_by(self)

    def edit_image(
        self,
        *,
        prompt: str,
        reference_media_ids: str | Sequence[str],
        name: str | None = None,
        aspect_ratio: str | None = None,
        negative_prompt: str | None = None,
        seed: int | None = None,
    ) -> JobSpec:
        """
        Spec of an image edit from one or several uploaded references.

        Example:
            >>> Miraflow("k").edit_image(prompt="sepia", reference_media_ids="m1").payload
            {'prompt': 'sepia', 'referenceImageMediaId': 'm1'}
        """
        return _wire.build_edit_image(
            prompt=prompt,
            reference_media_ids=reference_media_ids,
            name=name,
            aspect_ratio=aspect_ratio,
            negative_prompt=negative_prompt,
            seed=seed,
        ).built_by(self)

    def inpaint(
        self,
        *,
        original_media_id: str,
        mask_media_id: str,
        prompt: str,
        name: str | None = None,
        aspect_ratio: str | None = None,
        negative_prompt: str | None = None,
        seed: int | None = None,
    ) -> JobSpec:
        """
        Spec of an inpainting job (mask: black keeps, white is replaced).

        Example:
            >>> Miraflow("k").inpaint(original_media_id="m1", mask_media_id="m2",
            ...                       prompt="a hat").kind
            'image'
        """
        return _wire.build_inpaint(
            original_media_id=original_media_id,
            mask_media_id=mask_media_id,
            prompt=prompt,
            name=name,
            aspect_ratio=aspect_ratio,
            negative_prompt=negative_prompt,
            seed=seed,
        ).built_by(self)

    # -- JobBackend -------------------------------------------------------------------

    async def submit_once(self, spec: JobSpec) -> str:
        """
        Send the create of ``spec`` exactly once and return the job id.

        Never retried: a timeout, reset or 5xx after the request may have left
        raises :class:`RequestMaybeSent` / :class:`ServerError` (the
        orchestrator records the outcome as unknown); a refused connection
        raises :class:`RequestNotSent`.

        Example::

            job_id = await mira.submit_once(mira.image(prompt="a red fox"))
        """
        return await self.create(spec)

    async def create(self, spec: JobSpec) -> str:
        """
        :meth:`JobBackend.create`: the same as :meth:`submit_once`.

        Example::

            job_id = await mira.create(spec)
        """
        self._check_spec(spec.provider)
        payload = dict(spec.payload)
        if spec.meta.get("encoding") == "multipart":
            form = aiohttp.FormData(default_to_multipart=True)
            for name, value in payload.items():
                form.add_field(name, _form_value(value))
            resp = await self._session.request(
                spec.method,
                spec.path,
                data=form,
                idempotent=False,
                timeouts=self._create_timeouts,
            )
        else:
            resp = await self._session.request(
                spec.method,
                spec.path,
                json=payload,
                idempotent=False,
                timeouts=self._create_timeouts,
            )
        job_id = _wire.parse_created(resp.json(), endpoint=spec.endpoint)
        if spec.match_tag is not None:
            self._tags[job_id] = spec.match_tag
        return job_id

    def bind_key(self, spec: JobSpec, key: str) -> JobSpec:
        """
        ``spec`` with its video's match tag derived from the journal ``key``
        (called by :meth:`Orchestrator.submit`): pass the key once, to
        ``submit``, and a lost create is still matched to its own key, even
        among identical requests. A spec built with ``key=`` is left as is.

        Example:
            >>> mira = Miraflow("k")
            >>> spec = mira.video(avatar_id="a1", name="teaser", text="Hi!")
            >>> mira.bind_key(spec, "row-1").payload["name"]
            'teaser #mfb5yzwhz2ik'
        """
        return _wire.bind_key(spec, key)

    def remember(self, spec: JobSpec, job_id: str) -> None:
        """
        Note ``spec``'s match tag for ``job_id``, as :meth:`create` does (called
        by the orchestrator for jobs from the journal): after a restart, the
        videos list then answers for the job again (:meth:`poll_many`).

        Example:
            >>> mira = Miraflow("k")
            >>> mira.remember(mira.video(avatar_id="a1", name="n", text="t", key="r1"), "job-1")
        """
        if spec.match_tag is not None:
            self._tags[job_id] = spec.match_tag

    async def poll(self, kind: str, job_id: str) -> JobStatus:
        """
        :meth:`JobBackend.poll`: the status of a ``video``, ``image`` or ``job``.

        A video id (what :meth:`find_submission` returns) is not a job id: when
        the status call says 404, the video metadata is checked, and a video
        that exists is a succeeded job.

        Example::

            status = await mira.poll("video", job_id)
        """
        if kind == "image":
            return await self.image_status(job_id)
        if kind == "job":
            return await self.job_status(job_id)
        if kind != "video":
            raise InvalidInput(field="kind", value=kind, expected="'video', 'image' or 'job'")
        try:
            # (video_status inlined: this is the poll hot path)
            resp = await self._session.request(
                "GET", "/api/video/{id}/status", path_params={"id": job_id}
            )
            status = _wire.parse_video_status(resp.json(), job_id=job_id)
        except NotFound as not_found:
            try:
                meta = await self.get_video(job_id)
            except NotFound:
                raise not_found from None
            return _video_done(job_id, meta.id, meta.raw)
        if status.is_terminal:
            self._tags.pop(job_id, None)
        return status

    async def poll_many(self, kind: str, job_ids: Sequence[str]) -> Mapping[str, JobStatus] | None:
        """
        :meth:`JobBackend.poll_many`: one ``GET /api/videos`` for many video jobs.

        The list holds completed videos only, with names but no job ids, so it
        answers for jobs created by this client (matched by their name tag) or
        whose id is a video id; the others are absent (poll them one by one).
        ``None`` for image jobs (no list endpoint).

        Example::

            done = await mira.poll_many("video", job_ids)   # {job_id: JobStatus}
        """
        if kind != "video":
            return None
        videos = await self.list_videos()
        by_id = {video.id: video for video in videos}
        by_tag: dict[str, Video] = {}
        for video in videos:
            if video.name and " #" in video.name:
                by_tag.setdefault(video.name.rsplit(" #", 1)[1], video)
        found: dict[str, JobStatus] = {}
        for job_id in job_ids:
            match = by_id.get(job_id)
            tag = self._tags.get(job_id)
            if match is None and tag is not None:
                match = by_tag.get(tag)
            if match is not None:
                found[job_id] = _video_done(job_id, match.id, match.raw)
                self._tags.pop(job_id, None)
        return found

    def supports_cancel(self, kind: str) -> bool:
        """
        Miraflow has no cancel endpoint: always ``False``.

        Example:
            >>> Miraflow("k").supports_cancel("video")
            False
        """
        return False

    async def cancel(self, kind: str, job_id: str) -> None:
        """
        Not offered by Miraflow.

        Raises:
            InvalidInput: always (check :meth:`supports_cancel` first).

        Example::

            if mira.supports_cancel("video"):
                await mira.cancel("video", job_id)
        """
        raise InvalidInput(
            field="kind",
            value=kind,
            expected="a job kind with a cancel endpoint (Miraflow has none)",
            provider=_wire.PROVIDER,
        )

    async def find_submission(self, spec: JobSpec, *, since: float) -> str | None:
        """
        :meth:`JobBackend.find_submission`: find the video a lost create made.

        Looks for exactly one completed video whose name carries the spec's
        match tag and which was created after ``since`` (less clock skew).
        Returns its **video id** (which :meth:`poll` accepts), or ``None`` when
        the spec has no tag, nothing matches yet (the video may still be
        rendering) or the match is ambiguous.

        Example::

            job_id = await mira.find_submission(spec, since=sent_at)
        """
        [found] = await self.find_submissions([(spec, since)])
        return found

    async def find_submissions(self, requests: Sequence[tuple[JobSpec, float]]) -> list[str | None]:
        """
        :meth:`find_submission` for many lost creates, reading the videos
        list once.

        Example::

            ids = await mira.find_submissions([(spec_a, sent_a), (spec_b, sent_b)])
        """
        videos: list[Video] | None = None
        found: list[str | None] = []
        for spec, since in requests:
            if spec.kind != "video" or spec.match_tag is None:
                found.append(None)
                continue
            if videos is None:
                videos = await self.list_videos()
            found.append(_match_video(spec.match_tag, since, videos))
        return found

    # -- media upload ---------------------------------------------------------------

    async def upload_media(
        self,
        source: str | os.PathLike[str] | bytes,
        *,
        content_type: str | None = None,
        file_name: str | None = None,
    ) -> str:
        """
        Upload an audio track or image; return its ``mediaId`` (finalized).

        initialize -> PUT to the presigned URL (no API key sent there) ->
        finalize. The size (not empty, at most ``max_upload_bytes``) and the
        type (declared or guessed from the name, and checked against the
        file's first bytes) are checked before any byte is sent.

        Raises:
            InvalidInput: empty, too large, unsupported or mismatched type.

        Example::

            media_id = await mira.upload_media("voice.mp3")
            spec = mira.video_from_audio(avatar_id=a, name="dub", media_id=media_id)
        """
        data, name = await self._read_source(source, file_name)
        declared = _normalise_type(content_type or mimetypes.guess_type(name)[0] or "")
        sniffed = sniff_media_type(data[:64])
        media = declared or (sniffed or "")
        if media not in UPLOAD_MEDIA_TYPES:
            raise InvalidInput(
                field="content_type",
                value=content_type or declared or name,
                expected="one of " + ", ".join(sorted(UPLOAD_MEDIA_TYPES)),
                provider=_wire.PROVIDER,
            )
        if sniffed is not None and sniffed != media:
            raise InvalidInput(
                field="content_type",
                value=media,
                expected=f"the file's actual type ({sniffed})",
                provider=_wire.PROVIDER,
            )
        # initialize and finalize are marked idempotent: a repeat only leaves an
        # unused media slot, never a charge, so a transient failure may retry.
        resp = await self._session.request(
            "POST",
            "/api/media/initialize",
            json=_wire.build_media_initialize(
                file_name=name, content_type=media, file_size=len(data)
            ),
            idempotent=True,
        )
        upload = _wire.parse_media_upload(resp.json())
        await self._session.request(
            "PUT",
            upload.upload_url,
            absolute=True,
            data=data,
            headers={"Content-Type": media},
            expect_json=False,
        )
        resp = await self._session.request(
            "POST", "/api/media/finalize", json={"mediaId": upload.media_id}, idempotent=True
        )
        if not _wire.parse_media_finalized(resp.json()):
            raise BadRequest(
                f"finalize of media {upload.media_id} returned success=false",
                provider=_wire.PROVIDER,
                endpoint="POST /api/media/finalize",
                body=resp.json(),
            )
        return upload.media_id

    async def _read_source(
        self, source: str | os.PathLike[str] | bytes, file_name: str | None
    ) -> tuple[bytes, str]:
        if isinstance(source, bytes | bytearray):
            if not file_name:
                raise InvalidInput(
                    field="file_name",
                    value=file_name,
                    expected="a file name (with extension) for raw bytes",
                    provider=_wire.PROVIDER,
                )
            data = bytes(source)
            name = file_name
        else:
            path = anyio.Path(os.fspath(source))
            try:
                stat = await path.stat()
            except OSError as exc:
                raise InvalidInput(
                    field="source", value=str(source), expected="a readable file"
                ) from exc
            self._check_size(stat.st_size, str(source))
            data = await path.read_bytes()
            name = file_name or path.name
        self._check_size(len(data), name)
        return data, name

    def _check_size(self, size: int, what: str) -> None:
        if size <= 0 or size > self._max_upload_bytes:
            raise InvalidInput(
                field="size",
                value=size,
                expected=f"1 to {self._max_upload_bytes} bytes ({what})",
                provider=_wire.PROVIDER,
            )

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
        Download a finished job's file atomically to ``dest``.

        Videos: ``GET /api/video/{id}/download`` by ``videoId``, falling back to
        the job id (CONFLICT §1.2). Images: the signed ``downloadUrl``. A 403
        from an expired signed URL refetches once (RELIABILITY #33); a second
        403 raises :class:`DownloadError`. A ``str``
        target is taken as a video (or job) id. ``deadline`` (seconds) bounds
        the whole download, lookups and retries included: past it the download
        stops, its temporary file is removed and :class:`TotalTimeout` is raised.

        Example::

            result = await handle           # or JobResult from poll()
            path = await mira.download(result, "out/teaser.mp4", deadline=600)
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
        if isinstance(target, str):
            target = JobResult(provider=_wire.PROVIDER, kind="video", job_id=target)
        if target.kind == "image":
            return await self._download_image(target, dest, progress)
        ids = [i for i in dict.fromkeys((target.media_id, target.job_id)) if i]
        last: APIStatusError | None = None
        for video_id in ids:
            for attempt in range(2):
                try:
                    return await self._session.download(
                        "/api/video/{id}/download",
                        dest,
                        path_params={"id": video_id},
                        progress=progress,
                        content_types=VIDEO_TYPES,
                    )
                except NotFound as err:
                    last = err
                    break
                except APIStatusError as err:
                    # The endpoint may redirect to a signed URL; a 403 there
                    # means it expired: ask again once for a fresh one.
                    if err.status_code != 403:
                        raise
                    if attempt:
                        raise refused_twice(err, f"video {video_id}") from err
                    last = err
        assert last is not None
        raise last

    async def _download_image(
        self,
        target: JobResult,
        dest: str | os.PathLike[str],
        progress: Callable[[int, int | None], None] | None,
    ) -> pathlib.Path:
        async def fresh_url() -> str:
            status = await self.image_status(target.job_id)
            if status.result is None or not status.result.url:
                raise DownloadError(
                    f"image job {target.job_id} has no download URL (status {status.raw_status})",
                    provider=_wire.PROVIDER,
                )
            return status.result.url

        return await download_signed(
            self._session,
            target.url,
            dest,
            fresh_url=fresh_url,
            what=f"image {target.job_id}",
            content_types=_IMAGE_TYPES,
            progress=progress,
            log=_log,
        )


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _video_done(job_id: str, video_id: str, raw: Mapping[str, Any]) -> JobStatus:
    result = JobResult(
        provider=_wire.PROVIDER, kind="video", job_id=job_id, media_id=video_id, raw=raw
    )
    return JobStatus(
        state=JobState.SUCCEEDED,
        raw_status="inference_complete",
        progress=1.0,
        result=result,
        raw=raw,
    )


def _timestamp(value: str | None) -> float | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _match_video(tag: str, since: float, videos: Sequence[Video]) -> str | None:
    """The one video of ``videos`` named with ``tag`` and made after ``since``, if exactly one."""
    matches: list[Video] = []
    for video in videos:
        if not _wire.name_has_tag(video.name, tag):
            continue
        created = _timestamp(video.created_at)
        if created is not None and created < since - _FIND_SKEW:
            continue
        matches.append(video)
    if len(matches) == 1:
        return matches[0].id
    if len(matches) > 1:
        _log.warning("find_submission: %d videos carry tag %s; not guessing", len(matches), tag)
    return None
