"""AIVideoMaker routes of the emulator, exercised with raw aiohttp (PROVIDER_APIS.md §4)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from aivideo_async.emulator import Emulator, EmulatorConfig, run_emulator
from aivideo_async.emulator._media import sample_mp4

pytestmark = pytest.mark.anyio

KEY = {"key": "ak_test"}
IMG = "data:image/png;base64,iVBORw0KGgo="
T2V = {"prompt": "sunset", "aspectRatio": "16:9", "duration": "8"}


async def _create(
    http: aiohttp.ClientSession, emu: Emulator, model: str = "t2v", body: Any = None, **headers: str
) -> aiohttp.ClientResponse:
    return await http.post(
        f"{emu.base_url}/api/v1/generate/{model}",
        json=T2V if body is None else body,
        headers={**KEY, **headers},
    )


async def test_create_answers_urls_and_task_lifecycle(
    http: aiohttp.ClientSession, emulator_factory: Any
) -> None:
    async with emulator_factory(EmulatorConfig(job_duration=(10, 10), time_scale=1.0)) as emu:
        r = await _create(http, emu, webhookUrl="https://hook.example/cb")
        assert r.status == 200
        out = await r.json()
        task = out["taskId"]
        assert out["status"] == "SUBMITTED"
        assert out["responseUrl"] == f"{emu.base_url}/api/v1/tasks/{task}"
        assert out["statusUrl"] == out["responseUrl"] + "/status"
        assert out["cancelUrl"] == out["responseUrl"] + "/cancel"
        seen = []
        for step in (0, 3, 10):
            emu.advance(step)
            seen.append((await (await http.get(out["statusUrl"], headers=KEY)).json())["status"])
        assert seen == ["SUBMITTED", "PROGRESS", "COMPLETED"]
        detail = await (await http.get(out["responseUrl"], headers=KEY)).json()
        assert set(detail) == {
            "id",
            "createdAt",
            "model",
            "input",
            "output",
            "status",
            "completedAt",
        }
        assert detail["input"] == T2V
        assert detail["model"] == "t2v"
        assert detail["output"]["videoUrl"] == detail["output"]["url"]
        assert detail["completedAt"].endswith("Z")
        video = await http.get(detail["output"]["url"])
        assert await video.read() == sample_mp4()


async def test_running_task_has_null_output(
    http: aiohttp.ClientSession, emulator_factory: Any
) -> None:
    async with emulator_factory(EmulatorConfig(job_duration=(10, 10))) as emu:
        task = (await (await _create(http, emu)).json())["taskId"]
        detail = await (await http.get(f"{emu.base_url}/api/v1/tasks/{task}", headers=KEY)).json()
        assert detail["output"] is None
        assert detail["completedAt"] is None


async def test_list_newest_first_and_per_key(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    ids = [(await (await _create(http, emulator)).json())["taskId"] for _ in range(3)]
    await http.post(f"{emulator.base_url}/api/v1/generate/t2v", json=T2V, headers={"key": "other"})
    tasks = await (await http.get(f"{emulator.base_url}/api/v1/tasks", headers=KEY)).json()
    assert [t["id"] for t in tasks["tasks"]] == ids[::-1]
    r = await http.get(f"{emulator.base_url}/api/v1/tasks/{ids[0]}", headers={"key": "other"})
    assert r.status == 404
    assert (await r.json())["status"] == "FAILED"


async def test_cancel_only_while_submitted_and_refunds(
    http: aiohttp.ClientSession, emulator_factory: Any
) -> None:
    config = EmulatorConfig(job_duration=(10, 10), initial_credits=100)
    async with emulator_factory(config) as emu:
        out = await (await _create(http, emu)).json()  # 8 credits
        assert emu.state.account("aivideomaker", "ak_test").balance(emu.state.now())[0] == 92
        for method in ("POST", "DELETE"):
            r = await http.request(method, out["cancelUrl"], headers=KEY)
            assert r.status == 405
        r = await http.put(out["cancelUrl"], headers=KEY)
        assert (await r.json()) == {"status": "CANCEL"}
        assert emu.state.account("aivideomaker", "ak_test").balance(emu.state.now())[0] == 100
        status = await (await http.get(out["statusUrl"], headers=KEY)).json()
        assert status == {"status": "CANCEL"}
        emu.advance(20)  # the refunded hold must not be refunded twice
        assert emu.state.account("aivideomaker", "ak_test").balance(emu.state.now()) == (100, 0)
        running = await (await _create(http, emu)).json()
        emu.advance(5)
        r = await http.put(running["cancelUrl"], headers=KEY)
        assert r.status == 400
        assert "SUBMITTED" in (await r.json())["message"]


@pytest.mark.parametrize(
    ("model", "body", "fragment"),
    [
        ("t2v", {"prompt": "x", "aspectRatio": "16:9", "duration": 8}, "duration"),
        ("t2v", {"prompt": "x", "aspectRatio": "4:3", "duration": "8"}, "aspectRatio"),
        ("t2v", {"prompt": "x", "aspectRatio": "16:9", "duration": "10"}, "duration"),
        ("t2v", {"prompt": "x", "aspectRatio": "16:9", "duration": "8", "seed": 1}, "seed"),
        ("t2v", {"aspectRatio": "16:9", "duration": "8"}, "prompt"),
        ("i2v", {"image": "ftp://x/y.png", "duration": "5"}, "image"),
        ("i2v", {"image": IMG}, "duration"),
        ("lv", {"image": IMG, "prompt": "one string"}, "prompt"),
        ("lv", {"image": IMG, "prompt": []}, "1-6"),
        ("lv", {"image": IMG, "prompt": ["a"] * 7}, "1-6"),
        ("lv", {"image": IMG, "prompt": ["a"], "duration": "5"}, "duration"),
        ("t2v_v3", {"prompt": "x", "aspectRatio": "1:1", "duration": "8"}, "duration"),
        ("i2v_v3", {"image": IMG, "duration": "25"}, "duration"),
        ("minimax", {"content": "x"}, "model"),
    ],
)
async def test_payload_contract_per_model(
    http: aiohttp.ClientSession, emulator: Emulator, model: str, body: Any, fragment: str
) -> None:
    r = await _create(http, emulator, model, body)
    assert r.status == 400
    data = await r.json()
    assert data["status"] == "FAILED"
    assert fragment in data["message"]
    assert emulator.stats()["creates"] == {}


@pytest.mark.parametrize(
    ("model", "body", "credits"),
    [
        ("t2v", T2V, 8),
        (
            "i2v",
            {"image": "https://x/y.jpg", "prompt": None, "duration": "5", "aspectRatio": "1:1"},
            5,
        ),
        ("lv", {"image": IMG, "prompt": ["a", "b", "c"]}, 225),
        ("t2v_v3", {"prompt": "x", "aspectRatio": "9:16", "duration": "20"}, 200),
        ("i2v_v3", {"image": IMG, "duration": "10"}, 100),
    ],
)
async def test_valid_payloads_and_credits(
    http: aiohttp.ClientSession, emulator: Emulator, model: str, body: Any, credits: int
) -> None:
    r = await _create(http, emulator, model, body)
    assert r.status == 200, await r.text()
    acct = emulator.state.account("aivideomaker", "ak_test")
    assert acct.balance(emulator.state.now())[0] == emulator.config.initial_credits - credits
    detail = await (await http.get((await r.json())["responseUrl"], headers=KEY)).json()
    assert "aspectRatio" not in detail["input"] or model != "i2v"
    if body.get("image", "").startswith("data:"):
        # The stored input holds a (downloadable) storage URL, not the base64.
        assert detail["input"]["image"].startswith(emulator.base_url + "/s3/aivideomaker/inputs/")
        png = await (await http.get(detail["input"]["image"])).read()
        assert png[:4] == b"\x89PNG"


async def test_insufficient_credits_402_and_failed_tasks_refunded(
    http: aiohttp.ClientSession, emulator_factory: Any
) -> None:
    config = EmulatorConfig(initial_credits=10, failure_rate=1.0)
    async with emulator_factory(config) as emu:
        assert (await _create(http, emu)).status == 200  # 8 of 10
        r = await _create(http, emu)
        assert r.status == 402
        assert (await r.json()) == {"status": "FAILED", "message": "Insufficient credits"}
        emu.advance(60)  # the first task fails and its credits come back
        tasks = await (await http.get(f"{emu.base_url}/api/v1/tasks", headers=KEY)).json()
        assert tasks["tasks"][0]["status"] == "FAILED"
        assert tasks["tasks"][0]["output"] is None
        assert (await _create(http, emu)).status == 200


async def test_bad_key_is_401(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    r = await http.post(f"{emulator.base_url}/api/v1/generate/t2v", json=T2V)
    assert r.status == 401
    assert (await r.json())["status"] == "FAILED"
    r = await http.get(f"{emulator.base_url}/api/v1/tasks", headers={"key": ""})
    assert r.status == 401


async def test_query_rate_limit_with_retry_after(
    http: aiohttp.ClientSession, emulator_factory: Any
) -> None:
    async with emulator_factory(EmulatorConfig(aivideomaker_query_limit=5)) as emu:
        url = f"{emu.base_url}/api/v1/tasks"
        statuses = [(await http.get(url, headers=KEY)).status for _ in range(5)]
        assert statuses == [200] * 5
        r = await http.get(url, headers=KEY)
        assert r.status == 429
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert (await r.json())["status"] == "FAILED"
        # Another key has its own window; creates are not queries.
        assert (await http.get(url, headers={"key": "other"})).status == 200
        assert (await _create(http, emu)).status == 200
        emu.advance(61)
        assert (await http.get(url, headers=KEY)).status == 200


async def test_webhook_posts_the_task_detail_at_the_end(http: aiohttp.ClientSession) -> None:
    received: list[dict[str, Any]] = []
    arrived = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        arrived.set()
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        async with run_emulator(EmulatorConfig(job_duration=(30, 30))) as emu:
            done = await (await _create(http, emu, webhookUrl=url)).json()
            cancelled = await (await _create(http, emu, webhookUrl=url)).json()
            await _create(http, emu)  # no webhook asked
            await http.put(cancelled["cancelUrl"], headers=KEY)
            await arrived.wait()
            assert [(b["id"], b["status"]) for b in received] == [(cancelled["taskId"], "CANCEL")]
            arrived.clear()
            emu.advance(60)
            await arrived.wait()
            assert received[1]["id"] == done["taskId"]
            assert received[1]["status"] == "COMPLETED"
            assert received[1]["output"]["url"].startswith(emu.base_url)
        # Deliveries in flight finish during shutdown, so the count is final here.
        assert emu.stats()["webhooks"] == {"sent": 2}
    finally:
        await runner.cleanup()


async def test_webhook_delivery_failure_is_counted(http: aiohttp.ClientSession) -> None:
    # A port nobody listens on: bind one, note it, close it.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with run_emulator(EmulatorConfig(job_duration=(30, 30))) as emu:
        out = await (await _create(http, emu, webhookUrl=f"http://127.0.0.1:{port}/x")).json()
        await http.put(out["cancelUrl"], headers=KEY)
    assert emu.stats()["webhooks"] == {"failed": 1}
