"""Miraflow routes of the emulator, exercised with raw aiohttp (PROVIDER_APIS.md §1)."""

from __future__ import annotations

import hashlib
import re
import struct
from typing import Any

import aiohttp
import pytest

from aivideo_async.emulator import Emulator, EmulatorConfig
from aivideo_async.emulator._media import sample_mp4

pytestmark = pytest.mark.anyio

KEY = {"x-api-key": "mf_key"}
AVATAR = "cmavatarstock0000000000001"
PHOTO_AVATAR = "cmavatarstock0000000000002"


async def _create_video(http: aiohttp.ClientSession, emu: Emulator, **extra: object) -> str:
    body = {"avatarId": AVATAR, "name": "teaser", "text": "Meet our product.", **extra}
    r = await http.post(f"{emu.base_url}/api/video/create", json=body, headers=KEY)
    assert r.status == 200, await r.text()
    data = await r.json()
    assert data["result"] == "success"
    return str(data["jobId"])


async def test_lists_need_the_api_key(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    for path in ("/api/avatars", "/api/voices", "/api/videos"):
        r = await http.get(emulator.base_url + path)
        assert r.status == 401
        assert (await r.json())["result"] == "failure"
    r = await http.get(emulator.base_url + "/api/avatars", headers=KEY)
    avatars = (await r.json())["avatars"]
    assert {"id", "name", "createdAt", "voiceId", "isPhoto"} <= set(avatars[0])
    r = await http.get(emulator.base_url + "/api/voices", headers=KEY)
    assert set((await r.json())["voices"][0]) == {"id", "name", "createdAt"}


async def test_configured_keys_only(http: aiohttp.ClientSession, emulator_factory: object) -> None:
    config = EmulatorConfig(api_keys={"miraflow": ["good"]})
    async with emulator_factory(config) as emu:  # type: ignore[operator]
        bad = await http.get(emu.base_url + "/api/avatars", headers={"x-api-key": "bad"})
        good = await http.get(emu.base_url + "/api/avatars", headers={"x-api-key": "good"})
    assert (bad.status, good.status) == (401, 200)


async def test_video_lifecycle_with_progress_and_download(
    http: aiohttp.ClientSession, emulator_factory: object
) -> None:
    # Long jobs (1-1.2 s) driven by advance(): each phase is observed without sleeping.
    config = EmulatorConfig(job_duration=(10.0, 12.0), time_scale=0.1)
    async with emulator_factory(config) as emu:  # type: ignore[operator]
        job = await _create_video(http, emu)
        url = f"{emu.base_url}/api/video/{job}/status"
        first = await (await http.get(url, headers=KEY)).json()
        assert first == {"result": "success", "status": "inference_started"}
        emu.advance(0.5)
        mid = await (await http.get(url, headers=KEY)).json()
        assert mid["status"] == "inference_working"
        assert re.fullmatch(r"\d{1,2}%", mid["progress"])
        # The metadata is not there before completion.
        assert (await http.get(f"{emu.base_url}/api/video/{job}", headers=KEY)).status == 404
        emu.advance(1.0)
        done = await (await http.get(url, headers=KEY)).json()
        assert done["status"] == "inference_complete"
        video_id = done["videoId"]
        assert "progress" not in done
        # Both ids are accepted for metadata and download (the §1.2 CONFLICT).
        for id_ in (video_id, job):
            meta = await (await http.get(f"{emu.base_url}/api/video/{id_}", headers=KEY)).json()
            assert meta["id"] == video_id
            assert meta["sourceAvatarId"] == AVATAR
            r = await http.get(f"{emu.base_url}/api/video/{id_}/download", headers=KEY)
            assert r.headers["Content-Type"] == "video/mp4"
            assert await r.read() == sample_mp4()
        signed = await http.get(meta["downloadUrl"])
        assert signed.status == 200
        assert (await signed.read())[4:8] == b"ftyp"
        listed = await (await http.get(emu.base_url + "/api/videos", headers=KEY)).json()
        assert [v["id"] for v in listed["videos"]] == [video_id]
        # The general job endpoint agrees.
        general = await (await http.get(f"{emu.base_url}/api/job/{job}", headers=KEY)).json()
        assert general["type"] == "VIDEO"
        assert general["videoId"] == video_id


async def test_another_keys_job_is_not_found(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    job = await _create_video(http, emulator)
    r = await http.get(f"{emulator.base_url}/api/video/{job}/status", headers={"x-api-key": "o"})
    assert r.status == 404
    assert (await r.json())["result"] == "failure"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"name": "n", "text": "t"}, "avatarId"),
        ({"avatarId": AVATAR, "name": "n", "text": "t", "color": "red"}, "color"),
        ({"avatarId": AVATAR, "name": "n"}, "text"),
        ({"avatarId": AVATAR, "name": "n", "text": 5}, "text"),
        ({"avatarId": AVATAR, "name": "n", "text": "t", "im2vid_full": "yes"}, "im2vid_full"),
        ({"avatarId": AVATAR, "name": "n", "text": "t", "im2vid_full": True}, "photo"),
    ],
)
async def test_video_create_is_strict(
    http: aiohttp.ClientSession, emulator: Emulator, body: dict[str, object], fragment: str
) -> None:
    r = await http.post(f"{emulator.base_url}/api/video/create", json=body, headers=KEY)
    assert r.status == 400
    data = await r.json()
    assert data["result"] == "failure"
    assert fragment in data["error"]
    assert emulator.stats()["creates"].get("miraflow", 0) == 0


