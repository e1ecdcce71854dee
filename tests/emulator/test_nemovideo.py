"""NemoVideo routes of the emulator, exercised with raw aiohttp (PROVIDER_APIS.md §2-3)."""

from __future__ import annotations

import json
import re
from typing import Any

import aiohttp
import pytest

from aivideo_async.emulator import Emulator, EmulatorConfig
from aivideo_async.emulator._media import sample_mp4

pytestmark = pytest.mark.anyio

SKILL = {"X-Skill-Source": "tests", "X-Skill-Version": "1.0", "X-Skill-Platform": "unknown"}


def frames(raw: str) -> list[str]:
    """Split an LF-framed SSE body into frames (minimal; the emulator's framing under test)."""
    return [f for f in raw.split("\n\n") if f]


def events(raw: str) -> list[dict[str, Any]]:
    out = []
    for frame in frames(raw):
        if frame.startswith("data: {") and '"type":"heartbeat"' not in frame:
            out.append(json.loads(frame[len("data: ") :]))
    return out


async def login(http: aiohttp.ClientSession, emu: Emulator, client: str = "c1") -> dict[str, str]:
    r = await http.post(f"{emu.base_url}/api/auth/anonymous-token", headers={"X-Client-Id": client})
    data = (await r.json())["data"]
    assert data["token"].startswith("nmv_usr_")
    return {"Authorization": f"Bearer {data['token']}", **SKILL}


async def new_session(http: aiohttp.ClientSession, emu: Emulator, auth: dict[str, str]) -> str:
    body = {"task_name": "project", "language": "en"}
    r = await http.post(
        f"{emu.base_url}/api/tasks/me/with-session/nemo_agent", json=body, headers=auth
    )
    data = (await r.json())["data"]
    assert re.fullmatch(r"\d{19}", data["session_id"])
    assert data["task_id"].startswith("task_")
    return str(data["session_id"])


def sse_body(sid: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "app_name": "nemo_agent",
        "user_id": "me",
        "session_id": sid,
        "new_message": {"parts": [{"text": text}]},
        **extra,
    }


async def run(
    http: aiohttp.ClientSession, emu: Emulator, auth: dict[str, str], sid: str, text: str, **kw: Any
) -> tuple[aiohttp.ClientResponse, str]:
    r = await http.post(f"{emu.base_url}/run_sse", json=sse_body(sid, text, **kw), headers=auth)
    return r, await r.text()


async def get_state(
    http: aiohttp.ClientSession, emu: Emulator, auth: dict[str, str], sid: str
) -> dict[str, Any]:
    r = await http.get(f"{emu.base_url}/api/state/nemo_agent/me/{sid}/latest", headers=auth)
    body = await r.json()
    assert body["code"] == 0, body
    return dict(body["data"])


