"""The Miraflow client against the emulator over loopback: endpoints, errors, one create."""

from __future__ import annotations

import logging
import pathlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from aivideo_async._exceptions import (
    APIStatusError,
    AuthenticationError,
    BadRequest,
    DownloadError,
    InsufficientCredits,
    InvalidInput,
    MissingCredential,
    NotFound,
    RateLimited,
    RemoteDisconnected,
    ServerError,
    TotalTimeout,
)
from aivideo_async._models import JobResult, JobState
from aivideo_async._secret import Secret
from aivideo_async.emulator import Emulator, EmulatorConfig, FaultRule, run_emulator
from aivideo_async.providers._base import JobBackend, JobSpec
from aivideo_async.providers.miraflow import Miraflow

from .conftest import (
    CREATE_FAULTS,
    CREATE_TIMEOUTS,
    FAST_RETRY,
    NO_RETRY,
    PNG,
    FakeSleep,
    assert_sent_once,
)

pytestmark = pytest.mark.anyio

KEY = "mf-test-key-7f3a"
VIDEO_AVATAR = "cmavatarstock0000000000001"
PHOTO_AVATAR = "cmavatarstock0000000000002"
VOICE = "cmvoicestock00000000000002"
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 64


@pytest.fixture
async def mira(emu: Emulator, fake_sleep: FakeSleep) -> AsyncIterator[Miraflow]:
    async with Miraflow(KEY, base_url=emu.base_url, retry=FAST_RETRY, sleep=fake_sleep) as client:
        yield client


def _creates(emu: Emulator) -> int:
    return int(emu.stats()["creates"].get("miraflow", 0))


async def _finish(mira: Miraflow, emu: Emulator, kind: str, job_id: str) -> JobResult:
    emu.advance(600)
    status = await mira.poll(kind, job_id)
    assert status.state is JobState.SUCCEEDED, status
    assert status.result is not None
    return status.result


# --- construction and credentials ------------------------------------------------------


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MIRAFLOW_API_KEY", raising=False)
    with pytest.raises(MissingCredential) as info:
        Miraflow()
    assert info.value.variable == "MIRAFLOW_API_KEY"


async def test_key_from_environment(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIRAFLOW_API_KEY", KEY)
    async with Miraflow(base_url=emu.base_url) as mira:
        assert len(await mira.list_avatars()) == 3
    assert KEY not in repr(mira)


async def test_borrowed_session_is_left_open(emu: Emulator) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with Miraflow(Secret(KEY), base_url=emu.base_url, session=http) as mira:
            await mira.list_voices()
        assert not http.closed


async def test_wrong_key_is_authentication_error_without_the_key() -> None:
    config = EmulatorConfig(api_keys={"miraflow": frozenset({"the-right-key"})})
    async with run_emulator(config) as emu, Miraflow(KEY, base_url=emu.base_url) as mira:
        with pytest.raises(AuthenticationError) as info:
            await mira.list_avatars()
    assert info.value.status_code == 401
    assert info.value.endpoint == "GET /api/avatars"
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value)


# --- lists and gets ------------------------------------------------------


async def test_lists(mira: Miraflow) -> None:
    avatars = await mira.list_avatars()
    assert {a.id for a in avatars} >= {VIDEO_AVATAR, PHOTO_AVATAR}
    assert any(a.is_photo for a in avatars)
    assert all(a.voice_id for a in avatars)
    voices = await mira.list_voices()
    assert VOICE in {v.id for v in voices}
    assert await mira.list_videos() == []


