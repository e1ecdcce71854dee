"""
Miraflow routes (PROVIDER_APIS.md §1): avatars, voices, videos, video and
image jobs, media upload through a presigned PUT served here.

Costs (ASSUMED, no source gives them): 10 credits per video, 1 per image;
insufficient credits is a 400 ``{"result": "failure", "error": "Insufficient
credits"}`` as the skill reports.

Example:
    >>> from aivideo_async.emulator._state import EmulatorConfig, EmulatorState
    >>> routes = Miraflow(EmulatorState(EmulatorConfig())).routes()
    >>> ("POST", "/api/video/create", "miraflow.create") in [r[:3] for r in routes]
    True
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal
from urllib.parse import quote

import attrs
from aiohttp import web

from ._media import ASPECT_SIZES, base_url, check_signed, png, sample_mp4, serve_bytes, signed_url
from ._state import EmulatorState, Job
from ._status import miraflow_progress, status_of
from ._wire import BadBody, Reject, dumps, error_response, json_response, parse_body, s3_error

__all__ = ["Miraflow"]

P = "miraflow"
VIDEO_COST = 10
IMAGE_COST = 1
AspectRatio = Literal["1:1", "16:9", "9:16", "4:3", "3:4"]

_STOCK_DATE = "2025-01-01T00:00:00.000Z"
AVATARS = [
    {
        "id": "cmavatarstock0000000000001",
        "name": "Ava (studio)",
        "createdAt": _STOCK_DATE,
        "voiceId": "cmvoicestock00000000000001",
        "isPhoto": False,
    },
    {
        "id": "cmavatarstock0000000000002",
        "name": "Ben (photo)",
        "createdAt": _STOCK_DATE,
        "voiceId": "cmvoicestock00000000000002",
        "isPhoto": True,
    },
    {
        "id": "cmavatarstock0000000000003",
        "name": "Chloe (office)",
        "createdAt": _STOCK_DATE,
        "voiceId": "cmvoicestock00000000000003",
        "isPhoto": False,
    },
]
VOICES = [
    {"id": "cmvoicestock00000000000001", "name": "Warm (en)", "createdAt": _STOCK_DATE},
    {"id": "cmvoicestock00000000000002", "name": "Calm (en)", "createdAt": _STOCK_DATE},
    {"id": "cmvoicestock00000000000003", "name": "Bright (en)", "createdAt": _STOCK_DATE},
]
_AVATARS_BY_ID = {a["id"]: a for a in AVATARS}
_VOICE_IDS = {v["id"] for v in VOICES}


@attrs.frozen
class VideoCreate:
    """JSON body of ``POST /api/video/create`` (script or uploaded-audio variant)."""

    avatarId: str
    name: str
    text: str | None = None
    voiceId: str | None = None
    im2vid_full: bool | None = None
    mediaId: str | None = None


@attrs.frozen
class ImageGenerate:
    """JSON body of ``POST /api/image/generate``."""

    prompt: str
    name: str | None = None
    aspectRatio: AspectRatio = "1:1"
    negativePrompt: str | None = None
    seed: int | None = None


@attrs.frozen
class ImageEdit:
    """JSON body of ``POST /api/image/edit``."""

    prompt: str
    referenceImageMediaId: str | None = None
    referenceImageMediaIds: list[str] | None = None
    name: str | None = None
    aspectRatio: AspectRatio = "1:1"
    negativePrompt: str | None = None
    seed: int | None = None


@attrs.frozen
class ImageInpaint:
    """JSON body of ``POST /api/image/inpaint``."""

    originalImageMediaId: str
    maskImageMediaId: str
    prompt: str
    name: str | None = None
    aspectRatio: AspectRatio = "1:1"
    negativePrompt: str | None = None
    seed: int | None = None


@attrs.frozen
class MediaInit:
    """JSON body of ``POST /api/media/initialize``."""

    fileName: str
    contentType: str
    fileSize: int


@attrs.frozen
class MediaFinalize:
    """JSON body of ``POST /api/media/finalize``."""

    mediaId: str


def _fail(status: int, message: str) -> Reject:
    return Reject(error_response(P, status, message))


def _success(**fields: Any) -> web.Response:
    return json_response({"result": "success", **fields})


def _is_form(request: web.Request) -> bool:
    ctype = request.content_type
    return ctype.startswith("multipart/") or ctype == "application/x-www-form-urlencoded"


_TEXT_FIELDS = {"prompt", "name", "aspectRatio", "negativePrompt", "seed"}


class Miraflow:
    """
    The Miraflow handlers over a shared :class:`EmulatorState`.

    Example:
        >>> from aivideo_async.emulator._state import EmulatorConfig, EmulatorState
        >>> len(Miraflow(EmulatorState(EmulatorConfig())).routes()) > 10
        True
    """

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    @property
    def jobs(self) -> dict[str, Job]:
        """Miraflow's jobs (looked up each time: ``reset`` replaces the dict)."""
        return self.state.jobs[P]

    def routes(self) -> list[tuple[str, str, str, Any]]:
        """``(method, path, endpoint class, handler)`` for every Miraflow route."""
        return [
            ("GET", "/api/avatars", "miraflow.list", self.avatars),
            ("GET", "/api/voices", "miraflow.list", self.voices),
            ("GET", "/api/videos", "miraflow.list", self.videos),
            ("POST", "/api/video/create", "miraflow.create", self.video_create),
            ("GET", "/api/video/{id}", "miraflow.metadata", self.video_metadata),
            ("GET", "/api/video/{id}/download", "miraflow.download", self.video_download),
            ("GET", "/api/video/{id}/status", "miraflow.status", self.video_status),
            ("POST", "/api/image/generate", "miraflow.create", self.image_generate),
            ("POST", "/api/image/edit", "miraflow.create", self.image_edit),
            ("POST", "/api/image/inpaint", "miraflow.create", self.image_inpaint),
            ("GET", "/api/image/{id}", "miraflow.status", self.image_status),
            ("GET", "/api/job/{id}", "miraflow.status", self.job_status),
            ("POST", "/api/media/initialize", "miraflow.media", self.media_initialize),
            ("POST", "/api/media/finalize", "miraflow.media", self.media_finalize),
            ("PUT", "/s3/miraflow-uploads/{mediaId}/{fileName}", "miraflow.upload", self.put),
            ("GET", "/s3/miraflow/{kind}/{name}", "miraflow.download", self.s3_get),
        ]

    # -- helpers ---------------------------------------------------------------------------
    def _key(self, request: web.Request) -> str:
        key = request.headers.get("x-api-key")
        if not self.state.key_accepted(P, key):
            raise _fail(401, "Invalid or missing API key")
        assert key is not None
        return key

    def _job(self, job_id: str, key: str, kind: str | None = None) -> Job:
        job = self.jobs.get(job_id)
        if job is None or job.key != key or (kind is not None and job.kind != kind):
            raise _fail(404, f"Job not found: {job_id}")
        return job

    def _media(self, media_id: str, key: str, family: str) -> dict[str, Any]:
        media = self.state.media.get(media_id)
        if media is None or media["key"] != key:
            raise _fail(404, f"Media not found: {media_id}")
        if not media["finalized"]:
            raise _fail(400, f"Media {media_id} is not finalized")
        if not media["contentType"].startswith(family + "/"):
            raise _fail(
                400,
                f"Media {media_id} has content type {media['contentType']}; expected {family}/*",
            )
        return media

    def _commit(
        self,
        request: web.Request,
        key: str,
        kind: str,
        cost: int,
        canonical: bytes,
        data: dict[str, Any],
        scale: float = 1.0,
    ) -> web.Response:
        state = self.state
        now = state.now()
        account = state.account(P, key)
        if account.balance(now)[0] < cost:
            raise _fail(400, "Insufficient credits")
        duration, fails = state.draw_job(now, scale)
        error_kind = state.job_rng.random()
        job_id = state.ids.cuid("cm")
        if fails:
            data["fail_status"] = "inference_error" if error_kind < 0.2 else "inference_failed"
        if kind == "video":
            data["videoId"] = state.ids.cuid("cm")
            state.aliases[data["videoId"]] = job_id
        job = Job(
            job_id,
            P,
            kind,
            key,
            created=now,
            duration=duration,
            fails=fails,
            wall_created=state.wall(now),
            data=data,
        )
        self.jobs[job_id] = job
        account.charge(cost, due=now, now=now)
        state.stats.on_create(P, canonical, request.path)
        return _success(jobId=job_id)

    async def _form(self, request: web.Request) -> dict[str, Any]:
        """Read a multipart form: text fields as str, files as dicts (never kept)."""
        out: dict[str, Any] = {}
        if request.content_type == "application/x-www-form-urlencoded":
            for field, text in (await request.post()).items():
                if field in out:
                    raise _fail(400, f"form field {field!r} given twice")
                out[field] = str(text)
            return out
        reader = await request.multipart()
        async for part in reader:
            name = getattr(part, "name", None)
            if not name:
                raise _fail(400, "multipart part without a name")
            if getattr(part, "filename", None):
                data = await part.read()  # type: ignore[union-attr]
                value: Any = {
                    "filename": part.filename,  # type: ignore[union-attr]
                    "contentType": part.headers.get("Content-Type", ""),  # type: ignore[union-attr]
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "size": len(data),
                }
                out.setdefault(name, []).append(value)
            else:
                if name in out:
                    raise _fail(400, f"form field {name!r} given twice")
                out[name] = await part.text()  # type: ignore[union-attr]
        return out

    def _files(self, form: dict[str, Any], name: str) -> list[dict[str, Any]]:
        files = form.get(name)
        if not isinstance(files, list) or not files:
            raise _fail(400, f"Missing required file: {name}")
        for f in files:
            if not str(f["contentType"]).startswith("image/"):
                raise _fail(400, f"file {name!r} must be an image, got {f['contentType']!r}")
        return files

    @staticmethod
    def _text(form: dict[str, Any], name: str, required: bool = False) -> str | None:
        value = form.get(name)
        if isinstance(value, list):
            raise _fail(400, f"form field {name!r} must be text, not a file")
        if value is None and required:
            raise _fail(400, f"Missing required parameter: {name}")
        return value

    def _image_fields(self, form: dict[str, Any]) -> dict[str, Any]:
        prompt = self._text(form, "prompt", required=True)
        ratio = self._text(form, "aspectRatio") or "1:1"
        if ratio not in ASPECT_SIZES:
            raise _fail(400, f"aspectRatio must be one of {', '.join(ASPECT_SIZES)}, got {ratio!r}")
        seed = self._text(form, "seed")
        if seed is not None and not seed.lstrip("-").isdigit():
            raise _fail(400, f"seed must be an integer, got {seed!r}")
        return {"prompt": prompt, "name": self._text(form, "name"), "aspectRatio": ratio}

    async def _json(self, request: web.Request, cls: type[Any]) -> tuple[Any, bytes]:
        raw = await request.read()
        try:
            return parse_body(cls, raw), raw
        except BadBody as exc:
            raise _fail(400, str(exc)) from None

    # -- lists -----------------------------------------------------------------------------
    async def avatars(self, request: web.Request) -> web.Response:
        """``GET /api/avatars``."""
        self._key(request)
        return json_response({"avatars": AVATARS})

    async def voices(self, request: web.Request) -> web.Response:
        """``GET /api/voices`` (top-level key ``voices``, the *emulate* variant)."""
        self._key(request)
        return json_response({"voices": VOICES})

    async def videos(self, request: web.Request) -> web.Response:
        """``GET /api/videos``: this key's completed videos."""
        key = self._key(request)
        now = self.state.now()
        out = [
            {
                "id": job.data["videoId"],
                "name": job.data["name"],
                "sourceAvatarId": job.data["avatarId"],
                "createdAt": self.state.iso(job.ends_at()),
            }
            for job in self.jobs.values()
            if job.key == key and job.kind == "video" and job.phase(now) == "succeeded"
        ]
        return json_response({"videos": out})

    # -- video -----------------------------------------------------------------------------
    async def video_create(self, request: web.Request) -> web.Response:
        """``POST /api/video/create``: JSON (script or ``mediaId``) or multipart (audio)."""
        key = self._key(request)
        if _is_form(request):
            form = await self._form(request)
            unknown = set(form) - {"avatarId", "name", "mediaId", "im2vid_full"}
            if unknown:
                raise _fail(400, f"Unknown parameter(s): {', '.join(sorted(unknown))}")
            flag = self._text(form, "im2vid_full")
            if flag is not None and flag not in ("true", "false"):
                raise _fail(400, f"im2vid_full must be 'true' or 'false', got {flag!r}")
            body = VideoCreate(
                avatarId=self._text(form, "avatarId", required=True) or "",
                name=self._text(form, "name", required=True) or "",
                mediaId=self._text(form, "mediaId", required=True),
                im2vid_full=None if flag is None else flag == "true",
            )
            canonical = dumps(form)
        else:
            body, canonical = await self._json(request, VideoCreate)
        avatar = _AVATARS_BY_ID.get(body.avatarId)
        if avatar is None:
            raise _fail(404, f"Avatar not found: {body.avatarId}")
        if body.voiceId is not None and body.voiceId not in _VOICE_IDS:
            raise _fail(404, f"Voice not found: {body.voiceId}")
        if body.text is None and body.mediaId is None:
            raise _fail(400, "Missing required parameter: text (or mediaId for an audio track)")
        if body.text is not None and body.mediaId is not None:
            raise _fail(400, "Give either text or mediaId, not both")
        if body.text is not None and not body.text.strip():
            raise _fail(400, "text must not be empty")
        if body.mediaId is not None:
            self._media(body.mediaId, key, "audio")
        if body.im2vid_full and not avatar["isPhoto"]:
            raise _fail(400, "im2vid_full is only supported for photo avatars")
        data = {
            "name": body.name,
            "avatarId": body.avatarId,
            "voiceId": body.voiceId or avatar["voiceId"],
        }
        scale = 2.5 if body.im2vid_full else 1.0
        return self._commit(request, key, "video", VIDEO_COST, canonical, data, scale)

    def _video_for(self, id_: str, key: str) -> Job:
        # Either id is accepted (CONFLICT in §1.2: videoId per the blog, jobId per the skill).
        job = self.jobs.get(self.state.aliases.get(id_, id_))
        now = self.state.now()
        if job is None or job.key != key or job.kind != "video" or job.phase(now) != "succeeded":
            raise _fail(404, f"Video not found: {id_}")
        return job

    async def video_metadata(self, request: web.Request) -> web.Response:
        """``GET /api/video/{id}`` (videoId or jobId) with a signed ``downloadUrl``."""
        key = self._key(request)
        job = self._video_for(request.match_info["id"], key)
        vid = job.data["videoId"]
        url = signed_url(
            self.state,
            base_url(request),
            "GET",
            f"/s3/miraflow/videos/{vid}.mp4",
            self.state.config.download_url_ttl,
        )
        return json_response(
            {
                "id": vid,
                "name": job.data["name"],
                "sourceAvatarId": job.data["avatarId"],
                "createdAt": self.state.iso(job.ends_at()),
                "downloadUrl": url,
            }
        )

    async def video_download(self, request: web.Request) -> web.Response:
        """``GET /api/video/{id}/download``: the MP4 itself."""
        key = self._key(request)
        self._video_for(request.match_info["id"], key)
        return serve_bytes(request, sample_mp4(), "video/mp4")

    async def video_status(self, request: web.Request) -> web.Response:
        """``GET /api/video/{jobId}/status``: the hot poll path."""
        key = self._key(request)
        job = self._job(request.match_info["id"], key, "video")
        now = self.state.now()
        status = status_of(job, now)
        if status == "inference_working":
            return _success(status=status, progress=miraflow_progress(job, now))
        if status == "inference_complete":
            return _success(status=status, videoId=job.data["videoId"])
        return _success(status=status)

    # -- image -----------------------------------------------------------------------------
    async def image_generate(self, request: web.Request) -> web.Response:
        """``POST /api/image/generate``."""
        key = self._key(request)
        body, canonical = await self._json(request, ImageGenerate)
        if not body.prompt.strip():
            raise _fail(400, "prompt must not be empty")
        data = {"name": body.name, "aspectRatio": body.aspectRatio, "type": "GEMINI_IMAGE"}
        return self._commit(request, key, "image", IMAGE_COST, canonical, data, 0.5)

    async def image_edit(self, request: web.Request) -> web.Response:
        """``POST /api/image/edit``: media ids (JSON) or files (multipart field ``image``)."""
        key = self._key(request)
        if _is_form(request):
            form = await self._form(request)
            unknown = set(form) - _TEXT_FIELDS - {"image"}
            if unknown:
                raise _fail(400, f"Unknown parameter(s): {', '.join(sorted(unknown))}")
            self._files(form, "image")
            fields = self._image_fields(form)
            canonical = dumps(form)
        else:
            body, canonical = await self._json(request, ImageEdit)
            ids = list(body.referenceImageMediaIds or [])
            if body.referenceImageMediaId is not None:
                ids.insert(0, body.referenceImageMediaId)
            if not ids:
                raise _fail(
                    400,
                    "Missing required parameter: referenceImageMediaId or referenceImageMediaIds",
                )
            for media_id in ids:
                self._media(media_id, key, "image")
            fields = {"name": body.name, "aspectRatio": body.aspectRatio}
        data = {"name": fields["name"], "aspectRatio": fields["aspectRatio"], "type": "IMAGE_EDIT"}
        return self._commit(request, key, "image", IMAGE_COST, canonical, data, 0.5)

    async def image_inpaint(self, request: web.Request) -> web.Response:
        """``POST /api/image/inpaint``: media ids or files ``originalImage``/``maskImage``."""
        key = self._key(request)
        if _is_form(request):
            form = await self._form(request)
            unknown = set(form) - _TEXT_FIELDS - {"originalImage", "maskImage"}
            if unknown:
                raise _fail(400, f"Unknown parameter(s): {', '.join(sorted(unknown))}")
            self._files(form, "originalImage")
            self._files(form, "maskImage")
            fields = self._image_fields(form)
            canonical = dumps(form)
        else:
            body, canonical = await self._json(request, ImageInpaint)
            self._media(body.originalImageMediaId, key, "image")
            self._media(body.maskImageMediaId, key, "image")
            fields = {"name": body.name, "aspectRatio": body.aspectRatio}
        data = {"name": fields["name"], "aspectRatio": fields["aspectRatio"], "type": "INPAINT"}
        return self._commit(request, key, "image", IMAGE_COST, canonical, data, 0.5)

    def _image_url(self, request: web.Request, job: Job) -> str:
        return signed_url(
            self.state,
            base_url(request),
            "GET",
            f"/s3/miraflow/images/{job.id}.png",
            self.state.config.download_url_ttl,
        )

    async def image_status(self, request: web.Request) -> web.Response:
        """``GET /api/image/{jobId}``."""
        key = self._key(request)
        job = self._job(request.match_info["id"], key, "image")
        now = self.state.now()
        status = status_of(job, now)
        if status == "inference_working":
            return _success(status=status, progress=miraflow_progress(job, now))
        if status == "inference_complete":
            return _success(status=status, downloadUrl=self._image_url(request, job))
        return _success(status=status)

    async def job_status(self, request: web.Request) -> web.Response:
        """``GET /api/job/{jobId}`` (the ASSUMED general job status)."""
        key = self._key(request)
        job = self._job(request.match_info["id"], key)
        now = self.state.now()
        status = status_of(job, now)
        out: dict[str, Any] = {
            "result": "success",
            "jobId": job.id,
            "type": "VIDEO" if job.kind == "video" else job.data["type"],
            "status": status,
        }
        if status == "inference_working":
            out["progress"] = miraflow_progress(job, now)
        elif status == "inference_complete":
            if job.kind == "video":
                out["videoId"] = job.data["videoId"]
            else:
                out["downloadUrl"] = self._image_url(request, job)
        return json_response(out)

    # -- media upload ----------------------------------------------------------------------
    async def media_initialize(self, request: web.Request) -> web.Response:
        """``POST /api/media/initialize`` -> ``{mediaId, uploadUrl}`` (presigned PUT)."""
        key = self._key(request)
        body, _raw = await self._json(request, MediaInit)
        ctype = body.contentType
        if "/" not in ctype or ctype.count("/") != 1 or " " in ctype:
            raise _fail(400, f"contentType must be a MIME type like audio/mpeg, got {ctype!r}")
        if not body.fileName or "/" in body.fileName:
            raise _fail(400, f"fileName must be a plain file name, got {body.fileName!r}")
        limit = self.state.config.upload_max_bytes
        if not 0 < body.fileSize <= limit:
            raise _fail(400, f"fileSize must be between 1 and {limit} bytes, got {body.fileSize}")
        media_id = self.state.ids.cuid("cm")
        path = f"/s3/miraflow-uploads/{media_id}/{body.fileName}"
        self.state.media[media_id] = {
            "key": key,
            "fileName": body.fileName,
            "contentType": ctype,
            "fileSize": body.fileSize,
            "uploaded": False,
            "finalized": False,
            "sha256": None,
        }
        url = signed_url(
            self.state, base_url(request), "PUT", path, self.state.config.upload_url_ttl, ctype
        )
        return json_response({"mediaId": media_id, "uploadUrl": url})

    async def put(self, request: web.Request) -> web.Response:
        """The presigned ``PUT``: signature, expiry, content type and size are checked."""
        media = self.state.media.get(request.match_info["mediaId"])
        if media is None or media["fileName"] != request.match_info["fileName"]:
            raise Reject(s3_error(404, "NoSuchUpload", "The upload does not exist"))
        # S3 signs the content type: a different one fails the signature check.
        denied = check_signed(self.state, request, request.headers.get("Content-Type", ""))
        if denied is None and request.headers.get("Content-Type", "") != media["contentType"]:
            denied = s3_error(
                403,
                "SignatureDoesNotMatch",
                f"Content-Type must be {media['contentType']}",
            )
        if denied is not None:
            raise Reject(denied)
        expected = media["fileSize"]
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.content.iter_chunked(65536):
            size += len(chunk)
            if size > expected:
                raise Reject(
                    s3_error(400, "EntityTooLarge", f"Body exceeds the declared {expected} bytes")
                )
            digest.update(chunk)
        if size != expected:
            raise Reject(s3_error(400, "IncompleteBody", f"Got {size} bytes, expected {expected}"))
        media["uploaded"] = True
        media["sha256"] = digest.hexdigest()
        return web.Response(status=200, headers={"ETag": f'"{media["sha256"][:32]}"'})

    async def media_finalize(self, request: web.Request) -> web.Response:
        """``POST /api/media/finalize``."""
        key = self._key(request)
        body, _raw = await self._json(request, MediaFinalize)
        media = self.state.media.get(body.mediaId)
        if media is None or media["key"] != key:
            raise _fail(404, f"Media not found: {body.mediaId}")
        if not media["uploaded"]:
            raise _fail(400, f"Media {body.mediaId} has not been uploaded")
        media["finalized"] = True
        return json_response({"success": True})

    async def s3_get(self, request: web.Request) -> web.Response:
        """Signed downloads: ``/s3/miraflow/videos/{videoId}.mp4``, ``images/{jobId}.png``."""
        denied = check_signed(self.state, request)
        if denied is not None:
            raise Reject(denied)
        kind, name = request.match_info["kind"], request.match_info["name"]
        now = self.state.now()
        stem, _, ext = name.rpartition(".")
        if kind == "videos" and ext == "mp4":
            job = self.jobs.get(self.state.aliases.get(stem, ""))
            if job is not None and job.phase(now) == "succeeded":
                return serve_bytes(request, sample_mp4(), "video/mp4")
        elif kind == "images" and ext == "png":
            job = self.jobs.get(stem)
            if job is not None and job.kind == "image" and job.phase(now) == "succeeded":
                w, h = ASPECT_SIZES.get(job.data["aspectRatio"], (64, 64))
                seed = int(hashlib.sha256(job.id.encode()).hexdigest()[:4], 16)
                return serve_bytes(request, png(w, h, seed=seed), "image/png")
        raise Reject(s3_error(404, "NoSuchKey", f"The specified key does not exist: {quote(name)}"))
