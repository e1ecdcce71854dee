"""Every fault kind of the emulator, observed with a raw aiohttp client (RELIABILITY §6, §8)."""

from __future__ import annotations

import email.utils
import json
from typing import Any

import aiohttp
import pytest

from aivideo_async.emulator import Emulator, EmulatorConfig, FaultRule
from aivideo_async.emulator._faults import ENDPOINTS, FaultEngine
from aivideo_async.emulator._media import sample_mp4
from aivideo_async.emulator._stats import Stats

from .test_nemovideo import events, login, new_session, sse_body

pytestmark = pytest.mark.anyio

MF = {"x-api-key": "k"}
AVM = {"key": "ak"}
VIDEO = {"avatarId": "cmavatarstock0000000000001", "name": "n", "text": "t"}
T2V = {"prompt": "sunset", "aspectRatio": "16:9", "duration": "5"}


def fault(endpoint: str, kind: str, **kw: Any) -> FaultRule:
    return FaultRule(endpoint=endpoint, kind=kind, **kw)


async def create_video(http: aiohttp.ClientSession, emu: Emulator) -> aiohttp.ClientResponse:
    return await http.post(f"{emu.base_url}/api/video/create", json=VIDEO, headers=MF)


async def test_latency_delays_then_answers(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    emulator.add_fault(fault("miraflow.list", "latency", params={"seconds": 0.5}, times=1))
    # Real time is the thing under test: a short client deadline must trip on the delay.
    with pytest.raises(TimeoutError):
        await http.get(
            f"{emulator.base_url}/api/avatars",
            headers=MF,
            timeout=aiohttp.ClientTimeout(total=0.1),
        )
    r = await http.get(f"{emulator.base_url}/api/avatars", headers=MF)
    assert r.status == 200
    assert emulator.stats()["faults_fired"] == {"latency": 1}


async def test_rate_limit_seconds_and_date_forms(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    emulator.set_faults(
        [
            fault("miraflow.status", "rate_limit", schedule=[1], params={"retry_after": 7}),
            fault(
                "aivideomaker.*", "rate_limit", times=1, params={"retry_after": 30, "form": "date"}
            ),
        ]
    )
    r = await http.get(f"{emulator.base_url}/api/video/x/status", headers=MF)
    assert r.status == 429
    assert r.headers["Retry-After"] == "7"
    assert (await r.json())["result"] == "failure"
    r = await http.get(f"{emulator.base_url}/api/v1/tasks", headers=AVM)
    assert r.status == 429
    when = email.utils.parsedate_to_datetime(r.headers["Retry-After"])
    assert when.tzinfo is not None
    assert (await r.json())["status"] == "FAILED"
    assert (await http.get(f"{emulator.base_url}/api/v1/tasks", headers=AVM)).status == 200


async def test_rate_limit_storm_then_recovery(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    emulator.add_fault(fault("*", "rate_limit", times=5))
    statuses = [
        (await http.get(f"{emulator.base_url}/api/avatars", headers=MF)).status for _ in range(7)
    ]
    assert statuses == [429] * 5 + [200] * 2
    assert emulator.stats()["faults_fired"] == {"rate_limit": 5}


async def test_rate_limit_on_create_commits_nothing(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    emulator.add_fault(fault("*.create", "rate_limit", times=1))
    r = await http.post(f"{emulator.base_url}/api/v1/generate/t2v", json=T2V, headers=AVM)
    assert r.status == 429
    assert emulator.stats()["creates"] == {}


@pytest.mark.parametrize("commit", [False, True])
async def test_server_error_with_and_without_commit(
    http: aiohttp.ClientSession, emulator: Emulator, commit: bool
) -> None:
    emulator.add_fault(
        fault("aivideomaker.create", "server_error", params={"status": 503, "commit": commit})
    )
    r = await http.post(f"{emulator.base_url}/api/v1/generate/t2v", json=T2V, headers=AVM)
    assert r.status == 503
    assert (await r.json())["status"] == "FAILED"
    stats = emulator.stats()
    assert stats["creates"].get("aivideomaker", 0) == int(commit)
    assert sum(stats["jobs"]["aivideomaker"].values()) == int(commit)


async def test_drop_after_commit_creates_then_disconnects(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    emulator.add_fault(fault("miraflow.create", "drop_after_commit", schedule=[1]))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await create_video(http, emulator)
    stats = emulator.stats()
    assert stats["creates"] == {"miraflow": 1}  # the job really exists
    assert sum(stats["jobs"]["miraflow"].values()) == 1
    assert stats["faults_fired"] == {"drop_after_commit": 1}
    assert (await create_video(http, emulator)).status == 200  # schedule [1]: only the first


async def test_drop_after_commit_on_run_sse(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    auth = await login(http, emulator)
    sid = await new_session(http, emulator, auth)
    emulator.add_fault(fault("nemovideo.run_sse", "drop_after_commit"))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await http.post(
            f"{emulator.base_url}/run_sse", json=sse_body(sid, "make a video"), headers=auth
        )
    assert emulator.stats()["creates"] == {"nemovideo": 1}


async def test_stall_after_commit_outlasts_the_client_timeout(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    emulator.add_fault(fault("aivideomaker.create", "stall_after_commit", params={"seconds": 30}))
    with pytest.raises(TimeoutError):
        await http.post(
            f"{emulator.base_url}/api/v1/generate/t2v",
            json=T2V,
            headers=AVM,
            timeout=aiohttp.ClientTimeout(total=0.2),
        )
    assert emulator.stats()["creates"] == {"aivideomaker": 1}
    # The fixture's teardown ends the 30 s stall at once (the test would time out otherwise).


async def test_stall_ends_when_the_stall_time_is_over(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    emulator.add_fault(fault("miraflow.list", "stall_after_commit", params={"seconds": 0.05}))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await http.get(f"{emulator.base_url}/api/avatars", headers=MF)


async def test_truncated_body(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    emulator.add_fault(fault("miraflow.create", "truncate", params={"fraction": 0.5}))
    r = await create_video(http, emulator)
    assert r.status == 200
    async with r:
        with pytest.raises(aiohttp.ClientPayloadError):
            await r.read()
    assert emulator.stats()["creates"] == {"miraflow": 1}


@pytest.mark.parametrize("status", [200, 502])
async def test_html_body(http: aiohttp.ClientSession, emulator: Emulator, status: int) -> None:
    emulator.add_fault(fault("miraflow.status", "html", params={"status": status}))
    r = await http.get(f"{emulator.base_url}/api/video/x/status", headers=MF)
    assert r.status == status
    assert r.content_type == "text/html"
    with pytest.raises(aiohttp.ContentTypeError):
        await r.json()


async def test_oversize_body(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    emulator.add_fault(fault("miraflow.list", "oversize", params={"bytes": 300_000}))
    r = await http.get(f"{emulator.base_url}/api/avatars", headers=MF)
    body = await r.read()
    assert len(body) >= 300_000
    assert int(r.headers["Content-Length"]) == len(body)
    assert "avatars" in json.loads(body)  # still the real answer, padded


async def test_trickled_body(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    emulator.add_fault(fault("miraflow.list", "trickle", params={"interval": 0.05, "chunk": 100}))
    r = await http.get(f"{emulator.base_url}/api/avatars", headers=MF)
    chunks = [c async for c in r.content.iter_any()]
    assert len(chunks) >= 3  # the body arrived in pieces, with pauses between
    assert "avatars" in json.loads(b"".join(chunks))


async def test_reset_mid_download(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    job = (await (await create_video(http, emulator)).json())["jobId"]
    emulator.advance(60)
    emulator.add_fault(fault("miraflow.download", "reset_download", times=1))
    r = await http.get(f"{emulator.base_url}/api/video/{job}/download", headers=MF)
    async with r:
        with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ClientOSError)):
            await r.read()
    again = await http.get(f"{emulator.base_url}/api/video/{job}/download", headers=MF)
    assert await again.read() == sample_mp4()


async def test_expire_signed_url(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    job = (await (await create_video(http, emulator)).json())["jobId"]
    emulator.advance(60)
    meta = await (await http.get(f"{emulator.base_url}/api/video/{job}", headers=MF)).json()
    emulator.add_fault(fault("*.download", "expire_signed_url", times=1))
    r = await http.get(meta["downloadUrl"])
    assert r.status == 403
    assert b"Request has expired" in await r.read()
    assert (await http.get(meta["downloadUrl"])).status == 200


async def _sse(
    http: aiohttp.ClientSession,
    emu: Emulator,
    text: str = "make a video",
    streaming: bool = False,
    **kw: Any,
) -> aiohttp.ClientResponse:
    auth = await login(http, emu)
    sid = await new_session(http, emu, auth)
    body = sse_body(sid, text, streaming=streaming)
    return await http.post(f"{emu.base_url}/run_sse", json=body, headers=auth, **kw)


async def test_sse_stall(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    emulator.add_fault(
        fault("nemovideo.run_sse", "sse_stall", params={"after_events": 1, "seconds": 30})
    )
    r = await _sse(http, emulator, timeout=aiohttp.ClientTimeout(sock_read=1.0))
    async with r:
        first = await r.content.readuntil(b"\n\n")
        assert first.startswith(b"data: {")
        with pytest.raises(TimeoutError):
            await r.content.read()


async def test_sse_close_mid_event(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    emulator.add_fault(
        fault("nemovideo.run_sse", "sse_close_mid_event", params={"after_events": 2})
    )
    r = await _sse(http, emulator, "hello there, what can you do?", streaming=True)
    got = bytearray()

    async def drain() -> None:
        async for chunk in r.content.iter_any():
            got.extend(chunk)

    async with r:
        with pytest.raises(aiohttp.ClientPayloadError):
            await drain()
    complete = got.split(b"\n\n")
    assert len(complete) == 3  # two whole events, then a fragment of the third
    assert complete[2].startswith(b"data: {")
    with pytest.raises(json.JSONDecodeError):
        json.loads(complete[2][len(b"data: ") :])


@pytest.mark.parametrize(("ending", "sep"), [("cr", b"\r"), ("crlf", b"\r\n"), ("lf", b"\n")])
async def test_sse_line_endings(
    http: aiohttp.ClientSession, emulator: Emulator, ending: str, sep: bytes
) -> None:
    emulator.add_fault(fault("nemovideo.run_sse", "sse_line_endings", params={"ending": ending}))
    raw = await (await _sse(http, emulator)).read()
    assert raw.count(sep + sep) >= 5
    if ending == "cr":
        assert b"\n" not in raw
    if ending == "lf":
        assert b"\r" not in raw
    normalised = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").decode()
    assert len(events(normalised)) >= 4


async def test_sse_fragments(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    emulator.add_fault(fault("nemovideo.run_sse", "sse_fragment", params={"min": 1, "max": 7}))
    r = await _sse(http, emulator, "hello")
    chunks = [c async for c in r.content.iter_any()]
    raw = b"".join(chunks).decode()
    assert len(events(raw)) == 1
    assert len(chunks) > 10  # one event arrived in many small pieces


async def test_token_expired_fault(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    auth = await login(http, emulator, "cx")
    sid = await new_session(http, emulator, auth)
    emulator.add_fault(fault("nemovideo.state", "token_expired", times=1))
    url = f"{emulator.base_url}/api/state/nemo_agent/me/{sid}/latest"
    assert (await (await http.get(url, headers=auth)).json())["code"] == 1001
    assert (await (await http.get(url, headers=auth)).json())["code"] == 1001  # stays expired
    fresh = await login(http, emulator, "cx")
    assert (await (await http.get(url, headers=fresh)).json())["code"] == 0


async def test_session_lost_fault(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    auth = await login(http, emulator)
    sid = await new_session(http, emulator, auth)
    emulator.add_fault(fault("nemovideo.run_sse", "session_lost", times=1))
    r = await http.post(f"{emulator.base_url}/run_sse", json=sse_body(sid, "hi"), headers=auth)
    assert (await r.json())["code"] == 1002
    url = f"{emulator.base_url}/api/state/nemo_agent/me/{sid}/latest"
    assert (await (await http.get(url, headers=auth)).json())["code"] == 1002


def test_probability_is_seeded() -> None:
    def hits(seed: int) -> list[bool]:
        engine = FaultEngine(seed, [FaultRule(endpoint="*", kind="html", probability=0.3)], Stats())
        return [engine.select(ENDPOINTS["miraflow.list"])[1] is not None for _ in range(200)]

    assert hits(1) == hits(1)
    assert hits(1) != hits(2)
    assert 30 < sum(hits(1)) < 90


def test_schedule_and_times() -> None:
    stats = Stats()
    engine = FaultEngine(
        0,
        [
            FaultRule(endpoint="miraflow.*", kind="html", schedule=[2, 4]),
            FaultRule(endpoint="*", kind="server_error", times=2),
            FaultRule(endpoint="*", kind="latency", params={"seconds": 0.5}),
        ],
        stats,
    )
    picks = [engine.select(ENDPOINTS["miraflow.list"]) for _ in range(5)]
    assert [p[1].kind if p[1] else None for p in picks] == [
        "server_error",
        "html",
        "server_error",
        "html",
        None,
    ]
    assert [p[0] for p in picks] == [0.5] * 5  # latency combines with another fault
    assert stats.faults_fired == {"server_error": 2, "html": 2, "latency": 5}


def test_faults_apply_only_where_they_make_sense() -> None:
    engine = FaultEngine(
        0,
        [
            FaultRule(endpoint="*", kind="sse_fragment"),
            FaultRule(endpoint="*", kind="truncate"),
            FaultRule(endpoint="*", kind="token_expired"),
        ],
        Stats(),
    )
    assert engine.select(ENDPOINTS["miraflow.create"])[1].kind == "truncate"  # type: ignore[union-attr]
    assert engine.select(ENDPOINTS["nemovideo.run_sse"])[1].kind == "sse_fragment"  # type: ignore[union-attr]
    assert engine.select(ENDPOINTS["nemovideo.credits"])[1].kind == "truncate"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"kind": "nope"}, "unknown fault kind"),
        ({"kind": "latency", "params": {"secs": 1}}, "unknown param"),
        ({"kind": "latency", "endpoint": "nowhere.*"}, "matches no endpoint"),
        ({"kind": "latency", "probability": 2}, "probability"),
        ({"kind": "latency", "schedule": [0]}, "schedule"),
        ({"kind": "latency", "times": -1}, "times"),
        ({"kind": "latency", "when": "now"}, "unknown fault rule field"),
        ({"endpoint": "*"}, "needs 'kind'"),
        ({"kind": "sse_line_endings", "params": {"ending": "nl"}}, "ending"),
        ({"kind": "rate_limit", "params": {"form": "weeks"}}, "form"),
    ],
)
def test_rules_are_validated(raw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        FaultRule.from_dict(raw)


async def test_faults_from_config(http: aiohttp.ClientSession, emulator_factory: Any) -> None:
    config = EmulatorConfig(faults=[fault("miraflow.list", "server_error", times=1)])
    async with emulator_factory(config) as emu:
        assert (await http.get(f"{emu.base_url}/api/avatars", headers=MF)).status == 500
        assert (await http.get(f"{emu.base_url}/api/avatars", headers=MF)).status == 200
        emu.reset()  # the configured faults come back, with fresh counters
        assert (await http.get(f"{emu.base_url}/api/avatars", headers=MF)).status == 500