async def test_unknown_avatar_and_voice_are_404(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    url = f"{emulator.base_url}/api/video/create"
    r1 = await http.post(url, json={"avatarId": "nope", "name": "n", "text": "t"}, headers=KEY)
    body = {"avatarId": AVATAR, "name": "n", "text": "t", "voiceId": "nope"}
    r2 = await http.post(url, json=body, headers=KEY)
    assert (r1.status, r2.status) == (404, 404)


async def test_photo_avatar_full_body_is_slower(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    body = {"avatarId": PHOTO_AVATAR, "name": "n", "text": "t", "im2vid_full": True}
    r = await http.post(f"{emulator.base_url}/api/video/create", json=body, headers=KEY)
    job = emulator.state.jobs["miraflow"][(await r.json())["jobId"]]
    lo = emulator.config.job_duration[0]
    assert job.duration >= 2.5 * lo * emulator.config.time_scale


async def test_insufficient_credits_is_400(
    http: aiohttp.ClientSession, emulator_factory: object
) -> None:
    async with emulator_factory(EmulatorConfig(initial_credits=10)) as emu:  # type: ignore[operator]
        await _create_video(http, emu)  # costs 10
        body = {"avatarId": AVATAR, "name": "n", "text": "t"}
        r = await http.post(f"{emu.base_url}/api/video/create", json=body, headers=KEY)
        assert r.status == 400
        assert (await r.json()) == {"result": "failure", "error": "Insufficient credits"}


async def _upload(
    http: aiohttp.ClientSession, emu: Emulator, data: bytes, ctype: str, name: str
) -> str:
    init = {"fileName": name, "contentType": ctype, "fileSize": len(data)}
    r = await http.post(f"{emu.base_url}/api/media/initialize", json=init, headers=KEY)
    assert r.status == 200, await r.text()
    out = await r.json()
    assert "X-Amz-Signature=" in out["uploadUrl"]
    put = await http.put(out["uploadUrl"], data=data, headers={"Content-Type": ctype})
    assert put.status == 200, await put.text()
    fin = await http.post(
        f"{emu.base_url}/api/media/finalize", json={"mediaId": out["mediaId"]}, headers=KEY
    )
    assert (await fin.json()) == {"success": True}
    return str(out["mediaId"])


async def test_media_upload_then_audio_video_create(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    media = await _upload(http, emulator, b"ID3" + b"\0" * 100, "audio/mpeg", "voice.mp3")
    assert emulator.state.media[media]["sha256"] == hashlib.sha256(b"ID3" + b"\0" * 100).hexdigest()
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("avatarId", AVATAR)
    form.add_field("name", "Dub")
    form.add_field("mediaId", media)
    r = await http.post(f"{emulator.base_url}/api/video/create", data=form, headers=KEY)
    assert r.status == 200, await r.text()
    # An urlencoded form is read the same way; unknown fields are refused.
    fields = {"avatarId": AVATAR, "name": "Dub", "mediaId": media}
    r = await http.post(f"{emulator.base_url}/api/video/create", data=fields, headers=KEY)
    assert r.status == 200, await r.text()
    r = await http.post(
        f"{emulator.base_url}/api/video/create", data={**fields, "text": "x"}, headers=KEY
    )
    assert r.status == 400
    assert "text" in (await r.json())["error"]
    # The JSON variant with mediaId is accepted too.
    body = {"avatarId": AVATAR, "name": "Dub", "mediaId": media}
    r = await http.post(f"{emulator.base_url}/api/video/create", json=body, headers=KEY)
    assert r.status == 200
    # An image is not an audio track.
    img = await _upload(http, emulator, b"\x89PNG", "image/png", "a.png")
    body = {"avatarId": AVATAR, "name": "Dub", "mediaId": img}
    r = await http.post(f"{emulator.base_url}/api/video/create", json=body, headers=KEY)
    assert r.status == 400
    assert "audio" in (await r.json())["error"]


async def test_presigned_put_checks_type_size_signature_and_expiry(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    base = emulator.base_url
    init = {"fileName": "v.mp3", "contentType": "audio/mpeg", "fileSize": 10}
    out = await (await http.post(f"{base}/api/media/initialize", json=init, headers=KEY)).json()
    url = out["uploadUrl"]
    wrong_type = await http.put(url, data=b"x" * 10, headers={"Content-Type": "audio/wav"})
    assert wrong_type.status == 403
    assert b"SignatureDoesNotMatch" in await wrong_type.read()
    short = await http.put(url, data=b"x" * 9, headers={"Content-Type": "audio/mpeg"})
    assert short.status == 400
    assert b"IncompleteBody" in await short.read()
    long = await http.put(url, data=b"x" * 11, headers={"Content-Type": "audio/mpeg"})
    assert long.status == 400
    assert b"EntityTooLarge" in await long.read()
    tampered = url.replace("X-Amz-Expires=900", "X-Amz-Expires=99999")
    bad = await http.put(tampered, data=b"x" * 10, headers={"Content-Type": "audio/mpeg"})
    assert bad.status == 403
    # Finalize before a successful PUT is refused.
    fin = await http.post(
        f"{base}/api/media/finalize", json={"mediaId": out["mediaId"]}, headers=KEY
    )
    assert fin.status == 400
    emulator.advance(901)
    expired = await http.put(url, data=b"x" * 10, headers={"Content-Type": "audio/mpeg"})
    assert expired.status == 403
    assert b"Request has expired" in await expired.read()


async def test_media_initialize_validates(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    url = f"{emulator.base_url}/api/media/initialize"
    for body in (
        {"fileName": "a.mp3", "contentType": "audio/mpeg"},
        {"fileName": "a.mp3", "contentType": "audio/mpeg", "fileSize": "10"},
        {"fileName": "a.mp3", "contentType": "audio/mpeg", "fileSize": 0},
        {"fileName": "a.mp3", "contentType": "nonsense", "fileSize": 10},
        {"fileName": "a.mp3", "contentType": "audio/mpeg", "fileSize": 10**12},
    ):
        r = await http.post(url, json=body, headers=KEY)
        assert r.status == 400, body
    fin = await http.post(
        f"{emulator.base_url}/api/media/finalize", json={"mediaId": "nope"}, headers=KEY
    )
    assert fin.status == 404


async def test_image_generate_poll_and_png(
    http: aiohttp.ClientSession, emulator_factory: Any
) -> None:
    async with emulator_factory(EmulatorConfig(job_duration=(10.0, 10.0))) as emulator:
        body = {
            "prompt": "portrait",
            "name": "p1",
            "aspectRatio": "3:4",
            "negativePrompt": "x",
            "seed": 7,
        }
        r = await http.post(f"{emulator.base_url}/api/image/generate", json=body, headers=KEY)
        job = (await r.json())["jobId"]
        first = await (await http.get(f"{emulator.base_url}/api/image/{job}", headers=KEY)).json()
        assert first["status"] in ("inference_started", "inference_working")
        emulator.advance(60)
        done = await (await http.get(f"{emulator.base_url}/api/image/{job}", headers=KEY)).json()
        assert done["status"] == "inference_complete"
        png = await (await http.get(done["downloadUrl"])).read()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", png[16:24]) == (72, 96)
        general = await (await http.get(f"{emulator.base_url}/api/job/{job}", headers=KEY)).json()
        assert general["type"] == "GEMINI_IMAGE"
        assert "downloadUrl" in general
        # The image status route does not serve video jobs.
        video = await _create_video(http, emulator)
        assert (await http.get(f"{emulator.base_url}/api/image/{video}", headers=KEY)).status == 404


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x"},
        {"prompt": "x", "aspectRatio": "2:1"},
        {"prompt": "x", "seed": "7"},
        {"prompt": "x", "model": "gemini"},
    ],
)
async def test_image_generate_is_strict(
    http: aiohttp.ClientSession, emulator: Emulator, body: dict[str, object]
) -> None:
    r = await http.post(f"{emulator.base_url}/api/image/generate", json=body, headers=KEY)
    assert r.status == 400


async def test_image_edit_and_inpaint_by_media_id_and_multipart(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    base = emulator.base_url
    a = await _upload(http, emulator, b"\x89PNGa", "image/png", "a.png")
    b = await _upload(http, emulator, b"\x89PNGb", "image/png", "b.png")
    edit = {"referenceImageMediaIds": [a, b], "prompt": "merge", "aspectRatio": "16:9"}
    assert (await http.post(f"{base}/api/image/edit", json=edit, headers=KEY)).status == 200
    single = {"referenceImageMediaId": a, "prompt": "restyle"}
    assert (await http.post(f"{base}/api/image/edit", json=single, headers=KEY)).status == 200
    none = {"prompt": "restyle"}
    assert (await http.post(f"{base}/api/image/edit", json=none, headers=KEY)).status == 400
    inpaint = {"originalImageMediaId": a, "maskImageMediaId": b, "prompt": "sky"}
    assert (await http.post(f"{base}/api/image/inpaint", json=inpaint, headers=KEY)).status == 200
    missing = {"originalImageMediaId": a, "prompt": "sky"}
    assert (await http.post(f"{base}/api/image/inpaint", json=missing, headers=KEY)).status == 400
    unknown = {"originalImageMediaId": "nope", "maskImageMediaId": b, "prompt": "sky"}
    assert (await http.post(f"{base}/api/image/inpaint", json=unknown, headers=KEY)).status == 404

    form = aiohttp.FormData()
    form.add_field("image", b"\x89PNG1", filename="1.png", content_type="image/png")
    form.add_field("image", b"\x89PNG2", filename="2.png", content_type="image/png")
    form.add_field("prompt", "merge")
    assert (await http.post(f"{base}/api/image/edit", data=form, headers=KEY)).status == 200
    form = aiohttp.FormData()
    form.add_field("originalImage", b"\x89PNG1", filename="o.png", content_type="image/png")
    form.add_field("maskImage", b"\x89PNG2", filename="m.png", content_type="image/png")
    form.add_field("prompt", "sky")
    form.add_field("aspectRatio", "1:1")
    assert (await http.post(f"{base}/api/image/inpaint", data=form, headers=KEY)).status == 200
    form = aiohttp.FormData()
    form.add_field("originalImage", b"x", filename="o.txt", content_type="text/plain")
    form.add_field("maskImage", b"\x89PNG2", filename="m.png", content_type="image/png")
    form.add_field("prompt", "sky")
    assert (await http.post(f"{base}/api/image/inpaint", data=form, headers=KEY)).status == 400
    assert emulator.stats()["creates"]["miraflow"] == 5


async def test_download_supports_range(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    job = await _create_video(http, emulator)
    emulator.advance(60)
    url = f"{emulator.base_url}/api/video/{job}/download"
    full = await http.get(url, headers=KEY)
    etag = full.headers["ETag"]
    assert full.headers["Accept-Ranges"] == "bytes"
    part = await http.get(url, headers={**KEY, "Range": "bytes=100-199"})
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(sample_mp4())}"
    assert await part.read() == sample_mp4()[100:200]
    tail = await http.get(url, headers={**KEY, "Range": "bytes=-10", "If-Range": etag})
    assert await tail.read() == sample_mp4()[-10:]
    beyond = await http.get(url, headers={**KEY, "Range": "bytes=999999-"})
    assert beyond.status == 416
    stale = await http.get(url, headers={**KEY, "Range": "bytes=0-9", "If-Range": '"other"'})
    assert stale.status == 200
    assert await stale.read() == sample_mp4()


async def test_signed_url_expires(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    job = await _create_video(http, emulator)
    emulator.advance(60)
    meta = await (await http.get(f"{emulator.base_url}/api/video/{job}", headers=KEY)).json()
    assert (await http.get(meta["downloadUrl"])).status == 200
    bad = meta["downloadUrl"][:-4] + "0000"
    assert (await http.get(bad)).status == 403
    emulator.advance(24 * 3600 + 1)
    r = await http.get(meta["downloadUrl"])
    assert r.status == 403
    assert b"Request has expired" in await r.read()


async def test_head_on_downloads(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    job = await _create_video(http, emulator)
    emulator.advance(60)
    r = await http.head(f"{emulator.base_url}/api/video/{job}/download", headers=KEY)
    assert r.status == 200
    assert int(r.headers["Content-Length"]) == len(sample_mp4())
    assert r.headers["ETag"]
    assert await r.read() == b""