async def test_anonymous_token_needs_client_id(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    r = await http.post(f"{emulator.base_url}/api/auth/anonymous-token")
    assert r.status == 400
    assert (await r.json()) == {
        "code": 400,
        "message": "X-Client-Id header is required",
        "data": None,
    }
    r = await http.post(
        f"{emulator.base_url}/api/auth/anonymous-token", headers={"X-Client-Id": "c"}
    )
    data = (await r.json())["data"]
    assert data["credits"] == emulator.config.initial_credits
    assert data["user_id"].startswith("anon_")
    assert data["expires_at"].endswith("Z")


async def test_auth_and_attribution_headers(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    url = f"{emulator.base_url}/api/credits/balance/simple"
    r = await http.get(url, headers=SKILL)
    assert r.status == 200
    assert (await r.json())["code"] == 1001
    r = await http.get(url, headers={"Authorization": "Bearer nmv_usr_unknown_but_manual"})
    assert r.status == 402
    assert (await r.json())["code"] == 402
    auth = await login(http, emulator)
    body = await (await http.get(url, headers=auth)).json()
    total = emulator.config.initial_credits
    assert body == {
        "code": 0,
        "message": "success",
        "data": {"available": total, "frozen": 0, "total": total},
    }


async def test_configured_tokens_only(http: aiohttp.ClientSession, emulator_factory: Any) -> None:
    async with emulator_factory(EmulatorConfig(api_keys={"nemovideo": ["nmv_usr_good"]})) as emu:
        url = f"{emu.base_url}/api/credits/balance/simple"
        bad = await http.get(url, headers={"Authorization": "Bearer nmv_usr_bad", **SKILL})
        good = await http.get(url, headers={"Authorization": "Bearer nmv_usr_good", **SKILL})
        assert (await bad.json())["code"] == 1001
        assert (await good.json())["code"] == 0


async def test_generation_turn_streams_adk_events_and_changes_the_draft(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    auth = await login(http, emulator)
    sid = await new_session(http, emulator, auth)
    before = await get_state(http, emulator, auth, sid)
    assert before["state"]["draft"]["t"] == []
    r, raw = await run(http, emulator, auth, sid, "Make a 5-second sunset timelapse")
    assert r.status == 200
    assert r.headers["Content-Type"] == "text/event-stream"
    assert ": heartbeat\n\n" in raw  # heartbeats while the generation works
    evs = events(raw)
    calls = [p["functionCall"] for e in evs for p in e["content"]["parts"] if "functionCall" in p]
    resps = [
        p["functionResponse"] for e in evs for p in e["content"]["parts"] if "functionResponse" in p
    ]
    assert [c["name"] for c in calls] == ["generate_video_with_seedance", "edit_multitrack"]
    assert [c["id"] for c in calls] == [x["id"] for x in resps]
    assert all(c["id"].startswith("adk-") for c in calls)
    assert {e["author"] for e in evs} == {"nemo_agent"}
    assert len({e["invocationId"] for e in evs}) == 1
    assert all(re.fullmatch(r"[A-Za-z0-9]{8}", e["id"]) for e in evs)
    assert all(
        e["actions"] == {"stateDelta": {}, "artifactDelta": {}, "requestedAuthConfigs": {}}
        for e in evs
    )
    assert all("partial" not in e for e in evs)  # streaming not requested
    roles = {e["content"]["role"] for e in evs if "functionResponse" in e["content"]["parts"][0]}
    assert roles == {"user"}
    after = await get_state(http, emulator, auth, sid)
    draft = after["state"]["draft"]
    assert draft != before["state"]["draft"]
    assert sorted(t["tt"] for t in draft["t"]) == [0, 1, 7]
    assert draft["d"] == 5000
    assert after["state"]["generated_media"][0]["url"].startswith(emulator.base_url)
    credits = await (
        await http.get(f"{emulator.base_url}/api/credits/balance/simple", headers=auth)
    ).json()
    assert credits["data"]["available"] == emulator.config.initial_credits - 100
    assert emulator.stats()["creates"]["nemovideo"] == 1


async def test_streaming_sends_partial_text_then_the_whole(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    auth = await login(http, emulator)
    sid = await new_session(http, emulator, auth)
    _r, raw = await run(http, emulator, auth, sid, "hello there", streaming=True)
    evs = events(raw)
    partial = [e["content"]["parts"][0]["text"] for e in evs if e.get("partial")]
    final = [e["content"]["parts"][0]["text"] for e in evs if not e.get("partial")]
    assert len(partial) >= 2
    assert "".join(partial) == final[0]
    assert emulator.stats()["creates"] == {}  # a chat turn costs nothing


async def test_some_edit_turns_end_without_text(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    auth = await login(http, emulator)
    sid = await new_session(http, emulator, auth)
    kinds = []
    for i in range(12):
        _r, raw = await run(http, emulator, auth, sid, f"add a title number {i}")
        texts = [p for e in events(raw) for p in e["content"]["parts"] if "text" in p]
        kinds.append(bool(texts))
    assert True in kinds
    assert False in kinds
    draft = (await get_state(http, emulator, auth, sid))["state"]["draft"]
    assert sum(1 for t in draft["t"] if t["tt"] == 7) == 12


async def test_work_completes_when_the_client_disconnects(
    http: aiohttp.ClientSession, emulator_factory: Any
) -> None:
    async with emulator_factory(EmulatorConfig(job_duration=(5, 5))) as emu:
        auth = await login(http, emu)
        sid = await new_session(http, emu, auth)
        r = await http.post(
            f"{emu.base_url}/run_sse", json=sse_body(sid, "make a video"), headers=auth
        )
        await r.content.readline()
        r.close()  # the client goes away mid-generation
        assert (await get_state(http, emu, auth, sid))["state"]["draft"]["t"] == []
        emu.advance(60)
        assert len((await get_state(http, emu, auth, sid))["state"]["draft"]["t"]) == 3


@pytest.mark.parametrize(
    ("mutate", "status", "code"),
    [
        (lambda b: b.update(new_message={"parts": []}), 422, 422),
        (lambda b: b.update(extra=1), 400, 400),
        (lambda b: b.update(app_name="other"), 404, 404),
        (lambda b: b.update(session_id="123"), 200, 1002),
        (lambda b: b.update(user_id="anon_someone_else"), 200, 1002),
        (lambda b: b.update(new_message={"parts": [{"text": "x", "inlineData": {}}]}), 400, 400),
    ],
)
async def test_run_sse_rejections(
    http: aiohttp.ClientSession, emulator: Emulator, mutate: Any, status: int, code: int
) -> None:
    auth = await login(http, emulator)
    sid = await new_session(http, emulator, auth)
    body = sse_body(sid, "make a video")
    mutate(body)
    r = await http.post(f"{emulator.base_url}/run_sse", json=body, headers=auth)
    assert r.status == status
    assert (await r.json())["code"] == code
    assert emulator.stats()["creates"] == {}


async def test_out_of_credits_is_2001(http: aiohttp.ClientSession, emulator_factory: Any) -> None:
    async with emulator_factory(EmulatorConfig(initial_credits=150)) as emu:
        auth = await login(http, emu)
        sid = await new_session(http, emu, auth)
        r, _raw = await run(http, emu, auth, sid, "make a video")
        assert r.headers["Content-Type"] == "text/event-stream"
        r, raw = await run(http, emu, auth, sid, "make another video")
        assert json.loads(raw) == {"code": 2001, "message": "insufficient credits", "data": None}


async def test_sessions_belong_to_their_user_and_survive_a_new_token(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    auth = await login(http, emulator, "client-a")
    sid = await new_session(http, emulator, auth)
    other = await login(http, emulator, "client-b")
    r = await http.get(f"{emulator.base_url}/api/state/nemo_agent/me/{sid}/latest", headers=other)
    assert (await r.json())["code"] == 1002
    again = await login(http, emulator, "client-a")
    assert (await get_state(http, emulator, again, sid))["session_id"] == sid


async def test_claim_token(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    auth = await login(http, emulator)
    sid = await new_session(http, emulator, auth)
    task = (await get_state(http, emulator, auth, sid))["task_id"]
    url = f"{emulator.base_url}/api/auth/claim-token"
    r = await http.post(url, json={"task_id": task, "session_id": sid}, headers=auth)
    data = (await r.json())["data"]
    assert data["claim_token"].startswith("clm_")
    assert data["expires_in"] == 604800
    r = await http.post(url, json={"task_id": "task_x", "session_id": sid}, headers=auth)
    assert r.status == 404


async def test_upload_files_and_urls(http: aiohttp.ClientSession, emulator_factory: Any) -> None:
    async with emulator_factory(EmulatorConfig(upload_max_bytes=1000)) as emu:
        auth = await login(http, emu)
        sid = await new_session(http, emu, auth)
        url = f"{emu.base_url}/api/upload-video/nemo_agent/me/{sid}"
        form = aiohttp.FormData()
        form.add_field("files", b"v" * 100, filename="a.mp4", content_type="video/mp4")
        form.add_field("files", b"i" * 10, filename="b.png", content_type="image/png")
        body = await (await http.post(url, data=form, headers=auth)).json()
        files = body["data"]["files"]
        assert body["data"]["session_state_applied"] is True
        assert [f["file_type"] for f in files] == ["video", "image"]
        assert set(files[0]) == {
            "filename",
            "file_type",
            "cdn_url",
            "duration",
            "width",
            "height",
            "fps",
            "hash",
        }
        assert (await (await http.get(files[0]["cdn_url"])).read()) == sample_mp4()
        body = await (
            await http.post(
                url, json={"urls": ["https://x.example/c.mp3"], "source_type": "url"}, headers=auth
            )
        ).json()
        assert body["data"]["files"][0]["file_type"] == "audio"
        state = await get_state(http, emu, auth, sid)
        assert len(state["state"]["video_infos"]) == 3
        form = aiohttp.FormData()
        form.add_field("files", b"x", filename="a.exe", content_type="application/octet-stream")
        assert (await (await http.post(url, data=form, headers=auth)).json())["code"] == 4001
        form = aiohttp.FormData()
        form.add_field("files", b"x" * 1001, filename="big.mp4", content_type="video/mp4")
        assert (await (await http.post(url, data=form, headers=auth)).json())["code"] == 4002
        r = await http.post(url, json={"urls": ["https://x.example/c.txt"]}, headers=auth)
        assert (await r.json())["code"] == 4001
        r = await http.post(url, json={"urls": "https://x.example/c.mp4"}, headers=auth)
        assert r.status == 400


async def _ready_session(
    http: aiohttp.ClientSession, emu: Emulator
) -> tuple[dict[str, str], str, dict[str, Any]]:
    auth = await login(http, emu)
    sid = await new_session(http, emu, auth)
    # A draft as a generation turn leaves it (that path is tested above).
    draft = {"d": 5000, "m": {"title": "t"}, "t": [{"tt": 0, "sg": [{"id": "c", "d": 5000}]}]}
    return auth, sid, draft


SLOW = EmulatorConfig(job_duration=(10.0, 10.0))  # renders stay pending until advance()


async def test_render_submit_poll_download(
    http: aiohttp.ClientSession, emulator_factory: Any
) -> None:
    async with emulator_factory(SLOW) as emulator:
        auth, sid, draft = await _ready_session(http, emulator)
        base = emulator.base_url
        body = {
            "id": "render_1",
            "sessionId": sid,
            "draft": draft,
            "output": {"format": "mp4", "quality": "high"},
        }
        r = await http.post(f"{base}/api/render/proxy/lambda", json=body, headers=auth)
        assert (await r.json()) == {
            "success": True,
            "data": {"id": "render_1", "status": "pending", "progress": 5},
        }
        again = await http.post(f"{base}/api/render/proxy/lambda", json=body, headers=auth)
        assert again.status == 409
        poll = await (
            await http.get(f"{base}/api/render/proxy/lambda/render_1", headers=auth)
        ).json()
        assert poll["status"] == "pending"
        assert poll["progress"] == 5
        assert (
            await http.get(f"{base}/api/render/proxy/render_1/download", headers=auth)
        ).status == 404
        emulator.advance(60)
        poll = await (
            await http.get(f"{base}/api/render/proxy/lambda/render_1", headers=auth)
        ).json()
        assert poll["status"] == "completed"
        assert poll["progress"] == 100
        assert poll["output"]["size"] == len(sample_mp4())
        assert poll["output"]["duration"] == 5.0
        assert await (await http.get(poll["output"]["url"])).read() == sample_mp4()
        r = await http.get(f"{base}/api/render/proxy/render_1/download", headers=auth)
        assert await r.read() == sample_mp4()
        r = await http.post(f"{base}/api/render/proxy/lambda/render_1/cancel", headers=auth)
        assert r.status == 400
        other = await login(http, emulator, "someone-else")
        assert (
            await http.get(f"{base}/api/render/proxy/lambda/render_1", headers=other)
        ).status == 404


async def test_render_cancel_and_validation(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    auth, sid, draft = await _ready_session(http, emulator)
    base = emulator.base_url
    r = await http.post(
        f"{base}/api/render/proxy/lambda",
        json={"id": "r2", "sessionId": sid, "draft": draft},
        headers=auth,
    )
    assert r.status == 200
    r = await http.post(f"{base}/api/render/proxy/lambda/r2/cancel", headers=auth)
    assert (await r.json()) == {"success": True}
    poll = await (await http.get(f"{base}/api/render/proxy/lambda/r2", headers=auth)).json()
    assert poll["status"] == "failed"
    assert poll["error"] == "cancelled"
    empty = {"id": "r3", "sessionId": sid, "draft": {"t": [{"tt": 0, "sg": []}]}}
    assert (
        await http.post(f"{base}/api/render/proxy/lambda", json=empty, headers=auth)
    ).status == 400
    camel = {"id": "r4", "session_id": sid, "draft": draft}
    assert (
        await http.post(f"{base}/api/render/proxy/lambda", json=camel, headers=auth)
    ).status == 400
    lost = {"id": "r5", "sessionId": "999", "draft": draft}
    assert (
        await (await http.post(f"{base}/api/render/proxy/lambda", json=lost, headers=auth)).json()
    )["code"] == 1002
    bad_id = {"id": "a/b", "sessionId": sid, "draft": draft}
    assert (
        await http.post(f"{base}/api/render/proxy/lambda", json=bad_id, headers=auth)
    ).status == 400
    no_skill = {"Authorization": auth["Authorization"]}
    ok = {"id": "r6", "sessionId": sid, "draft": draft}
    assert (
        await http.post(f"{base}/api/render/proxy/lambda", json=ok, headers=no_skill)
    ).status == 402


async def test_token_expiry_on_demand_and_refresh(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    auth = await login(http, emulator, "c9")
    sid = await new_session(http, emulator, auth)
    token = auth["Authorization"].split()[1]
    assert emulator.expire_token(token)
    r = await http.get(f"{emulator.base_url}/api/state/nemo_agent/me/{sid}/latest", headers=auth)
    assert (await r.json())["code"] == 1001
    fresh = await login(http, emulator, "c9")
    assert (await get_state(http, emulator, fresh, sid))["session_id"] == sid
    assert emulator.drop_session(sid)
    r = await http.get(f"{emulator.base_url}/api/state/nemo_agent/me/{sid}/latest", headers=fresh)
    assert (await r.json())["code"] == 1002
    emulator.advance(7 * 86400 + 1)  # anonymous tokens live 7 days
    r = await http.get(f"{emulator.base_url}/api/credits/balance/simple", headers=fresh)
    assert (await r.json())["code"] == 1001


async def test_heartbeat_forms_and_generated_media(
    http: aiohttp.ClientSession, emulator_factory: Any
) -> None:
    config = EmulatorConfig(job_duration=(1.0, 1.0), time_scale=0.05)
    async with emulator_factory(config) as emu:
        auth = await login(http, emu)
        sid = await new_session(http, emu, auth)
        _r, raw = await run(http, emu, auth, sid, "generate a clip of the sea")
        found = frames(raw)
        assert ": heartbeat" in found
        assert 'data: {"type":"heartbeat"}' in found
        assert "data:" in found  # the empty data line
        media = (await get_state(http, emu, auth, sid))["state"]["generated_media"][0]["url"]
        assert await (await http.get(media)).read() == sample_mp4()


async def test_anonymous_token_limit_when_enabled(
    http: aiohttp.ClientSession, emulator_factory: Any
) -> None:
    async with emulator_factory(EmulatorConfig(nemovideo_token_limit=True)) as emu:
        auth = await login(http, emu, "limited")
        url = f"{emu.base_url}/api/auth/anonymous-token"
        r = await http.post(url, headers={"X-Client-Id": "limited"})
        assert r.status == 429
        assert int(r.headers["Retry-After"]) > 6 * 86400
        assert (await r.json())["code"] == 429
        # Another client is not limited; an expired token frees the slot.
        assert (await http.post(url, headers={"X-Client-Id": "other"})).status == 200
        emu.expire_token(auth["Authorization"].split()[1])
        assert (await http.post(url, headers={"X-Client-Id": "limited"})).status == 200