async def test_video_lifecycle_status_progress_download(
    mira: Miraflow, emu: Emulator, tmp_path: pathlib.Path
) -> None:
    spec = mira.video(avatar_id=VIDEO_AVATAR, name="Launch", text="Meet us.", voice_id=VOICE)
    job_id = await mira.submit_once(spec)
    queued = await mira.video_status(job_id)
    assert (queued.state, queued.raw_status) == (JobState.QUEUED, "inference_started")

    job = emu.state.jobs["miraflow"][job_id]
    emu.advance(job.duration * 0.5)
    running = await mira.poll("video", job_id)
    assert running.state is JobState.RUNNING
    assert running.progress is not None
    assert 0.3 <= running.progress <= 0.7

    result = await _finish(mira, emu, "video", job_id)
    assert result.media_id is not None
    assert result.media_id != job_id
    meta = await mira.get_video(result.media_id)
    assert meta.name == spec.payload["name"]
    assert meta.download_url is not None
    general = await mira.job_status(job_id)
    assert general.state is JobState.SUCCEEDED
    assert general.result is not None
    assert general.result.media_id == result.media_id

    path = await mira.download(result, tmp_path / "v.mp4")
    assert path.read_bytes()[4:8] == b"ftyp"
    videos = await mira.list_videos()
    assert [v.id for v in videos] == [result.media_id]


async def test_download_falls_back_to_the_job_id(
    mira: Miraflow, emu: Emulator, tmp_path: pathlib.Path
) -> None:
    job_id = await mira.submit_once(mira.video(avatar_id=VIDEO_AVATAR, name="n", text="t"))
    await _finish(mira, emu, "video", job_id)
    stale = JobResult(provider="miraflow", kind="video", job_id=job_id, media_id="cmnosuchvideo")
    path = await mira.download(stale, tmp_path / "v.mp4")
    assert path.stat().st_size > 0
    by_id = await mira.download(job_id, tmp_path / "w.mp4")
    assert by_id.read_bytes() == path.read_bytes()


async def test_a_video_url_expired_once_is_asked_again_and_twice_is_a_download_error(
    mira: Miraflow, emu: Emulator, tmp_path: pathlib.Path
) -> None:
    """RELIABILITY #33 on the video download endpoint: once is retried; twice is DownloadError."""
    job_id = await mira.submit_once(mira.video(avatar_id=VIDEO_AVATAR, name="n", text="t"))
    result = await _finish(mira, emu, "video", job_id)
    emu.add_fault(FaultRule(endpoint="miraflow.download", kind="expire_signed_url", times=1))
    assert (await mira.download(result, tmp_path / "v.mp4")).stat().st_size > 0
    emu.add_fault(FaultRule(endpoint="miraflow.download", kind="expire_signed_url"))
    with pytest.raises(DownloadError) as info:
        await mira.download(result, tmp_path / "w.mp4")
    assert info.value.status_code == 403
    assert not (tmp_path / "w.mp4").exists()
    assert emu.stats()["faults_fired"]["expire_signed_url"] == 3


