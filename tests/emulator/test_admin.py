"""Accounting, admin endpoints, determinism, start-up paths and independence of the emulator."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import pathlib
import signal
import subprocess
import sys
from typing import Any

import aiohttp
import pytest

import aivideo_async.emulator
from aivideo_async.emulator import Emulator, EmulatorConfig, FaultRule, run_emulator
from aivideo_async.emulator.__main__ import config_from_args

pytestmark = pytest.mark.anyio

MF = {"x-api-key": "k"}
AVM = {"key": "ak"}
VIDEO = {"avatarId": "cmavatarstock0000000000001", "name": "n", "text": "t"}
T2V = {"prompt": "sunset", "aspectRatio": "16:9", "duration": "5"}


async def test_stats_count_requests_creates_duplicates_polls(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    base = emulator.base_url
    job = (await (await http.post(f"{base}/api/video/create", json=VIDEO, headers=MF)).json())[
        "jobId"
    ]
    # The same create again, formatted differently: a visible duplicate.
    same = json.dumps(VIDEO, indent=2, sort_keys=True)
    await http.post(
        f"{base}/api/video/create", data=same, headers={**MF, "Content-Type": "application/json"}
    )
    await http.post(f"{base}/api/v1/generate/t2v", json=T2V, headers=AVM)
    for _ in range(3):
        await http.get(f"{base}/api/video/{job}/status", headers=MF)
    await http.get(f"{base}/api/avatars", headers=MF)
    emulator.advance(60)
    stats = await (await http.get(f"{base}/__emulator__/stats")).json()
    assert stats == emulator.stats()
    assert stats["requests"] == {"miraflow": 6, "aivideomaker": 1}
    assert stats["requests_by_endpoint"]["miraflow.status"] == 3
    assert stats["creates"] == {"miraflow": 2, "aivideomaker": 1}
    assert sorted(stats["creates_by_fingerprint"].values()) == [1, 2]
    assert stats["duplicate_creates"] == 1
    assert list(stats["duplicate_fingerprints"].values()) == [2]
    brief = await (await http.get(f"{base}/__emulator__/stats?brief=1")).json()
    assert "creates_by_fingerprint" not in brief
    assert brief["duplicate_fingerprints"] == stats["duplicate_fingerprints"]
    assert stats["polls"] == {"miraflow": 3}
    assert stats["jobs"]["miraflow"] == {"inference_complete": 2}
    assert stats["jobs"]["aivideomaker"] == {"COMPLETED": 1}
    assert stats["max_concurrent_requests"] == 1
    assert stats["faults_fired"] == {}


async def test_max_concurrent_requests(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    emulator.add_fault(FaultRule(endpoint="miraflow.list", kind="latency", params={"seconds": 0.3}))
    await asyncio.gather(
        *(http.get(f"{emulator.base_url}/api/avatars", headers=MF) for _ in range(5))
    )
    assert emulator.stats()["max_concurrent_requests"] == 5
    assert emulator.stats()["concurrent_requests"] == 0


async def test_admin_faults_endpoints(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    url = f"{emulator.base_url}/__emulator__/faults"
    rules = [{"endpoint": "miraflow.list", "kind": "server_error", "schedule": [1]}]
    r = await http.post(url, json=rules)
    assert r.status == 200
    one = {"endpoint": "*.status", "kind": "html", "params": {"status": 502}}
    await http.post(url, json=one)  # an object appends
    listed = (await (await http.get(url)).json())["faults"]
    assert [f["kind"] for f in listed] == ["server_error", "html"]
    assert (await http.get(f"{emulator.base_url}/api/avatars", headers=MF)).status == 500
    listed = (await (await http.get(url)).json())["faults"]
    assert (listed[0]["seen"], listed[0]["hits"]) == (1, 1)
    bad = await http.post(url, json=[{"kind": "explode"}])
    assert bad.status == 400
    assert "unknown fault kind" in (await bad.json())["error"]
    assert (await http.delete(url)).status == 200
    assert (await (await http.get(url)).json())["faults"] == []


async def test_admin_reset_advance_expire_drop(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    base = emulator.base_url
    await http.post(f"{base}/api/video/create", json=VIDEO, headers=MF)
    r = await http.post(f"{base}/__emulator__/advance", json={"seconds": 60})
    assert r.status == 200
    assert emulator.stats()["jobs"]["miraflow"] == {"inference_complete": 1}
    assert (await http.post(f"{base}/__emulator__/advance", json={"seconds": -1})).status == 400
    assert (await http.post(f"{base}/__emulator__/advance", json={"secs": 1})).status == 400
    r = await http.post(f"{base}/__emulator__/nemovideo/expire_token", json={"token": "nope"})
    assert (await r.json()) == {"ok": False}
    r = await http.post(f"{base}/__emulator__/nemovideo/drop_session", json={"session_id": "1"})
    assert (await r.json()) == {"ok": False}
    await http.post(f"{base}/__emulator__/reset")
    stats = emulator.stats()
    assert stats["creates"] == {}
    assert stats["jobs"]["miraflow"] == {}


async def _scenario(emu: Emulator, http: aiohttp.ClientSession) -> list[Any]:
    """A fixed request sequence; returns what a seed should pin down."""
    base = emu.base_url
    out: list[Any] = []
    for _ in range(3):
        r = await http.post(f"{base}/api/video/create", json=VIDEO, headers=MF)
        out.append((await r.json())["jobId"])
        r = await http.post(f"{base}/api/v1/generate/t2v", json=T2V, headers=AVM)
        out.append((await r.json())["taskId"])
    r = await http.post(f"{base}/api/auth/anonymous-token", headers={"X-Client-Id": "c"})
    out.append((await r.json())["data"]["token"])
    jobs = [
        (j.id, round(j.duration, 9), j.fails, j.data.get("fail_status"))
        for provider in emu.state.jobs.values()
        for j in provider.values()
    ]
    emu.advance(60)
    out.append(jobs)
    out.append(emu.stats()["jobs"])
    return out


async def test_same_seed_same_ids_durations_outcomes(http: aiohttp.ClientSession) -> None:
    config = EmulatorConfig(seed=42, failure_rate=0.5)
    async with run_emulator(config) as a, run_emulator(config) as b:
        first = await _scenario(a, http)
        second = await _scenario(b, http)
    assert first == second
    async with run_emulator(EmulatorConfig(seed=43, failure_rate=0.5)) as c:
        other = await _scenario(c, http)
    assert other[0] != first[0]
    # reset() restarts the sequence.
    async with run_emulator(config) as d:
        await _scenario(d, http)
        d.reset()
        assert await _scenario(d, http) == first


async def test_failure_rate(http: aiohttp.ClientSession, emulator_factory: Any) -> None:
    async with emulator_factory(EmulatorConfig(failure_rate=1.0)) as emu:
        r = await http.post(f"{emu.base_url}/api/video/create", json=VIDEO, headers=MF)
        job = (await r.json())["jobId"]
        emu.advance(60)
        status = await (await http.get(f"{emu.base_url}/api/video/{job}/status", headers=MF)).json()
        assert status["status"] in ("inference_failed", "inference_error")


async def test_fixture_defaults(emulator: Emulator) -> None:
    assert emulator.base_url.startswith("http://127.0.0.1:")
    assert emulator.config.time_scale == 0.05


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="time_scale"):
        EmulatorConfig(time_scale=0)
    with pytest.raises(ValueError, match="job_duration"):
        EmulatorConfig(job_duration=(2, 1))
    with pytest.raises(TypeError, match="FaultRule"):
        EmulatorConfig(faults=[{"kind": "latency"}])  # type: ignore[list-item]


def test_cli_arguments(tmp_path: pathlib.Path) -> None:
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps([{"endpoint": "*.create", "kind": "drop_after_commit"}]))
    config = config_from_args(
        [
            *("--port", "0", "--seed", "5", "--time-scale", "0.5", "--faults", str(faults)),
            *("--initial-credits", "7", "--failure-rate", "0.25", "--job-duration", "1", "3"),
        ]
    )
    assert (config.seed, config.time_scale, config.port) == (5, 0.5, 0)
    assert (config.initial_credits, config.failure_rate, config.job_duration) == (7, 0.25, (1, 3))
    assert config.faults[0].kind == "drop_after_commit"
    faults.write_text(json.dumps([{"kind": "nope"}]))
    with pytest.raises(SystemExit):
        config_from_args(["--faults", str(faults)])


def test_python_m_serves_and_prints_the_base_url_first(tmp_path: pathlib.Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "aivideo_async.emulator", "--port", "0", "--seed", "3", "-v"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:")

        async def probe() -> dict[str, Any]:
            async with aiohttp.ClientSession() as http:
                r = await http.get(f"{base}/__emulator__/stats")
                return dict(await r.json())

        assert asyncio.run(probe())["requests"] == {}
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "GET /__emulator__/stats" in err  # --verbose logs each request


def test_imports_nothing_from_the_client_layers() -> None:
    allowed_roots = {"aiohttp", "attrs", "cattrs", "pytest", "multidict", "yarl"}
    package = pathlib.Path(aivideo_async.emulator.__file__).parent
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    continue  # a sibling module of the emulator
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                root = name.split(".")[0]
                assert root in allowed_roots or root in sys.stdlib_module_names, (path.name, name)
