"""
Miraflow wire layer: attrs models and pure ``build_*`` / ``parse_*`` functions.

No IO here (STYLE #4): the client in :mod:`._client` sends what these functions
build and hands the decoded JSON back to them. Facts: PROVIDER_APIS.md §1.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from ..._config import DEFAULT_IMAGE_POLL_POLICY
from ..._exceptions import (
    APIStatusError,
    AuthenticationError,
    BadRequest,
    Conflict,
    DecodeError,
    InsufficientCredits,
    InvalidInput,
    NotFound,
    PaymentRequired,
    RateLimited,
    ServerError,
)
from ..._models import JobResult, JobState, JobStatus
from .._base import JobSpec
from .._common import make_converter, structure, unstructure, wire_name

__all__ = [
    "PROVIDER",
    "DEFAULT_BASE_URL",
    "ENV_API_KEY",
    "ASPECT_RATIOS",
    "STATUS_MAP",
    "Avatar",
    "Voice",
    "Video",
    "VideoMetadata",
    "MediaUpload",
    "VideoCreateBody",
    "ImageGenerateBody",
    "ImageEditBody",
    "ImageInpaintBody",
    "parse_progress",
    "map_status",
    "bind_key",
    "tag_for",
    "tagged_name",
    "name_has_tag",
    "build_video",
    "build_video_from_audio",
    "build_image",
    "build_edit_image",
    "build_inpaint",
    "build_media_initialize",
    "parse_created",
    "parse_avatars",
    "parse_voices",
    "parse_videos",
    "parse_video_metadata",
    "parse_video_status",
    "parse_image_status",
    "parse_job_status",
    "parse_media_upload",
    "parse_media_finalized",
    "map_error",
]

PROVIDER: Final = "miraflow"
DEFAULT_BASE_URL: Final = "https://miraflow.ai"
ENV_API_KEY: Final = "MIRAFLOW_API_KEY"

ASPECT_RATIOS: Final = ("1:1", "16:9", "9:16", "4:3", "3:4")
"""The ``aspectRatio`` values the image endpoints take (§1.2 #9)."""

STATUS_MAP: Final[Mapping[str, JobState]] = {
    "inference_started": JobState.QUEUED,
    "inference_working": JobState.RUNNING,
    "inference_complete": JobState.SUCCEEDED,
    "inference_failed": JobState.FAILED,
    "inference_error": JobState.FAILED,
}
"""Miraflow job statuses (§1.2 #6) and their :class:`JobState`."""

VIDEO_CREATE_PATH: Final = "/api/video/create"
IMAGE_GENERATE_PATH: Final = "/api/image/generate"
IMAGE_EDIT_PATH: Final = "/api/image/edit"
IMAGE_INPAINT_PATH: Final = "/api/image/inpaint"

_converter = make_converter()


def _raw() -> Any:
    """The ``raw`` field: the JSON object as received (see :mod:`.._common`)."""
    return attrs.field(factory=dict, repr=False, eq=False)


# ---------------------------------------------------------------------------
# Response models


@attrs.frozen(kw_only=True)
class Avatar:
    """
    An avatar of ``GET /api/avatars``.

    Attributes:
        id: avatar id (pass it as ``avatar_id``).
        name: display name.
        created_at: ISO timestamp as sent.
        voice_id: the avatar's default voice, when the API says.
        is_photo: ``True`` for photo avatars (``im2vid_full`` applies to them).
        raw: the object as received, unknown fields included.

    Example:
        >>> parse_avatars({"avatars": [{"id": "a1", "name": "Ann",
        ...                             "createdAt": "2025-01-01T00:00:00Z"}]})[0].name
        'Ann'
    """

    id: str
    name: str
    created_at: str | None = None
    voice_id: str | None = None
    is_photo: bool | None = None
    raw: Mapping[str, Any] = _raw()


@attrs.frozen(kw_only=True)
class Voice:
    """
    A voice of ``GET /api/voices``.

    Example:
        >>> parse_voices({"voices": [{"id": "v1", "name": "Calm"}]})[0].id
        'v1'
    """

    id: str
    name: str
    created_at: str | None = None
    raw: Mapping[str, Any] = _raw()


@attrs.frozen(kw_only=True)
class Video:
    """
    A completed video of ``GET /api/videos``.

    Example:
        >>> parse_videos({"videos": [{"id": "v1", "name": "teaser #abcd1234",
        ...                           "sourceAvatarId": "a1"}]})[0].source_avatar_id
        'a1'
    """

    id: str
    name: str | None = None
    source_avatar_id: str | None = None
    created_at: str | None = None
    raw: Mapping[str, Any] = _raw()


@attrs.frozen(kw_only=True)
class VideoMetadata:
    """
    ``GET /api/video/{id}``: a video with its signed ``download_url`` (valid 24 h).

    Example:
        >>> parse_video_metadata({"id": "v1", "name": "t",
        ...                       "downloadUrl": "https://s3/x.mp4?sig=1"}).download_url
        'https://s3/x.mp4?sig=1'
    """

    id: str
    name: str | None = None
    source_avatar_id: str | None = None
    created_at: str | None = None
    download_url: str | None = None
    raw: Mapping[str, Any] = _raw()


@attrs.frozen(kw_only=True)
class MediaUpload:
    """
    ``POST /api/media/initialize``: where to PUT the bytes.

    Attributes:
        media_id: the id to finalize and then pass to a create.
        upload_url: presigned S3 URL (absolute; no API key is sent to it).

    Example:
        >>> parse_media_upload({"mediaId": "m1", "uploadUrl": "https://s3/put?sig=x"}).media_id
        'm1'
    """

    media_id: str
    upload_url: str
    raw: Mapping[str, Any] = _raw()


@attrs.frozen(kw_only=True)
class _AvatarList:
    avatars: list[Avatar]


@attrs.frozen(kw_only=True)
class _VoiceList:
    voices: list[Voice]


@attrs.frozen(kw_only=True)
class _VoiceListAsAvatars:
    avatars: list[Voice]


@attrs.frozen(kw_only=True)
class _VideoList:
    videos: list[Video]


@attrs.frozen(kw_only=True)
class _Created:
    job_id: str
    result: str | None = None
    raw: Mapping[str, Any] = _raw()


@attrs.frozen(kw_only=True)
class _StatusBody:
    status: str
    progress: Any = None
    video_id: str | None = None
    download_url: str | None = None
    error: Any = None
    message: Any = None
    raw: Mapping[str, Any] = _raw()


@attrs.frozen(kw_only=True)
class _Finalized:
    success: bool


# ---------------------------------------------------------------------------
# Request models


@attrs.frozen(kw_only=True)
class VideoCreateBody:
    """
    Body of ``POST /api/video/create`` (voice + script, §1.2 #7).

    Example:
        >>> unstructure(_converter, VideoCreateBody(avatar_id="a1", name="n", text="hi",
        ...                                         im2vid_full=True))
        {'avatarId': 'a1', 'name': 'n', 'text': 'hi', 'im2vid_full': True}
    """

    avatar_id: str
    name: str
    text: str
    voice_id: str | None = None
    im2vid_full: bool | None = attrs.field(default=None, metadata=wire_name("im2vid_full"))


@attrs.frozen(kw_only=True)
class _VideoAudioBody:
    avatar_id: str
    name: str
    media_id: str
    im2vid_full: bool | None = attrs.field(default=None, metadata=wire_name("im2vid_full"))


@attrs.frozen(kw_only=True)
class ImageGenerateBody:
    """
    Body of ``POST /api/image/generate`` (§1.2 #9).

    Example:
        >>> unstructure(_converter, ImageGenerateBody(prompt="a cat", aspect_ratio="16:9"))
        {'prompt': 'a cat', 'aspectRatio': '16:9'}
    """

    prompt: str
    name: str | None = None
    aspect_ratio: str | None = None
    negative_prompt: str | None = None
    seed: int | None = None


@attrs.frozen(kw_only=True)
class ImageEditBody:
    """
    Body of ``POST /api/image/edit`` (§1.2 #10): one reference or several.

    Example:
        >>> unstructure(_converter, ImageEditBody(prompt="sepia",
        ...                                       reference_image_media_id="m1"))
        {'prompt': 'sepia', 'referenceImageMediaId': 'm1'}
    """

    prompt: str
    reference_image_media_id: str | None = None
    reference_image_media_ids: list[str] | None = None
    name: str | None = None
    aspect_ratio: str | None = None
    negative_prompt: str | None = None
    seed: int | None = None


@attrs.frozen(kw_only=True)
class ImageInpaintBody:
    """
    Body of ``POST /api/image/inpaint`` (§1.2 #11); mask: black keeps, white replaces.

    Example:
        >>> sorted(unstructure(_converter, ImageInpaintBody(
        ...     original_image_media_id="m1", mask_image_media_id="m2", prompt="a hat")))
        ['maskImageMediaId', 'originalImageMediaId', 'prompt']
    """

    original_image_media_id: str
    mask_image_media_id: str
    prompt: str
    name: str | None = None
    aspect_ratio: str | None = None
    negative_prompt: str | None = None
    seed: int | None = None


@attrs.frozen(kw_only=True)
class _MediaInitBody:
    file_name: str
    content_type: str
    file_size: int


# ---------------------------------------------------------------------------
# Pure helpers

_PERCENT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*%?\s*$")


def parse_progress(value: object) -> float | None:
    """
    Turn Miraflow's progress (``"45%"``) into a fraction in ``[0, 1]``.

    A bare number is read as a percentage too (``45`` -> ``0.45``); anything
    unreadable gives ``None`` (progress is advisory: it never fails a poll).

    Example:
        >>> parse_progress("45%"), parse_progress("100%"), parse_progress(7.5)
        (0.45, 1.0, 0.075)
        >>> parse_progress("soon") is None, parse_progress(None) is None
        (True, True)
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        return _percent_text(value)
    else:
        return None
    return _fraction(number)


@functools.lru_cache(maxsize=512)
def _percent_text(value: str) -> float | None:
    # Cached: a poll loop sees the same few dozen strings ("0%" .. "100%") over and over.
    match = _PERCENT.match(value)
    if match is None:
        return None
    return _fraction(float(match.group(1)))


def _fraction(number: float) -> float | None:
    if not math.isfinite(number) or number < 0:
        return None
    return min(number / 100.0, 1.0)


def _message_of(error: Any, message: Any) -> str | None:
    for candidate in (error, message):
        if isinstance(candidate, str) and candidate:
            return candidate
    return None


_StatusFields = tuple[str, Any, "str | None", "str | None", Any, Any, Mapping[str, Any]]


def _status_fields(body: Mapping[str, Any], endpoint: str) -> _StatusFields:
    """
    status, progress, videoId, downloadUrl, error, message and raw of a status body.

    The poll hot path: a dict whose typed fields have their usual types is
    read directly; anything else goes through the cattrs model
    (:class:`_StatusBody`), which raises the :class:`DecodeError`. Both give
    the same values (tests/perf_guards check it over generated bodies).
    """
    if type(body) is dict:
        status = body.get("status")
        video_id = body.get("videoId")
        download_url = body.get("downloadUrl")
        if (
            type(status) is str
            and (video_id is None or type(video_id) is str)
            and (download_url is None or type(download_url) is str)
        ):
            return (
                status,
                body.get("progress"),
                video_id,
                download_url,
                body.get("error"),
                body.get("message"),
                body,
            )
    parsed = structure(_converter, body, _StatusBody, provider=PROVIDER, endpoint=endpoint)
    return (
        parsed.status,
        parsed.progress,
        parsed.video_id,
        parsed.download_url,
        parsed.error,
        parsed.message,
        parsed.raw,
    )


def map_status(
    body: Mapping[str, Any], *, kind: str, job_id: str, endpoint: str = "GET /api/video/{id}/status"
) -> JobStatus:
    """
    Map a status body (video, image or general job) to a :class:`JobStatus`.

    Unknown statuses map to ``RUNNING`` with ``known=False`` (RELIABILITY #29).
    A finished video's result carries ``videoId`` as ``media_id``; a finished
    image's carries ``downloadUrl`` as ``url``.

    Raises:
        DecodeError: ``status`` is missing or not a string.

    Example:
        >>> s = map_status({"result": "success", "status": "inference_working",
        ...                 "progress": "45%"}, kind="video", job_id="j1")
        >>> s.state, s.progress, s.raw_status
        (<JobState.RUNNING: 'running'>, 0.45, 'inference_working')
        >>> done = map_status({"status": "inference_complete", "videoId": "v9"},
        ...                   kind="video", job_id="j1")
        >>> done.result.download_id
        'v9'
    """
    status, raw_progress, video_id, download_url, error, raw_message, raw = _status_fields(
        body, endpoint
    )
    state = STATUS_MAP.get(status)
    known = state is not None
    if state is None:
        state = JobState.RUNNING
    progress = parse_progress(raw_progress)
    if state is JobState.SUCCEEDED:
        progress = 1.0
    result = None
    if state is JobState.SUCCEEDED:
        result = JobResult(
            provider=PROVIDER,
            kind=kind,
            job_id=job_id,
            url=download_url,
            media_id=video_id,
            raw=raw,
        )
    message = _message_of(error, raw_message)
    if state is JobState.FAILED and message is None:
        message = status
    return JobStatus(
        state=state,
        raw_status=status,
        progress=progress,
        message=message,
        result=result,
        known=known,
        raw=raw,
    )


_TAG_ALPHABET = re.compile(r"[^a-z2-7]")


def tag_for(seed: str) -> str:
    """
    A short, stable tag ("mf" and 10 base32 characters, 50 bits) derived from ``seed``.

    The seed is the journal key when the caller gives one, else the canonical
    request body, so building the same spec twice gives the same tag.

    Example:
        >>> tag_for("campaign-7/row-12")
        'mfifdacd2vrn'
        >>> tag_for("campaign-7/row-12") == tag_for("campaign-7/row-12")
        True
    """
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    return "mf" + base64.b32encode(digest).decode("ascii").lower()[:10]


def tagged_name(name: str, tag: str) -> str:
    """
    Append the match tag to a video name: ``"teaser #mfifdacd2vrn"``.

    Example:
        >>> tagged_name("teaser", "mfifdacd2vrn")
        'teaser #mfifdacd2vrn'
    """
    return f"{name} #{tag}"


def name_has_tag(name: str | None, tag: str) -> bool:
    """
    Whether a listed video's ``name`` carries ``tag`` (exact token at the end).

    Example:
        >>> tag = "mfifdacd2vrn"
        >>> name_has_tag("teaser #mfifdacd2vrn", tag), name_has_tag("teaser", tag)
        (True, False)
    """
    return name is not None and name.endswith(f" #{tag}")


def _require_text(field: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(
            field=field, value=value, expected="a non-empty string", provider=PROVIDER
        )
    return value


def _optional_text(field: str, value: object) -> str | None:
    if value is None:
        return None
    return _require_text(field, value)


def _aspect(value: object) -> str | None:
    if value is None:
        return None
    if value not in ASPECT_RATIOS:
        raise InvalidInput(
            field="aspect_ratio",
            value=value,
            expected="one of " + ", ".join(ASPECT_RATIOS),
            provider=PROVIDER,
        )
    return str(value)


def _seed(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field="seed", value=value, expected="an integer", provider=PROVIDER)
    return value


def _flag(field: str, value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise InvalidInput(field=field, value=value, expected="True, False or None", provider=PROVIDER)


def _canonical(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _video_spec(
    body: dict[str, Any], *, name: str, key: str | None, tag: bool, encoding: str
) -> JobSpec:
    match_tag = None
    meta: dict[str, Any] = {"encoding": encoding}
    if tag:
        match_tag = tag_for(key if key is not None else _canonical(body))
        body["name"] = tagged_name(name, match_tag)
        # What bind_key needs to re-tag the name from the journal key.
        meta["name"] = name
        meta["tag_seed"] = "key" if key is not None else "body"
    return JobSpec(
        provider=PROVIDER,
        kind="video",
        method="POST",
        path=VIDEO_CREATE_PATH,
        payload=body,
        match_tag=match_tag,
        meta=meta,
    )


def bind_key(spec: JobSpec, key: str) -> JobSpec:
    """
    ``spec`` with its video's match tag derived from the journal ``key``.

    Only a tagged video spec whose tag came from its body (built without
    ``key=``) changes: two identical requests under two keys then carry two
    tags, so a lost create is matched to its own key, never to its twin's
    video. A spec built with ``key=`` (or ``tag=False``) is returned as is.

    Example:
        >>> spec = build_video(avatar_id="a1", name="teaser", text="Hi!")
        >>> bound = bind_key(spec, "row-1")
        >>> bound.payload["name"], bound.match_tag
        ('teaser #mfb5yzwhz2ik', 'mfb5yzwhz2ik')
        >>> bind_key(bound, "row-2") is bound
        True
    """
    if spec.provider != PROVIDER or spec.match_tag is None or spec.meta.get("tag_seed") != "body":
        return spec
    name = spec.meta.get("name")
    if not isinstance(name, str):
        return spec
    match_tag = tag_for(key)
    return attrs.evolve(
        spec,
        payload={**spec.payload, "name": tagged_name(name, match_tag)},
        match_tag=match_tag,
        meta={**spec.meta, "tag_seed": "key"},
    )


def build_video(
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
    The spec of ``POST /api/video/create`` with a voice and a script (§1.2 #7).

    With ``tag`` (the default) a short tag derived from ``key`` (or from the
    body) is appended to ``name`` so that a create whose answer was lost can
    be found in the videos list (:attr:`JobSpec.match_tag`).

    Raises:
        InvalidInput: an empty id, name or text, or a non-bool ``im2vid_full``.

    Example:
        >>> spec = build_video(avatar_id="a1", name="teaser", text="Hi!", key="row-1")
        >>> spec.endpoint, spec.payload["name"], spec.match_tag
        ('POST /api/video/create', 'teaser #mfb5yzwhz2ik', 'mfb5yzwhz2ik')
        >>> build_video(avatar_id="a1", name="t", text="Hi", tag=False).payload
        {'avatarId': 'a1', 'name': 't', 'text': 'Hi'}
    """
    body = unstructure(
        _converter,
        VideoCreateBody(
            avatar_id=_require_text("avatar_id", avatar_id),
            name=_require_text("name", name),
            text=_require_text("text", text),
            voice_id=_optional_text("voice_id", voice_id),
            im2vid_full=_flag("im2vid_full", im2vid_full),
        ),
    )
    return _video_spec(body, name=name, key=key, tag=tag, encoding="json")


def build_video_from_audio(
    *,
    avatar_id: str,
    name: str,
    media_id: str,
    im2vid_full: bool | None = None,
    key: str | None = None,
    tag: bool = True,
) -> JobSpec:
    """
    The spec of ``POST /api/video/create`` with an uploaded audio track (§1.2 #8).

    Sent as ``multipart/form-data`` (the documented form); ``media_id`` comes
    from a finalized upload.

    Example:
        >>> spec = build_video_from_audio(avatar_id="a1", name="t", media_id="m1", tag=False)
        >>> spec.payload, spec.meta["encoding"]
        ({'avatarId': 'a1', 'name': 't', 'mediaId': 'm1'}, 'multipart')
    """
    body = unstructure(
        _converter,
        _VideoAudioBody(
            avatar_id=_require_text("avatar_id", avatar_id),
            name=_require_text("name", name),
            media_id=_require_text("media_id", media_id),
            im2vid_full=_flag("im2vid_full", im2vid_full),
        ),
    )
    return _video_spec(body, name=name, key=key, tag=tag, encoding="multipart")


def _image_spec(path: str, body: Mapping[str, Any]) -> JobSpec:
    return JobSpec(
        provider=PROVIDER,
        kind="image",
        method="POST",
        path=path,
        payload=body,
        # Images finish in seconds: poll them on the short image cadence.
        poll_policy=DEFAULT_IMAGE_POLL_POLICY,
        meta={"encoding": "json"},
    )


def build_image(
    *,
    prompt: str,
    name: str | None = None,
    aspect_ratio: str | None = None,
    negative_prompt: str | None = None,
    seed: int | None = None,
) -> JobSpec:
    """
    The spec of ``POST /api/image/generate`` (§1.2 #9).

    Raises:
        InvalidInput: empty prompt, ``aspect_ratio`` outside :data:`ASPECT_RATIOS`,
            or a non-integer seed.

    Example:
        >>> build_image(prompt="a red fox", aspect_ratio="16:9", seed=7).payload
        {'prompt': 'a red fox', 'aspectRatio': '16:9', 'seed': 7}
    """
    body = ImageGenerateBody(
        prompt=_require_text("prompt", prompt),
        name=_optional_text("name", name),
        aspect_ratio=_aspect(aspect_ratio),
        negative_prompt=_optional_text("negative_prompt", negative_prompt),
        seed=_seed(seed),
    )
    return _image_spec(IMAGE_GENERATE_PATH, unstructure(_converter, body))


def build_edit_image(
    *,
    prompt: str,
    reference_media_ids: str | Sequence[str],
    name: str | None = None,
    aspect_ratio: str | None = None,
    negative_prompt: str | None = None,
    seed: int | None = None,
) -> JobSpec:
    """
    The spec of ``POST /api/image/edit`` (§1.2 #10).

    One media id is sent as ``referenceImageMediaId``, several as
    ``referenceImageMediaIds``.

    Example:
        >>> build_edit_image(prompt="sepia", reference_media_ids=["m1", "m2"]).payload
        {'prompt': 'sepia', 'referenceImageMediaIds': ['m1', 'm2']}
    """
    if isinstance(reference_media_ids, str):
        ids = [reference_media_ids]
    else:
        ids = list(reference_media_ids)
    if not ids:
        raise InvalidInput(
            field="reference_media_ids",
            value=reference_media_ids,
            expected="one or more media ids",
            provider=PROVIDER,
        )
    for index, media_id in enumerate(ids):
        _require_text(f"reference_media_ids[{index}]", media_id)
    body = ImageEditBody(
        prompt=_require_text("prompt", prompt),
        reference_image_media_id=ids[0] if len(ids) == 1 else None,
        reference_image_media_ids=ids if len(ids) > 1 else None,
        name=_optional_text("name", name),
        aspect_ratio=_aspect(aspect_ratio),
        negative_prompt=_optional_text("negative_prompt", negative_prompt),
        seed=_seed(seed),
    )
    return _image_spec(IMAGE_EDIT_PATH, unstructure(_converter, body))


def build_inpaint(
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
    The spec of ``POST /api/image/inpaint`` (§1.2 #11).

    Example:
        >>> build_inpaint(original_media_id="m1", mask_media_id="m2", prompt="a hat").endpoint
        'POST /api/image/inpaint'
    """
    body = ImageInpaintBody(
        original_image_media_id=_require_text("original_media_id", original_media_id),
        mask_image_media_id=_require_text("mask_media_id", mask_media_id),
        prompt=_require_text("prompt", prompt),
        name=_optional_text("name", name),
        aspect_ratio=_aspect(aspect_ratio),
        negative_prompt=_optional_text("negative_prompt", negative_prompt),
        seed=_seed(seed),
    )
    return _image_spec(IMAGE_INPAINT_PATH, unstructure(_converter, body))


def build_media_initialize(*, file_name: str, content_type: str, file_size: int) -> dict[str, Any]:
    """
    The body of ``POST /api/media/initialize`` (§1.2 #14).

    Example:
        >>> build_media_initialize(file_name="a.mp3", content_type="audio/mpeg", file_size=3)
        {'fileName': 'a.mp3', 'contentType': 'audio/mpeg', 'fileSize': 3}
    """
    return unstructure(
        _converter,
        _MediaInitBody(file_name=file_name, content_type=content_type, file_size=file_size),
    )


# ---------------------------------------------------------------------------
# Parsers


def parse_created(body: object, *, endpoint: str = "POST /api/video/create") -> str:
    """
    The ``jobId`` of a create answer (``{"result": "success", "jobId": ...}``).

    Raises:
        DecodeError: ``jobId`` missing, empty or not a string (path ``$.jobId``).

    Example:
        >>> parse_created({"result": "success", "jobId": "cmjob1"})
        'cmjob1'
    """
    created = structure(_converter, body, _Created, provider=PROVIDER, endpoint=endpoint)
    if not created.job_id:
        raise DecodeError("empty jobId", path="$.jobId", provider=PROVIDER, endpoint=endpoint)
    return created.job_id


def parse_avatars(body: object) -> list[Avatar]:
    """
    The avatars of ``GET /api/avatars``.

    Example:
        >>> [a.id for a in parse_avatars({"avatars": [{"id": "a1", "name": "A", "isPhoto": True}]})]
        ['a1']
    """
    return structure(
        _converter, body, _AvatarList, provider=PROVIDER, endpoint="GET /api/avatars"
    ).avatars


def parse_voices(body: object) -> list[Voice]:
    """
    The voices of ``GET /api/voices``; the list may sit under ``voices`` or,
    as in the docs' own sample, under ``avatars`` (CONFLICT, §1.2 #2).

    Example:
        >>> [v.id for v in parse_voices({"avatars": [{"id": "v1", "name": "Calm"}]})]
        ['v1']
    """
    cls: type[_VoiceList | _VoiceListAsAvatars] = _VoiceList
    if isinstance(body, Mapping) and "voices" not in body and "avatars" in body:
        cls = _VoiceListAsAvatars
    parsed = structure(_converter, body, cls, provider=PROVIDER, endpoint="GET /api/voices")
    if isinstance(parsed, _VoiceListAsAvatars):
        return parsed.avatars
    return parsed.voices


def parse_videos(body: object) -> list[Video]:
    """
    The completed videos of ``GET /api/videos``.

    Example:
        >>> parse_videos({"videos": []})
        []
    """
    return structure(
        _converter, body, _VideoList, provider=PROVIDER, endpoint="GET /api/videos"
    ).videos


def parse_video_metadata(body: object) -> VideoMetadata:
    """
    ``GET /api/video/{id}``.

    Example:
        >>> parse_video_metadata({"id": "v1"}).download_url is None
        True
    """
    return structure(
        _converter, body, VideoMetadata, provider=PROVIDER, endpoint="GET /api/video/{id}"
    )


def _status(body: object, *, kind: str, job_id: str, endpoint: str) -> JobStatus:
    if type(body) is not dict and not isinstance(body, Mapping):
        raise DecodeError(
            f"expected a JSON object, got {type(body).__name__}",
            path="$",
            provider=PROVIDER,
            endpoint=endpoint,
        )
    return map_status(body, kind=kind, job_id=job_id, endpoint=endpoint)


def parse_video_status(body: object, *, job_id: str) -> JobStatus:
    """
    ``GET /api/video/{jobId}/status`` as a :class:`JobStatus` of kind ``video``.

    Example:
        >>> parse_video_status({"status": "inference_started"}, job_id="j1").state
        <JobState.QUEUED: 'queued'>
    """
    return _status(body, kind="video", job_id=job_id, endpoint="GET /api/video/{id}/status")


def parse_image_status(body: object, *, job_id: str) -> JobStatus:
    """
    ``GET /api/image/{jobId}`` as a :class:`JobStatus` of kind ``image``.

    Example:
        >>> s = parse_image_status({"status": "inference_complete",
        ...                         "downloadUrl": "https://s3/i.png?sig=1"}, job_id="j2")
        >>> s.result.url
        'https://s3/i.png?sig=1'
    """
    return _status(body, kind="image", job_id=job_id, endpoint="GET /api/image/{jobId}")


def parse_job_status(body: object, *, job_id: str) -> JobStatus:
    """
    The general ``GET /api/job/{jobId}`` (shape ASSUMED, §5 #6) as a :class:`JobStatus`.

    The kind is ``"image"`` for image job types and ``"video"`` otherwise.

    Example:
        >>> parse_job_status({"status": "inference_error", "type": "GEMINI_IMAGE"},
        ...                  job_id="j3").state
        <JobState.FAILED: 'failed'>
    """
    kind = "video"
    if isinstance(body, Mapping):
        job_type = body.get("type")
        if isinstance(job_type, str) and "IMAGE" in job_type.upper():
            kind = "image"
    return _status(body, kind=kind, job_id=job_id, endpoint="GET /api/job/{jobId}")


def parse_media_upload(body: object) -> MediaUpload:
    """
    ``POST /api/media/initialize``.

    Raises:
        DecodeError: ``mediaId`` or ``uploadUrl`` missing.

    Example:
        >>> parse_media_upload({"mediaId": "m1", "uploadUrl": "https://s3/u"}).upload_url
        'https://s3/u'
    """
    return structure(
        _converter, body, MediaUpload, provider=PROVIDER, endpoint="POST /api/media/initialize"
    )


def parse_media_finalized(body: object) -> bool:
    """
    ``POST /api/media/finalize`` -> its ``success`` flag.

    Example:
        >>> parse_media_finalized({"success": True})
        True
    """
    done = structure(
        _converter, body, _Finalized, provider=PROVIDER, endpoint="POST /api/media/finalize"
    )
    return done.success


# ---------------------------------------------------------------------------
# Errors

_CREDITS = re.compile(r"insufficient\s+credit|not\s+enough\s+credit|out\s+of\s+credit", re.I)


def _failure_message(body: object) -> str | None:
    """The message of a failure envelope ``{"result": "failure", "error": ...}``, else None."""
    # (type() first: an isinstance test against the Mapping ABC is slow, and
    # this runs on every answer)
    if (type(body) is not dict and not isinstance(body, Mapping)) or body.get(
        "result"
    ) != "failure":
        return None
    for key in ("error", "message"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, Mapping):
            inner = value.get("message")
            if isinstance(inner, str) and inner:
                return inner
    return "request failed"


def map_error(
    *,
    status: int,
    body: object,
    endpoint: str,
    text: str = "",
    retry_after: float | None = None,
) -> APIStatusError | None:
    """
    The exception for a Miraflow response, or ``None`` when it is not an error.

    The failure envelope is checked on every status, 200 included; a message
    about credits is :class:`InsufficientCredits` whatever the HTTP code
    (the skill reports it as 400). Non-2xx answers without an envelope map by
    HTTP status.

    Example:
        >>> err = map_error(status=400, body={"result": "failure",
        ...                 "error": "Insufficient credits"}, endpoint="POST /api/video/create")
        >>> type(err).__name__, err.status_code
        ('InsufficientCredits', 400)
        >>> type(map_error(status=200, body={"result": "failure", "error": "Missing avatarId"},
        ...                endpoint="POST /api/video/create")).__name__
        'BadRequest'
        >>> map_error(status=200, body={"result": "success", "jobId": "j"}, endpoint="x") is None
        True
    """
    failure = _failure_message(body)
    ok = 200 <= status < 300
    if ok and failure is None:
        return None
    message = failure or (text.strip()[:200] if text else "") or f"HTTP {status}"
    common: dict[str, Any] = {
        "provider": PROVIDER,
        "status_code": status,
        "endpoint": endpoint,
        "body": body,
    }
    if _CREDITS.search(message):
        return InsufficientCredits(message, **common)
    if status == 401:
        return AuthenticationError(message, **common)
    if status in (402, 403):
        return PaymentRequired(message, **common)
    if status == 404:
        return NotFound(message, **common)
    if status == 409:
        return Conflict(message, **common)
    if status == 429:
        return RateLimited(message, retry_after=retry_after, **common)
    if status >= 500:
        return ServerError(message, **common)
    if ok:
        # A failure envelope on 200: the server answered and refused.
        lowered = message.lower()
        if "not found" in lowered:
            return NotFound(message, **common)
        if "api key" in lowered or "unauthori" in lowered:
            return AuthenticationError(message, **common)
    return BadRequest(message, **common)


# Resolve string annotations now, while ``__module__`` still names this module:
# the package re-exports some models with ``__module__ = "aivideo_async"``, where
# cattrs could no longer resolve them lazily.
for _cls in (
    Avatar,
    Voice,
    Video,
    VideoMetadata,
    MediaUpload,
    _AvatarList,
    _VoiceList,
    _VoiceListAsAvatars,
    _VideoList,
    _Created,
    _StatusBody,
    _Finalized,
    VideoCreateBody,
    _VideoAudioBody,
    ImageGenerateBody,
    ImageEditBody,
    ImageInpaintBody,
    _MediaInitBody,
):
    attrs.resolve_types(_cls)
del _cls