def _names(folder: pathlib.Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def test_a_download_past_its_deadline_stops_and_leaves_no_file(
    mira: Miraflow, emu: Emulator, tmp_path: pathlib.Path
) -> None:
    """``download(deadline=)``: a trickling file (1 byte per 0.1 s) is cut at 0.3 s."""
    job_id = await mira.submit_once(mira.video(avatar_id=VIDEO_AVATAR, name="n", text="t"))
    result = await _finish(mira, emu, "video", job_id)
    emu.set_faults([FaultRule(endpoint="miraflow.download", kind="trickle", times=1)])
    with anyio.fail_after(10), pytest.raises(TotalTimeout, match="deadline") as caught:
        await mira.download(result, tmp_path / "v.mp4", deadline=0.3)
    assert caught.value.provider == "miraflow"
    assert _names(tmp_path) == []  # no file, no temporary file
    with pytest.raises(InvalidInput) as bad:
        await mira.download(result, tmp_path / "v.mp4", deadline=-1)
    assert bad.value.field == "deadline"
    # Within its deadline (the fault was used up): the whole file.
    path = await mira.download(result, tmp_path / "v.mp4", deadline=30)
    assert path.read_bytes()[4:8] == b"ftyp"


async def test_download_of_unknown_video_is_not_found(
    mira: Miraflow, tmp_path: pathlib.Path
) -> None:
    with pytest.raises(NotFound):
        await mira.download("cmnosuchvideo", tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()


async def test_photo_avatar_full_body_and_failed_job() -> None:
    config = EmulatorConfig(seed=5, time_scale=100.0, failure_rate=1.0)
    async with run_emulator(config) as emu, Miraflow(KEY, base_url=emu.base_url) as mira:
        spec = mira.video(avatar_id=PHOTO_AVATAR, name="full", text="Hi", im2vid_full=True)
        job_id = await mira.submit_once(spec)
        emu.advance(10_000)
        status = await mira.poll("video", job_id)
    assert status.state is JobState.FAILED
    assert status.raw_status in ("inference_failed", "inference_error")


async def test_image_generate_status_and_download(
    mira: Miraflow, emu: Emulator, tmp_path: pathlib.Path
) -> None:
    job_id = await mira.submit_once(mira.image(prompt="a red fox", aspect_ratio="16:9", seed=4))
    assert (await mira.image_status(job_id)).state is JobState.QUEUED
    result = await _finish(mira, emu, "image", job_id)
    assert result.url is not None
    path = await mira.download(result, tmp_path / "fox.png")
    assert path.read_bytes().startswith(b"\x89PNG")


async def test_expired_image_url_is_refetched_once(
    mira: Miraflow, emu: Emulator, tmp_path: pathlib.Path
) -> None:
    """RELIABILITY #33: a 403 on the signed URL refetches the status for a new URL, once."""
    job_id = await mira.submit_once(mira.image(prompt="a fox"))
    result = await _finish(mira, emu, "image", job_id)
    emu.add_fault(FaultRule(endpoint="miraflow.download", kind="expire_signed_url", times=1))
    status_polls = emu.stats()["requests_by_endpoint"]["miraflow.status"]
    path = await mira.download(result, tmp_path / "fox.png")
    assert path.read_bytes().startswith(b"\x89PNG")
    assert emu.stats()["faults_fired"]["expire_signed_url"] == 1
    # The new URL came from the status endpoint, asked exactly once more.
    assert emu.stats()["requests_by_endpoint"]["miraflow.status"] == status_polls + 1


async def test_an_image_url_that_stays_expired_raises_download_error(
    mira: Miraflow, emu: Emulator, tmp_path: pathlib.Path
) -> None:
    """
    RELIABILITY #33: a URL still expired after the one refetch is a failed
    download (DownloadError, status 403, the 403 as its cause), not a plan
    restriction (PaymentRequired); no file.
    """
    job_id = await mira.submit_once(mira.image(prompt="a fox"))
    result = await _finish(mira, emu, "image", job_id)
    emu.add_fault(FaultRule(endpoint="miraflow.download", kind="expire_signed_url"))
    with pytest.raises(DownloadError) as info:
        await mira.download(result, tmp_path / "fox.png")
    assert info.value.status_code == 403
    assert "expired again" in str(info.value)
    assert isinstance(info.value.__cause__, APIStatusError)
    assert emu.stats()["faults_fired"]["expire_signed_url"] == 2
    assert not (tmp_path / "fox.png").exists()


# --- uploads and the media-based creates ---------------------------------------------------------


async def test_upload_then_edit_and_inpaint(
    mira: Miraflow, emu: Emulator, tmp_path: pathlib.Path
) -> None:
    image_file = tmp_path / "ref.png"
    image_file.write_bytes(PNG)
    ref = await mira.upload_media(image_file)
    mask = await mira.upload_media(PNG, file_name="mask.png")
    assert emu.state.media[ref]["finalized"]
    assert emu.state.media[ref]["sha256"] is not None

    one = await mira.submit_once(mira.edit_image(prompt="sepia", reference_media_ids=ref))
    many = await mira.submit_once(mira.edit_image(prompt="mix", reference_media_ids=[ref, mask]))
    painted = await mira.submit_once(
        mira.inpaint(original_media_id=ref, mask_media_id=mask, prompt="a hat")
    )
    for job_id in (one, many, painted):
        result = await _finish(mira, emu, "image", job_id)
        assert result.url is not None


async def test_video_from_uploaded_audio(mira: Miraflow, emu: Emulator) -> None:
    media_id = await mira.upload_media(MP3, file_name="voice.mp3")
    assert emu.state.media[media_id]["contentType"] == "audio/mpeg"
    spec = mira.video_from_audio(
        avatar_id=PHOTO_AVATAR, name="dub", media_id=media_id, im2vid_full=False
    )
    job_id = await mira.submit_once(spec)
    result = await _finish(mira, emu, "video", job_id)
    assert result.media_id is not None


async def test_upload_puts_to_the_presigned_url_without_the_key() -> None:
    # A stand-in API whose presigned URL points back at itself records what the PUT carried.
    seen: dict[str, Any] = {}

    async def initialize(request: web.Request) -> web.Response:
        seen["init"] = await request.json()
        base = f"http://127.0.0.1:{request.url.port}"
        return web.json_response({"mediaId": "m1", "uploadUrl": f"{base}/s3/up/m1?X-Sig=abc"})

    async def put(request: web.Request) -> web.Response:
        seen["headers"] = {k.lower(): v for k, v in request.headers.items()}
        seen["query"] = dict(request.query)
        seen["body"] = await request.read()
        return web.Response(status=200)

    async def finalize(request: web.Request) -> web.Response:
        seen["final"] = await request.json()
        return web.json_response({"success": True})

    app = web.Application()
    app.router.add_post("/api/media/initialize", initialize)
    app.router.add_put("/s3/up/m1", put)
    app.router.add_post("/api/media/finalize", finalize)
    async with TestServer(app, host="127.0.0.1") as server:
        base = f"http://127.0.0.1:{server.port}"
        async with Miraflow(KEY, base_url=base) as mira:
            assert await mira.upload_media(PNG, file_name="a.png") == "m1"
    assert seen["init"] == {"fileName": "a.png", "contentType": "image/png", "fileSize": len(PNG)}
    assert "x-api-key" not in seen["headers"]
    assert KEY not in str(seen["headers"])
    assert seen["headers"]["content-type"] == "image/png"
    assert seen["query"] == {"X-Sig": "abc"}
    assert seen["body"] == PNG
    assert seen["final"] == {"mediaId": "m1"}


@pytest.mark.parametrize(
    ("source", "kwargs", "field"),
    [
        (b"hello world", {"file_name": "notes.txt"}, "content_type"),
        (PNG, {"file_name": "a.mp3"}, "content_type"),
        (MP3, {"file_name": "a.png"}, "content_type"),
        (PNG, {"file_name": "a.png", "content_type": "audio/mpeg"}, "content_type"),
        (b"", {"file_name": "a.png"}, "size"),
        (PNG, {}, "file_name"),
    ],
)
async def test_uploads_are_checked_before_any_byte_is_sent(
    mira: Miraflow, emu: Emulator, source: bytes, kwargs: dict[str, Any], field: str
) -> None:
    """RELIABILITY #15: file type and name checked locally before any byte is sent."""
    with pytest.raises(InvalidInput) as info:
        await mira.upload_media(source, **kwargs)
    assert info.value.field == field
    assert emu.stats()["requests"].get("miraflow", 0) == 0


async def test_upload_size_limit(emu: Emulator, tmp_path: pathlib.Path) -> None:
    """RELIABILITY #15: the size is checked locally before uploading."""
    big = tmp_path / "big.png"
    big.write_bytes(PNG + b"\x00" * 100)
    async with Miraflow(KEY, base_url=emu.base_url, max_upload_bytes=len(PNG)) as mira:
        with pytest.raises(InvalidInput) as info:
            await mira.upload_media(big)
        with pytest.raises(InvalidInput):
            await mira.upload_media(tmp_path / "missing.png")
    assert info.value.field == "size"
    assert emu.stats()["requests"].get("miraflow", 0) == 0


# --- error mapping against the emulator ------------------------------------------------------


async def test_unknown_job_is_not_found(mira: Miraflow) -> None:
    with pytest.raises(NotFound) as info:
        await mira.video_status("cmnosuchjob")
    assert info.value.message.startswith("Job not found")
    with pytest.raises(NotFound):
        await mira.poll("video", "cmnosuchjob")
    with pytest.raises(NotFound):
        await mira.image_status("cmnosuchjob")
    with pytest.raises(NotFound):
        await mira.get_video("cmnosuchjob")


async def test_server_side_validation_is_bad_request(mira: Miraflow, emu: Emulator) -> None:
    """RELIABILITY #15: a 400 validation answer is BadRequest; nothing created."""
    spec = mira.video(avatar_id=VIDEO_AVATAR, name="n", text="t", im2vid_full=True)
    with pytest.raises(BadRequest) as info:
        await mira.submit_once(spec)
    assert "photo" in info.value.message
    assert info.value.status_code == 400
    assert _creates(emu) == 0


async def test_insufficient_credits() -> None:
    """RELIABILITY #14: Miraflow's 400 "Insufficient credits" is InsufficientCredits."""
    config = EmulatorConfig(time_scale=100.0, initial_credits=5)
    async with run_emulator(config) as emu, Miraflow(KEY, base_url=emu.base_url) as mira:
        with pytest.raises(InsufficientCredits) as info:
            await mira.submit_once(mira.video(avatar_id=VIDEO_AVATAR, name="n", text="t"))
    assert info.value.status_code == 400


async def test_rate_limit_on_reads_is_retried_after_retry_after(
    mira: Miraflow, emu: Emulator, fake_sleep: FakeSleep
) -> None:
    emu.add_fault(
        FaultRule(endpoint="miraflow.list", kind="rate_limit", times=1, params={"retry_after": 7})
    )
    assert len(await mira.list_avatars()) == 3
    assert 7.0 in fake_sleep.calls


async def test_rate_limit_surfaces_with_retry_after(emu: Emulator) -> None:
    emu.add_fault(
        FaultRule(endpoint="miraflow.status", kind="rate_limit", params={"retry_after": 3})
    )
    async with Miraflow(KEY, base_url=emu.base_url, retry=NO_RETRY) as mira:
        with pytest.raises(RateLimited) as info:
            await mira.video_status("cmany")
    assert info.value.retry_after == 3.0


async def test_server_error_on_a_poll(emu: Emulator) -> None:
    emu.add_fault(FaultRule(endpoint="miraflow.status", kind="server_error"))
    async with Miraflow(KEY, base_url=emu.base_url, retry=NO_RETRY) as mira:
        with pytest.raises(ServerError) as info:
            await mira.video_status("cmany")
    assert info.value.status_code == 500


# --- the JobBackend contract ----------------------------------------------------------------------


async def test_is_a_job_backend(mira: Miraflow) -> None:
    assert isinstance(mira, JobBackend)
    assert mira.provider == "miraflow"
    assert not mira.supports_cancel("video")
    with pytest.raises(InvalidInput):
        await mira.cancel("video", "cm1")
    assert await mira.poll_many("image", ["cm1"]) is None


async def test_poll_many_answers_for_finished_videos(mira: Miraflow, emu: Emulator) -> None:
    done = await mira.submit_once(mira.video(avatar_id=VIDEO_AVATAR, name="a", text="one"))
    emu.advance(600)
    pending = await mira.submit_once(mira.video(avatar_id=VIDEO_AVATAR, name="b", text="two"))
    statuses = await mira.poll_many("video", [done, pending])
    assert statuses is not None
    assert set(statuses) == {done}
    result = statuses[done].result
    assert result is not None
    assert result.media_id == emu.state.jobs["miraflow"][done].data["videoId"]


async def test_find_submission_finds_a_lost_video_create(mira: Miraflow, emu: Emulator) -> None:
    spec = mira.video(avatar_id=VIDEO_AVATAR, name="lost", text="hello", key="batch/row-9")
    other = mira.video(avatar_id=VIDEO_AVATAR, name="lost", text="hello", key="batch/row-10")
    since = emu.state.wall()
    emu.add_fault(FaultRule(endpoint="miraflow.create", kind="drop_after_commit", times=1))
    with pytest.raises(RemoteDisconnected):
        await mira.submit_once(spec)
    await mira.submit_once(other)
    assert await mira.find_submission(spec, since=since) is None  # still rendering
    emu.advance(600)
    found = await mira.find_submission(spec, since=since)
    assert found is not None
    status = await mira.poll("video", found)  # a video id: answered from the metadata
    assert status.state is JobState.SUCCEEDED
    assert status.result is not None
    assert status.result.media_id == found
    assert await mira.find_submission(spec, since=since + 3600) is None
    untagged = mira.video(avatar_id=VIDEO_AVATAR, name="x", text="y", tag=False)
    assert await mira.find_submission(untagged, since=since) is None


# --- no create can be sent twice ------------------------------------------------------

Builder = Callable[[Miraflow, str, str], JobSpec]


def _video(m: Miraflow, audio: str, image: str) -> JobSpec:
    return m.video(avatar_id=VIDEO_AVATAR, name="n", text="t")


def _audio(m: Miraflow, audio: str, image: str) -> JobSpec:
    return m.video_from_audio(avatar_id=VIDEO_AVATAR, name="n", media_id=audio)


def _image(m: Miraflow, audio: str, image: str) -> JobSpec:
    return m.image(prompt="p")


def _edit(m: Miraflow, audio: str, image: str) -> JobSpec:
    return m.edit_image(prompt="p", reference_media_ids=image)


def _inpaint(m: Miraflow, audio: str, image: str) -> JobSpec:
    return m.inpaint(original_media_id=image, mask_media_id=image, prompt="p")


@pytest.mark.parametrize("build", [_video, _audio, _image, _edit, _inpaint])
@CREATE_FAULTS
async def test_a_failed_create_is_sent_exactly_once(
    emu: Emulator, build: Builder, fault: dict[str, Any], expected: type[Exception]
) -> None:
    # Generous retries for reads: the create must still go out only once.
    async with Miraflow(
        KEY,
        base_url=emu.base_url,
        retry=FAST_RETRY,
        create_timeouts=CREATE_TIMEOUTS,
    ) as mira:
        audio = await mira.upload_media(MP3, file_name="a.mp3")
        image = await mira.upload_media(PNG, file_name="a.png")
        emu.add_fault(FaultRule(endpoint="miraflow.create", **fault))
        with pytest.raises(expected):
            await mira.submit_once(build(mira, audio, image))
    assert_sent_once(emu, "miraflow", fault)


async def test_the_key_is_never_logged(
    mira: Miraflow, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emu.add_fault(FaultRule(endpoint="miraflow.list", kind="rate_limit", times=1))
    await mira.list_avatars()
    with pytest.raises(NotFound) as info:
        await mira.video_status("cmnosuchjob")
    assert caplog.records  # the retry was logged
    assert KEY not in caplog.text
    assert KEY not in repr(info.value)
    assert KEY not in repr(mira)


@pytest.mark.parametrize("bad", ["../admin", "a/b", "x?y=1", "é", ""])
async def test_ids_are_checked_before_they_enter_a_path(
    mira: Miraflow, emu: Emulator, bad: str
) -> None:
    with pytest.raises(InvalidInput):
        await mira.get_video(bad)
    with pytest.raises(InvalidInput):
        await mira.poll("image", bad)
    assert emu.stats()["requests"].get("miraflow", 0) == 0
